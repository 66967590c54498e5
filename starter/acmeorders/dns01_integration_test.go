//go:build integration

package acmeorders

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	xacme "golang.org/x/crypto/acme"

	"certdesk/internal/dcv"
	"certdesk/internal/status"
	"certdesk/internal/testenv"
	"certdesk/starter/acme"
	"certdesk/workflows"
)

// TestDNS01WildcardOnWorkflows: golang.org/x/crypto/acme orders a name and
// its wildcard (two authorizations, the wildcard by dns-01 only); both TXT
// values go into the DNSSEC-signed zone by RFC 2136; the workflow validates
// each authorization through ValidateDomain (acme-dns-01) and issues one
// certificate for both names with SCTs. Then an order whose TXT record is
// never published ends invalid with incorrectResponse and its application
// rejected.
func TestDNS01WildcardOnWorkflows(t *testing.T) {
	s := newStack(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	name := testenv.DNSName(t, s.dns.Zones.Signed)
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(s.rootPEM)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	c := &xacme.Client{Key: key, DirectoryURL: s.dirURL,
		HTTPClient: &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}}
	cred, err := s.st.CreateEABCredential(ctx, "rs_acmewf", []string{"server-dv"}, "cust-dns", nil)
	if err != nil {
		t.Fatal(err)
	}
	reg, err := c.Register(ctx, &xacme.Account{Contact: []string{"mailto:dns@reseller.example"},
		ExternalAccountBinding: &xacme.ExternalAccountBinding{KID: cred.KID, Key: cred.HMACKey}}, xacme.AcceptTOS)
	if err != nil {
		t.Fatal(err)
	}
	// RFC 8657: CAA binds the name to this account and to dns-01.
	if err := s.dns.SetRecords(ctx, name, "CAA", `0 issue "certdesk.example; accounturi=`+reg.URI+`; validationmethods=dns-01"`, `0 issuewild "certdesk.example; accounturi=`+reg.URI+`"`); err != nil {
		t.Fatal(err)
	}

	o, err := c.AuthorizeOrder(ctx, xacme.DomainIDs(name, "*."+name))
	if err != nil {
		t.Fatal(err)
	}
	var values []string
	var chals []*xacme.Challenge
	for _, u := range o.AuthzURLs {
		az, err := c.GetAuthorization(ctx, u)
		if err != nil {
			t.Fatal(err)
		}
		i := slices.IndexFunc(az.Challenges, func(ch *xacme.Challenge) bool { return ch.Type == "dns-01" })
		if i < 0 {
			t.Fatalf("authorization %s offers no dns-01", az.Identifier.Value)
		}
		v, err := c.DNS01ChallengeRecord(az.Challenges[i].Token)
		if err != nil {
			t.Fatal(err)
		}
		values = append(values, `"`+v+`"`)
		chals = append(chals, az.Challenges[i])
	}
	if err := s.dns.SetRecords(ctx, "_acme-challenge."+name, "TXT", values...); err != nil {
		t.Fatal(err)
	}
	for _, ch := range chals {
		if _, err := c.Accept(ctx, ch); err != nil {
			t.Fatal(err)
		}
	}
	if o, err = c.WaitOrder(ctx, o.URI); err != nil {
		t.Fatalf("order: %v", err)
	}
	certKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	csr, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{DNSNames: []string{name, "*." + name}}, certKey)
	ders, _, err := c.CreateOrderCert(ctx, o.FinalizeURL, csr, true)
	if err != nil {
		t.Fatalf("finalize: %v", err)
	}
	leaf, err := x509.ParseCertificate(ders[0])
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(leaf.DNSNames)
	if !slices.Equal(leaf.DNSNames, []string{"*." + name, name}) || embeddedSCTs(t, leaf) < 2 || len(ders) < 2 {
		t.Fatalf("certificate for %v with %d SCTs, chain of %d", leaf.DNSNames, embeddedSCTs(t, leaf), len(ders))
	}
	order, err := s.st.ACMEOrderBySerial(ctx, leaf.SerialNumber.Text(16))
	if err != nil {
		t.Fatal(err)
	}
	appID := ApplicationID(order.ID)
	var methods []string
	if err := s.st.DB().SelectContext(ctx, &methods, `SELECT method FROM domain_validations WHERE application_id = $1 AND result = 'valid' ORDER BY domain`, appID); err != nil ||
		!slices.Equal(methods, []string{"acme-dns-01", "acme-dns-01"}) {
		t.Fatalf("domain validations %v %v", methods, err)
	}

	// A TXT record never published: the challenge and order end invalid.
	old := workflows.ACMEValidationInterval
	workflows.ACMEValidationInterval = 200 * time.Millisecond
	t.Cleanup(func() { workflows.ACMEValidationInterval = old })
	other := "x" + name
	o2, err := c.AuthorizeOrder(ctx, xacme.DomainIDs(other))
	if err != nil {
		t.Fatal(err)
	}
	az, err := c.GetAuthorization(ctx, o2.AuthzURLs[0])
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(az.Challenges, func(ch *xacme.Challenge) bool { return ch.Type == "dns-01" })
	if _, err := c.Accept(ctx, az.Challenges[i]); err != nil {
		t.Fatal(err)
	}
	_, err = c.WaitAuthorization(ctx, az.URI)
	var ae *xacme.AuthorizationError
	var pe *xacme.Error
	if !errors.As(err, &ae) || len(ae.Errors) != 1 || !errors.As(ae.Errors[0], &pe) || pe.ProblemType != "urn:ietf:params:acme:error:incorrectResponse" {
		t.Fatalf("unpublished TXT: %v, want an authorization invalid with incorrectResponse", err)
	}
	var res workflows.ApplicationResult
	o2ID := o2.URI[strings.LastIndex(o2.URI, "/")+1:]
	if err := s.tc.GetWorkflow(ctx, workflows.ApplicationWorkflowID(ApplicationID(o2ID)), "").Get(ctx, &res); err != nil || res.Status != status.AppRejected {
		t.Fatalf("application of the invalid order: %+v %v", res, err)
	}
	if st, _ := c.GetOrder(ctx, o2.URI); st == nil || st.Status != xacme.StatusInvalid {
		t.Fatalf("order %+v, want invalid", st)
	}

	// CAA naming another account: the finalized order is invalid (caa).
	bound := "z" + name
	if err := s.dns.SetRecords(ctx, bound, "CAA", `0 issue "certdesk.example; accounturi=https://acme.certdesk.example/acme/account/acct_other"`); err != nil {
		t.Fatal(err)
	}
	o4, err := c.AuthorizeOrder(ctx, xacme.DomainIDs(bound))
	if err != nil {
		t.Fatal(err)
	}
	az4, err := c.GetAuthorization(ctx, o4.AuthzURLs[0])
	if err != nil {
		t.Fatal(err)
	}
	i = slices.IndexFunc(az4.Challenges, func(ch *xacme.Challenge) bool { return ch.Type == "dns-01" })
	v4, _ := c.DNS01ChallengeRecord(az4.Challenges[i].Token)
	if err := s.dns.SetRecords(ctx, "_acme-challenge."+bound, "TXT", `"`+v4+`"`); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Accept(ctx, az4.Challenges[i]); err != nil {
		t.Fatal(err)
	}
	if o4, err = c.WaitOrder(ctx, o4.URI); err != nil {
		t.Fatal(err)
	}
	csr4, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{DNSNames: []string{bound}}, certKey)
	_, _, err = c.CreateOrderCert(ctx, o4.FinalizeURL, csr4, true)
	var oe *xacme.OrderError
	if !errors.As(err, &oe) || oe.Status != xacme.StatusInvalid {
		t.Fatalf("finalize under a CAA record for another account: %v, want an invalid order", err)
	}
	if st, _ := c.GetOrder(ctx, o4.URI); st == nil || st.Error == nil || st.Error.ProblemType != "urn:ietf:params:acme:error:caa" {
		t.Fatalf("order %+v, want error caa", st)
	}

	// The backend's own answers: a challenge the workflow refuses (not one
	// of the order's authorizations) and one for a closed order are ACME
	// problems, not "unavailable".
	be := &Backend{Temporal: s.tc, Store: s.st}
	acct, err := s.st.ACMEAccountByThumbprint(ctx, thumbprint(t, key))
	if err != nil {
		t.Fatal(err)
	}
	o3, err := c.AuthorizeOrder(ctx, xacme.DomainIDs("y"+name))
	if err != nil {
		t.Fatal(err)
	}
	o3ID := o3.URI[strings.LastIndex(o3.URI, "/")+1:]
	for _, tc := range []struct{ order, authz string }{{o3ID, "authz_not_this_order"}, {o2ID, "authz_x"}} {
		err := be.Validate(ctx, acct, acme.Challenge{OrderID: tc.order, AuthzID: tc.authz, ID: "chall_x", Type: "dns-01"}, dcv.MethodACMEDNS01, "y"+name, "tok.thumb")
		var pe *acme.Error
		if !errors.As(err, &pe) || pe.Type != "orderNotReady" || errors.Is(err, acme.ErrUnavailable) {
			t.Errorf("order %s authz %s: %v, want orderNotReady", tc.order, tc.authz, err)
		}
	}
}

// thumbprint is the RFC 7638 thumbprint of key, as the store keys accounts.
func thumbprint(t *testing.T, key *ecdsa.PrivateKey) string {
	t.Helper()
	tp, err := (&jose.JSONWebKey{Key: key.Public()}).Thumbprint(crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(tp)
}
