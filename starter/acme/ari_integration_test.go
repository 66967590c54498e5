//go:build integration

package acme

import (
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	xacme "golang.org/x/crypto/acme"
)

// issue takes names through an order to a certificate with http-01.
func (e *orderEnv) issue(t *testing.T, c *xacme.Client, names ...string) *x509.Certificate {
	t.Helper()
	o, err := c.AuthorizeOrder(bg, xacme.DomainIDs(names...))
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range o.AuthzURLs {
		az, err := c.GetAuthorization(bg, u)
		if err != nil {
			t.Fatal(err)
		}
		for _, ch := range az.Challenges {
			if ch.Type == "http-01" {
				e.publish(t, c, ch)
				if _, err := c.Accept(bg, ch); err != nil {
					t.Fatal(err)
				}
			}
		}
		if _, err := c.WaitAuthorization(bg, u); err != nil {
			t.Fatal(err)
		}
	}
	o, err = c.WaitOrder(bg, o.URI)
	if err != nil {
		t.Fatal(err)
	}
	ders, _, err := c.CreateOrderCert(bg, o.FinalizeURL, csrFor(t, names...), true)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(ders[0])
	return leaf
}

type renewalInfoAnswer struct {
	status     int
	retryAfter string
	start, end time.Time
	problem    string
}

func (e *orderEnv) renewalInfo(t *testing.T, certID string) renewalInfoAnswer {
	t.Helper()
	resp, err := e.srv.Client().Get(e.srv.URL + "/acme/renewal-info/" + certID)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var m struct {
		SuggestedWindow struct{ Start, End time.Time } `json:"suggestedWindow"`
		Type            string                         `json:"type"`
	}
	_ = json.Unmarshal(b, &m)
	return renewalInfoAnswer{resp.StatusCode, resp.Header.Get("Retry-After"), m.SuggestedWindow.Start, m.SuggestedWindow.End,
		strings.TrimPrefix(m.Type, "urn:ietf:params:acme:error:")}
}

// TestRenewalInfo: the directory names renewalInfo; a certificate's window
// is the default (from two thirds of its validity) until a mass revocation
// moves it to now (SetRenewalWindowNow); malformed and unknown certIDs are
// refused; newOrder's replaces must name a certificate of the account that
// shares a name, and replaces it only once (alreadyReplaced); the renewals
// are counted (CountACMEReplaced).
func TestRenewalInfo(t *testing.T) {
	e := newOrderEnv(t)
	c, a := e.account(t)
	other, _ := e.account(t)
	leaf := e.issue(t, c, "ari.example.test", "www.ari.example.test")
	id := CertID(leaf)
	serial := leaf.SerialNumber.Text(16)
	if len(leaf.AuthorityKeyId) == 0 || !strings.Contains(id, ".") {
		t.Fatalf("certID %q of a leaf with AKI %x", id, leaf.AuthorityKeyId)
	}

	resp, err := e.srv.Client().Get(e.dir)
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		RenewalInfo string `json:"renewalInfo"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&d)
	resp.Body.Close()
	if d.RenewalInfo != e.srv.URL+"/acme/renewal-info" {
		t.Fatalf("directory renewalInfo %q", d.RenewalInfo)
	}

	got := e.renewalInfo(t, id)
	wantStart, wantEnd := DefaultRenewalWindow(leaf)
	if got.status != 200 || got.retryAfter != "21600" || !got.start.Equal(wantStart.Truncate(time.Second)) || !got.end.Equal(wantEnd.Truncate(time.Second)) ||
		!got.end.After(got.start) || got.start.Before(leaf.NotBefore) || got.end.After(leaf.NotAfter) {
		t.Fatalf("default window %+v, want %v–%v within %v–%v", got, wantStart, wantEnd, leaf.NotBefore, leaf.NotAfter)
	}

	// Bad certIDs.
	aki := base64.RawURLEncoding.EncodeToString(leaf.AuthorityKeyId)
	for _, tc := range []struct {
		certID  string
		status  int
		problem string
	}{
		{"nodot", 400, "malformed"},
		{aki + ".", 400, "malformed"},
		{aki + ".a.b", 400, "malformed"},
		{aki + ".!!", 400, "malformed"},
		{aki + ".gA", 400, "malformed"},                             // 0x80: a negative serial
		{aki + ".AAE", 400, "malformed"},                            // 0x00 0x01: a superfluous zero
		{aki + ".AQ", 404, "malformed"},                             // serial 1: not issued
		{"AAAA." + strings.SplitN(id, ".", 2)[1], 404, "malformed"}, // another issuer's key
	} {
		if got := e.renewalInfo(t, tc.certID); got.status != tc.status || got.problem != tc.problem {
			t.Errorf("renewal-info/%s: %d %s, want %d %s", tc.certID, got.status, got.problem, tc.status, tc.problem)
		}
	}

	// A mass revocation moves the window to now.
	before := time.Now().Add(-2 * time.Second)
	n, err := e.st.SetRenewalWindowNow(bg, []string{serial, "ffff"})
	if err != nil || n != 1 {
		t.Fatalf("SetRenewalWindowNow: %d %v", n, err)
	}
	got = e.renewalInfo(t, id)
	if got.status != 200 || got.retryAfter != "3600" || got.start.Before(before) || got.start.After(time.Now()) || !got.end.After(got.start) {
		t.Fatalf("window after SetRenewalWindowNow %+v", got)
	}

	// newOrder with replaces.
	sg := signer{t: t, e: e.env, key: c.Key.(*ecdsa.PrivateKey)}
	so := signer{t: t, e: e.env, key: other.Key.(*ecdsa.PrivateKey)}
	otherKID := ""
	if acct, err := other.GetReg(bg, ""); err == nil {
		otherKID = acct.URI
	}
	u := e.srv.URL + "/acme/new-order"
	order := func(s signer, kid, replaces string, names ...string) (int, map[string]any) {
		ids := []map[string]string{}
		for _, n := range names {
			ids = append(ids, map[string]string{"type": "dns", "value": n})
		}
		p, _ := json.Marshal(map[string]any{"identifiers": ids, "replaces": replaces})
		st, m, _ := s.post(u, s.jwsKID(kid, u, s.nonce(), p))
		return st, m
	}
	for _, tc := range []struct {
		name     string
		s        signer
		kid      string
		replaces string
		names    []string
		status   int
		problem  string
	}{
		{"malformed", sg, a.URI, "nodot", []string{"ari.example.test"}, 400, "malformed"},
		{"unknown certificate", sg, a.URI, aki + ".AQ", []string{"ari.example.test"}, 400, "malformed"},
		{"another account's certificate", so, otherKID, id, []string{"ari.example.test"}, 400, "malformed"},
		{"no name in common", sg, a.URI, id, []string{"elsewhere.example.test"}, 400, "malformed"},
	} {
		if st, m := order(tc.s, tc.kid, tc.replaces, tc.names...); st != tc.status || m["type"] != "urn:ietf:params:acme:error:"+tc.problem {
			t.Errorf("%s: %d %v", tc.name, st, m)
		}
	}
	if st, m := order(sg, a.URI, id, "ari.example.test"); st != http.StatusCreated {
		t.Fatalf("renewal order: %d %v", st, m)
	}
	if st, m := order(sg, a.URI, id, "ari.example.test"); st != http.StatusConflict || m["type"] != "urn:ietf:params:acme:error:alreadyReplaced" {
		t.Fatalf("second renewal order: %d %v", st, m)
	}
	// Counted once the renewal is issued: not yet.
	if n, err := e.st.CountACMEReplaced(bg, []string{serial}); err != nil || n != 0 {
		t.Fatalf("replaced before the renewal was issued: %d %v", n, err)
	}
}
