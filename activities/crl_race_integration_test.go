//go:build integration

package activities

import (
	"context"
	"crypto/x509"
	"testing"
	"time"

	"certdesk/internal/store"
	"certdesk/internal/testenv"
)

// TestCRLPublishersOverlap: the daily schedule and a mass revocation may
// publish the same shard at once. A publisher that read the shard's entries
// before a mass revocation's last pages but finished after the mass
// revocation's own publication must not replace the complete CRL with its
// stale one (it did when the CRLNumber was drawn after the read: a bench
// run then found 12,021 of 20,000 revoked certificates in the CRLs).
func TestCRLPublishersOverlap(t *testing.T) {
	a := newActs(t, &testenv.MailDev{SMTPPort: 1})
	ctx := context.Background()
	sa := newTestSigning(t, a)
	iss, _ := sa.CA.IssuerFor("server-dv")
	if err := a.Store.CreateReseller(ctx, store.Reseller{ID: "rs_mass", Name: "Mass", APIKeyHash: "00000000000000000000000000000000000000000000000000000000000000ab", APIKeyPrefix: "cdk_m"}); err != nil {
		t.Fatal(err)
	}
	// 64 certificates, all in shard 0 of a single-shard view: serials
	// base + 16k land in shard 0 of 16.
	const n = 64
	nb := time.Now().Add(-time.Hour)
	if err := a.Store.SeedCertificates(ctx, store.SeedSpec{N: n * iss.CRLShards(), Issuer: iss.ID(), Shards: iss.CRLShards(), SerialBase: 0x1000000000000000,
		ResellerID: "rs_mass", NotBefore: nb, NotAfter: nb.Add(90 * 24 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	sel := Selector{Issuer: iss.ID(), ResellerID: "rs_mass"}
	revoke := func(after string, limit int) string {
		r, err := a.RevokeBatch(ctx, RevokeBatchInput{Selector: sel, After: after, Limit: limit, ReasonCode: 5, WorkflowID: "mass-revocation/race", RequestedBy: "t"})
		if err != nil {
			t.Fatal(err)
		}
		return r.Last
	}
	shard := ShardRef{Issuer: iss.ID(), Shard: 0}
	cursor := revoke("", n*iss.CRLShards()/2) // half revoked

	// The slow publisher reads the shard now and stops there.
	listed, release, done := make(chan struct{}), make(chan struct{}), make(chan error)
	crlListed = func(sh ShardRef) {
		crlListed = nil
		close(listed)
		<-release
	}
	defer func() { crlListed = nil }()
	go func() { done <- sa.publishCRL(ctx, shard) }()
	<-listed
	// The mass revocation finishes and publishes.
	revoke(cursor, n*iss.CRLShards())
	if err := sa.publishCRL(ctx, shard); err != nil {
		t.Fatal(err)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	c, err := a.Store.LatestCRL(ctx, iss.ID(), 0)
	if err != nil {
		t.Fatal(err)
	}
	rl, err := x509.ParseRevocationList(c.DER)
	if err != nil {
		t.Fatal(err)
	}
	if len(rl.RevokedCertificateEntries) != n {
		t.Fatalf("published CRL of shard 0 (number %d) lists %d certificates, want all %d revoked", c.Number, len(rl.RevokedCertificateEntries), n)
	}
}
