//go:build integration

package workflows

import (
	"context"
	"strconv"
	"testing"
	"time"

	"go.temporal.io/sdk/client"

	"certdesk/activities"
	"certdesk/internal/product"
	"certdesk/internal/store"
)

// TestMassRevocationARIOnStack: on the real stack (PostgreSQL, Temporal),
// a mass revocation with dry run off first moves the ARI renewal window of
// the selected ACME certificates to [now, now+1h] while they are still
// valid; during the renewal grace its progress query counts the ACME
// renewals (orders whose replaces names a selected certificate), and the
// final progress counts the renewals made during the grace too. Every
// window was set before the certificate was revoked.
func TestMassRevocationARIOnStack(t *testing.T) {
	s := newStack(t, nil)
	ctx := context.Background()
	db := s.store.DB()
	issuer, err := s.sign.CA.IssuerFor(product.ServerDV)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.store.CreateReseller(ctx, store.Reseller{ID: "rs_ari", Name: "ARI", APIKeyHash: fixedHash, APIKeyPrefix: "cdk_a"}); err != nil {
		t.Fatal(err)
	}
	if err := s.store.SeedCertificates(ctx, store.SeedSpec{N: 30, Issuer: issuer.ID(), Shards: issuer.CRLShards(), SerialBase: 0x2000000000000000,
		ResellerID: "rs_ari", NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(90 * 24 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	refs, err := s.store.SelectCertificates(ctx, store.Selector{Issuer: issuer.ID()}, "", 100)
	if err != nil || len(refs) != 30 {
		t.Fatalf("%d seeded certificates, %v", len(refs), err)
	}
	// Two of them were issued through ACME, to one account.
	acmeA, acmeB := refs[3].Serial, refs[17].Serial
	mustExec := func(q string, args ...any) {
		t.Helper()
		if _, err := db.ExecContext(ctx, q, args...); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	mustExec(`INSERT INTO acme_eab_credentials (kid, reseller_id, hmac_key_enc) VALUES ('eab_ari', 'rs_ari', '\x00')`)
	mustExec(`INSERT INTO acme_accounts (id, thumbprint, jwk, status, reseller_id, eab_kid) VALUES ('acct_ari', 'tp-ari', '{}', 'valid', 'rs_ari', 'eab_ari')`)
	order := func(id, serial, replaces string) {
		t.Helper()
		mustExec(`INSERT INTO acme_orders (id, account_id, status, profile, identifiers, expires_at, cert_serial, replaces)
			VALUES ($1, 'acct_ari', 'valid', 'server-dv', '[{"type":"dns","value":"ari.example.test"}]', now() + interval '7 days', $2, $3)`,
			id, serial, replaces)
	}
	order("ord_a", acmeA, "")
	order("ord_b", acmeB, "")
	order("ord_a2", "3000000000000001", acmeA) // acmeA renewed before the incident

	incident := "inc-ari-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	id := MassRevocationWorkflowID(incident)
	dry := false
	started := time.Now().Add(-time.Second)
	run, err := s.tc.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: TaskQueue}, MassRevocation,
		MassRevocationInput{Incident: incident, Selector: activities.Selector{Issuer: issuer.ID()}, Reason: "superseded",
			DryRun: &dry, BatchSize: 7, RenewalGraceSeconds: 8})
	if err != nil {
		t.Fatal(err)
	}
	p := waitStatus(t, s.tc, id, func(p MassProgress) bool { return p.Status == MassRenewalGrace && p.Renewed > 0 })
	if !p.ARI || p.RenewalWindows != 2 || p.Renewed != 1 || p.Revoked != 0 {
		t.Fatalf("progress during the grace %+v", p)
	}
	for _, serial := range []string{acmeA, acmeB} {
		start, end, ok, err := s.store.RenewalWindow(ctx, serial)
		if err != nil || !ok || start.Before(started) || start.After(time.Now()) || end.Sub(start) != store.UrgentRenewalWindow {
			t.Fatalf("ARI window of %s during the grace: %v–%v ok=%v err=%v (started %v)", serial, start, end, ok, err, started)
		}
		var status string
		if err := db.GetContext(ctx, &status, `SELECT status FROM certificates WHERE serial = $1`, serial); err != nil || status != "valid" {
			t.Fatalf("%s is %q (%v) before the grace ends", serial, status, err)
		}
	}
	if _, _, ok, _ := s.store.RenewalWindow(ctx, refs[0].Serial); ok {
		t.Fatal("a certificate not issued through ACME got an ARI window")
	}
	// acmeB's client renews during the grace.
	order("ord_b2", "3000000000000002", acmeB)

	if err := run.Get(ctx, &p); err != nil {
		t.Fatal(err)
	}
	recordHistory(t, s.tc, id, "massrevocation-ari")
	if p.Status != MassDone || p.Revoked != 30 || p.RenewalWindows != 2 || p.Renewed != 2 {
		t.Fatalf("final progress %+v", p)
	}
	var late int
	if err := db.GetContext(ctx, &late, `SELECT count(*) FROM acme_renewal_windows w JOIN revocations r ON r.serial = w.serial
		WHERE w.serial = ANY($1) AND r.revoked_at IS NOT NULL AND r.revoked_at >= date_trunc('second', w.set_at) + interval '8 seconds'`,
		"{"+acmeA+","+acmeB+"}"); err != nil || late != 2 {
		t.Fatalf("%d of 2 ACME certificates revoked at least the grace after their window moved (%v)", late, err)
	}
}
