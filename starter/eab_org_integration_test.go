//go:build integration

package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"certdesk/internal/pii"
	"certdesk/internal/store"
	"certdesk/internal/store/storetest"
	"certdesk/internal/testenv"
)

// TestResellerEABOrganizationFrom: `starter reseller eab
// --organization-from app_…` binds the credentials to the reseller's
// verified organisation; without server-ov in --product, or naming an
// application that verified nothing, it fails and writes nothing.
func TestResellerEABOrganizationFrom(t *testing.T) {
	pool, _ := testenv.NewDatabase(t)
	k1, _ := pii.GenerateKey()
	ring, err := pii.ParseKeyRing("k1:" + k1)
	if err != nil {
		t.Fatal(err)
	}
	bk, _ := pii.GenerateKey()
	bidx, err := pii.ParseBlindIndexKey(bk)
	if err != nil {
		t.Fatal(err)
	}
	st := store.New(pool, ring, bidx)
	ctx := context.Background()
	run := func(args ...string) (string, error) {
		var out bytes.Buffer
		err := resellerAdmin(ctx, st, args, &out)
		return out.String(), err
	}
	if _, err := run("add", "--name", "Org", "--id", "rs_eaborg"); err != nil {
		t.Fatal(err)
	}
	if _, err := storetest.VerifiedOV(ctx, st, "rs_eaborg", "app_eaborg"); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"eab", "--id", "rs_eaborg", "--product", "server-dv", "--organization-from", "app_eaborg"},
		{"eab", "--id", "rs_eaborg", "--product", "server-ov", "--organization-from", "app_missing"},
	} {
		if out, err := run(args...); err == nil || !strings.Contains(err.Error(), "organization-from") {
			t.Errorf("%v: %v %q, want refused", args, err, out)
		}
	}
	var n int
	_ = pool.Get(&n, `SELECT count(*) FROM acme_eab_credentials`)
	if n != 0 {
		t.Fatalf("refused commands wrote %d credentials", n)
	}
	out, err := run("eab", "--id", "rs_eaborg", "--product", "server-ov", "--organization-from", "app_eaborg")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	kid, ok := strings.CutPrefix(lines[len(lines)-2], "kid=")
	if !ok || !strings.HasPrefix(lines[len(lines)-1], "hmac=") || !strings.Contains(out, "app_eaborg") {
		t.Fatalf("printed %q", out)
	}
	org, err := st.EABOrganization(ctx, kid)
	if err != nil || org.ApplicationID != "app_eaborg" || org.Organization != storetest.Organization.Organization[0] {
		t.Fatalf("bound organisation %+v (%v)", org, err)
	}
}
