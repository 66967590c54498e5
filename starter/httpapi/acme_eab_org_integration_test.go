//go:build integration

package httpapi

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"certdesk/internal/api"
	"certdesk/internal/store"
	"certdesk/internal/store/storetest"
)

// TestEABOrganizationFrom: organization_from binds new EAB credentials to
// the reseller's verified organisation (issue 16, OV through ACME); a
// malformed id, one without server-ov in products, another reseller's
// application or one that verified nothing is a 422 problem+json naming
// organization_from, and nothing is written.
func TestEABOrganizationFrom(t *testing.T) {
	ctx := context.Background()
	pool, st := newTestStore(t)
	ts := httptest.NewServer(mustServer(t, Deps{DB: pool, Store: st}).Handler())
	defer ts.Close()
	keys := addResellers(t, st, "rs_org_a", "rs_org_b")
	if _, err := storetest.VerifiedOV(ctx, st, "rs_org_a", "app_org_ok"); err != nil {
		t.Fatal(err)
	}
	if _, err := storetest.VerifiedOV(ctx, st, "rs_org_b", "app_org_b"); err != nil {
		t.Fatal(err)
	}
	// A DV application proves no organisation.
	if err := st.UpsertSubscriber(ctx, store.Subscriber{ID: "sub_dv", ResellerID: "rs_org_a", Name: "n", Email: "n@example.jp"}); err != nil {
		t.Fatal(err)
	}
	if err := st.CreateApplication(ctx, store.Application{ID: "app_org_dv", ResellerID: "rs_org_a", SubscriberID: "sub_dv", Product: "server-dv",
		Domains: []string{"dv.example.jp"}, CSR: []byte("c"), SPKISHA256: make([]byte, 32), ValidityDays: 90,
		AttestationTermsVersion: "2026-01", AttestationTruthful: true, AttestedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	do := func(key, body string) (int, string, map[string]any) {
		t.Helper()
		req, _ := http.NewRequest("POST", ts.URL+"/v1/acme/eab", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var m map[string]any
		_ = json.Unmarshal(b, &m)
		return resp.StatusCode, resp.Header.Get("Content-Type"), m
	}
	for _, tc := range []struct{ name, body, code string }{
		{"malformed id", `{"products":["server-ov"],"organization_from":"app org/../x"}`, "invalid"},
		{"no server-ov", `{"products":["server-dv"],"organization_from":"app_org_ok"}`, "needs_product"},
		{"unknown application", `{"products":["server-ov"],"organization_from":"app_nope"}`, "not_found"},
		{"another reseller's", `{"products":["server-ov"],"organization_from":"app_org_b"}`, "not_found"},
		{"not verified", `{"products":["server-ov"],"organization_from":"app_org_dv"}`, "not_verified"},
	} {
		status, ct, m := do(keys["rs_org_a"], tc.body)
		errs, _ := m["errors"].([]any)
		var field, code string
		if len(errs) == 1 {
			e, _ := errs[0].(map[string]any)
			field, _ = e["field"].(string)
			code, _ = e["code"].(string)
		}
		if status != 422 || ct != api.ContentType || m["type"] != api.TypeValidation || field != "organization_from" || code != tc.code {
			t.Errorf("%s: %d %s %v", tc.name, status, ct, m)
		}
	}
	var n int
	_ = pool.Get(&n, `SELECT count(*) FROM acme_eab_credentials`)
	if n != 0 {
		t.Fatalf("refused requests wrote %d credentials", n)
	}

	status, _, m := do(keys["rs_org_a"], `{"products":["server-ov","server-dv"],"organization_from":"app_org_ok","reference":"cust-ov"}`)
	if status != 201 || m["organization_from"] != "app_org_ok" || m["hmac"] == "" {
		t.Fatalf("create: %d %v", status, m)
	}
	kid, _ := m["kid"].(string)
	org, err := st.EABOrganization(ctx, kid)
	if err != nil || org.Organization != storetest.Organization.Organization[0] || org.Locality != "Chiyoda-ku" || org.ApplicationID != "app_org_ok" {
		t.Fatalf("bound organisation %+v (%v)", org, err)
	}
}
