package pki

import (
	"bytes"
	"context"
	"crypto"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"certdesk/internal/pki/problem"
)

// Fuzz targets (make fuzz; seed corpora in testdata/fuzz/<target>/). Each
// checks that hostile input is refused with a typed error, never a panic,
// and that the security invariants hold for whatever input gets through.

// FuzzParseCSR: any bytes given as a CSR either parse (PEM or DER) or are
// refused with ErrCSRMalformed.
func FuzzParseCSR(f *testing.F) {
	for _, s := range csrSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		csr, err := ParseCSR(data)
		if err != nil {
			if !errors.Is(err, ErrCSRMalformed) {
				t.Fatalf("ParseCSR refused with %v, not ErrCSRMalformed", err)
			}
			if csr != nil {
				t.Fatal("ParseCSR returned a CSR and an error")
			}
			return
		}
		if csr == nil || len(csr.Raw) == 0 {
			t.Fatal("ParseCSR returned no CSR and no error")
		}
	})
}

// FuzzCheckCSR runs every pre-issuance check on an arbitrary CSR and
// names, for each product. A request that passes must carry a SHA-2
// signature that verifies, and a key the profile allows; a refusal must be a
// *problem.Error (any other error is "retryable", which only a failed
// blocked-key lookup may be).
func FuzzCheckCSR(f *testing.F) {
	for i, s := range csrSeeds(f) {
		f.Add(s, []string{"server-dv", "server-ov", "client-sign"}[i%3], "www.example.jp", "taro@example.jp")
	}
	f.Add([]byte("-----BEGIN CERTIFICATE REQUEST-----\nMAA=\n-----END CERTIFICATE REQUEST-----\n"), "server-dv", "xn--r8jz45g.jp", "")
	f.Add([]byte{0x30, 0x82, 0xff, 0xff}, "nope", "*.example.jp", "a@b")
	f.Fuzz(func(t *testing.T, data []byte, profile, domain, email string) {
		r := &Request{
			Profile: profile,
			CSR:     data,
			Subject: Subject{CommonName: domain, Organization: "Fuzz KK", Country: "JP"},
			Domains: []string{domain},
			Email:   email,
		}
		if profile == "client-sign" {
			r.Domains = nil
			r.Subject.CommonName = "Fuzz Taro"
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		csr, err := CheckCSR(ctx, r, noBlockedKeys{})
		if err != nil {
			var pe *problem.Error
			if !errors.As(err, &pe) {
				t.Fatalf("CheckCSR refused with %T %v, not a *problem.Error", err, err)
			}
			return
		}
		if !allowedCSRSignature[csr.SignatureAlgorithm] {
			t.Fatalf("CheckCSR accepted a CSR signed with %v", csr.SignatureAlgorithm)
		}
		if err := csr.CheckSignature(); err != nil {
			t.Fatalf("CheckCSR accepted a CSR whose signature does not verify: %v", err)
		}
	})
}

type noBlockedKeys struct{}

func (noBlockedKeys) IsBlocked(context.Context, [32]byte) (bool, error) { return false, nil }

// csrSeeds: well-formed CSRs (EC P-256 and RSA-2048, PEM and DER), a
// truncated one, one with its signature flipped, and a wrong PEM type.
func csrSeeds(f *testing.F) [][]byte {
	ec := makeCSR(f, ecKey(f, elliptic.P256()))
	rsa := makeCSR(f, rsaKey(f, 2048))
	b, _ := pem.Decode(ec)
	flipped := bytes.Clone(b.Bytes)
	flipped[len(flipped)-3] ^= 0xff
	return [][]byte{
		ec, rsa, b.Bytes, flipped, b.Bytes[:len(b.Bytes)/2],
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: b.Bytes}),
		pem.EncodeToMemory(&pem.Block{Type: "NEW CERTIFICATE REQUEST", Bytes: b.Bytes}),
		{}, []byte("not a csr"),
	}
}

// fuzzOCSP is the front end's pre-signed path over the test CA: an index of
// its issuers and a store holding responses for a few issued serials.
type fuzzOCSP struct {
	index  *OCSPIndex
	store  presignedStore
	issuer *x509.Certificate
	issued []*big.Int
}

type presignedStore map[string][]byte // issuer/serial hex

func (p presignedStore) OCSPResponse(_ context.Context, issuerID string, s *big.Int) ([]byte, error) {
	r, ok := p[issuerID+"/"+s.Text(16)]
	if !ok {
		return nil, ErrNotIssued
	}
	return r, nil
}

var (
	fuzzOCSPOnce sync.Once
	fuzzOCSPEnv  *fuzzOCSP
)

func getFuzzOCSP(tb testing.TB) *fuzzOCSP {
	fuzzOCSPOnce.Do(func() {
		ca := getFileCA(tb)
		idx, err := ca.OCSPIndex()
		if err != nil {
			tb.Fatal(err)
		}
		iss, _ := ca.Issuer("tls-1")
		resp, ok := ca.Responder("tls-1")
		if !ok {
			tb.Fatal("no OCSP responder for tls-1")
		}
		env := &fuzzOCSP{index: idx, store: presignedStore{}, issuer: iss.cert}
		for i := int64(1); i <= 3; i++ {
			s := big.NewInt(0x5eed0000 + i)
			st := CertStatus{Serial: s}
			if i == 2 {
				st = CertStatus{Serial: s, Revoked: true, RevokedAt: now().Add(-time.Hour), Reason: ReasonKeyCompromise}
			}
			signed, err := resp.Sign(st, now())
			if err != nil {
				tb.Fatal(err)
			}
			env.store["tls-1/"+s.Text(16)] = signed.DER
			env.issued = append(env.issued, s)
		}
		fuzzOCSPEnv = env
	})
	if fuzzOCSPEnv == nil {
		tb.Fatal("OCSP fuzz fixture failed")
	}
	return fuzzOCSPEnv
}

// FuzzOCSPRequest feeds arbitrary HTTP OCSP requests (GET path or POST
// body, any content type) through OCSPRequestFromHTTP and RespondOCSP with
// the CA's index and pre-signed responses. Whatever comes in, the answer is
// a parsable OCSP response; a successful one names an issued serial of a
// known issuer, is signed by its responder, and is never "good" for a serial
// the CA did not issue (O14).
func FuzzOCSPRequest(f *testing.F) {
	env := getFuzzOCSP(f)
	for _, s := range append(env.issued, big.NewInt(0x5eed9999)) {
		for _, h := range []crypto.Hash{crypto.SHA1, crypto.SHA256} {
			der, err := ocsp.CreateRequest(&x509.Certificate{SerialNumber: s}, env.issuer, &ocsp.RequestOptions{Hash: h})
			if err != nil {
				f.Fatal(err)
			}
			f.Add(false, "", "application/ocsp-request", der)
			f.Add(true, url.PathEscape(base64.StdEncoding.EncodeToString(der)), "", []byte(nil))
			f.Add(true, base64.RawURLEncoding.EncodeToString(der), "", []byte(nil))
		}
	}
	f.Add(true, "%zz", "", []byte(nil))
	f.Add(true, "MA==", "", []byte(nil))
	f.Add(false, "", "text/plain", []byte{0x30, 0x00})
	f.Add(false, "", "", bytes.Repeat([]byte{0x30, 0x80}, 3000))
	f.Fuzz(func(t *testing.T, get bool, path, contentType string, body []byte) {
		var r *http.Request
		if get {
			u := &url.URL{Path: "/ocsp/", RawPath: "/ocsp/" + path}
			if p, err := url.PathUnescape(path); err == nil {
				u.Path = "/ocsp/" + p
			}
			r = httptest.NewRequest(http.MethodGet, "http://127.0.0.1/ocsp/", nil)
			r.URL = u
		} else {
			r = httptest.NewRequest(http.MethodPost, "http://127.0.0.1/ocsp", bytes.NewReader(body))
			if contentType != "" {
				r.Header.Set("Content-Type", contentType)
			}
		}
		reqDER, err := OCSPRequestFromHTTP(r, "/ocsp/")
		if err != nil {
			reqDER = nil
		}
		if len(reqDER) > 2*maxOCSPRequest {
			t.Fatalf("OCSPRequestFromHTTP returned %d bytes, over its limit", len(reqDER))
		}
		resp, _ := RespondOCSP(context.Background(), reqDER, env.index, env.store)
		if len(resp) == 0 {
			t.Fatal("RespondOCSP returned no bytes")
		}
		parsed, perr := ocsp.ParseResponse(resp, nil)
		var re ocsp.ResponseError
		if errors.As(perr, &re) {
			return // malformedRequest, unauthorized, internalError: fine
		}
		if perr != nil {
			t.Fatalf("RespondOCSP returned an unparsable response: %v", perr)
		}
		req, err := ocsp.ParseRequest(reqDER)
		if err != nil {
			t.Fatalf("successful response to an unparsable request: %v", err)
		}
		if _, ok := env.store["tls-1/"+req.SerialNumber.Text(16)]; !ok {
			t.Fatalf("successful response for serial %x, which the CA did not issue", req.SerialNumber)
		}
		if parsed.SerialNumber.Cmp(req.SerialNumber) != 0 {
			t.Fatalf("response for serial %x answers a request for %x", parsed.SerialNumber, req.SerialNumber)
		}
		if _, err := ocsp.ParseResponse(resp, env.issuer); err != nil {
			t.Fatalf("successful response does not verify against the issuer: %v", err)
		}
	})
}
