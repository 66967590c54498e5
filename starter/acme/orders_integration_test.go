//go:build integration

package acme

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	xacme "golang.org/x/crypto/acme"
)

// orderEnv is an ACME server with the test backend and a webroot.
type orderEnv struct {
	*env
	webroot string
	be      *testOrders
}

func newOrderEnv(t *testing.T) *orderEnv {
	t.Helper()
	e := newEnv(t)
	webroot := t.TempDir()
	static := httptest.NewServer(http.FileServer(http.Dir(webroot)))
	t.Cleanup(static.Close)
	be := newTestOrders(t, static.Listener.Addr().String())
	e.srv.Close()
	e.srv = httptest.NewTLSServer(New(Deps{Store: e.st, Orders: be}))
	t.Cleanup(e.srv.Close)
	e.dir = e.srv.URL + "/acme/directory"
	return &orderEnv{env: e, webroot: webroot, be: be}
}

func (e *orderEnv) account(t *testing.T) (*xacme.Client, *xacme.Account) {
	t.Helper()
	c := e.client(t)
	cred := e.eab(t)
	a, err := c.Register(bg, &xacme.Account{ExternalAccountBinding: &xacme.ExternalAccountBinding{KID: cred.KID, Key: cred.HMACKey}}, xacme.AcceptTOS)
	if err != nil {
		t.Fatal(err)
	}
	return c, a
}

// publish writes the http-01 key authorization where the static server
// serves it.
func (e *orderEnv) publish(t *testing.T, c *xacme.Client, ch *xacme.Challenge) {
	t.Helper()
	body, err := c.HTTP01ChallengeResponse(ch.Token)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(e.webroot, c.HTTP01ChallengePath(ch.Token))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

func csrFor(t *testing.T, names ...string) []byte {
	der, _ := csrKey(t, names...)
	return der
}

func csrKey(t *testing.T, names ...string) ([]byte, *ecdsa.PrivateKey) {
	t.Helper()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{DNSNames: names}, k)
	if err != nil {
		t.Fatal(err)
	}
	return der, k
}

func TestOrderLifecycleAndIsolation(t *testing.T) {
	e := newOrderEnv(t)
	c, _ := e.account(t)
	other, _ := e.account(t)

	_, err := c.AuthorizeOrder(bg, xacme.DomainIDs("ok.example.test", "bad.invalid"))
	wantProblem(t, err, http.StatusBadRequest, "rejectedIdentifier")

	o, err := c.AuthorizeOrder(bg, xacme.DomainIDs("ok.example.test"))
	if err != nil {
		t.Fatal(err)
	}
	if o.Status != xacme.StatusPending || len(o.AuthzURLs) != 1 {
		t.Fatalf("order %+v", o)
	}
	// Another account reaches neither the order nor its authorization.
	_, err = other.GetOrder(bg, o.URI)
	wantProblem(t, err, http.StatusNotFound, "malformed")
	_, err = other.GetAuthorization(bg, o.AuthzURLs[0])
	wantProblem(t, err, http.StatusNotFound, "malformed")

	// Finalize before the order is ready.
	_, _, err = c.CreateOrderCert(bg, o.FinalizeURL, csrFor(t, "ok.example.test"), true)
	wantProblem(t, err, http.StatusForbidden, "orderNotReady")

	az, err := c.GetAuthorization(bg, o.AuthzURLs[0])
	if err != nil {
		t.Fatal(err)
	}
	var h01 *xacme.Challenge
	types := []string{}
	for _, ch := range az.Challenges {
		types = append(types, ch.Type)
		if ch.Type == "http-01" {
			h01 = ch
		}
	}
	if h01 == nil || len(types) != 2 {
		t.Fatalf("challenges %v", types)
	}
	_, err = other.Accept(bg, h01)
	wantProblem(t, err, http.StatusNotFound, "malformed")

	e.publish(t, c, h01)
	if _, err := c.Accept(bg, h01); err != nil {
		t.Fatal(err)
	}
	if _, err := c.WaitAuthorization(bg, az.URI); err != nil {
		t.Fatal(err)
	}
	o, err = c.WaitOrder(bg, o.URI)
	if err != nil || o.Status != xacme.StatusReady {
		t.Fatalf("order %+v %v", o, err)
	}

	// A CSR naming another name is badCSR, and the order stays ready.
	_, _, err = c.CreateOrderCert(bg, o.FinalizeURL, csrFor(t, "ok.example.test", "extra.example.test"), true)
	wantProblem(t, err, http.StatusBadRequest, "badCSR")
	csr, certKey := csrKey(t, "ok.example.test")
	ders, _, err := c.CreateOrderCert(bg, o.FinalizeURL, csr, true)
	if err != nil {
		t.Fatal(err)
	}
	if len(ders) != 2 {
		t.Fatalf("chain of %d certificates, want leaf and CA", len(ders))
	}
	leaf, _ := x509.ParseCertificate(ders[0])

	// Another account cannot download or revoke it.
	o, _ = c.GetOrder(bg, o.URI)
	_, err = other.FetchCert(bg, o.CertURL, false)
	wantProblem(t, err, http.StatusNotFound, "malformed")
	err = other.RevokeCert(bg, nil, ders[0], xacme.CRLReasonUnspecified)
	wantProblem(t, err, http.StatusForbidden, "unauthorized")
	// A reason a subscriber may not give.
	err = c.RevokeCert(bg, nil, ders[0], xacme.CRLReasonCACompromise)
	wantProblem(t, err, http.StatusBadRequest, "badRevocationReason")
	// Another key than the certificate's, as jwk, is refused.
	stranger, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	err = c.RevokeCert(bg, stranger, ders[0], xacme.CRLReasonKeyCompromise)
	wantProblem(t, err, http.StatusForbidden, "unauthorized")
	// Revocation by the certificate key (§7.6, jwk): here; by the ordering
	// account: TestCertbot and the alreadyRevoked request below.
	if err := c.RevokeCert(bg, certKey, ders[0], xacme.CRLReasonKeyCompromise); err != nil {
		t.Fatal(err)
	}
	if r, ok := e.be.reason(leaf.SerialNumber.Text(16)); !ok || r != 1 {
		t.Fatalf("revocation %v %d", ok, r)
	}
	// x/crypto/acme hides alreadyRevoked (it counts it as success): ask by hand.
	s := signer{t: t, e: e.env, key: c.Key.(*ecdsa.PrivateKey)}
	u := e.srv.URL + "/acme/revoke-cert"
	p, _ := json.Marshal(map[string]any{"certificate": base64.RawURLEncoding.EncodeToString(ders[0]), "reason": 1})
	st, m, h := s.post(u, s.jwsKID(string(c.KID), u, s.nonce(), p))
	checkProblem(t, st, m, h, http.StatusBadRequest, "alreadyRevoked")
}

// TestProfiles: the directory lists the products as profiles; newOrder
// with an unknown profile or one the EAB credential does not allow is
// refused.
func TestProfiles(t *testing.T) {
	e := newOrderEnv(t)
	resp, err := e.srv.Client().Get(e.dir)
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		RenewalInfo string `json:"renewalInfo"`
		Meta        struct {
			ExternalAccountRequired bool              `json:"externalAccountRequired"`
			Profiles                map[string]string `json:"profiles"`
		} `json:"meta"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&d)
	resp.Body.Close()
	if !d.Meta.ExternalAccountRequired || len(d.Meta.Profiles) != 3 || d.Meta.Profiles["client-sign"] == "" || d.RenewalInfo == "" {
		t.Fatalf("directory %+v", d)
	}

	c, a := e.account(t) // its EAB allows server-dv only
	s := signer{t: t, e: e.env, key: c.Key.(*ecdsa.PrivateKey)}
	u := e.srv.URL + "/acme/new-order"
	post := func(profile string) (int, map[string]any) {
		p, _ := json.Marshal(map[string]any{"identifiers": []map[string]string{{"type": "dns", "value": "p.example.test"}}, "profile": profile})
		st, m, _ := s.post(u, s.jwsKID(a.URI, u, s.nonce(), p))
		return st, m
	}
	if st, m := post("server-ov"); st != http.StatusForbidden || m["type"] != "urn:ietf:params:acme:error:unauthorized" {
		t.Fatalf("profile outside the EAB: %d %v", st, m)
	}
	if st, m := post("no-such"); st != http.StatusBadRequest || m["type"] != "urn:ietf:params:acme:error:invalidProfile" {
		t.Fatalf("unknown profile: %d %v", st, m)
	}
	if st, m := post("server-dv"); st != http.StatusCreated || m["profile"] != "server-dv" || !strings.HasSuffix(m["finalize"].(string), "/finalize") {
		t.Fatalf("server-dv: %d %v", st, m)
	}
}
