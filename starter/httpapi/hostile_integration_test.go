//go:build integration

package httpapi

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"certdesk/internal/api"
	"certdesk/workflows"
)

type hostileFixture struct {
	keyA, keyB string
	appA       string
	serialA    string
	certA      *x509.Certificate
	issuer     *x509.Certificate
	lockedVer  string
	closedApp  string
}

type hostileCase struct {
	name   string
	method string
	path   string
	key    string
	body   any
	hdr    map[string]string
	code   int
	typ    string            // problem type; "" means not problem+json
	check  func(reply) error // optional extra check
}

// hostile sends a table of hostile and malformed requests; each must get
// its status and problem type, and together they must write nothing: not
// a row in any table, not a workflow.
func hostile(t *testing.T, s *stack, f hostileFixture) {
	_, csr := newCSR(t)
	app := func(mod func(m map[string]any)) map[string]any {
		m := newPerson().application(csr)
		if mod != nil {
			mod(m)
		}
		return m
	}
	sub := func(k, v string) func(map[string]any) {
		return func(m map[string]any) { m["subscriber"].(map[string]any)[k] = v }
	}
	weak, _ := rsa.GenerateKey(rand.Reader, 1024)
	p224, _ := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	selfKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	selfDER, _ := x509.CreateCertificate(rand.Reader, &x509.Certificate{SerialNumber: f.certA.SerialNumber,
		Subject: pkix.Name{CommonName: "forged"}, NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)},
		&x509.Certificate{Subject: pkix.Name{CommonName: "forged"}}, &selfKey.PublicKey, selfKey)
	selfPEM := string(pemCert(&x509.Certificate{Raw: selfDER}))
	pemA := string(pemCert(f.certA))
	unknown := *f.certA
	unknown.SerialNumber = new(big.Int).Add(f.certA.SerialNumber, big.NewInt(977))
	unknownReq, _ := ocsp.CreateRequest(&unknown, f.issuer, nil)
	b64 := func(b []byte) string { return url.PathEscape(base64.StdEncoding.EncodeToString(b)) }

	// A successful idempotent request before the snapshot: its key is then
	// replayed with the same body (stored answer, nothing new) and with
	// another (422).
	idemKey := "revoke-" + randomID(6)
	first := s.do("POST", "/v1/certificates/"+f.serialA+"/revocation", f.keyA, map[string]string{"reason": "superseded"},
		map[string]string{"Idempotency-Key": idemKey})
	if first.code != 202 {
		t.Fatalf("setup: %d %s", first.code, first.body)
	}
	waitWorkflowClosed(t, s, workflows.RevocationWorkflowID(f.serialA))
	time.Sleep(time.Second) // visibility settles

	json415 := map[string]string{"Content-Type": "text/plain"}
	huge := bytes.Repeat([]byte(" "), 1<<20+10)
	huge[0] = '{'
	huge[len(huge)-1] = '}'

	cases := []hostileCase{
		// Authentication.
		{"no key", "POST", "/v1/applications", "", app(nil), nil, 401, api.TypeUnauthorized, wwwAuth},
		{"wrong key", "POST", "/v1/applications", "cdk_" + strings.Repeat("A", 43), app(nil), nil, 401, api.TypeUnauthorized, wwwAuth},
		{"basic auth", "GET", "/v1/applications/" + f.appA, "", nil, map[string]string{"Authorization": "Basic YTpi"}, 401, api.TypeUnauthorized, nil},
		{"key without prefix", "GET", "/v1/applications/" + f.appA, "not-a-key", nil, nil, 401, api.TypeUnauthorized, nil},
		{"key in SQL", "GET", "/v1/applications/" + f.appA, "cdk_' OR '1'='1", nil, nil, 401, api.TypeUnauthorized, nil},
		{"oversized key", "GET", "/v1/certificates/" + f.serialA, "cdk_" + strings.Repeat("x", 500), nil, nil, 401, api.TypeUnauthorized, nil},

		// Another reseller's objects.
		{"other reseller's application", "GET", "/v1/applications/" + f.appA, f.keyB, nil, nil, 404, api.TypeNotFound, nil},
		{"other reseller withdraws", "POST", "/v1/applications/" + f.appA + "/withdraw", f.keyB, nil, nil, 404, api.TypeNotFound, nil},
		{"other reseller's certificate", "GET", "/v1/certificates/" + f.serialA, f.keyB, nil, nil, 404, api.TypeNotFound, nil},
		{"other reseller revokes", "POST", "/v1/certificates/" + f.serialA + "/revocation", f.keyB, map[string]string{"reason": "unspecified"}, nil, 404, api.TypeNotFound, nil},
		{"other reseller corrects", "POST", "/v1/certificates/" + f.serialA + "/corrections", f.keyB, map[string]any{"changes": map[string]string{"phone": "1"}}, nil, 404, api.TypeNotFound, nil},
		{"unknown application", "GET", "/v1/applications/app_doesnotexist", f.keyA, nil, nil, 404, api.TypeNotFound, nil},
		{"unknown serial", "GET", "/v1/certificates/fedcba9876543210", f.keyA, nil, nil, 404, api.TypeNotFound, nil},
		{"non-hex serial", "GET", "/v1/certificates/zz-top", f.keyA, nil, nil, 404, api.TypeNotFound, nil},

		// SQL and other junk in fields and paths.
		{"SQL in application id", "GET", "/v1/applications/" + url.PathEscape("app_1' OR '1'='1"), f.keyA, nil, nil, 404, api.TypeNotFound, nil},
		{"SQL in serial", "GET", "/v1/certificates/" + url.PathEscape("1 OR 1=1; --"), f.keyA, nil, nil, 404, api.TypeNotFound, nil},
		{"SQL in product", "POST", "/v1/applications", f.keyA, app(func(m map[string]any) { m["product"] = "server-dv' OR '1'='1" }), nil, 422, api.TypeValidation, fieldErr("product")},
		{"SQL in email", "POST", "/v1/applications", f.keyA, app(sub("email", "x@example.jp'; DROP TABLE subscribers;--")), nil, 422, api.TypeValidation, fieldErr("subscriber.email")},
		{"SQL in country", "POST", "/v1/applications", f.keyA, app(sub("country", "JP'--")), map[string]string{"Idempotency-Key": "k-" + randomID(4)}, 422, api.TypeValidation, fieldErr("subscriber.country")},
		{"SQL in domains", "POST", "/v1/applications", f.keyA, app(func(m map[string]any) {
			m["product"] = "server-dv"
			m["domains"] = []string{"example.jp' OR 1=1--"}
		}), nil, 422, api.TypeValidation, fieldErr("domains[0]")},
		{"SQL in revocation reason", "POST", "/v1/certificates/" + f.serialA + "/revocation", f.keyA, map[string]string{"reason": "keyCompromise'; DELETE FROM revocations;--"}, nil, 422, api.TypeValidation, fieldErr("reason")},
		{"control characters in name", "POST", "/v1/applications", f.keyA, app(sub("name", "Taro\x00\x1b[31m")), nil, 422, api.TypeValidation, fieldErr("subscriber.name")},

		// Bodies.
		{"body over 1 MiB", "POST", "/v1/applications", f.keyA, huge, map[string]string{"Content-Type": "application/json"}, 413, api.TypePayloadTooLarge, nil},
		{"truncated JSON", "POST", "/v1/applications", f.keyA, `{"product":`, map[string]string{"Content-Type": "application/json"}, 400, api.TypeMalformedRequest, nil},
		{"JSON array", "POST", "/v1/applications", f.keyA, `[1,2,3]`, map[string]string{"Content-Type": "application/json"}, 400, api.TypeMalformedRequest, nil},
		{"unknown field", "POST", "/v1/applications", f.keyA, app(func(m map[string]any) { m["reseller_id"] = "rs_other" }), nil, 400, api.TypeMalformedRequest, nil},
		{"unknown nested field", "POST", "/v1/applications", f.keyA, app(sub("admin", "true")), nil, 400, api.TypeMalformedRequest, nil},
		{"two JSON values", "POST", "/v1/certificates/" + f.serialA + "/revocation", f.keyA, `{"reason":"unspecified"}{"reason":"keyCompromise"}`, map[string]string{"Content-Type": "application/json"}, 400, api.TypeMalformedRequest, nil},
		{"wrong type", "POST", "/v1/applications", f.keyA, app(func(m map[string]any) { m["validity_days"] = "ten" }), nil, 400, api.TypeMalformedRequest, nil},
		{"empty body", "POST", "/v1/applications", f.keyA, "", map[string]string{"Content-Type": "application/json"}, 400, api.TypeMalformedRequest, nil},
		{"text/plain", "POST", "/v1/applications", f.keyA, `{"product":"client-sign"}`, json415, 415, api.TypeUnsupportedMedia, nil},
		{"no content type", "POST", "/v1/certificates/" + f.serialA + "/revocation", f.keyA, `{"reason":"unspecified"}`, nil, 415, api.TypeUnsupportedMedia, nil},
		{"latin-1 JSON", "POST", "/v1/verifications/" + f.lockedVer + "/code", "", `{"code":"123456"}`, map[string]string{"Content-Type": "application/json; charset=iso-8859-1"}, 415, api.TypeUnsupportedMedia, nil},

		// CSRs and attestation.
		{"garbage CSR", "POST", "/v1/applications", f.keyA, app(func(m map[string]any) {
			m["csr"] = "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n"
		}), nil, 422, api.TypeValidation, fieldErr("csr")},
		{"certificate instead of CSR", "POST", "/v1/applications", f.keyA, app(func(m map[string]any) { m["csr"] = pemA }), nil, 422, api.TypeValidation, fieldErr("csr")},
		{"RSA-1024 CSR", "POST", "/v1/applications", f.keyA, app(func(m map[string]any) { m["csr"] = csrFor(t, weak, "weak") }), nil, 422, api.TypeCSRRejected, problemCode("rsa-key-too-small")},
		{"P-224 CSR", "POST", "/v1/applications", f.keyA, app(func(m map[string]any) { m["csr"] = csrFor(t, p224, "p224") }), nil, 422, api.TypeCSRRejected, nil},
		{"untruthful attestation", "POST", "/v1/applications", f.keyA, app(func(m map[string]any) {
			m["attestation"] = map[string]any{"terms_version": "2026-04", "truthful": false}
		}), nil, 422, api.TypeValidation, fieldErr("attestation.truthful")},
		{"TLS without domains", "POST", "/v1/applications", f.keyA, app(func(m map[string]any) { m["product"] = "server-ov" }), nil, 422, api.TypeValidation, fieldErr("domains")},
		{"validity too long", "POST", "/v1/applications", f.keyA, app(func(m map[string]any) { m["validity_days"] = 100000 }), nil, 422, api.TypeValidation, fieldErr("validity_days")},

		// Idempotency keys.
		{"replayed key, other body", "POST", "/v1/certificates/" + f.serialA + "/revocation", f.keyA, map[string]string{"reason": "unspecified"}, map[string]string{"Idempotency-Key": idemKey}, 422, api.TypeIdempotencyReused, nil},
		{"replayed key, same body", "POST", "/v1/certificates/" + f.serialA + "/revocation", f.keyA, map[string]string{"reason": "superseded"}, map[string]string{"Idempotency-Key": idemKey}, 202, "", func(r reply) error {
			if r.hdr.Get("Idempotent-Replayed") != "true" || !bytes.Equal(r.body, first.body) {
				return errorf("not the stored answer: %v %s", r.hdr, r.body)
			}
			return nil
		}},
		{"same key, other reseller's scope", "POST", "/v1/certificates/" + f.serialA + "/revocation", f.keyB, map[string]string{"reason": "superseded"}, map[string]string{"Idempotency-Key": idemKey}, 404, api.TypeNotFound, nil},
		{"non-ASCII idempotency key", "POST", "/v1/certificates/" + f.serialA + "/revocation", f.keyA, map[string]string{"reason": "superseded"}, map[string]string{"Idempotency-Key": "ключ"}, 422, api.TypeValidation, fieldErr("Idempotency-Key")},
		{"oversized idempotency key", "POST", "/v1/certificates/" + f.serialA + "/revocation", f.keyA, map[string]string{"reason": "superseded"}, map[string]string{"Idempotency-Key": strings.Repeat("k", 300)}, 422, api.TypeValidation, fieldErr("Idempotency-Key")},

		// One-time codes.
		{"locked verification", "POST", "/v1/verifications/" + f.lockedVer + "/code", "", map[string]string{"code": "123456"}, nil, 423, api.TypeVerificationLock, nil},
		{"five-digit code", "POST", "/v1/verifications/" + f.lockedVer + "/code", "", map[string]string{"code": "12345"}, nil, 422, api.TypeValidation, fieldErr("code")},
		{"letters as code", "POST", "/v1/verifications/" + f.lockedVer + "/code", "", map[string]string{"code": "abcdef"}, nil, 422, api.TypeValidation, fieldErr("code")},
		{"SQL as code", "POST", "/v1/verifications/" + f.lockedVer + "/code", "", map[string]string{"code": "1' OR '1'='1"}, nil, 422, api.TypeValidation, fieldErr("code")},
		{"number as code", "POST", "/v1/verifications/" + f.lockedVer + "/code", "", `{"code":123456}`, map[string]string{"Content-Type": "application/json"}, 400, api.TypeMalformedRequest, nil},
		{"unknown verification", "POST", "/v1/verifications/ver-app_nosuch/code", "", map[string]string{"code": "123456"}, nil, 404, api.TypeNotFound, nil},
		{"traversal in verification id", "POST", "/v1/verifications/" + url.PathEscape("../application/"+f.appA) + "/code", "", map[string]string{"code": "123456"}, nil, 404, api.TypeNotFound, nil},

		// Key-compromise requests.
		{"forged certificate", "POST", "/v1/revocations", "", map[string]string{"certificate": selfPEM, "signature": "AAAA"}, nil, 404, api.TypeNotFound, nil},
		{"bad signature", "POST", "/v1/revocations", "", map[string]string{"certificate": pemA, "signature": base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 256))}, nil, 403, api.TypeKeyProofInvalid, nil},
		{"signature not base64", "POST", "/v1/revocations", "", map[string]string{"certificate": pemA, "signature": "!!!"}, nil, 422, api.TypeValidation, fieldErr("signature")},
		{"no proof", "POST", "/v1/revocations", "", map[string]string{"certificate": pemA}, nil, 422, api.TypeValidation, fieldErr("signature")},
		{"garbage certificate", "POST", "/v1/revocations", "", map[string]string{"certificate": "not a certificate", "signature": "AAAA"}, nil, 422, api.TypeValidation, fieldErr("certificate")},

		// Repository.
		{"traversal in CA file", "GET", "/repository/ca/" + url.PathEscape("../../etc/passwd.pem"), "", nil, nil, 404, api.TypeNotFound, nil},
		{"traversal to the manifest", "GET", "/repository/ca/" + url.PathEscape("../ca.json"), "", nil, nil, 404, api.TypeNotFound, nil},
		{"CA key file", "GET", "/repository/ca/tls-1.key.pem", "", nil, nil, 404, api.TypeNotFound, nil},
		{"unknown CA", "GET", "/repository/ca/nosuch.pem", "", nil, nil, 404, api.TypeNotFound, nil},
		{"traversal in CRL issuer", "GET", "/repository/crl/" + url.PathEscape("../root") + "/0.crl", "", nil, nil, 404, api.TypeNotFound, nil},
		{"CRL shard out of range", "GET", "/repository/crl/client-1/99999.crl", "", nil, nil, 404, api.TypeNotFound, nil},
		{"CRL shard with leading zero", "GET", "/repository/crl/client-1/00.crl", "", nil, nil, 404, api.TypeNotFound, nil},
		{"CRL of an unknown issuer", "GET", "/repository/crl/nosuch/0.crl", "", nil, nil, 404, api.TypeNotFound, nil},

		// OCSP.
		{"OCSP GET not base64", "GET", "/ocsp/%21%21%21not-base64", "", nil, nil, 400, api.TypeMalformedRequest, nil},
		{"OCSP GET garbage DER", "GET", "/ocsp/" + b64([]byte("this is no OCSP request")), "", nil, nil, 200, "", ocspBody(ocsp.MalformedRequestErrorResponse)},
		{"OCSP for a serial never issued", "GET", "/ocsp/" + b64(unknownReq), "", nil, nil, 200, "", ocspBody(ocsp.UnauthorizedErrorResponse)},
		{"OCSP POST as JSON", "POST", "/ocsp", "", map[string]string{"x": "y"}, nil, 415, api.TypeUnsupportedMedia, nil},
		{"OCSP POST over 4 KiB", "POST", "/ocsp", "", bytes.Repeat([]byte{0x30}, 5000), map[string]string{"Content-Type": "application/ocsp-request"}, 413, api.TypePayloadTooLarge, nil},

		// Staff codec.
		{"codec without token", "POST", "/codec/decode", "", `{"payloads":[]}`, map[string]string{"Content-Type": "application/json"}, 401, api.TypeUnauthorized, nil},
		{"codec with a reseller key", "POST", "/codec/decode", f.keyA, `{"payloads":[]}`, map[string]string{"Content-Type": "application/json"}, 401, api.TypeUnauthorized, nil},
		{"codec preflight from another origin", "OPTIONS", "/codec/decode", "", nil, map[string]string{"Origin": "http://evil.example", "Access-Control-Request-Method": "POST"}, 403, api.TypeForbidden, func(r reply) error {
			if r.hdr.Get("Access-Control-Allow-Origin") != "" {
				return errorf("CORS allowed for another origin")
			}
			return nil
		}},

		// Routes, methods and states.
		{"unknown route", "GET", "/v1/admin", f.keyA, nil, nil, 404, api.TypeNotFound, nil},
		{"wrong method", "DELETE", "/v1/applications/" + f.appA, f.keyA, nil, nil, 405, api.TypeMethodNotAllowed, nil},
		{"withdraw a closed application", "POST", "/v1/applications/" + f.closedApp + "/withdraw", f.keyA, nil, nil, 409, api.TypeConflict, nil},
		{"correction without changes", "POST", "/v1/certificates/" + f.serialA + "/corrections", f.keyA, map[string]any{"changes": map[string]string{}, "reason": "moved"}, nil, 422, api.TypeValidation, fieldErr("changes")},
		{"SQL as correction field", "POST", "/v1/certificates/" + f.serialA + "/corrections", f.keyA, map[string]any{"changes": map[string]string{"phone'; --": "1"}}, nil, 422, api.TypeValidation, fieldErr("changes")},
		{"correction of an unknown serial", "POST", "/v1/certificates/abcdef0123/corrections", f.keyA, map[string]any{"changes": map[string]string{"phone": "+81 3 1111 2222"}}, nil, 404, api.TypeNotFound, nil},
		{"disclosure without email", "POST", "/v1/disclosure-requests", "", map[string]string{"name": "x", "phone": "0312345678"}, nil, 422, api.TypeValidation, fieldErr("email")},
		{"disclosure, SQL in email", "POST", "/v1/disclosure-requests", "", map[string]string{"name": "x", "phone": "0312345678", "email": "x@example.jp' OR 1=1--"}, nil, 422, api.TypeValidation, fieldErr("email")},
		{"paper disclosure without address", "POST", "/v1/disclosure-requests", "", map[string]string{"name": "x", "phone": "0312345678", "email": "x@example.jp", "delivery": "paper"}, nil, 422, api.TypeValidation, fieldErr("postal_address")},
		{"disclosure by carrier pigeon", "POST", "/v1/disclosure-requests", "", map[string]string{"name": "x", "phone": "0312345678", "email": "x@example.jp", "delivery": "pigeon"}, nil, 422, api.TypeValidation, fieldErr("delivery")},
		{"disclosure by email alone", "POST", "/v1/disclosure-requests", "", map[string]string{"name": "x", "email": "x@example.jp"}, nil, 422, api.TypeValidation, fieldErr("phone")},
		{"unknown disclosure link", "GET", "/v1/disclosures/" + strings.Repeat("A", 43), "", nil, nil, 404, api.TypeNotFound, nil},
		{"traversal in disclosure link", "GET", "/v1/disclosures/" + url.PathEscape("../../etc/passwd"), "", nil, nil, 404, api.TypeNotFound, nil},
	}

	before := s.counts()
	for _, c := range cases {
		r := s.do(c.method, c.path, c.key, c.body, c.hdr)
		ok := r.code == c.code && r.problemType() == c.typ
		if ok && c.check != nil {
			if err := c.check(r); err != nil {
				t.Errorf("%s: %v", c.name, err)
				continue
			}
		}
		if !ok {
			body := r.body
			if len(body) > 300 {
				body = body[:300]
			}
			t.Errorf("%s: %s %s → %d %q %s; want %d %q", c.name, c.method, c.path, r.code, r.problemType(), body, c.code, c.typ)
		}
		if c.typ != "" && r.hdr.Get("X-Request-Id") == "" {
			t.Errorf("%s: no X-Request-Id", c.name)
		}
	}
	time.Sleep(time.Second) // let anything wrongly started show in visibility
	after := s.counts()
	if !reflect.DeepEqual(before, after) {
		t.Fatalf("hostile requests wrote something:\nbefore %v\nafter  %v", before, after)
	}
	t.Logf("%d hostile requests, row counts unchanged over %d tables and Temporal", len(cases), len(before)-1)
}

func wwwAuth(r reply) error {
	if !strings.HasPrefix(r.hdr.Get("WWW-Authenticate"), "Bearer") {
		return errorf("no WWW-Authenticate: Bearer")
	}
	return nil
}

// fieldErr checks the problem lists field among its errors.
func fieldErr(field string) func(reply) error {
	return func(r reply) error {
		var p api.Problem
		if err := json.Unmarshal(r.body, &p); err != nil {
			return err
		}
		for _, e := range p.Errors {
			if e.Field == field {
				return nil
			}
		}
		return errorf("no error for field %s in %s", field, r.body)
	}
}

func problemCode(code string) func(reply) error {
	return func(r reply) error {
		var p map[string]any
		_ = json.Unmarshal(r.body, &p)
		if p["code"] != code {
			return errorf("code %v, want %s", p["code"], code)
		}
		return nil
	}
}

func ocspBody(want []byte) func(reply) error {
	return func(r reply) error {
		if r.hdr.Get("Content-Type") != "application/ocsp-response" || !bytes.Equal(r.body, want) {
			return errorf("OCSP answer %x (%s), want %x", r.body, r.hdr.Get("Content-Type"), want)
		}
		return nil
	}
}

func errorf(format string, args ...any) error { return fmt.Errorf(format, args...) }
