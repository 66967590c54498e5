// Package acme is CertDesk's ACME server (RFC 8555) as an HTTP handler
// library: directory, nonces, accounts bound to a reseller by External
// Account Binding (§7.3.4), account lookup, deactivation and key rollover.
// JWS handling is go-jose's; this package only checks what RFC 8555 adds
// (url, nonce, kid/jwk rules, EAB).
//
// Every piece of state lives behind Store (PostgreSQL in production), so two
// processes behind one address behave as one server.
package acme

import (
	"context"
	"crypto"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"certdesk/internal/store"
)

// Store is the narrow persistence the ACME server needs.
type Store interface {
	NewACMENonce(ctx context.Context, ttl time.Duration) (string, error)
	ConsumeACMENonce(ctx context.Context, nonce string) error
	GetEABCredential(ctx context.Context, kid string) (store.EABCredential, error)
	CreateACMEAccount(ctx context.Context, a store.ACMEAccount) (store.ACMEAccount, error)
	GetACMEAccount(ctx context.Context, id string) (store.ACMEAccount, error)
	ACMEAccountByThumbprint(ctx context.Context, thumbprint string) (store.ACMEAccount, error)
	DeactivateACMEAccount(ctx context.Context, id string) error
	RolloverACMEAccountKey(ctx context.Context, id, oldThumbprint, newThumbprint string, newJWK []byte) error

	CreateACMEOrder(ctx context.Context, o store.ACMEOrder, challengeTypes []string, authzTTL time.Duration) (store.ACMEOrder, error)
	GetACMEOrder(ctx context.Context, accountID, id string) (store.ACMEOrder, error)
	GetACMEAuthz(ctx context.Context, accountID, id string) (store.ACMEAuthz, error)
	ACMEChallengeOwner(ctx context.Context, accountID, challengeID string) (string, error)
	StartACMEChallenge(ctx context.Context, challengeID string) (bool, error)
	FinishACMEChallenge(ctx context.Context, challengeID string, problem json.RawMessage) error
	ResetACMEChallenge(ctx context.Context, challengeID string) error
	ResetACMEFinalize(ctx context.Context, orderID string) error
	StartACMEFinalize(ctx context.Context, accountID, orderID string) error
	FinishACMEOrder(ctx context.Context, orderID, certPEM, serialHex string, problem json.RawMessage) error
	ACMEOrderBySerial(ctx context.Context, serialHex string) (store.ACMEOrder, error)
	RenewalWindow(ctx context.Context, serial string) (start, end time.Time, ok bool, err error) // ARI, ari.go
}

// Orders is the backend that decides, validates, issues and revokes. The
// ACME layer owns the protocol state; the backend owns CA policy (which
// names a profile allows, domain validation, signing, revocation). An *Error
// return is sent to the client as is; any other error is serverInternal.
type Orders interface {
	// Allow vets a new order before it is written (rejectedIdentifier for
	// a name the profile forbids).
	Allow(ctx context.Context, acct store.ACMEAccount, profile string, ids []store.ACMEIdentifier) error
	// Validate checks one challenge: method is dcv.MethodACMEHTTP01 or
	// dcv.MethodACMEDNS01, keyAuthorization is token "." thumbprint.
	// ErrPending: the backend validates later and records the outcome
	// itself (Store.FinishACMEChallenge); the challenge stays processing.
	Validate(ctx context.Context, acct store.ACMEAccount, ch Challenge, method, domain, keyAuthorization string) error
	// Issue signs csr for a ready order and returns the PEM chain, leaf
	// first, and the leaf. ErrPending: the backend issues later and records
	// the outcome itself (Store.FinishACMEOrder); the order stays
	// processing.
	Issue(ctx context.Context, acct store.ACMEAccount, order store.ACMEOrder, csr *x509.CertificateRequest) (chainPEM string, leaf *x509.Certificate, err error)
	// Revoke revokes a certificate issued through ACME with an RFC 5280
	// reason code already checked against BR §7.2.2. byCertKey: the request
	// was signed by the certificate's key (proof of possession), not by the
	// ordering account.
	Revoke(ctx context.Context, order store.ACMEOrder, cert *x509.Certificate, reason int, byCertKey bool) error
}

// ErrPending is what Validate and Issue return when the backend has
// accepted the work and records its outcome in the store itself (an
// Application workflow): the client polls the challenge or order.
var ErrPending = errors.New("acme: accepted; the backend records the outcome")

// ErrUnavailable wrapped in a Validate or Issue error: the backend could not
// take the work now (nothing was decided). The challenge goes back to
// pending, the order back to ready, and the client gets serverInternal
// and may try again.
var ErrUnavailable = errors.New("acme: backend unavailable")

// Challenge names the challenge a Validate call checks.
type Challenge struct {
	OrderID string
	AuthzID string
	ID      string
	Type    string // http-01 or dns-01
}

// OrderStarter is an optional extension of Orders: StartOrder runs once a
// new order is written (an Application workflow per order starts here).
// If it fails the order is left pending and unused, and the client gets
// the error.
type OrderStarter interface {
	StartOrder(ctx context.Context, acct store.ACMEAccount, o store.ACMEOrder) error
}

type baseKey struct{}

// AccountURL is the URL of account id as the server handling ctx's request
// names it (the kid, and RFC 8657's CAA accounturi); empty outside one.
func AccountURL(ctx context.Context, id string) string {
	b, _ := ctx.Value(baseKey{}).(string)
	if b == "" {
		return ""
	}
	return b + "/account/" + id
}

// Deps is what New needs.
type Deps struct {
	Store  Store
	Orders Orders
	// BaseURL is the external URL of the ACME root, e.g.
	// "https://acme.example/acme". Empty: derived from each request's Host
	// (https://<host>/acme).
	BaseURL string
	// Profiles maps ACME profile names (directory meta.profiles) to a
	// description; the profile name is the CertDesk product id.
	Profiles map[string]string
	// MaxBody caps a request body in bytes; 0 means 64 KiB.
	MaxBody int64
	// NonceTTL is how long a nonce stays usable; 0 means one hour.
	NonceTTL time.Duration
}

// DefaultProfiles are the products offered through ACME.
var DefaultProfiles = map[string]string{
	"server-dv":   "TLS server certificate, domain validated",
	"server-ov":   "TLS server certificate, organisation validated",
	"client-sign": "Client and document signing certificate",
}

type server struct {
	d Deps
}

// New returns the handler. Mount it at the root of the ACME listener; it
// serves under /acme/.
func New(d Deps) http.Handler {
	if d.MaxBody == 0 {
		d.MaxBody = 64 << 10
	}
	if d.NonceTTL == 0 {
		d.NonceTTL = time.Hour
	}
	if d.Profiles == nil {
		d.Profiles = DefaultProfiles
	}
	s := &server{d: d}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /acme/directory", s.directory)
	mux.HandleFunc("HEAD /acme/new-nonce", s.newNonce)
	mux.HandleFunc("GET /acme/new-nonce", s.newNonce)
	mux.HandleFunc("POST /acme/new-account", s.newAccount)
	mux.HandleFunc("POST /acme/account/{id}", s.account)
	mux.HandleFunc("POST /acme/key-change", s.keyChange)
	mux.HandleFunc("POST /acme/new-order", s.newOrder)
	mux.HandleFunc("POST /acme/order/{id}", s.order)
	mux.HandleFunc("POST /acme/order/{id}/finalize", s.finalize)
	mux.HandleFunc("POST /acme/authz/{id}", s.authz)
	mux.HandleFunc("POST /acme/chall/{id}", s.challenge)
	mux.HandleFunc("POST /acme/cert/{id}", s.certificate)
	mux.HandleFunc("POST /acme/revoke-cert", s.revokeCert)
	mux.HandleFunc("GET /acme/renewal-info/{certID}", s.renewalInfo)
	mux.HandleFunc("/acme/", func(w http.ResponseWriter, r *http.Request) {
		s.problem(w, r, http.StatusNotFound, "malformed", "no such ACME resource")
	})
	return mux
}

func (s *server) base(r *http.Request) string {
	if s.d.BaseURL != "" {
		return strings.TrimSuffix(s.d.BaseURL, "/")
	}
	return "https://" + r.Host + "/acme"
}

func (s *server) directory(w http.ResponseWriter, r *http.Request) {
	b := s.base(r)
	writeJSON(w, http.StatusOK, map[string]any{
		"newNonce":    b + "/new-nonce",
		"newAccount":  b + "/new-account",
		"newOrder":    b + "/new-order",
		"revokeCert":  b + "/revoke-cert",
		"keyChange":   b + "/key-change",
		"renewalInfo": b + "/renewal-info",
		"meta": map[string]any{
			"externalAccountRequired": true,
			"profiles":                s.d.Profiles,
		},
	})
}

func (s *server) newNonce(w http.ResponseWriter, r *http.Request) {
	if !s.setNonce(w, r) {
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Link", `<`+s.base(r)+`/directory>;rel="index"`)
	if r.Method == http.MethodGet {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	w.WriteHeader(http.StatusOK)
}

// setNonce adds a fresh Replay-Nonce; false (with a 500 written) if the
// store failed.
func (s *server) setNonce(w http.ResponseWriter, r *http.Request) bool {
	n, err := s.d.Store.NewACMENonce(r.Context(), s.d.NonceTTL)
	if err != nil {
		writeProblem(w, http.StatusInternalServerError, "serverInternal", "could not issue a nonce")
		return false
	}
	w.Header().Set("Replay-Nonce", n)
	return true
}

// problem writes an RFC 8555 §6.7 error document with a fresh nonce.
func (s *server) problem(w http.ResponseWriter, r *http.Request, status int, typ, detail string) {
	if n, err := s.d.Store.NewACMENonce(r.Context(), s.d.NonceTTL); err == nil {
		w.Header().Set("Replay-Nonce", n)
	}
	w.Header().Set("Link", `<`+s.base(r)+`/directory>;rel="index"`)
	writeProblem(w, status, typ, detail)
}

func writeProblem(w http.ResponseWriter, status int, typ, detail string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{
		"type":   "urn:ietf:params:acme:error:" + typ,
		"detail": detail,
		"status": status,
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// Error is a refusal carrying its RFC 8555 error type (the part after
// "urn:ietf:params:acme:error:"). Backends return it to refuse an order,
// a validation or a revocation with a specific type.
type Error struct {
	Status int
	Type   string
	Detail string
}

func (e *Error) Error() string { return e.Type + ": " + e.Detail }

func fail(status int, typ, format string, a ...any) error {
	return &Error{Status: status, Type: typ, Detail: fmt.Sprintf(format, a...)}
}

func (s *server) refuse(w http.ResponseWriter, r *http.Request, err error) {
	var ae *Error
	if errors.As(err, &ae) {
		s.problem(w, r, ae.Status, ae.Type, ae.Detail)
		return
	}
	s.problem(w, r, http.StatusInternalServerError, "serverInternal", "internal error")
}

// Algorithms accepted for account keys (RFC 8555 §6.2: no MAC, no "none").
var accountAlgs = []jose.SignatureAlgorithm{jose.RS256, jose.ES256, jose.ES384, jose.ES512, jose.EdDSA, jose.PS256}

// request is a verified JWS POST.
type request struct {
	payload []byte
	jwk     *jose.JSONWebKey   // set when the JWS carried "jwk"
	account *store.ACMEAccount // set when it carried "kid"
	url     string
}

// verify reads and checks a JWS POST (RFC 8555 §6.2–6.5): size, flattened
// JSON, one signature, an allowed algorithm, url equal to the request URL,
// a nonce not used before, and jwk xor kid as wantJWK says.
func (s *server) verify(r *http.Request, wantJWK bool) (*request, error) {
	return s.verifyMode(r, map[bool]keyMode{true: jwkOnly, false: kidOnly}[wantJWK])
}

type keyMode int

const (
	kidOnly keyMode = iota
	jwkOnly
	either // revokeCert: account key (kid) or certificate key (jwk)
)

func (s *server) verifyMode(r *http.Request, mode keyMode) (*request, error) {
	if ct := r.Header.Get("Content-Type"); ct != "application/jose+json" {
		return nil, fail(http.StatusUnsupportedMediaType, "malformed", "Content-Type must be application/jose+json")
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, s.d.MaxBody+1))
	if err != nil {
		return nil, fail(http.StatusBadRequest, "malformed", "reading body")
	}
	if int64(len(body)) > s.d.MaxBody {
		return nil, fail(http.StatusRequestEntityTooLarge, "malformed", "body larger than %d bytes", s.d.MaxBody)
	}
	if !strings.HasPrefix(strings.TrimSpace(string(body)), "{") {
		return nil, fail(http.StatusBadRequest, "malformed", "JWS must use the flattened JSON serialization")
	}
	jws, err := jose.ParseSigned(string(body), accountAlgs)
	if err != nil {
		return nil, fail(http.StatusBadRequest, "malformed", "JWS: %v", err)
	}
	if len(jws.Signatures) != 1 {
		return nil, fail(http.StatusBadRequest, "malformed", "JWS must have exactly one signature")
	}
	h := jws.Signatures[0].Protected
	want := s.base(r) + strings.TrimPrefix(r.URL.Path, "/acme")
	u, _ := h.ExtraHeaders[jose.HeaderKey("url")].(string)
	if u != want {
		return nil, fail(http.StatusUnauthorized, "unauthorized", "protected header url %q is not the request URL %q", u, want)
	}
	if h.Nonce == "" {
		return nil, fail(http.StatusBadRequest, "badNonce", "no nonce in the protected header")
	}
	if err := s.d.Store.ConsumeACMENonce(r.Context(), h.Nonce); err != nil {
		if errors.Is(err, store.ErrUsed) {
			return nil, fail(http.StatusBadRequest, "badNonce", "nonce unknown, used or expired")
		}
		return nil, err
	}
	req := &request{url: u}
	switch {
	case h.JSONWebKey != nil && h.KeyID != "":
		return nil, fail(http.StatusBadRequest, "malformed", "protected header has both jwk and kid")
	case h.JSONWebKey == nil && h.KeyID == "":
		return nil, fail(http.StatusBadRequest, "malformed", "protected header has neither jwk nor kid")
	case mode == jwkOnly && h.JSONWebKey == nil:
		return nil, fail(http.StatusBadRequest, "malformed", "this request must be signed with jwk, not kid")
	case mode == kidOnly && h.KeyID == "":
		return nil, fail(http.StatusBadRequest, "malformed", "this request must be signed with kid, not jwk")
	}
	var key *jose.JSONWebKey
	if h.JSONWebKey != nil {
		if !h.JSONWebKey.Valid() || !h.JSONWebKey.IsPublic() {
			return nil, fail(http.StatusBadRequest, "badPublicKey", "jwk is not a valid public key")
		}
		key, req.jwk = h.JSONWebKey, h.JSONWebKey
	} else {
		prefix := s.base(r) + "/account/"
		if !strings.HasPrefix(h.KeyID, prefix) {
			return nil, fail(http.StatusBadRequest, "accountDoesNotExist", "kid is not an account URL of this server")
		}
		a, err := s.d.Store.GetACMEAccount(r.Context(), strings.TrimPrefix(h.KeyID, prefix))
		if errors.Is(err, store.ErrNotFound) {
			return nil, fail(http.StatusBadRequest, "accountDoesNotExist", "no such account")
		}
		if err != nil {
			return nil, err
		}
		if a.Status != "valid" {
			return nil, fail(http.StatusUnauthorized, "unauthorized", "account is %s", a.Status)
		}
		key = new(jose.JSONWebKey)
		if err := key.UnmarshalJSON(a.JWK); err != nil {
			return nil, err
		}
		req.account = &a
	}
	payload, err := jws.Verify(key)
	if err != nil {
		return nil, fail(http.StatusBadRequest, "malformed", "JWS signature does not verify")
	}
	req.payload = payload
	return req, nil
}

func thumbprint(k *jose.JSONWebKey) (string, error) {
	tp, err := k.Thumbprint(crypto.SHA256)
	if err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(tp), nil
}

func (s *server) accountURL(r *http.Request, id string) string { return s.base(r) + "/account/" + id }

// accountJSON is the account object of RFC 8555 §7.1.2.
func (s *server) writeAccount(w http.ResponseWriter, r *http.Request, status int, a store.ACMEAccount) {
	if !s.setNonce(w, r) {
		return
	}
	w.Header().Set("Location", s.accountURL(r, a.ID))
	w.Header().Set("Link", `<`+s.base(r)+`/directory>;rel="index"`)
	contact := []string{}
	if a.Contact != "" {
		contact = strings.Split(a.Contact, "\n")
	}
	writeJSON(w, status, map[string]any{
		"status":  a.Status,
		"contact": contact,
		"orders":  s.accountURL(r, a.ID) + "/orders",
	})
}

type newAccountPayload struct {
	Contact                []string        `json:"contact"`
	TermsOfServiceAgreed   bool            `json:"termsOfServiceAgreed"`
	OnlyReturnExisting     bool            `json:"onlyReturnExisting"`
	ExternalAccountBinding json.RawMessage `json:"externalAccountBinding"`
}

func (s *server) newAccount(w http.ResponseWriter, r *http.Request) {
	req, err := s.verify(r, true)
	if err != nil {
		s.refuse(w, r, err)
		return
	}
	var p newAccountPayload
	if err := json.Unmarshal(req.payload, &p); err != nil {
		s.refuse(w, r, fail(http.StatusBadRequest, "malformed", "payload is not a newAccount object"))
		return
	}
	tp, err := thumbprint(req.jwk)
	if err != nil {
		s.refuse(w, r, fail(http.StatusBadRequest, "badPublicKey", "cannot compute the key thumbprint"))
		return
	}
	// §7.3.1: a key already bound returns its account (200), whatever else
	// the request says.
	existing, err := s.d.Store.ACMEAccountByThumbprint(r.Context(), tp)
	switch {
	case err == nil:
		if existing.Status != "valid" {
			s.refuse(w, r, fail(http.StatusUnauthorized, "unauthorized", "account is %s", existing.Status))
			return
		}
		s.writeAccount(w, r, http.StatusOK, existing)
		return
	case !errors.Is(err, store.ErrNotFound):
		s.refuse(w, r, err)
		return
	}
	if p.OnlyReturnExisting {
		s.refuse(w, r, fail(http.StatusBadRequest, "accountDoesNotExist", "no account for this key"))
		return
	}
	if len(p.ExternalAccountBinding) == 0 {
		s.refuse(w, r, fail(http.StatusUnauthorized, "externalAccountRequired", "this server requires External Account Binding; ask your reseller for EAB credentials"))
		return
	}
	for _, c := range p.Contact {
		if !strings.HasPrefix(c, "mailto:") || strings.ContainsAny(c, "\n\r,") {
			s.refuse(w, r, fail(http.StatusBadRequest, "invalidContact", "contact %q is not a mailto: URL", c))
			return
		}
	}
	kid, err := s.checkEAB(r, p.ExternalAccountBinding, req)
	if err != nil {
		s.refuse(w, r, err)
		return
	}
	jwk, err := req.jwk.MarshalJSON()
	if err != nil {
		s.refuse(w, r, err)
		return
	}
	a, err := s.d.Store.CreateACMEAccount(r.Context(), store.ACMEAccount{
		Thumbprint: tp, JWK: jwk, EABKID: kid, Contact: strings.Join(p.Contact, "\n"),
	})
	switch {
	case errors.Is(err, store.ErrUsed):
		s.refuse(w, r, fail(http.StatusUnauthorized, "unauthorized", "EAB credentials already used, expired or revoked"))
		return
	case errors.Is(err, store.ErrConflict):
		// A concurrent newAccount with the same key won; return its account.
		if a, gerr := s.d.Store.ACMEAccountByThumbprint(r.Context(), tp); gerr == nil {
			s.writeAccount(w, r, http.StatusOK, a)
			return
		}
		s.refuse(w, r, err)
		return
	case err != nil:
		s.refuse(w, r, err)
		return
	}
	s.writeAccount(w, r, http.StatusCreated, a)
}

// checkEAB verifies the externalAccountBinding JWS (§7.3.4): HS256 under the
// credential's key, kid = EAB key id, url = the newAccount URL, no nonce,
// payload = the outer JWS's jwk. It returns the kid; the credential is
// spent by CreateACMEAccount.
func (s *server) checkEAB(r *http.Request, raw json.RawMessage, outer *request) (string, error) {
	jws, err := jose.ParseSigned(string(raw), []jose.SignatureAlgorithm{jose.HS256, jose.HS384, jose.HS512})
	if err != nil || len(jws.Signatures) != 1 {
		return "", fail(http.StatusBadRequest, "malformed", "externalAccountBinding is not a JWS with one MAC")
	}
	h := jws.Signatures[0].Protected
	if u, _ := h.ExtraHeaders[jose.HeaderKey("url")].(string); u != outer.url {
		return "", fail(http.StatusBadRequest, "malformed", "externalAccountBinding url must be the newAccount URL")
	}
	if h.Nonce != "" {
		return "", fail(http.StatusBadRequest, "malformed", "externalAccountBinding must not carry a nonce")
	}
	cred, err := s.d.Store.GetEABCredential(r.Context(), h.KeyID)
	if errors.Is(err, store.ErrNotFound) {
		return "", fail(http.StatusUnauthorized, "unauthorized", "unknown EAB key id")
	}
	if err != nil {
		return "", err
	}
	payload, err := jws.Verify(cred.HMACKey)
	if err != nil {
		return "", fail(http.StatusUnauthorized, "unauthorized", "EAB MAC does not verify")
	}
	var inner jose.JSONWebKey
	if err := inner.UnmarshalJSON(payload); err != nil {
		return "", fail(http.StatusBadRequest, "malformed", "EAB payload is not a JWK")
	}
	a, _ := thumbprint(&inner)
	b, _ := thumbprint(outer.jwk)
	if a == "" || a != b {
		return "", fail(http.StatusBadRequest, "malformed", "EAB payload is not the account key")
	}
	if cred.UsedAt != nil || cred.RevokedAt != nil || (cred.ExpiresAt != nil && !cred.ExpiresAt.After(time.Now())) {
		return "", fail(http.StatusUnauthorized, "unauthorized", "EAB credentials already used, expired or revoked")
	}
	return cred.KID, nil
}

// account serves POST to an account URL: POST-as-GET reads it, an update
// with status "deactivated" deactivates it (§7.3.6). Another account's URL
// is 404.
func (s *server) account(w http.ResponseWriter, r *http.Request) {
	req, err := s.verify(r, false)
	if err != nil {
		s.refuse(w, r, err)
		return
	}
	if req.account.ID != r.PathValue("id") {
		s.refuse(w, r, fail(http.StatusNotFound, "malformed", "no such account"))
		return
	}
	a := *req.account
	if len(req.payload) > 0 {
		var p struct {
			Status  string   `json:"status"`
			Contact []string `json:"contact"`
		}
		if err := json.Unmarshal(req.payload, &p); err != nil {
			s.refuse(w, r, fail(http.StatusBadRequest, "malformed", "payload is not an account update"))
			return
		}
		switch p.Status {
		case "":
		case "deactivated":
			if err := s.d.Store.DeactivateACMEAccount(r.Context(), a.ID); err != nil {
				s.refuse(w, r, err)
				return
			}
			a.Status = "deactivated"
		default:
			s.refuse(w, r, fail(http.StatusBadRequest, "malformed", "status may only be set to deactivated"))
			return
		}
	}
	s.writeAccount(w, r, http.StatusOK, a)
}

// keyChange rolls an account over to a new key (§7.3.5).
func (s *server) keyChange(w http.ResponseWriter, r *http.Request) {
	req, err := s.verify(r, false)
	if err != nil {
		s.refuse(w, r, err)
		return
	}
	inner, err := jose.ParseSigned(string(req.payload), accountAlgs)
	if err != nil || len(inner.Signatures) != 1 {
		s.refuse(w, r, fail(http.StatusBadRequest, "malformed", "keyChange payload is not a JWS"))
		return
	}
	h := inner.Signatures[0].Protected
	if h.JSONWebKey == nil || h.KeyID != "" || !h.JSONWebKey.Valid() || !h.JSONWebKey.IsPublic() {
		s.refuse(w, r, fail(http.StatusBadRequest, "malformed", "inner JWS must carry the new key as jwk"))
		return
	}
	if u, _ := h.ExtraHeaders[jose.HeaderKey("url")].(string); u != req.url {
		s.refuse(w, r, fail(http.StatusBadRequest, "malformed", "inner JWS url must be the keyChange URL"))
		return
	}
	if h.Nonce != "" {
		s.refuse(w, r, fail(http.StatusBadRequest, "malformed", "inner JWS must not carry a nonce"))
		return
	}
	payload, err := inner.Verify(h.JSONWebKey)
	if err != nil {
		s.refuse(w, r, fail(http.StatusBadRequest, "malformed", "inner JWS signature does not verify"))
		return
	}
	var p struct {
		Account string          `json:"account"`
		OldKey  jose.JSONWebKey `json:"oldKey"`
	}
	if err := json.Unmarshal(payload, &p); err != nil {
		s.refuse(w, r, fail(http.StatusBadRequest, "malformed", "inner payload is not a keyChange object"))
		return
	}
	if p.Account != s.accountURL(r, req.account.ID) {
		s.refuse(w, r, fail(http.StatusBadRequest, "malformed", "inner payload account is not the signing account"))
		return
	}
	oldTP, err := thumbprint(&p.OldKey)
	if err != nil || oldTP != req.account.Thumbprint {
		s.refuse(w, r, fail(http.StatusBadRequest, "malformed", "oldKey is not the account's current key"))
		return
	}
	newTP, err := thumbprint(h.JSONWebKey)
	if err != nil {
		s.refuse(w, r, fail(http.StatusBadRequest, "badPublicKey", "cannot compute the new key's thumbprint"))
		return
	}
	newJWK, _ := h.JSONWebKey.MarshalJSON()
	switch err := s.d.Store.RolloverACMEAccountKey(r.Context(), req.account.ID, oldTP, newTP, newJWK); {
	case errors.Is(err, store.ErrConflict):
		if other, gerr := s.d.Store.ACMEAccountByThumbprint(r.Context(), newTP); gerr == nil {
			w.Header().Set("Location", s.accountURL(r, other.ID))
		}
		s.refuse(w, r, fail(http.StatusConflict, "malformed", "the new key is already bound to an account"))
		return
	case err != nil:
		s.refuse(w, r, fail(http.StatusConflict, "malformed", "account key changed concurrently"))
		return
	}
	a, err := s.d.Store.GetACMEAccount(r.Context(), req.account.ID)
	if err != nil {
		s.refuse(w, r, err)
		return
	}
	s.writeAccount(w, r, http.StatusOK, a)
}
