//go:build integration

package main

import (
	"bytes"
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"certdesk/activities"
	"certdesk/internal/config"
	"certdesk/internal/pii"
	"certdesk/internal/pki"
	"certdesk/internal/store"
	"certdesk/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func cfgFor(t *testing.T, dbURL, keys, bidx string) *config.Config {
	t.Helper()
	env := map[string]string{"DATABASE_URL": dbURL, "CERTDESK_PII_KEYS": keys, "CERTDESK_BLIND_INDEX_KEY": bidx}
	cfg, err := config.LoadFrom(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestAdminCommands: verify-audit passes on an intact chain and names an
// edited row; rotate-keys leaves no value under the old key.
func TestAdminCommands(t *testing.T) {
	pool, dbURL := testenv.NewDatabase(t)
	ctx := context.Background()
	k1, _ := pii.GenerateKey()
	k2, _ := pii.GenerateKey()
	b, _ := pii.GenerateKey()
	cfg := cfgFor(t, dbURL, "old:"+k1, b)
	st, _, err := activities.OpenStore(cfg, pool)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.CreateReseller(ctx, store.Reseller{ID: "rs_adm", Name: "A", APIKeyHash: strings.Repeat("1", 64), APIKeyPrefix: "cdk_a"}); err != nil {
		t.Fatal(err)
	}
	if err := st.UpsertSubscriber(ctx, store.Subscriber{ID: "sub_adm", ResellerID: "rs_adm", Name: "佐藤 一郎", Email: "ichiro@example.jp", Country: "JP"}); err != nil {
		t.Fatal(err)
	}
	for _, a := range []string{"a", "b", "c"} {
		if _, err := st.AppendAudit(ctx, store.AuditEvent{Actor: "system", Action: "test." + a, ObjectRef: "x", Details: []byte(`{}`)}); err != nil {
			t.Fatal(err)
		}
	}
	var out bytes.Buffer
	if err := verifyAudit(ctx, cfg, &out); err != nil || !strings.Contains(out.String(), "intact: 3 events") {
		t.Fatalf("verify-audit: %v %s", err, out.String())
	}
	if _, err := pool.Exec(`SET session_replication_role = replica; UPDATE audit_events SET actor = 'mallory' WHERE seq = (SELECT min(seq) + 1 FROM audit_events); SET session_replication_role = origin`); err != nil {
		t.Fatal(err)
	}
	var second int64
	_ = pool.Get(&second, `SELECT min(seq) + 1 FROM audit_events`)
	err = verifyAudit(ctx, cfg, &out)
	if err == nil || !strings.Contains(err.Error(), "seq "+strconv.FormatInt(second, 10)) {
		t.Fatalf("verify-audit after an edit: %v", err)
	}

	cfg2 := cfgFor(t, dbURL, "old:"+k1+",new:"+k2, b)
	out.Reset()
	if err := rotateKeys(ctx, cfg2, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "values per key id now: map[new:") || strings.Contains(out.String(), "old:") {
		t.Fatalf("rotate-keys: %s", out.String())
	}
	st2, _, _ := activities.OpenStore(cfgFor(t, dbURL, "new:"+k2, b), pool)
	sub, err := st2.GetSubscriber(ctx, "sub_adm")
	if err != nil || sub.Name != "佐藤 一郎" {
		t.Fatalf("after rotation, with the new key only: %+v %v", sub, err)
	}
}

// auditFixture is a database with n audit rows and a CA directory for the
// checkpoint key; cfg points verify-audit at both.
func auditFixture(t *testing.T, n int) (context.Context, *config.Config, *store.Store, []store.AuditEvent) {
	t.Helper()
	pool, dbURL := testenv.NewDatabase(t)
	ctx := context.Background()
	k, _ := pii.GenerateKey()
	b, _ := pii.GenerateKey()
	env := map[string]string{"DATABASE_URL": dbURL, "CERTDESK_PII_KEYS": "k:" + k, "CERTDESK_BLIND_INDEX_KEY": b,
		"CERTDESK_CA_DIR": t.TempDir(), "CERTDESK_CA_PASSPHRASE": "audit-test"}
	cfg, err := config.LoadFrom(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	st, _, err := activities.OpenStore(cfg, pool)
	if err != nil {
		t.Fatal(err)
	}
	var evs []store.AuditEvent
	for i := 0; i < n; i++ {
		e, err := st.AppendAudit(ctx, store.AuditEvent{Actor: "system", Action: "test.event", ObjectRef: "object/" + strconv.Itoa(i), Details: []byte(`{"i": ` + strconv.Itoa(i) + `}`)})
		if err != nil {
			t.Fatal(err)
		}
		evs = append(evs, e)
	}
	return ctx, cfg, st, evs
}

// asOwner runs statements as the database owner who switches the
// append-only triggers off.
func asOwner(t *testing.T, st *store.Store, stmts ...string) {
	t.Helper()
	if _, err := st.DB().Exec(`SET session_replication_role = replica; ` + strings.Join(stmts, "; ") + `; SET session_replication_role = origin`); err != nil {
		t.Fatal(err)
	}
}

// TestVerifyAuditDetectsCutTail: after a signed checkpoint, deleting the
// newest rows (and even the checkpoint table) is reported; the chain walk
// alone cannot see it.
func TestVerifyAuditDetectsCutTail(t *testing.T) {
	ctx, cfg, st, evs := auditFixture(t, 5)
	signCheckpoint(t, ctx, cfg, st)
	if _, err := st.AppendAudit(ctx, store.AuditEvent{Actor: "system", Action: "test.after", ObjectRef: "x"}); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := verifyAudit(ctx, cfg, &out); err != nil || !strings.Contains(out.String(), "intact: 6 events") {
		t.Fatalf("verify-audit on an untouched chain: %v %s", err, out.String())
	}
	t.Logf("untouched: %s", out.String())
	last := evs[len(evs)-1].Seq
	asOwner(t, st, `DELETE FROM audit_events WHERE seq >= `+strconv.FormatInt(last, 10))
	want := "audit tail cut: checkpoint 1 "
	err := verifyAudit(ctx, cfg, &out)
	if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "names row "+strconv.FormatInt(last, 10)+" which no longer exists") {
		t.Fatalf("verify-audit after deleting the newest rows: %v (output %q), want %q", err, out.String(), want)
	}
	t.Logf("after the cut: %v", err)
	// The owner also empties the checkpoint table: the signed copy in the
	// CA directory still names the lost row.
	asOwner(t, st, `DELETE FROM audit_checkpoints`)
	err = verifyAudit(ctx, cfg, &out)
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("verify-audit after deleting the checkpoints too: %v, want %q", err, want)
	}
	t.Logf("after deleting the checkpoints too: %v", err)
}

// TestVerifyAuditDetectsRebuiltChain: the owner rewrites a row and rebuilds
// every hash after it with the application's own code, at the same seqs, so
// every link verifies; the signed checkpoint still names the difference.
func TestVerifyAuditDetectsRebuiltChain(t *testing.T) {
	ctx, cfg, st, evs := auditFixture(t, 5)
	signCheckpoint(t, ctx, cfg, st)
	rebuilt := make([]store.AuditEvent, len(evs))
	for i, e := range evs {
		rebuilt[i] = store.AuditEvent{At: e.At, Actor: e.Actor, Action: e.Action, ObjectRef: e.ObjectRef, Details: e.Details}
	}
	rebuilt[1].Actor = "staff:mallory"
	asOwner(t, st, `TRUNCATE audit_events`, `SELECT setval('audit_events_seq_seq', `+strconv.FormatInt(evs[0].Seq, 10)+`, false)`)
	again, err := st.AppendAuditBatch(ctx, rebuilt)
	if err != nil {
		t.Fatal(err)
	}
	if again[4].Seq != evs[4].Seq || bytes.Equal(again[4].Hash, evs[4].Hash) {
		t.Fatalf("rebuild did not reuse the seqs: %d vs %d", again[4].Seq, evs[4].Seq)
	}
	if _, ok, err := st.VerifyAudit(ctx); err != nil || !ok {
		t.Fatalf("the rebuilt chain should link: %v %v", ok, err)
	}
	var out bytes.Buffer
	err = verifyAudit(ctx, cfg, &out)
	want := "audit chain rebuilt: row " + strconv.FormatInt(evs[4].Seq, 10) + " hash differs from the signed checkpoint"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("verify-audit after a rebuild: %v (output %q), want %q", err, out.String(), want)
	}
	t.Logf("after the rebuild: %v", err)
}

// signCheckpoint runs the signer's checkpoint work against cfg's CA
// directory, as the PublishCRLs schedule does.
func signCheckpoint(t *testing.T, ctx context.Context, cfg *config.Config, st *store.Store) {
	t.Helper()
	ks := &pki.FileKeyStore{Dir: cfg.CADir, Passphrase: []byte(cfg.CAPassphrase), Iterations: 1000}
	res, err := activities.SignAuditCheckpoint(ctx, st, ks, cfg.CADir, time.Now())
	if err != nil || !res.New {
		t.Fatalf("sign a checkpoint: %+v %v", res, err)
	}
}
