//go:build integration

package main

import (
	"bytes"
	"context"
	"strconv"
	"strings"
	"testing"

	"certdesk/activities"
	"certdesk/internal/config"
	"certdesk/internal/pii"
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
