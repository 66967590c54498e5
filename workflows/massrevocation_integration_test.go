//go:build integration

package workflows

import (
	"context"
	"crypto/x509"
	"fmt"
	"math/big"
	"os"
	"strconv"
	"testing"
	"time"

	"go.temporal.io/sdk/client"

	"certdesk/activities"
	"certdesk/internal/product"
	"certdesk/internal/store"
)

// massRevoke seeds n certificates under the stack's TLS issuer, revokes them
// all with a MassRevocation workflow, and checks from PostgreSQL that every
// one is revoked and listed in the CRL shard it belongs to.
func massRevoke(tb testing.TB, s *stack, n int) (time.Duration, MassProgress) {
	return massRevokeNotify(tb, s, n, false)
}

func massRevokeNotify(tb testing.TB, s *stack, n int, notifyAll bool) (time.Duration, MassProgress) {
	tb.Helper()
	ctx := context.Background()
	issuer, err := s.sign.CA.IssuerFor(product.ServerDV)
	if err != nil {
		tb.Fatal(err)
	}
	if err := s.store.CreateReseller(ctx, store.Reseller{ID: "rs_mass", Name: "Mass", APIKeyHash: fixedHash, APIKeyPrefix: "cdk_m"}); err != nil {
		tb.Fatal(err)
	}
	if err := s.store.SeedCertificates(ctx, store.SeedSpec{N: n, Issuer: issuer.ID(), Shards: issuer.CRLShards(), SerialBase: 0x1000000000000000,
		ResellerID: "rs_mass", NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(90 * 24 * time.Hour)}); err != nil {
		tb.Fatal(err)
	}
	incident := "inc-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	dry := false
	start := time.Now()
	run, err := s.tc.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: MassRevocationWorkflowID(incident), TaskQueue: TaskQueue}, MassRevocation,
		MassRevocationInput{Incident: incident, Selector: activities.Selector{Issuer: issuer.ID()}, Reason: "cessationOfOperation", DryRun: &dry, BatchSize: 5000, Notify: notifyAll})
	if err != nil {
		tb.Fatal(err)
	}
	var p MassProgress
	if err := run.Get(ctx, &p); err != nil {
		tb.Fatal(err)
	}
	took := time.Since(start)
	recordHistory(tb, s.tc, MassRevocationWorkflowID(incident), "massrevocation-real")
	if p.Status != MassDone || p.Revoked != int64(n) {
		tb.Fatalf("progress %+v", p)
	}

	var revoked int
	if err := s.store.DB().Get(&revoked, `SELECT count(*) FROM certificates WHERE status = 'revoked' AND issuer = $1`, issuer.ID()); err != nil || revoked != n {
		tb.Fatalf("%d revoked in the database (err %v), want %d", revoked, err, n)
	}
	listed := 0
	for shard := 0; shard < issuer.CRLShards(); shard++ {
		c, err := s.store.LatestCRL(ctx, issuer.ID(), shard)
		if err != nil {
			tb.Fatal(err)
		}
		rl, err := x509.ParseRevocationList(c.DER)
		if err != nil {
			tb.Fatal(err)
		}
		if err := rl.CheckSignatureFrom(issuer.Certificate()); err != nil {
			tb.Fatalf("shard %d: %v", shard, err)
		}
		for _, e := range rl.RevokedCertificateEntries {
			if new(big.Int).Mod(e.SerialNumber, big.NewInt(int64(issuer.CRLShards()))).Int64() != int64(shard) {
				tb.Fatalf("serial %x listed in shard %d", e.SerialNumber, shard)
			}
		}
		listed += len(rl.RevokedCertificateEntries)
	}
	if listed != n {
		tb.Fatalf("%d entries in the CRL shards, want %d", listed, n)
	}
	return took, p
}

const fixedHash = "00000000000000000000000000000000000000000000000000000000000000ab"

// TestMassRevocationNoticesOnStack: with notify on, every revoked
// certificate's subscriber gets revocation_done once, through the bulk sender.
func TestMassRevocationNoticesOnStack(t *testing.T) {
	s := newStack(t, nil)
	_, p := massRevokeNotify(t, s, 120, true)
	if p.Notified != 120 {
		t.Fatalf("progress %+v", p)
	}
	// Seeded certificates share one subscriber address.
	addr := fmt.Sprintf("sub_seed_%x@seed.invalid", int64(0x1000000000000000))
	got := s.mail.WaitFor(t, addr, 120, 60*time.Second)
	ids := map[string]bool{}
	for _, m := range got {
		ids[m.ID] = true
	}
	if len(got) != 120 || len(ids) != 120 {
		t.Fatalf("%d notices (%d distinct), want 120", len(got), len(ids))
	}
}

func TestMassRevocation100kOnStack(t *testing.T) {
	s := newStack(t, nil)
	took, p := massRevoke(t, s, 100_000)
	t.Logf("mass revocation of 100,000 certificates incl. CRL publication: %s (%.0f/s), %d batches, %d CRL publications, %d runs",
		took.Round(time.Millisecond), 100_000/took.Seconds(), p.Batches, p.CRLs, p.Runs)
}

// BenchmarkMassRevocation reports certificates revoked per second, CRL
// publication included (make bench; MASS_N overrides the size).
func BenchmarkMassRevocation(b *testing.B) {
	n := 100_000
	if v, err := strconv.Atoi(os.Getenv("MASS_N")); err == nil && v > 0 {
		n = v
	}
	for i := 0; i < b.N; i++ {
		s := newStack(b, nil)
		took, _ := massRevoke(b, s, n)
		b.ReportMetric(float64(n)/took.Seconds(), "certs/s")
		b.ReportMetric(took.Seconds(), "s/run")
	}
}
