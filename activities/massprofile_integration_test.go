//go:build integration

package activities

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/testsuite"

	"certdesk/internal/store"
	"certdesk/internal/testenv"
)

// TestMassProfile times the pieces of a mass revocation without Temporal:
// RevokeBatch pages, SignRevokedOCSP per page, PublishCRLs of every shard,
// then the select / sign / upsert split of OCSP signing, and checks that
// every certificate ends revoked with a "revoked" OCSP answer. Skipped
// unless MASS_PROFILE_N is set, e.g.
//
//	MASS_PROFILE_N=100000 go test -tags integration -run TestMassProfile -v ./activities/
//
// (MASS_PROFILE_BATCH sets the page size, MASS_PROFILE_EXPLAIN=1 logs the
// page query's plan).
func TestMassProfile(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("MASS_PROFILE_N"))
	if n <= 0 {
		t.Skip("MASS_PROFILE_N not set")
	}
	a := newActs(t, &testenv.MailDev{SMTPPort: 1})
	ctx := context.Background()
	sa := newTestSigning(t, a)
	iss, _ := sa.CA.IssuerFor("server-dv")
	if err := a.Store.CreateReseller(ctx, store.Reseller{ID: "rs_mass", Name: "Mass", APIKeyHash: "00000000000000000000000000000000000000000000000000000000000000ab", APIKeyPrefix: "cdk_m"}); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	if err := a.Store.SeedCertificates(ctx, store.SeedSpec{N: n, Issuer: iss.ID(), Shards: iss.CRLShards(), SerialBase: 0x1000000000000000,
		ResellerID: "rs_mass", NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(90 * 24 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	t.Logf("seed %d: %s", n, time.Since(t0))
	_, _ = a.Store.DB().Exec(`VACUUM ANALYZE certificates`)
	batch, _ := strconv.Atoi(os.Getenv("MASS_PROFILE_BATCH"))
	if batch <= 0 {
		batch = 5000
	}
	sel := Selector{Issuer: iss.ID(), ResellerID: "rs_mass"}
	env := (&testsuite.WorkflowTestSuite{}).NewTestActivityEnvironment()
	env.RegisterActivity(sa)
	after := ""
	var revokeT, ocspT time.Duration
	total, signed := 0, 0
	for {
		t1 := time.Now()
		r, err := a.RevokeBatch(ctx, RevokeBatchInput{Selector: sel, After: after, Limit: batch, ReasonCode: 5, WorkflowID: "mass-revocation/prof", RequestedBy: "x"})
		if err != nil {
			t.Fatal(err)
		}
		revokeT += time.Since(t1)
		if r.Count == 0 {
			break
		}
		t1 = time.Now()
		v, err := env.ExecuteActivity(sa.SignRevokedOCSP, SignRevokedOCSPInput{Selector: sel, After: after, Through: r.Last})
		if err != nil {
			t.Fatal(err)
		}
		var k int
		_ = v.Get(&k)
		signed += k
		ocspT += time.Since(t1)
		total += r.Count
		after = r.Last
	}
	t.Logf("RevokeBatch x%d (batch %d): %s (%.0f/s)", (total+batch-1)/batch, batch, revokeT, float64(total)/revokeT.Seconds())
	t.Logf("SignRevokedOCSP %d: %s (%.0f/s)", signed, ocspT, float64(signed)/ocspT.Seconds())
	var all []ShardRef
	for i := 0; i < iss.CRLShards(); i++ {
		all = append(all, ShardRef{Issuer: iss.ID(), Shard: i})
	}
	t2 := time.Now()
	if _, err := env.ExecuteActivity(sa.PublishCRLs, PublishCRLsInput{Shards: all}); err != nil {
		t.Fatal(err)
	}
	t.Logf("PublishCRLs (%d shards): %s", len(all), time.Since(t2))
	t3 := time.Now()
	v, err := env.ExecuteActivity(sa.RefreshOCSP, RefreshOCSPInput{})
	if err != nil {
		t.Fatal(err)
	}
	var cnt int
	_ = v.Get(&cnt)
	t.Logf("RefreshOCSP afterwards: %d in %s", cnt, time.Since(t3))
	explain := func(q string, args ...any) {
		var lines []string
		if err := a.Store.DB().Select(&lines, "EXPLAIN (ANALYZE, BUFFERS) "+q, args...); err != nil {
			t.Log(err)
			return
		}
		t.Log("\n" + strings.Join(lines, "\n"))
	}
	mid := fmt.Sprintf("%x", 0x1000000000000000+n/2)
	a.Store.DB().MustExec(`ANALYZE`)
	expl, _ := strconv.ParseBool(os.Getenv("MASS_PROFILE_EXPLAIN"))
	if expl {
		explain(`WITH page AS MATERIALIZED (SELECT c.* FROM certificates c WHERE c.serial > $1 AND c.issuer = $2 AND c.reseller_id = $3 AND c.serial <= $4 ORDER BY c.serial LIMIT 5000)
		SELECT c.serial, r.revoked_at, r.reason_code FROM page c LEFT JOIN LATERAL (SELECT r.revoked_at, r.reason_code FROM revocations r
			WHERE r.serial = c.serial AND r.revoked_at IS NOT NULL LIMIT 1) r ON true ORDER BY c.serial`, mid, iss.ID(), "rs_mass", fmt.Sprintf("%x", 0x1000000000000000+n/2+5000))
	}
	{
		a.Store.DB().MustExec(`DELETE FROM ocsp_responses`)
		a.Store.DB().MustExec(`VACUUM ANALYZE ocsp_responses`)
		now := time.Now().UTC().Truncate(time.Second)
		var tl, ts, tu time.Duration
		after, k := "", 0
		ssel := sel.store()
		ssel.IncludeRevoked = true
		for k < 30000 {
			x := time.Now()
			refs, err := a.Store.SelectCertificates(ctx, ssel, after, 5000)
			if err != nil || len(refs) == 0 {
				t.Fatal(err)
			}
			tl += time.Since(x)
			x = time.Now()
			b, err := sa.signAll(ctx, refs, now)
			if err != nil {
				t.Fatal(err)
			}
			ts += time.Since(x)
			x = time.Now()
			if _, err := a.Store.UpsertOCSPBatch(ctx, b); err != nil {
				t.Fatal(err)
			}
			tu += time.Since(x)
			k += len(refs)
			after = refs[len(refs)-1].Serial
		}
		t.Logf("OCSP split for %d: select %s sign %s upsert %s", k, tl, ts, tu)
		a.Store.DB().MustExec(`DELETE FROM ocsp_responses WHERE serial > $1`, after)
		if _, err := env.ExecuteActivity(sa.SignRevokedOCSP, SignRevokedOCSPInput{Selector: sel, After: after, Through: "1fffffffffffffff"}); err != nil {
			t.Fatal(err)
		}
	}
	var revoked, good, rev int
	_ = a.Store.DB().Get(&revoked, `SELECT count(*) FROM certificates WHERE status = 'revoked'`)
	_ = a.Store.DB().Get(&rev, `SELECT count(*) FROM ocsp_responses WHERE status = 'revoked'`)
	_ = a.Store.DB().Get(&good, `SELECT count(*) FROM ocsp_responses WHERE status = 'good'`)
	if revoked != n || rev != n || good != 0 {
		t.Fatalf("revoked %d, OCSP revoked %d good %d, want %d", revoked, rev, good, n)
	}
}
