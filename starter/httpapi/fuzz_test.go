package httpapi

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	_ "github.com/lib/pq"

	"certdesk/internal/api"
	"certdesk/internal/pki"
	"certdesk/internal/product"
	"certdesk/internal/store"
)

// FuzzApplicationRequest: any body of POST /v1/applications through the
// handler's own decoding (api.DecodeJSON into applicationRequest) and
// validation (validateApplication). No panic; a refusal is a 400, 422 or
// (only when the blocked-key lookup cannot run) 503 problem that marshals.
// The blocked-key lookup goes to a database that does not answer, so a
// request that passes every other check ends in that 503; the checks on an
// accepted request (known product, normalised names, true attestation) run
// only if a future validateApplication accepts without the lookup.
func FuzzApplicationRequest(f *testing.F) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
	if err != nil {
		f.Fatal(err)
	}
	csr := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))
	good := map[string]any{
		"product": "server-dv", "csr": csr, "domains": []string{"WWW.Example.JP."},
		"subscriber":  map[string]any{"name": "山田太郎", "email": "taro@example.jp", "country": "JP"},
		"attestation": map[string]any{"terms_version": "2026-01", "truthful": true},
	}
	b, _ := json.Marshal(good)
	f.Add(b)
	good["product"], good["domains"] = "client-sign", nil
	b, _ = json.Marshal(good)
	f.Add(b)
	good["product"], good["domains"], good["validity_days"] = "server-ov", []string{"*.example.jp", "a..b"}, 9999
	b, _ = json.Marshal(good)
	f.Add(b)
	f.Add([]byte(`{"product":"server-dv","domains":["x"],"domain_validation_method":"dns-txt","csr":"MIIB"}`))
	f.Add([]byte(`{"subscriber":{"name":"\u0000","email":"@"},"attestation":{"truthful":false}}`))
	f.Add([]byte(`[]`))

	pool, err := sqlx.Open("postgres", "postgres://nobody@127.0.0.1:1/none?sslmode=disable&connect_timeout=1")
	if err != nil {
		f.Fatal(err)
	}
	profiles, err := pki.NewProfileSet(pki.ProfileOptions{})
	if err != nil {
		f.Fatal(err)
	}
	s := &Server{profiles: profiles, now: time.Now, st: store.New(pool, nil, nil)}
	f.Fuzz(func(t *testing.T, body []byte) {
		var req applicationRequest
		if p := api.DecodeJSON(body, &req, false); p != nil {
			if p.Status != http.StatusBadRequest {
				t.Fatalf("decode refused with %d", p.Status)
			}
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		in, p := s.validateApplication(ctx, &req)
		if p != nil {
			switch p.Status {
			case http.StatusBadRequest, http.StatusUnprocessableEntity, http.StatusServiceUnavailable:
			default:
				t.Fatalf("validation refused with %d", p.Status)
			}
			if _, err := json.Marshal(p); err != nil {
				t.Fatal(err)
			}
			return
		}
		if !product.Valid(in.Product) || !in.Attestation.Truthful {
			t.Fatalf("accepted %+v", in)
		}
		for _, d := range in.Domains {
			if d != strings.ToLower(strings.TrimSpace(d)) || strings.HasSuffix(d, ".") {
				t.Fatalf("accepted domain %q unnormalised", d)
			}
		}
	})
}
