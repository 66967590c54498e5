//go:build integration

package main

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"certdesk/internal/pii"
	"certdesk/internal/store"
	"certdesk/internal/testenv"
	"certdesk/starter/httpapi"
)

// TestResellerCommand runs `starter reseller add`, `rotate-key` and
// `disable` on a real database and checks each printed key against the
// HTTP API's authentication: the added key authenticates, the rotated-away
// one no longer does, and a disabled reseller's key is refused.
func TestResellerCommand(t *testing.T) {
	pool, _ := testenv.NewDatabase(t)
	k1, _ := pii.GenerateKey()
	ring, err := pii.ParseKeyRing("k1:" + k1)
	if err != nil {
		t.Fatal(err)
	}
	st := store.New(pool, ring, nil)
	api, err := httpapi.New(httpapi.Deps{DB: pool, Store: st})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(api.Handler())
	defer ts.Close()
	ctx := context.Background()

	// status of a reseller-only read: 404 (authenticated, no such
	// certificate) or 401.
	status := func(key string) int {
		t.Helper()
		req, _ := http.NewRequest("GET", ts.URL+"/v1/certificates/abcdef", nil)
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	run := func(args ...string) string {
		t.Helper()
		var out bytes.Buffer
		if err := resellerAdmin(ctx, st, args, &out); err != nil {
			t.Fatalf("reseller %v: %v", args, err)
		}
		return out.String()
	}
	lastLine := func(s string) string {
		lines := strings.Split(strings.TrimSpace(s), "\n")
		return lines[len(lines)-1]
	}

	out := run("add", "--name", "Acme", "--contact-email", "ops@acme.test")
	m := regexp.MustCompile(`reseller (rs_[0-9a-f]{16}) \(Acme\) created`).FindStringSubmatch(out)
	key := lastLine(out)
	if m == nil || !strings.HasPrefix(key, "cdk_") {
		t.Fatalf("reseller add printed %q", out)
	}
	id := m[1]
	if got := status(key); got != http.StatusNotFound {
		t.Fatalf("the new key: %d, want 404 (authenticated)", got)
	}
	if got := status(key + "x"); got != http.StatusUnauthorized {
		t.Fatalf("a wrong key: %d, want 401", got)
	}
	rs, err := st.GetReseller(ctx, id)
	if err != nil || rs.APIKeyHash != store.HashAPIKey(key) || rs.ContactEmail != "ops@acme.test" {
		t.Fatalf("stored reseller %+v (%v)", rs, err)
	}

	newKey := lastLine(run("rotate-key", "--id", id))
	if newKey == key || !strings.HasPrefix(newKey, "cdk_") {
		t.Fatalf("rotate-key printed %q", newKey)
	}
	if status(key) != http.StatusUnauthorized || status(newKey) != http.StatusNotFound {
		t.Fatalf("after rotation: old key %d, new key %d", status(key), status(newKey))
	}

	run("disable", "--id", id)
	if got := status(newKey); got != http.StatusUnauthorized {
		t.Fatalf("a disabled reseller's key: %d, want 401", got)
	}

	for _, args := range [][]string{{"add"}, {"rotate-key"}, {"disable"}, {"promote", "--id", id}} {
		if err := resellerAdmin(ctx, st, args, &bytes.Buffer{}); err == nil {
			t.Errorf("reseller %v: no error", args)
		}
	}
}
