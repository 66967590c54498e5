//go:build integration

package activities

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.temporal.io/sdk/temporal"

	"certdesk/internal/pii"
	"certdesk/internal/pki"
	"certdesk/internal/store"
	"certdesk/internal/testenv"
)

// TestSignAuditCheckpoint: a CA directory made before checkpoints existed
// gets its checkpoint key on the first run; retries sign nothing twice and
// restore the copy in the CA directory; a cut chain is refused, not
// retried; a public key file that does not match the key stops signing.
func TestSignAuditCheckpoint(t *testing.T) {
	pool, _ := testenv.NewDatabase(t)
	ring, err := pii.NewKeyRing(pii.Key{ID: "k", Secret: make([]byte, 32)})
	if err != nil {
		t.Fatal(err)
	}
	st := store.New(pool, ring, nil)
	dir := t.TempDir()
	ks := &pki.FileKeyStore{Dir: dir, Passphrase: []byte("pw"), Iterations: 1000}
	ca, err := pki.Bootstrap(context.Background(), pki.BootstrapConfig{Dir: dir, Keys: ks, Organization: "Test CA", Country: "JP",
		URLs: pki.URLs{Base: "http://127.0.0.1:8080"}, Policy: pki.CAPolicy{OID: []int{1, 3, 6, 1, 4, 1, 32473, 1, 1}, CPSURI: "http://127.0.0.1:8080/cps"}})
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	sa := &SigningActivities{CA: ca, Store: st, Log: log, Keys: ks}
	ctx := context.Background()

	if r, err := sa.SignAuditCheckpoint(ctx); err != nil || r.New {
		t.Fatalf("empty log: %+v %v", r, err)
	}
	if _, err := os.Stat(ks.KeyPath(AuditCheckpointKeyLabel)); err != nil {
		t.Fatalf("no checkpoint key made: %v", err)
	}
	var last store.AuditEvent
	for _, a := range []string{"a", "b", "c"} {
		if last, err = st.AppendAudit(ctx, store.AuditEvent{Actor: "system", Action: "test." + a}); err != nil {
			t.Fatal(err)
		}
	}
	r, err := sa.SignAuditCheckpoint(ctx)
	if err != nil || !r.New || r.Number != 1 || r.Seq != last.Seq || r.Count != 3 {
		t.Fatalf("first checkpoint: %+v %v", r, err)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.Remove(filepath.Join(dir, store.AuditCheckpointFile)))
	if r, err := sa.SignAuditCheckpoint(ctx); err != nil || r.New || r.Number != 1 {
		t.Fatalf("retry: %+v %v", r, err)
	}
	file, err := store.ReadAuditCheckpointFile(dir)
	if err != nil || file == nil || file.Number != 1 {
		t.Fatalf("the retry did not restore the file: %+v %v", file, err)
	}
	if _, err := st.AppendAudit(ctx, store.AuditEvent{Actor: "system", Action: "test.d"}); err != nil {
		t.Fatal(err)
	}
	if r, err := sa.SignAuditCheckpoint(ctx); err != nil || !r.New || r.Number != 2 || r.Count != 4 {
		t.Fatalf("second checkpoint: %+v %v", r, err)
	}

	// The owner cuts the tail and empties the checkpoint table: the copy
	// in the CA directory still anchors the signer, which refuses.
	tx := pool.MustBegin()
	tx.MustExec(`SET LOCAL session_replication_role = replica`)
	tx.MustExec(`DELETE FROM audit_events WHERE seq > $1`, last.Seq)
	tx.MustExec(`DELETE FROM audit_checkpoints`)
	must(tx.Commit())
	_, err = sa.SignAuditCheckpoint(ctx)
	var appErr *temporal.ApplicationError
	if !errors.As(err, &appErr) || !appErr.NonRetryable() || !strings.Contains(err.Error(), "audit tail cut: checkpoint 2") {
		t.Fatalf("over a cut tail: %v", err)
	}

	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(os.Remove(filepath.Join(dir, store.AuditCheckpointPublicKeyFile)))
	must(store.WriteAuditCheckpointPublicKey(dir, other.Public()))
	if _, err := sa.SignAuditCheckpoint(ctx); err == nil || !strings.Contains(err.Error(), "does not match") {
		t.Fatalf("a replaced public key: %v", err)
	}

	none := &SigningActivities{CA: ca, Store: st, Log: log}
	if r, err := none.SignAuditCheckpoint(ctx); err != nil || r.New {
		t.Fatalf("without a key store: %+v %v", r, err)
	}
}
