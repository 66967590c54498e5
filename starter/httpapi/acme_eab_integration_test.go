//go:build integration

package httpapi

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"certdesk/internal/api"
	"certdesk/internal/store"
)

// TestEABCredentialsAPI: POST /v1/acme/eab makes credentials the store
// keeps sealed, scoped to the products asked for; the idempotent copy of
// the answer holds no key, yet a replay shows it while unused; bad input is
// problem+json; DELETE revokes them (another reseller's: 404) and
// deactivates the account made with them.
func TestEABCredentialsAPI(t *testing.T) {
	ctx := context.Background()
	pool, st := newTestStore(t)
	ts := httptest.NewServer(mustServer(t, Deps{DB: pool, Store: st}).Handler())
	defer ts.Close()
	keys := addResellers(t, st, "rs_eab_a", "rs_eab_b")
	type answer struct {
		code int
		hdr  http.Header
		body []byte
	}
	do := func(method, path, key, body string, hdr map[string]string) answer {
		t.Helper()
		req, _ := http.NewRequest(method, ts.URL+path, strings.NewReader(body))
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		if key != "" {
			req.Header.Set("Authorization", "Bearer "+key)
		}
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return answer{resp.StatusCode, resp.Header, b}
	}
	problemType := func(a answer) string {
		var p struct{ Type string }
		_ = json.Unmarshal(a.body, &p)
		if a.hdr.Get("Content-Type") != api.ContentType {
			return "not problem+json: " + a.hdr.Get("Content-Type")
		}
		return p.Type
	}
	keyA, keyB := keys["rs_eab_a"], keys["rs_eab_b"]

	// Bad input.
	future := time.Now().Add(48 * time.Hour).UTC().Format(time.RFC3339)
	for _, tc := range []struct {
		name, key, body string
		code            int
		typ             string
	}{
		{"no key", "", `{"products":["server-dv"]}`, 401, api.TypeUnauthorized},
		{"no products", keyA, `{}`, 422, api.TypeValidation},
		{"unknown product", keyA, `{"products":["server-ev"]}`, 422, api.TypeValidation},
		{"repeated product", keyA, `{"products":["server-dv","server-dv"]}`, 422, api.TypeValidation},
		{"expiry in the past", keyA, `{"products":["server-dv"],"expires_at":"2020-01-01T00:00:00Z"}`, 422, api.TypeValidation},
		{"expiry too far", keyA, `{"products":["server-dv"],"expires_at":"2099-01-01T00:00:00Z"}`, 422, api.TypeValidation},
		{"control characters", keyA, `{"products":["server-dv"],"reference":"a\u0007b"}`, 422, api.TypeValidation},
		{"unknown field", keyA, `{"products":["server-dv"],"hmac":"x"}`, 400, api.TypeMalformedRequest},
		{"not JSON", keyA, `products=server-dv`, 400, api.TypeMalformedRequest},
	} {
		a := do("POST", "/v1/acme/eab", tc.key, tc.body, nil)
		if a.code != tc.code || problemType(a) != tc.typ {
			t.Errorf("%s: %d %s %s", tc.name, a.code, problemType(a), a.body)
		}
	}
	var n int
	_ = pool.Get(&n, `SELECT count(*) FROM acme_eab_credentials`)
	if n != 0 {
		t.Fatalf("refused requests wrote %d credentials", n)
	}

	// Create, with an Idempotency-Key.
	body := `{"products":["server-dv","server-ov"],"reference":"cust-7","expires_at":"` + future + `"}`
	idem := map[string]string{"Idempotency-Key": "eab-" + randomID(6)}
	a1 := do("POST", "/v1/acme/eab", keyA, body, idem)
	if a1.code != 201 {
		t.Fatalf("create: %d %s", a1.code, a1.body)
	}
	var c1 eabResponse
	if err := json.Unmarshal(a1.body, &c1); err != nil {
		t.Fatal(err)
	}
	hmacKey, err := base64.RawURLEncoding.DecodeString(c1.HMAC)
	if err != nil || len(hmacKey) != 32 || !strings.HasPrefix(c1.KID, "eab_") || c1.Status != "unused" ||
		c1.Reference != "cust-7" || len(c1.Products) != 2 || c1.ExpiresAt == nil || a1.hdr.Get("Location") != "/v1/acme/eab/"+c1.KID {
		t.Fatalf("create answer %s (%v) %v", a1.body, err, a1.hdr)
	}
	stored, err := st.GetEABCredential(ctx, c1.KID)
	if err != nil || !bytes.Equal(stored.HMACKey, hmacKey) || stored.ResellerID != "rs_eab_a" || stored.Products[1] != "server-ov" {
		t.Fatalf("stored %+v (%v)", stored, err)
	}
	// Neither the credential row nor the idempotent answer holds the key.
	var leaks int
	_ = pool.Get(&leaks, `SELECT count(*) FROM idempotency_keys WHERE position($1::bytea in response_body) > 0 OR position($2::bytea in response_body) > 0`,
		[]byte(c1.HMAC), hmacKey)
	var credLeaks int
	_ = pool.Get(&credLeaks, `SELECT count(*) FROM acme_eab_credentials WHERE position($1::bytea in hmac_key_enc) > 0`, hmacKey)
	if leaks+credLeaks != 0 {
		t.Fatalf("HMAC key stored in clear: %d idempotency answers, %d credentials", leaks, credLeaks)
	}
	// The replay shows the same credentials, key included, while unused.
	a2 := do("POST", "/v1/acme/eab", keyA, body, idem)
	var c2 eabResponse
	_ = json.Unmarshal(a2.body, &c2)
	if a2.code != 201 || a2.hdr.Get("Idempotent-Replayed") != "true" || c2.KID != c1.KID || c2.HMAC != c1.HMAC {
		t.Fatalf("replay: %d %s %v", a2.code, a2.body, a2.hdr)
	}
	if a := do("POST", "/v1/acme/eab", keyA, `{"products":["server-dv"]}`, idem); a.code != 422 || problemType(a) != api.TypeIdempotencyReused {
		t.Fatalf("same key, other body: %d %s", a.code, a.body)
	}

	// The customer's client spends them: an account.
	acct, err := st.CreateACMEAccount(ctx, store.ACMEAccount{Thumbprint: "tp-eab-api", JWK: []byte(`{}`), EABKID: c1.KID})
	if err != nil {
		t.Fatal(err)
	}
	// Used: the replay no longer shows the key.
	a3 := do("POST", "/v1/acme/eab", keyA, body, idem)
	var c3 eabResponse
	_ = json.Unmarshal(a3.body, &c3)
	if a3.code != 201 || c3.HMAC != "" || c3.Status != "used" || c3.AccountID != acct.ID {
		t.Fatalf("replay after use: %d %s", a3.code, a3.body)
	}

	// Revocation: not by another reseller, not an unknown kid.
	for _, tc := range []struct{ key, kid string }{{keyB, c1.KID}, {keyA, "eab_unknown"}, {keyA, "not-a-kid"}} {
		if a := do("DELETE", "/v1/acme/eab/"+tc.kid, tc.key, "", nil); a.code != 404 || problemType(a) != api.TypeNotFound {
			t.Errorf("DELETE %s: %d %s", tc.kid, a.code, a.body)
		}
	}
	if got, _ := st.GetACMEAccount(ctx, acct.ID); got.Status != "valid" {
		t.Fatalf("account after refused revocations: %s", got.Status)
	}
	for i := 0; i < 2; i++ { // revoking again answers the same
		a := do("DELETE", "/v1/acme/eab/"+c1.KID, keyA, "", nil)
		var c eabResponse
		_ = json.Unmarshal(a.body, &c)
		if a.code != 200 || c.Status != "revoked" || c.RevokedAt == nil || c.HMAC != "" || c.AccountID != acct.ID {
			t.Fatalf("DELETE #%d: %d %s", i+1, a.code, a.body)
		}
	}
	if got, _ := st.GetACMEAccount(ctx, acct.ID); got.Status != "deactivated" {
		t.Fatalf("account after revocation: %s, want deactivated", got.Status)
	}
}

// addResellers creates resellers with the given ids and returns their API
// keys by id.
func addResellers(t *testing.T, st *store.Store, ids ...string) map[string]string {
	t.Helper()
	keys := map[string]string{}
	for _, id := range ids {
		key, prefix, err := store.GenerateAPIKey()
		if err != nil {
			t.Fatal(err)
		}
		if err := st.CreateReseller(context.Background(), store.Reseller{ID: id, Name: id, APIKeyHash: store.HashAPIKey(key), APIKeyPrefix: prefix}); err != nil {
			t.Fatal(err)
		}
		keys[id] = key
	}
	return keys
}
