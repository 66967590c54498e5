package pki

import (
	"context"
	"encoding/base64"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"
)

// statusDB is an in-memory OCSPStatusSource.
type statusDB struct {
	mu sync.Mutex
	m  map[string]CertStatus // issuer/serial
}

func (d *statusDB) put(issuer string, s CertStatus) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.m == nil {
		d.m = map[string]CertStatus{}
	}
	d.m[issuer+"/"+s.Serial.Text(16)] = s
}

func (d *statusDB) CertStatus(_ context.Context, issuer string, serial *big.Int) (CertStatus, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	s, ok := d.m[issuer+"/"+serial.Text(16)]
	if !ok {
		return CertStatus{}, ErrNotIssued
	}
	return s, nil
}

// ocspServer is what the starter will do: parse GET/POST, answer through
// RespondOCSP, set RFC 5019 cache headers.
func ocspServer(t *testing.T, idx *OCSPIndex, lookup OCSPLookup) *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reqDER, err := OCSPRequestFromHTTP(r, "/ocsp/")
		if err != nil {
			reqDER = nil
		}
		resp, err := RespondOCSP(r.Context(), reqDER, idx, lookup)
		if err != nil {
			t.Logf("ocsp: %v", err)
		}
		var this, next time.Time
		if tu, nu, err := OCSPResponseTimes(resp); err == nil {
			this, next = tu, nu
		}
		for k, v := range OCSPCacheHeaders(resp, this, next, time.Now()) {
			w.Header()[k] = v
		}
		w.Write(resp)
	}))
}

func TestOCSPWithOpenSSL(t *testing.T) {
	ca := getFileCA(t)
	iss, _ := ca.Issuer("tls-1")
	certs := issueDV(t, iss, 2)
	good, bad := certs[0], certs[1]
	db := &statusDB{}
	db.put("tls-1", CertStatus{Serial: good.Cert.SerialNumber})
	db.put("tls-1", CertStatus{Serial: bad.Cert.SerialNumber, Revoked: true, RevokedAt: now().Add(-time.Hour), Reason: ReasonKeyCompromise})
	resp, _ := ca.Responder("tls-1")
	idx, err := ca.OCSPIndex()
	if err != nil {
		t.Fatal(err)
	}
	srv := ocspServer(t, idx, NewLiveOCSP(db, resp))
	defer srv.Close()

	dir := t.TempDir()
	root := filepath.Join(ca.Dir(), "root.pem")
	inter := filepath.Join(ca.Dir(), "tls-1.pem")
	goodPEM := writeFile(t, dir, "good.pem", pemCert(good.DER))
	badPEM := writeFile(t, dir, "bad.pem", pemCert(bad.DER))

	// openssl as the client (POST), then the saved response verified again
	// from file with -respin.
	for _, c := range []struct {
		name, cert string
		want       []string
	}{
		{"good", goodPEM, []string{"Response verify OK", "good.pem: good"}},
		{"revoked", badPEM, []string{"Response verify OK", "bad.pem: revoked", "Reason: keyCompromise"}},
	} {
		respFile := filepath.Join(dir, c.name+".der")
		out := openssl(t, dir, "ocsp", "-issuer", inter, "-cert", c.cert, "-url", srv.URL+"/ocsp", "-no_nonce",
			"-CAfile", root, "-verify_other", inter, "-respout", respFile)
		for _, w := range c.want {
			if !strings.Contains(out, w) {
				t.Errorf("%s: openssl ocsp lacks %q:\n%s", c.name, w, out)
			}
		}
		out = openssl(t, dir, "ocsp", "-respin", respFile, "-issuer", inter, "-cert", c.cert, "-no_nonce", "-CAfile", root, "-verify_other", inter)
		for _, w := range c.want {
			if !strings.Contains(out, w) {
				t.Errorf("%s (respin): lacks %q:\n%s", c.name, w, out)
			}
		}
		der, _ := os.ReadFile(respFile)
		if bad := ocspLintErrors(t, der); len(bad) > 0 {
			t.Errorf("%s: zlint OCSP: %v", c.name, bad)
		}
	}

	// A serial this CA never issued: unauthorized, never good.
	unknown := serial(t)
	respFile := filepath.Join(dir, "unknown.der")
	out, _ := opensslErr(dir, "ocsp", "-issuer", inter, "-serial", "0x"+unknown.Text(16), "-url", srv.URL+"/ocsp", "-no_nonce",
		"-CAfile", root, "-respout", respFile)
	if !strings.Contains(out, "Responder Error: unauthorized (6)") {
		t.Errorf("unknown serial: %s", out)
	}
	out, _ = opensslErr(dir, "ocsp", "-respin", respFile, "-resp_text", "-noverify")
	if !strings.Contains(out, "unauthorized") || strings.Contains(out, ": good") {
		t.Errorf("unknown serial respin: %s", out)
	}

	// GET (RFC 5019): a request made by openssl, base64 in the path.
	reqFile := filepath.Join(dir, "req.der")
	openssl(t, dir, "ocsp", "-issuer", inter, "-cert", goodPEM, "-no_nonce", "-reqout", reqFile)
	reqDER, _ := os.ReadFile(reqFile)
	for _, path := range []string{
		url.PathEscape(base64.StdEncoding.EncodeToString(reqDER)),
		base64.StdEncoding.EncodeToString(reqDER), // unescaped '+' and '/'
		base64.RawURLEncoding.EncodeToString(reqDER),
	} {
		hr, err := http.Get(srv.URL + "/ocsp/" + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(hr.Body)
		hr.Body.Close()
		r, err := ocsp.ParseResponseForCert(body, good.Cert, iss.Certificate())
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		if r.Status != ocsp.Good {
			t.Errorf("GET status %d", r.Status)
		}
		cc := hr.Header.Get("Cache-Control")
		if !strings.Contains(cc, "max-age=") || !strings.Contains(cc, "public") || hr.Header.Get("ETag") == "" ||
			hr.Header.Get("Last-Modified") != r.ThisUpdate.UTC().Format(http.TimeFormat) || hr.Header.Get("Expires") != r.NextUpdate.UTC().Format(http.TimeFormat) {
			t.Errorf("cache headers: %v", hr.Header)
		}
		if ct := hr.Header.Get("Content-Type"); ct != "application/ocsp-response" {
			t.Errorf("Content-Type %q", ct)
		}
	}
}

func TestOCSPResponderRules(t *testing.T) {
	ca := getFileCA(t)
	resp, _ := ca.Responder("tls-1")
	rc := resp.Certificate()
	// Delegated responder profile (BR 7.1.2.8).
	if len(rc.ExtKeyUsage) != 1 || !hasExtension(rc, oidOCSPNoCheck) || rc.NotAfter.Sub(rc.NotBefore)+time.Second != 30*Day {
		t.Errorf("responder cert: EKU %v, validity %v", rc.ExtKeyUsage, rc.NotAfter.Sub(rc.NotBefore))
	}
	if alg, _ := publicKeyAlgorithm(rc.PublicKey); alg != ECDSAP256 {
		t.Errorf("responder key %v", alg)
	}
	if bad := lintErrors(t, rc.Raw); len(bad) > 0 {
		t.Errorf("responder cert zlint: %v", bad)
	}
	n := now()
	if resp.NeedsRenewal(n) || !resp.NeedsRenewal(rc.NotAfter.Add(-9*Day)) {
		t.Error("NeedsRenewal wrong")
	}
	s, err := resp.Sign(CertStatus{Serial: big.NewInt(1 << 62)}, n)
	if err != nil {
		t.Fatal(err)
	}
	if s.NextUpdate.Sub(s.ThisUpdate) != DefaultOCSPValidity || s.NeedsRefresh(n.Add(Day)) || !s.NeedsRefresh(n.Add(37*time.Hour)) {
		t.Errorf("validity/refresh: %v", s.NextUpdate.Sub(s.ThisUpdate))
	}
	// Disallowed reasons and a responder past its validity are refused.
	if _, err := resp.Sign(CertStatus{Serial: big.NewInt(5), Revoked: true, RevokedAt: n, Reason: ReasonCertificateHold}, n); err == nil {
		t.Error("certificateHold signed")
	}
	if _, err := resp.Sign(CertStatus{Serial: big.NewInt(5)}, rc.NotAfter.Add(-Day)); err == nil {
		t.Error("response outliving the responder certificate signed")
	}
	if _, err := NewOCSPResponder("x", rc, rc, nil, 5*Day); err == nil {
		t.Error("5-day validity accepted")
	}
	// Malformed request bytes → malformedRequest, not a crash.
	idx, _ := ca.OCSPIndex()
	out, _ := RespondOCSP(context.Background(), []byte("nonsense"), idx, NewLiveOCSP(&statusDB{}, resp))
	if string(out) != string(ocsp.MalformedRequestErrorResponse) {
		t.Errorf("malformed: %x", out)
	}
}

func TestOCSPResponderRenewal(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ca")
	keys := &FileKeyStore{Dir: filepath.Join(dir, "keys"), Passphrase: testPassphrase, Iterations: testPBKDF2Iterations}
	start := now()
	ca, err := Bootstrap(context.Background(), BootstrapConfig{
		Dir: dir, Keys: keys, Organization: "Renewal Test KK", Country: "JP", URLs: testURLs, Policy: testPolicy,
		Issuers: []IssuerSpec{{ID: "tls-9", Purpose: PurposeTLSServer, KeyAlgorithm: ECDSAP256, CRLShards: 2}}, Now: start,
	})
	if err != nil {
		t.Fatal(err)
	}
	old, _ := ca.Responder("tls-9")
	later := start.Add(21 * Day)
	if !old.NeedsRenewal(later) {
		t.Fatal("responder should need renewal after 21 days")
	}
	fresh, err := ca.RenewOCSPResponder(context.Background(), keys, "tls-9", later)
	if err != nil {
		t.Fatal(err)
	}
	if fresh.Certificate().SerialNumber.Cmp(old.Certificate().SerialNumber) == 0 || fresh.NeedsRenewal(later) {
		t.Error("renewal did not produce a fresh responder")
	}
	if _, err := fresh.Sign(CertStatus{Serial: big.NewInt(1 << 40)}, later); err != nil {
		t.Errorf("renewed responder cannot sign: %v", err)
	}
	// A new worker loading the directory gets the renewed responder.
	loaded, err := LoadCA(context.Background(), dir, keys, LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	r, _ := loaded.Responder("tls-9")
	if !r.Certificate().Equal(fresh.Certificate()) {
		t.Error("LoadCA did not pick up the renewed responder")
	}
	if !publicKeysEqual(r.signer.Public(), fresh.signer.Public()) {
		t.Error("renewed key not loaded")
	}
}
