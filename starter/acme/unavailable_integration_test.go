//go:build integration

package acme

import (
	"context"
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	xacme "golang.org/x/crypto/acme"

	"certdesk/internal/store"
)

// flakyOrders fails the first Validate and Issue with ErrUnavailable (the
// backend could not take the work), then behaves as testOrders.
type flakyOrders struct {
	*testOrders
	validates, issues atomic.Int32
}

func (f *flakyOrders) Validate(ctx context.Context, a store.ACMEAccount, ch Challenge, method, domain, ka string) error {
	if f.validates.Add(1) == 1 {
		return fmt.Errorf("%w: workers unreachable", ErrUnavailable)
	}
	return f.testOrders.Validate(ctx, a, ch, method, domain, ka)
}

func (f *flakyOrders) Issue(ctx context.Context, a store.ACMEAccount, o store.ACMEOrder, csr *x509.CertificateRequest) (string, *x509.Certificate, error) {
	if f.issues.Add(1) == 1 {
		return "", nil, fmt.Errorf("%w: workers unreachable", ErrUnavailable)
	}
	return f.testOrders.Issue(ctx, a, o, csr)
}

// TestBackendUnavailable: a backend that cannot take a challenge response
// or a finalize now leaves nothing decided: the client gets a 503
// serverInternal, the challenge is pending and the order ready again, and
// the same request then succeeds.
func TestBackendUnavailable(t *testing.T) {
	e := newOrderEnv(t)
	fl := &flakyOrders{testOrders: e.be}
	e.srv.Close()
	e.srv = httptest.NewTLSServer(New(Deps{Store: e.st, Orders: fl}))
	t.Cleanup(e.srv.Close)
	e.dir = e.srv.URL + "/acme/directory"
	c, a := e.account(t)
	s := signer{t: t, e: e.env, key: c.Key.(*ecdsa.PrivateKey)}

	o, err := c.AuthorizeOrder(bg, xacme.DomainIDs("flaky.example.test"))
	if err != nil {
		t.Fatal(err)
	}
	az, err := c.GetAuthorization(bg, o.AuthzURLs[0])
	if err != nil {
		t.Fatal(err)
	}
	var h01 *xacme.Challenge
	for _, ch := range az.Challenges {
		if ch.Type == "http-01" {
			h01 = ch
		}
	}
	e.publish(t, c, h01)
	st, m, h := s.post(h01.URI, s.jwsKID(a.URI, h01.URI, s.nonce(), []byte("{}")))
	checkProblem(t, st, m, h, http.StatusServiceUnavailable, "serverInternal")
	if az, _ = c.GetAuthorization(bg, o.AuthzURLs[0]); az.Status != xacme.StatusPending {
		t.Fatalf("authorization %s after an unavailable backend", az.Status)
	}
	for _, ch := range az.Challenges {
		if ch.URI == h01.URI && ch.Status != xacme.StatusPending {
			t.Fatalf("challenge %s after an unavailable backend, want pending", ch.Status)
		}
	}
	if _, err := c.Accept(bg, h01); err != nil {
		t.Fatal(err)
	}
	if o, err = c.WaitOrder(bg, o.URI); err != nil || o.Status != xacme.StatusReady {
		t.Fatalf("order %+v %v", o, err)
	}

	csr, _ := csrKey(t, "flaky.example.test")
	p := []byte(`{"csr":"` + base64.RawURLEncoding.EncodeToString(csr) + `"}`)
	st, m, h = s.post(o.FinalizeURL, s.jwsKID(a.URI, o.FinalizeURL, s.nonce(), p))
	checkProblem(t, st, m, h, http.StatusServiceUnavailable, "serverInternal")
	if o, _ = c.GetOrder(bg, o.URI); o.Status != xacme.StatusReady {
		t.Fatalf("order %s after an unavailable backend, want ready", o.Status)
	}
	if ders, _, err := c.CreateOrderCert(bg, o.FinalizeURL, csr, true); err != nil || len(ders) == 0 {
		t.Fatalf("finalize again: %v", err)
	}
	if fl.validates.Load() != 2 || fl.issues.Load() != 2 {
		t.Fatalf("backend calls: %d validates, %d issues", fl.validates.Load(), fl.issues.Load())
	}
}
