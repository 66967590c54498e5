package acme

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"certdesk/internal/dcv"
	"certdesk/internal/store"
)

// Lifetimes of pending orders and authorizations.
const (
	orderTTL = 7 * 24 * time.Hour
	authzTTL = 7 * 24 * time.Hour
)

// challengeTypes are offered for every non-wildcard name (wildcards: dns-01).
var challengeTypes = []string{"http-01", "dns-01"}

// defaultProfile is used when newOrder names none.
const defaultProfile = "server-dv"

func (s *server) orderJSON(r *http.Request, o store.ACMEOrder) map[string]any {
	b := s.base(r)
	authz := make([]string, 0, len(o.AuthzIDs))
	for _, id := range o.AuthzIDs {
		authz = append(authz, b+"/authz/"+id)
	}
	m := map[string]any{
		"status":         o.Status,
		"expires":        o.ExpiresAt.UTC().Format(time.RFC3339),
		"identifiers":    o.Identifiers,
		"authorizations": authz,
		"finalize":       b + "/order/" + o.ID + "/finalize",
		"profile":        o.Profile,
	}
	if o.Status == "valid" {
		m["certificate"] = b + "/cert/" + o.ID
	}
	if o.Error != nil {
		m["error"] = o.Error
	}
	return m
}

func (s *server) writeOrder(w http.ResponseWriter, r *http.Request, status int, o store.ACMEOrder) {
	if !s.setNonce(w, r) {
		return
	}
	w.Header().Set("Location", s.base(r)+"/order/"+o.ID)
	w.Header().Set("Link", `<`+s.base(r)+`/directory>;rel="index"`)
	if o.Status == "processing" {
		w.Header().Set("Retry-After", "1")
	}
	writeJSON(w, status, s.orderJSON(r, o))
}

func (s *server) backend() (Orders, error) {
	if s.d.Orders == nil {
		return nil, fail(http.StatusServiceUnavailable, "serverInternal", "ordering is not enabled on this server")
	}
	return s.d.Orders, nil
}

func (s *server) newOrder(w http.ResponseWriter, r *http.Request) {
	req, err := s.verify(r, false)
	if err != nil {
		s.refuse(w, r, err)
		return
	}
	be, err := s.backend()
	if err != nil {
		s.refuse(w, r, err)
		return
	}
	var p struct {
		Identifiers []store.ACMEIdentifier `json:"identifiers"`
		NotBefore   string                 `json:"notBefore"`
		NotAfter    string                 `json:"notAfter"`
		Profile     string                 `json:"profile"`
		Replaces    string                 `json:"replaces"` // RFC 9773 §5
	}
	if err := json.Unmarshal(req.payload, &p); err != nil {
		s.refuse(w, r, fail(http.StatusBadRequest, "malformed", "payload is not a newOrder object"))
		return
	}
	if p.NotBefore != "" || p.NotAfter != "" {
		s.refuse(w, r, fail(http.StatusBadRequest, "malformed", "notBefore and notAfter are not supported; validity follows the profile"))
		return
	}
	if len(p.Identifiers) == 0 || len(p.Identifiers) > 100 {
		s.refuse(w, r, fail(http.StatusBadRequest, "malformed", "an order needs 1 to 100 identifiers"))
		return
	}
	seen := map[string]bool{}
	for i, id := range p.Identifiers {
		v := strings.ToLower(strings.TrimSuffix(id.Value, "."))
		if id.Type != "dns" {
			s.refuse(w, r, fail(http.StatusBadRequest, "unsupportedIdentifier", "identifier type %q is not supported (dns only)", id.Type))
			return
		}
		if v == "" || seen[v] {
			s.refuse(w, r, fail(http.StatusBadRequest, "malformed", "empty or repeated identifier %q", id.Value))
			return
		}
		seen[v] = true
		p.Identifiers[i].Value = v
	}
	if p.Profile == "" {
		p.Profile = defaultProfile
	}
	if _, ok := s.d.Profiles[p.Profile]; !ok {
		s.refuse(w, r, fail(http.StatusBadRequest, "invalidProfile", "unknown profile %q", p.Profile))
		return
	}
	cred, err := s.d.Store.GetEABCredential(r.Context(), req.account.EABKID)
	if err != nil {
		s.refuse(w, r, err)
		return
	}
	if len(cred.Products) > 0 && !slices.Contains(cred.Products, p.Profile) {
		s.refuse(w, r, fail(http.StatusForbidden, "unauthorized", "this account's EAB credentials do not allow profile %q", p.Profile))
		return
	}
	replaces := ""
	if p.Replaces != "" {
		if replaces, err = s.checkReplaces(r.Context(), *req.account, p.Identifiers, p.Replaces); err != nil {
			s.refuse(w, r, err)
			return
		}
	}
	if err := be.Allow(r.Context(), *req.account, p.Profile, p.Identifiers); err != nil {
		s.refuse(w, r, err)
		return
	}
	o, err := s.d.Store.CreateACMEOrder(r.Context(), store.ACMEOrder{
		AccountID: req.account.ID, Profile: p.Profile, Identifiers: p.Identifiers,
		ExpiresAt: time.Now().Add(orderTTL), Replaces: replaces,
	}, challengeTypes, authzTTL)
	if errors.Is(err, store.ErrConflict) && replaces != "" {
		s.refuse(w, r, fail(http.StatusConflict, "alreadyReplaced", "the certificate named in replaces has already been replaced by another order"))
		return
	}
	if err != nil {
		s.refuse(w, r, err)
		return
	}
	if st, ok := be.(OrderStarter); ok {
		if err := st.StartOrder(context.WithValue(r.Context(), baseKey{}, s.base(r)), *req.account, o); err != nil {
			s.refuse(w, r, err)
			return
		}
	}
	s.writeOrder(w, r, http.StatusCreated, o)
}

// notFoundOr maps store.ErrNotFound (which includes another account's
// object) to a 404 problem.
func notFoundOr(err error, what string) error {
	if errors.Is(err, store.ErrNotFound) {
		return fail(http.StatusNotFound, "malformed", "no such %s", what)
	}
	return err
}

func (s *server) order(w http.ResponseWriter, r *http.Request) {
	req, err := s.verify(r, false)
	if err != nil {
		s.refuse(w, r, err)
		return
	}
	o, err := s.d.Store.GetACMEOrder(r.Context(), req.account.ID, r.PathValue("id"))
	if err != nil {
		s.refuse(w, r, notFoundOr(err, "order"))
		return
	}
	s.writeOrder(w, r, http.StatusOK, o)
}

func (s *server) challengeJSON(r *http.Request, c store.ACMEChallenge) map[string]any {
	m := map[string]any{
		"type":   c.Type,
		"url":    s.base(r) + "/chall/" + c.ID,
		"status": c.Status,
		"token":  c.Token,
	}
	if c.ValidatedAt != nil {
		m["validated"] = c.ValidatedAt.UTC().Format(time.RFC3339)
	}
	if c.Error != nil {
		m["error"] = c.Error
	}
	return m
}

func (s *server) authz(w http.ResponseWriter, r *http.Request) {
	req, err := s.verify(r, false)
	if err != nil {
		s.refuse(w, r, err)
		return
	}
	a, err := s.d.Store.GetACMEAuthz(r.Context(), req.account.ID, r.PathValue("id"))
	if err != nil {
		s.refuse(w, r, notFoundOr(err, "authorization"))
		return
	}
	s.writeAuthz(w, r, a)
}

func (s *server) writeAuthz(w http.ResponseWriter, r *http.Request, a store.ACMEAuthz) {
	ch := []map[string]any{}
	for _, c := range a.Challenges {
		// §7.1.4: a valid authorization lists only the challenge that
		// validated it.
		if a.Status == "valid" && c.Status != "valid" {
			continue
		}
		ch = append(ch, s.challengeJSON(r, c))
	}
	m := map[string]any{
		"identifier": a.Identifier,
		"status":     a.Status,
		"expires":    a.ExpiresAt.UTC().Format(time.RFC3339),
		"challenges": ch,
	}
	if a.Wildcard {
		m["wildcard"] = true
	}
	if !s.setNonce(w, r) {
		return
	}
	w.Header().Set("Link", `<`+s.base(r)+`/directory>;rel="index"`)
	writeJSON(w, http.StatusOK, m)
}

// challenge serves POST to a challenge URL: {} asks the server to validate
// (§7.5.1), an empty payload reads it. Validation runs in the request; a
// repeated POST returns the current state.
func (s *server) challenge(w http.ResponseWriter, r *http.Request) {
	req, err := s.verify(r, false)
	if err != nil {
		s.refuse(w, r, err)
		return
	}
	ctx := r.Context()
	cid := r.PathValue("id")
	azID, err := s.d.Store.ACMEChallengeOwner(ctx, req.account.ID, cid)
	if err != nil {
		s.refuse(w, r, notFoundOr(err, "challenge"))
		return
	}
	if len(req.payload) > 0 {
		if strings.TrimSpace(string(req.payload)) != "{}" {
			s.refuse(w, r, fail(http.StatusBadRequest, "malformed", "a challenge response is the empty object {}"))
			return
		}
		be, err := s.backend()
		if err != nil {
			s.refuse(w, r, err)
			return
		}
		started, err := s.d.Store.StartACMEChallenge(ctx, cid)
		if err != nil {
			s.refuse(w, r, err)
			return
		}
		if started {
			if err := s.validate(r, be, *req.account, azID, cid); err != nil {
				s.refuse(w, r, err)
				return
			}
		}
	}
	a, err := s.d.Store.GetACMEAuthz(ctx, req.account.ID, azID)
	if err != nil {
		s.refuse(w, r, err)
		return
	}
	for _, c := range a.Challenges {
		if c.ID == cid {
			if !s.setNonce(w, r) {
				return
			}
			w.Header().Set("Link", `<`+s.base(r)+`/authz/`+azID+`>;rel="up"`)
			writeJSON(w, http.StatusOK, s.challengeJSON(r, c))
			return
		}
	}
	s.refuse(w, r, fail(http.StatusNotFound, "malformed", "no such challenge"))
}

func (s *server) validate(r *http.Request, be Orders, acct store.ACMEAccount, azID, cid string) error {
	ctx := r.Context()
	a, err := s.d.Store.GetACMEAuthz(ctx, acct.ID, azID)
	if err != nil {
		return err
	}
	var c store.ACMEChallenge
	for _, x := range a.Challenges {
		if x.ID == cid {
			c = x
		}
	}
	method := map[string]string{"http-01": dcv.MethodACMEHTTP01, "dns-01": dcv.MethodACMEDNS01}[c.Type]
	domain := a.Identifier.Value
	if a.Wildcard {
		domain = "*." + domain
	}
	verr := be.Validate(ctx, acct, Challenge{OrderID: a.OrderID, AuthzID: a.ID, ID: c.ID, Type: c.Type},
		method, domain, dcv.ACMEKeyAuthorization(c.Token, acct.Thumbprint))
	if errors.Is(verr, ErrPending) {
		return nil
	}
	if errors.Is(verr, ErrUnavailable) {
		if err := s.d.Store.ResetACMEChallenge(context.WithoutCancel(ctx), cid); err != nil {
			return err
		}
		return fail(http.StatusServiceUnavailable, "serverInternal", "validation could not start now; respond to the challenge again")
	}
	var problem json.RawMessage
	if verr != nil {
		typ, detail := "unauthorized", "validation failed"
		var ae *Error
		var ref *dcv.Refusal
		switch {
		case errors.As(verr, &ae):
			typ, detail = ae.Type, ae.Detail
		case errors.As(verr, &ref):
			typ, detail = "rejectedIdentifier", ref.Error()
		case errors.Is(verr, dcv.ErrNotYet):
			typ, detail = map[string]string{"http-01": "incorrectResponse", "dns-01": "incorrectResponse"}[c.Type], verr.Error()
		}
		problem, _ = json.Marshal(map[string]any{"type": "urn:ietf:params:acme:error:" + typ, "detail": detail, "status": http.StatusForbidden})
	}
	return s.d.Store.FinishACMEChallenge(ctx, cid, problem)
}

func (s *server) finalize(w http.ResponseWriter, r *http.Request) {
	req, err := s.verify(r, false)
	if err != nil {
		s.refuse(w, r, err)
		return
	}
	ctx := r.Context()
	be, err := s.backend()
	if err != nil {
		s.refuse(w, r, err)
		return
	}
	o, err := s.d.Store.GetACMEOrder(ctx, req.account.ID, r.PathValue("id"))
	if err != nil {
		s.refuse(w, r, notFoundOr(err, "order"))
		return
	}
	var p struct {
		CSR string `json:"csr"`
	}
	if err := json.Unmarshal(req.payload, &p); err != nil || p.CSR == "" {
		s.refuse(w, r, fail(http.StatusBadRequest, "malformed", "payload is not a finalize object"))
		return
	}
	if o.Status != "ready" {
		s.refuse(w, r, fail(http.StatusForbidden, "orderNotReady", "order is %s, not ready", o.Status))
		return
	}
	der, err := base64.RawURLEncoding.DecodeString(p.CSR)
	if err != nil {
		s.refuse(w, r, fail(http.StatusBadRequest, "badCSR", "csr is not base64url DER"))
		return
	}
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil || csr.CheckSignature() != nil {
		s.refuse(w, r, fail(http.StatusBadRequest, "badCSR", "csr does not parse or its signature does not verify"))
		return
	}
	if err := csrMatches(csr, o, req.account); err != nil {
		s.refuse(w, r, err)
		return
	}
	if err := s.d.Store.StartACMEFinalize(ctx, req.account.ID, o.ID); err != nil {
		if errors.Is(err, store.ErrNotReady) {
			err = fail(http.StatusForbidden, "orderNotReady", "order is no longer ready")
		}
		s.refuse(w, r, err)
		return
	}
	chain, leaf, ierr := be.Issue(ctx, *req.account, o, csr)
	if errors.Is(ierr, ErrUnavailable) {
		if err := s.d.Store.ResetACMEFinalize(context.WithoutCancel(ctx), o.ID); err != nil {
			s.refuse(w, r, err)
			return
		}
		s.refuse(w, r, fail(http.StatusServiceUnavailable, "serverInternal", "issuance could not start now; finalize again"))
		return
	}
	if errors.Is(ierr, ErrPending) {
		// Processing: the client polls the order (Retry-After).
		if o, err = s.d.Store.GetACMEOrder(ctx, req.account.ID, o.ID); err != nil {
			s.refuse(w, r, err)
			return
		}
		s.writeOrder(w, r, http.StatusOK, o)
		return
	}
	var problem json.RawMessage
	serial := ""
	if ierr != nil {
		typ, detail := "serverInternal", "issuance failed"
		var ae *Error
		if errors.As(ierr, &ae) {
			typ, detail = ae.Type, ae.Detail
		}
		problem, _ = json.Marshal(map[string]any{"type": "urn:ietf:params:acme:error:" + typ, "detail": detail, "status": http.StatusInternalServerError})
		chain = ""
	} else {
		serial = fmt.Sprintf("%x", leaf.SerialNumber)
	}
	if err := s.d.Store.FinishACMEOrder(ctx, o.ID, chain, serial, problem); err != nil {
		s.refuse(w, r, err)
		return
	}
	o, err = s.d.Store.GetACMEOrder(ctx, req.account.ID, o.ID)
	if err != nil {
		s.refuse(w, r, err)
		return
	}
	s.writeOrder(w, r, http.StatusOK, o)
}

// csrMatches checks the CSR names exactly the order's identifiers (in the
// SANs; a CN, if any, among them) and is not for the account key (§7.4).
func csrMatches(csr *x509.CertificateRequest, o store.ACMEOrder, acct *store.ACMEAccount) error {
	want := map[string]bool{}
	for _, id := range o.Identifiers {
		want[id.Value] = true
	}
	got := map[string]bool{}
	for _, n := range csr.DNSNames {
		got[strings.ToLower(n)] = true
	}
	if cn := strings.ToLower(csr.Subject.CommonName); cn != "" && !want[cn] {
		return fail(http.StatusBadRequest, "badCSR", "CSR common name %q is not an identifier of the order", cn)
	}
	if len(csr.IPAddresses)+len(csr.EmailAddresses)+len(csr.URIs) > 0 {
		return fail(http.StatusBadRequest, "badCSR", "CSR may name only the order's DNS identifiers")
	}
	if len(got) != len(want) {
		return fail(http.StatusBadRequest, "badCSR", "CSR names %d DNS names, the order %d", len(got), len(want))
	}
	for n := range got {
		if !want[n] {
			return fail(http.StatusBadRequest, "badCSR", "CSR names %q, which is not in the order", n)
		}
	}
	var ak jose.JSONWebKey
	if err := ak.UnmarshalJSON(acct.JWK); err == nil {
		if spki, err := x509.MarshalPKIXPublicKey(ak.Key); err == nil {
			if csrSPKI, err := x509.MarshalPKIXPublicKey(csr.PublicKey); err == nil && bytes.Equal(spki, csrSPKI) {
				return fail(http.StatusBadRequest, "badCSR", "the certificate key must not be the account key")
			}
		}
	}
	return nil
}

func (s *server) certificate(w http.ResponseWriter, r *http.Request) {
	req, err := s.verify(r, false)
	if err != nil {
		s.refuse(w, r, err)
		return
	}
	o, err := s.d.Store.GetACMEOrder(r.Context(), req.account.ID, r.PathValue("id"))
	if err != nil || o.Status != "valid" || o.CertPEM == "" {
		s.refuse(w, r, notFoundOr(store.ErrNotFound, "certificate"))
		return
	}
	if !s.setNonce(w, r) {
		return
	}
	w.Header().Set("Content-Type", "application/pem-certificate-chain")
	w.Header().Set("Link", `<`+s.base(r)+`/directory>;rel="index"`)
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write([]byte(o.CertPEM))
}

// allowedReasons are the RFC 5280 reason codes a subscriber may give (BR
// §7.2.2 / §4.9.1.1): unspecified, keyCompromise, affiliationChanged,
// superseded, cessationOfOperation.
var allowedReasons = map[int]bool{0: true, 1: true, 3: true, 4: true, 5: true}

// revokeCert revokes by the account that ordered the certificate (kid) or
// by the certificate's own key (jwk), §7.6.
func (s *server) revokeCert(w http.ResponseWriter, r *http.Request) {
	req, err := s.verifyMode(r, either)
	if err != nil {
		s.refuse(w, r, err)
		return
	}
	be, err := s.backend()
	if err != nil {
		s.refuse(w, r, err)
		return
	}
	var p struct {
		Certificate string `json:"certificate"`
		Reason      *int   `json:"reason"`
	}
	if err := json.Unmarshal(req.payload, &p); err != nil || p.Certificate == "" {
		s.refuse(w, r, fail(http.StatusBadRequest, "malformed", "payload is not a revocation request"))
		return
	}
	reason := 0
	if p.Reason != nil {
		reason = *p.Reason
	}
	if !allowedReasons[reason] {
		s.refuse(w, r, fail(http.StatusBadRequest, "badRevocationReason", "reason %d is not one a subscriber may give (0, 1, 3, 4, 5)", reason))
		return
	}
	der, err := base64.RawURLEncoding.DecodeString(p.Certificate)
	if err != nil {
		s.refuse(w, r, fail(http.StatusBadRequest, "malformed", "certificate is not base64url DER"))
		return
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		s.refuse(w, r, fail(http.StatusBadRequest, "malformed", "certificate does not parse"))
		return
	}
	o, err := s.d.Store.ACMEOrderBySerial(r.Context(), fmt.Sprintf("%x", cert.SerialNumber))
	if err != nil {
		s.refuse(w, r, notFoundOr(err, "certificate issued through ACME"))
		return
	}
	// The DER must be the certificate we issued, not one with its serial.
	if blk, _ := pem.Decode([]byte(o.CertPEM)); blk == nil || !bytes.Equal(blk.Bytes, der) {
		s.refuse(w, r, fail(http.StatusNotFound, "malformed", "no such certificate issued through ACME"))
		return
	}
	switch {
	case req.account != nil:
		if o.AccountID != req.account.ID {
			s.refuse(w, r, fail(http.StatusForbidden, "unauthorized", "this account did not order the certificate"))
			return
		}
	default:
		spki, err := x509.MarshalPKIXPublicKey(req.jwk.Key)
		if err != nil || !bytes.Equal(spki, cert.RawSubjectPublicKeyInfo) {
			s.refuse(w, r, fail(http.StatusForbidden, "unauthorized", "the JWS is signed neither by the ordering account nor by the certificate key"))
			return
		}
	}
	if err := be.Revoke(r.Context(), o, cert, reason, req.account == nil); err != nil {
		s.refuse(w, r, err)
		return
	}
	if !s.setNonce(w, r) {
		return
	}
	w.Header().Set("Link", `<`+s.base(r)+`/directory>;rel="index"`)
	w.WriteHeader(http.StatusOK)
}
