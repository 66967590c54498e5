//go:build integration

package activities

import (
	"context"
	"testing"
	"time"

	"go.temporal.io/sdk/testsuite"

	"certdesk/internal/store"
	"certdesk/internal/testenv"
)

// TestRenewalWindowActivities: SetRenewalWindows moves the ARI window of
// the selected ACME certificates only, page by page, and a retry resumes
// after the heartbeated page without touching the pages before it;
// CountRenewed counts the selected certificates a valid ACME order
// replaced, revoked ones included, and resumes the same way.
func TestRenewalWindowActivities(t *testing.T) {
	a := newActs(t, &testenv.MailDev{SMTPPort: 1})
	ctx := context.Background()
	db := a.Store.DB()
	if err := a.Store.CreateReseller(ctx, store.Reseller{ID: "rs_ari", Name: "ARI", APIKeyHash: "00000000000000000000000000000000000000000000000000000000000000ab", APIKeyPrefix: "cdk_a"}); err != nil {
		t.Fatal(err)
	}
	if err := a.Store.SeedCertificates(ctx, store.SeedSpec{N: 25, Issuer: "tls-ari", Shards: 4, SerialBase: 0x2000000000000000,
		ResellerID: "rs_ari", NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(90 * 24 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	refs, err := a.Store.SelectCertificates(ctx, store.Selector{Issuer: "tls-ari"}, "", 100)
	if err != nil || len(refs) != 25 {
		t.Fatalf("%d seeded, %v", len(refs), err)
	}
	s := func(i int) string { return refs[i].Serial }
	exec := func(q string, args ...any) {
		t.Helper()
		if _, err := db.ExecContext(ctx, q, args...); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	exec(`INSERT INTO acme_eab_credentials (kid, reseller_id, hmac_key_enc) VALUES ('eab_ari', 'rs_ari', '\x00')`)
	exec(`INSERT INTO acme_accounts (id, thumbprint, jwk, status, reseller_id, eab_kid) VALUES ('acct_ari', 'tp', '{}', 'valid', 'rs_ari', 'eab_ari')`)
	order := func(id, serial, replaces, status string) {
		t.Helper()
		exec(`INSERT INTO acme_orders (id, account_id, status, profile, identifiers, expires_at, cert_serial, replaces)
			VALUES ($1, 'acct_ari', $4, 'server-dv', '[]', now() + interval '1 day', $2, $3)`, id, serial, replaces, status)
	}
	for i, n := range []int{2, 11, 20} {
		order("ord_"+string(rune('a'+i)), s(n), "", "valid")
	}
	order("ord_r1", "3000000000000001", s(2), "valid")
	order("ord_r2", "3000000000000002", s(20), "valid")
	order("ord_r3", "", s(11), "invalid") // a failed renewal does not count

	sel := Selector{Issuer: "tls-ari"}
	var env testsuite.WorkflowTestSuite
	run := func(fn any, beat any, out any) {
		t.Helper()
		e := env.NewTestActivityEnvironment()
		e.RegisterActivity(a)
		if beat != nil {
			e.SetHeartbeatDetails(beat)
		}
		v, err := e.ExecuteActivity(fn, RenewalWindowsInput{Selector: sel, Limit: 5})
		if err != nil {
			t.Fatal(err)
		}
		if err := v.Get(out); err != nil {
			t.Fatal(err)
		}
	}
	setAt := func(serial string) time.Time {
		t.Helper()
		var at time.Time
		if err := db.GetContext(ctx, &at, `SELECT set_at FROM acme_renewal_windows WHERE serial = $1`, serial); err != nil {
			t.Fatalf("window of %s: %v", serial, err)
		}
		return at
	}

	before := time.Now().Add(-time.Second)
	var r RenewalWindowsResult
	run(a.SetRenewalWindows, nil, &r)
	if r.Selected != 25 || r.Windows != 3 {
		t.Fatalf("SetRenewalWindows %+v, want 25 selected, 3 windows", r)
	}
	var windows int
	_ = db.GetContext(ctx, &windows, `SELECT count(*) FROM acme_renewal_windows`)
	for _, n := range []int{2, 11, 20} {
		start, end, ok, err := a.Store.RenewalWindow(ctx, s(n))
		if err != nil || !ok || start.Before(before) || end.Sub(start) != store.UrgentRenewalWindow {
			t.Fatalf("window of %s: %v–%v %v %v", s(n), start, end, ok, err)
		}
	}
	if windows != 3 {
		t.Fatalf("%d windows, want 3 (only ACME certificates)", windows)
	}

	// A retry after the page ending at s(9) resumes there.
	first, mid := setAt(s(2)), setAt(s(11))
	time.Sleep(20 * time.Millisecond)
	run(a.SetRenewalWindows, struct {
		After string
		Res   RenewalWindowsResult
	}{s(9), RenewalWindowsResult{Selected: 10, Windows: 1}}, &r)
	if r.Selected != 25 || r.Windows != 3 {
		t.Fatalf("resumed SetRenewalWindows %+v, want 25 selected, 3 windows", r)
	}
	if !setAt(s(2)).Equal(first) || !setAt(s(11)).After(mid) {
		t.Fatalf("resumed run: window of %s set again (%v→%v) or %s not (%v→%v)", s(2), first, setAt(s(2)), s(11), mid, setAt(s(11)))
	}

	// Renewals are counted, revoked certificates included.
	if _, err := a.RevokeBatch(ctx, RevokeBatchInput{Selector: sel, Limit: 10, ReasonCode: 4, WorkflowID: "mass-revocation/ari", RequestedBy: "t"}); err != nil {
		t.Fatal(err)
	}
	var n int64
	run(a.CountRenewed, nil, &n)
	if n != 2 {
		t.Fatalf("CountRenewed %d, want 2", n)
	}
	run(a.CountRenewed, struct {
		After string
		N     int64
	}{s(15), 1}, &n)
	if n != 2 { // 1 carried (s(2)) + s(20)
		t.Fatalf("resumed CountRenewed %d, want 2", n)
	}
}
