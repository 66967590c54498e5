//go:build integration

package acme

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	jose "github.com/go-jose/go-jose/v4"
	xacme "golang.org/x/crypto/acme"

	"certdesk/internal/pii"
	"certdesk/internal/store"
	"certdesk/internal/testenv"
)

var bg = context.Background()

// env is one ACME server over TLS on a real database, with one reseller.
type env struct {
	st  *store.Store
	srv *httptest.Server
	dir string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	db, _ := testenv.NewDatabase(t)
	k := make([]byte, 32)
	rand.Read(k)
	ring, err := pii.NewKeyRing(pii.Key{ID: "k1", Secret: k})
	if err != nil {
		t.Fatal(err)
	}
	k2, _ := pii.GenerateKey()
	bidx, err := pii.ParseBlindIndexKey(k2)
	if err != nil {
		t.Fatal(err)
	}
	st := store.New(db, ring, bidx)
	key, prefix, _ := store.GenerateAPIKey()
	if err := st.CreateReseller(bg, store.Reseller{ID: "rs_acme", Name: "A", APIKeyHash: store.HashAPIKey(key), APIKeyPrefix: prefix}); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewTLSServer(New(Deps{Store: st, MaxBody: 8 << 10}))
	t.Cleanup(srv.Close)
	return &env{st: st, srv: srv, dir: srv.URL + "/acme/directory"}
}

func (e *env) eab(t *testing.T) store.EABCredential {
	t.Helper()
	c, err := e.st.CreateEABCredential(bg, "rs_acme", []string{"server-dv"}, "cust", nil)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (e *env) client(t *testing.T) *xacme.Client {
	t.Helper()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	return &xacme.Client{Key: k, DirectoryURL: e.dir, HTTPClient: e.srv.Client()}
}

func wantProblem(t *testing.T, err error, status int, typ string) {
	t.Helper()
	var ae *xacme.Error
	if !errors.As(err, &ae) {
		t.Fatalf("want ACME error %s, got %v", typ, err)
	}
	if ae.StatusCode != status || ae.ProblemType != "urn:ietf:params:acme:error:"+typ {
		t.Fatalf("got %d %s (%s), want %d %s", ae.StatusCode, ae.ProblemType, ae.Detail, status, typ)
	}
}

// TestAccountsWithXCryptoClient drives the account half of RFC 8555 with
// golang.org/x/crypto/acme, a client nobody here wrote.
func TestAccountsWithXCryptoClient(t *testing.T) {
	e := newEnv(t)
	c := e.client(t)
	d, err := c.Discover(bg)
	if err != nil {
		t.Fatal(err)
	}
	if !d.ExternalAccountRequired || d.KeyChangeURL == "" || d.RegURL == "" {
		t.Fatalf("directory %+v", d)
	}

	// Without EAB: externalAccountRequired.
	_, err = c.Register(bg, &xacme.Account{Contact: []string{"mailto:a@example.com"}}, xacme.AcceptTOS)
	wantProblem(t, err, http.StatusUnauthorized, "externalAccountRequired")

	// Lookup of a key with no account.
	if _, err = c.GetReg(bg, ""); !errors.Is(err, xacme.ErrNoAccount) {
		t.Fatalf("lookup without account: %v", err)
	}

	// A wrong MAC is refused and leaves the credential unspent.
	cred := e.eab(t)
	bad := append([]byte(nil), cred.HMACKey...)
	bad[0] ^= 1
	_, err = c.Register(bg, &xacme.Account{ExternalAccountBinding: &xacme.ExternalAccountBinding{KID: cred.KID, Key: bad}}, xacme.AcceptTOS)
	wantProblem(t, err, http.StatusUnauthorized, "unauthorized")

	acct, err := c.Register(bg, &xacme.Account{Contact: []string{"mailto:a@example.com"},
		ExternalAccountBinding: &xacme.ExternalAccountBinding{KID: cred.KID, Key: cred.HMACKey}}, xacme.AcceptTOS)
	if err != nil {
		t.Fatal(err)
	}
	if acct.Status != xacme.StatusValid || !strings.HasPrefix(acct.URI, e.srv.URL+"/acme/account/acct_") {
		t.Fatalf("account %+v", acct)
	}
	got, err := e.st.GetACMEAccount(bg, strings.TrimPrefix(acct.URI, e.srv.URL+"/acme/account/"))
	if err != nil || got.ResellerID != "rs_acme" || got.EABKID != cred.KID {
		t.Fatalf("stored account %+v, %v", got, err)
	}

	// EAB is single use: another key with the same credential is refused.
	c2 := e.client(t)
	_, err = c2.Register(bg, &xacme.Account{ExternalAccountBinding: &xacme.ExternalAccountBinding{KID: cred.KID, Key: cred.HMACKey}}, xacme.AcceptTOS)
	wantProblem(t, err, http.StatusUnauthorized, "unauthorized")

	// onlyReturnExisting finds the account.
	c3 := &xacme.Client{Key: c.Key, DirectoryURL: e.dir, HTTPClient: e.srv.Client()}
	found, err := c3.GetReg(bg, "")
	if err != nil || found.URI != acct.URI {
		t.Fatalf("lookup %+v, %v", found, err)
	}

	// Key rollover: the new key finds the account, the old one does not.
	newKey, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err := c.AccountKeyRollover(bg, newKey); err != nil {
		t.Fatal(err)
	}
	old := &xacme.Client{Key: c3.Key, DirectoryURL: e.dir, HTTPClient: e.srv.Client()}
	if _, err = old.GetReg(bg, ""); !errors.Is(err, xacme.ErrNoAccount) {
		t.Fatalf("lookup with the old key: %v", err)
	}
	nc := &xacme.Client{Key: newKey, DirectoryURL: e.dir, HTTPClient: e.srv.Client()}
	if found, err := nc.GetReg(bg, ""); err != nil || found.URI != acct.URI {
		t.Fatalf("lookup with the new key %+v, %v", found, err)
	}

	// Deactivation; the account then refuses requests.
	if err := nc.DeactivateReg(bg); err != nil {
		t.Fatal(err)
	}
	_, err = nc.GetReg(bg, acct.URI)
	wantProblem(t, err, http.StatusUnauthorized, "unauthorized")
}

// signer builds JWS requests by hand (with go-jose) for the refusals a
// well-behaved client never sends.
type signer struct {
	t   *testing.T
	e   *env
	key *ecdsa.PrivateKey
}

func (s signer) nonce() string {
	resp, err := s.e.srv.Client().Head(s.e.srv.URL + "/acme/new-nonce")
	if err != nil {
		s.t.Fatal(err)
	}
	resp.Body.Close()
	n := resp.Header.Get("Replay-Nonce")
	if n == "" {
		s.t.Fatal("no Replay-Nonce")
	}
	return n
}

func (s signer) jws(url, nonce string, payload []byte) []byte {
	return s.jwsKID("", url, nonce, payload)
}

// jwsKID signs with kid if it is set, else with the embedded jwk.
func (s signer) jwsKID(kid, url, nonce string, payload []byte) []byte {
	opts := (&jose.SignerOptions{EmbedJWK: kid == ""}).WithHeader("url", url)
	if kid != "" {
		opts = opts.WithHeader("kid", kid)
	}
	if nonce != "" {
		opts = opts.WithHeader(jose.HeaderKey("nonce"), nonce)
	}
	sg, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: s.key}, opts)
	if err != nil {
		s.t.Fatal(err)
	}
	o, err := sg.Sign(payload)
	if err != nil {
		s.t.Fatal(err)
	}
	out := []byte(o.FullSerialize())
	if len(payload) == 0 {
		// POST-as-GET: go-jose omits an empty payload; RFC 8555 §6.3 sends "".
		var f map[string]any
		_ = json.Unmarshal(out, &f)
		f["payload"] = ""
		out, _ = json.Marshal(f)
	}
	return out
}

func (s signer) post(url string, body []byte) (int, map[string]any, http.Header) {
	resp, err := s.e.srv.Client().Post(url, "application/jose+json", bytes.NewReader(body))
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	return resp.StatusCode, m, resp.Header
}

func checkProblem(t *testing.T, status int, m map[string]any, h http.Header, wantStatus int, typ string) {
	t.Helper()
	if status != wantStatus || m["type"] != "urn:ietf:params:acme:error:"+typ {
		t.Fatalf("got %d %v, want %d %s", status, m, wantStatus, typ)
	}
	if ct := h.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("Content-Type %q", ct)
	}
	if h.Get("Replay-Nonce") == "" {
		t.Fatal("error without a fresh Replay-Nonce")
	}
}

func TestBadRequests(t *testing.T) {
	e := newEnv(t)
	s := signer{t: t, e: e}
	s.key, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	u := e.srv.URL + "/acme/new-account"
	payload := []byte(`{"onlyReturnExisting":true}`)

	// Nonce replay: the first use reaches the handler, the second is badNonce.
	n := s.nonce()
	st, m, h := s.post(u, s.jws(u, n, payload))
	checkProblem(t, st, m, h, http.StatusBadRequest, "accountDoesNotExist")
	st, m, h = s.post(u, s.jws(u, n, payload))
	checkProblem(t, st, m, h, http.StatusBadRequest, "badNonce")
	// An invented nonce and a missing nonce.
	st, m, h = s.post(u, s.jws(u, "AAAAAAAAAAAAAAAAAAAAAA", payload))
	checkProblem(t, st, m, h, http.StatusBadRequest, "badNonce")
	st, m, h = s.post(u, s.jws(u, "", payload))
	checkProblem(t, st, m, h, http.StatusBadRequest, "badNonce")

	// Wrong url in the protected header.
	st, m, h = s.post(u, s.jws(e.srv.URL+"/acme/key-change", s.nonce(), payload))
	checkProblem(t, st, m, h, http.StatusUnauthorized, "unauthorized")

	// Malformed JWS, compact serialization, oversized body.
	st, m, h = s.post(u, []byte(`{"protected":"x","payload":"y","signature":"z"}`))
	checkProblem(t, st, m, h, http.StatusBadRequest, "malformed")
	o, _ := jose.ParseSigned(string(s.jws(u, s.nonce(), payload)), []jose.SignatureAlgorithm{jose.ES256})
	compact, _ := o.CompactSerialize()
	st, m, h = s.post(u, []byte(compact))
	checkProblem(t, st, m, h, http.StatusBadRequest, "malformed")
	big := []byte(`{"contact":["mailto:` + strings.Repeat("a", 9<<10) + `@example.com"]}`)
	st, m, h = s.post(u, s.jws(u, s.nonce(), big))
	checkProblem(t, st, m, h, http.StatusRequestEntityTooLarge, "malformed")

	// A tampered signature.
	body := s.jws(u, s.nonce(), payload)
	var f map[string]string
	_ = json.Unmarshal(body, &f)
	f["payload"] = "e30" // {}
	tampered, _ := json.Marshal(f)
	st, m, h = s.post(u, tampered)
	checkProblem(t, st, m, h, http.StatusBadRequest, "malformed")

	// EAB whose payload is some other key.
	cred := e.eab(t)
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	otherJWK, _ := (&jose.JSONWebKey{Key: other.Public()}).MarshalJSON()
	mac, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: cred.HMACKey},
		(&jose.SignerOptions{}).WithHeader("kid", cred.KID).WithHeader("url", u))
	eabJWS, _ := mac.Sign(otherJWK)
	p, _ := json.Marshal(map[string]any{"externalAccountBinding": json.RawMessage(eabJWS.FullSerialize())})
	st, m, h = s.post(u, s.jws(u, s.nonce(), p))
	checkProblem(t, st, m, h, http.StatusBadRequest, "malformed")
	if c, _ := e.st.GetEABCredential(bg, cred.KID); c.UsedAt != nil {
		t.Fatal("a refused newAccount spent the EAB credential")
	}
}

// TestOtherAccountIs404: an account's kid cannot reach another account.
func TestOtherAccountIs404(t *testing.T) {
	e := newEnv(t)
	var accts []*xacme.Account
	var signers []signer
	for i := 0; i < 2; i++ {
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		c := &xacme.Client{Key: k, DirectoryURL: e.dir, HTTPClient: e.srv.Client()}
		cred := e.eab(t)
		a, err := c.Register(bg, &xacme.Account{ExternalAccountBinding: &xacme.ExternalAccountBinding{KID: cred.KID, Key: cred.HMACKey}}, xacme.AcceptTOS)
		if err != nil {
			t.Fatal(err)
		}
		accts, signers = append(accts, a), append(signers, signer{t: t, e: e, key: k})
	}
	s := signers[0]
	st, m, h := s.post(accts[1].URI, s.jwsKID(accts[0].URI, accts[1].URI, s.nonce(), nil))
	checkProblem(t, st, m, h, http.StatusNotFound, "malformed")
	st, m, _ = s.post(accts[0].URI, s.jwsKID(accts[0].URI, accts[0].URI, s.nonce(), nil))
	if st != http.StatusOK || m["status"] != "valid" {
		t.Fatalf("own account: %d %v", st, m)
	}
	// Another account's key under this account's kid does not verify.
	o := signers[1]
	st, m, h = o.post(accts[0].URI, o.jwsKID(accts[0].URI, accts[0].URI, o.nonce(), nil))
	checkProblem(t, st, m, h, http.StatusBadRequest, "malformed")
}

// TestNoncesAcrossServers: a nonce from one server process is accepted by
// another on the same database, once.
func TestNoncesAcrossServers(t *testing.T) {
	e := newEnv(t)
	srv2 := httptest.NewTLSServer(New(Deps{Store: e.st, BaseURL: e.srv.URL + "/acme"}))
	defer srv2.Close()
	s := signer{t: t, e: e}
	s.key, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	u := e.srv.URL + "/acme/new-account"
	n := s.nonce() // from the first process
	post := func() (int, map[string]any) {
		resp, err := srv2.Client().Post(srv2.URL+"/acme/new-account", "application/jose+json", bytes.NewReader(s.jws(u, n, []byte(`{"onlyReturnExisting":true}`))))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&m)
		return resp.StatusCode, m
	}
	if st, m := post(); m["type"] != "urn:ietf:params:acme:error:accountDoesNotExist" {
		t.Fatalf("first use on the second process: %d %v", st, m)
	}
	if st, m := post(); m["type"] != "urn:ietf:params:acme:error:badNonce" {
		t.Fatalf("replay on the second process: %d %v", st, m)
	}
}

var _ = crypto.SHA256
