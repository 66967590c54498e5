//go:build integration

package activities

import (
	"context"
	"encoding/hex"
	"slices"
	"testing"
	"time"

	"certdesk/internal/store"
	"certdesk/internal/testenv"
)

// TestBlockKeyReachesEveryReseller: blocking a compromised key returns the
// certificates of other resellers with it, including one revoked earlier for
// a weaker reason (its reason must rise to keyCompromise, BR §7.2.2).
func TestBlockKeyReachesEveryReseller(t *testing.T) {
	a := newActs(t, &testenv.MailDev{SMTPPort: 1})
	ctx := context.Background()
	nb := time.Now().Add(-time.Hour)
	for i, rs := range []string{"rs_ka", "rs_kb"} {
		if err := a.Store.CreateReseller(ctx, store.Reseller{ID: rs, Name: rs, APIKeyHash: "00000000000000000000000000000000000000000000000000000000000000a" + string(rune('0'+i)), APIKeyPrefix: "cdk_" + rs}); err != nil {
			t.Fatal(err)
		}
		if err := a.Store.SeedCertificates(ctx, store.SeedSpec{N: 1 + i, Issuer: "tls-test", Shards: 1, SerialBase: int64(0x2000000000000000 + i*0x100),
			ResellerID: rs, NotBefore: nb, NotAfter: nb.Add(90 * 24 * time.Hour)}); err != nil {
			t.Fatal(err)
		}
	}
	reported, validB, supersededB := "2000000000000000", "2000000000000100", "2000000000000101"
	// One key for all three.
	if _, err := a.Store.DB().Exec(`UPDATE certificates SET spki_sha256 = (SELECT spki_sha256 FROM certificates WHERE serial = $1)`, reported); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Store.RevokeBatch(ctx, []string{supersededB}, store.RevokeBatch{ReasonCode: store.ReasonSuperseded, RequestedByKind: "reseller",
		RequestedByRef: "rs_kb", RevokedAt: time.Now().Truncate(time.Second)}); err != nil {
		t.Fatal(err)
	}
	var key []byte
	if err := a.Store.DB().Get(&key, `SELECT spki_sha256 FROM certificates WHERE serial = $1`, reported); err != nil {
		t.Fatal(err)
	}
	in := BlockKeyInput{SPKISHA256: hex.EncodeToString(key), Serial: reported, Reason: "keyCompromise"}
	for range 2 { // idempotent
		got, err := a.BlockKey(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(got)
		if !slices.Equal(got, []string{validB, supersededB}) {
			t.Fatalf("siblings %v, want %s (valid, other reseller) and %s (revoked as superseded, to upgrade)", got, validB, supersededB)
		}
	}
	if _, ok, err := a.Store.IsKeyBlocked(ctx, key); err != nil || !ok {
		t.Fatalf("key not blocked: %v", err)
	}
}
