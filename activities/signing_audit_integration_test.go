//go:build integration

package activities

import (
	"context"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/testsuite"

	"certdesk/internal/disclosure"
	"certdesk/internal/store"
	"certdesk/internal/testenv"
)

// TestSigningOperationsAudited (issue 17): CRL, OCSP and disclosure
// package signatures and each mass-revocation page are in the audit chain
// with their actor, and a retried page or package signing is one event.
func TestSigningOperationsAudited(t *testing.T) {
	a := newActs(t, &testenv.MailDev{SMTPPort: 1})
	ctx := context.Background()
	sa := newTestSigning(t, a)
	iss, _ := sa.CA.IssuerFor("server-dv")
	if err := a.Store.CreateReseller(ctx, store.Reseller{ID: "rs_aud", Name: "Aud", APIKeyHash: "00000000000000000000000000000000000000000000000000000000000000ac", APIKeyPrefix: "cdk_a"}); err != nil {
		t.Fatal(err)
	}
	if err := a.Store.SeedCertificates(ctx, store.SeedSpec{N: 20, Issuer: iss.ID(), Shards: iss.CRLShards(), SerialBase: 0x2000000000000000,
		ResellerID: "rs_aud", NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(90 * 24 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	type event struct {
		Seq       int64  `db:"seq"`
		Actor     string `db:"actor"`
		Action    string `db:"action"`
		ObjectRef string `db:"object_ref"`
		Details   []byte `db:"details"`
	}
	events := func(action string) []event {
		t.Helper()
		var out []event
		if err := a.Store.DB().Select(&out, `SELECT seq, actor, action, object_ref, details FROM audit_events WHERE action = $1 ORDER BY seq`, action); err != nil {
			t.Fatal(err)
		}
		return out
	}
	env := (&testsuite.WorkflowTestSuite{}).NewTestActivityEnvironment()
	env.RegisterActivity(sa)

	// A mass-revocation page, retried: one event, by the case.
	sel := Selector{Issuer: iss.ID(), ResellerID: "rs_aud"}
	in := RevokeBatchInput{Selector: sel, Limit: 50, ReasonCode: 5, WorkflowID: "mass-revocation/aud", RequestedBy: "mass-revocation:aud"}
	var page RevokeBatchResult
	for range 2 {
		r, err := a.RevokeBatch(ctx, in)
		if err != nil || r.Count != 20 {
			t.Fatalf("revoke page: %+v %v", r, err)
		}
		page = r
	}
	if ev := events("mass_revocation.page"); len(ev) != 1 || ev[0].Actor != "workflow:mass-revocation/aud" || ev[0].ObjectRef != "case:mass-revocation/aud" {
		t.Fatalf("page events %+v", ev)
	}

	// The page's OCSP answers: one batch event with the count.
	if _, err := env.ExecuteActivity(sa.SignRevokedOCSP, SignRevokedOCSPInput{Selector: sel, Through: page.Last}); err != nil {
		t.Fatal(err)
	}
	if ev := events(AuditOCSPSigned); len(ev) != 1 || ev[0].Actor != "workflow:default-test-workflow-id" ||
		!jsonHas(ev[0].Details, `"count":20`) {
		t.Fatalf("OCSP events %+v", ev)
	}

	// Every CRL signed: one event per shard, with its number.
	var shards []ShardRef
	for i := 0; i < iss.CRLShards(); i++ {
		shards = append(shards, ShardRef{Issuer: iss.ID(), Shard: i})
	}
	if _, err := env.ExecuteActivity(sa.PublishCRLs, PublishCRLsInput{Shards: shards}); err != nil {
		t.Fatal(err)
	}
	if ev := events(AuditCRLSigned); len(ev) != len(shards) || !jsonHas(ev[0].Details, `"number":`) {
		t.Fatalf("CRL events %+v, want %d", ev, len(shards))
	}

	// A disclosure package, its signing retried: one event.
	if err := a.Store.CreateDisclosureRequest(ctx, store.DisclosureRequest{ID: "dr_aud", Email: "aud@example.jp", DueAt: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	digest, err := a.Store.SaveDisclosureDraft(ctx, "dr_aud", []byte(`{"format":"`+disclosure.Format+`"}`), []byte("<p>x</p>"))
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := env.ExecuteActivity(sa.SignDisclosurePackage, SignDisclosureInput{RequestID: "dr_aud", PackageID: "dp_dr_aud", SHA256: digest}); err != nil {
			t.Fatal(err)
		}
	}
	if ev := events(AuditDisclosureSigned); len(ev) != 1 || ev[0].ObjectRef != "disclosure:dr_aud" || !jsonHas(ev[0].Details, digest) {
		t.Fatalf("disclosure events %+v", ev)
	}
	// The chain still verifies with the new events in it.
	if broken, ok, err := a.Store.VerifyAudit(ctx); err != nil || !ok {
		t.Fatalf("audit chain broken at %d (%v)", broken, err)
	}
}

// jsonHas looks for s in JSON details as stored (jsonb: spaces after colons).
func jsonHas(b []byte, s string) bool {
	return strings.Contains(strings.ReplaceAll(string(b), " ", ""), s)
}
