package store

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func checkpointKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// A checkpoint verifies only with its key and only as signed: any changed
// field, another key or a forged signature is refused.
func TestAuditCheckpointSignature(t *testing.T) {
	t.Parallel()
	key, other := checkpointKey(t), checkpointKey(t)
	c, err := SignAuditCheckpoint(key, AuditCheckpoint{Number: 3, Seq: 41, Hash: make([]byte, 32), Count: 40, SignedAt: time.Now()})
	must(t, err)
	must(t, c.Verify(key.Public()))
	// Survives the file's JSON.
	dir := t.TempDir()
	must(t, WriteAuditCheckpointFile(dir, c))
	back, err := ReadAuditCheckpointFile(dir)
	must(t, err)
	must(t, back.Verify(key.Public()))

	bad := map[string]func(*AuditCheckpoint){
		"seq":       func(c *AuditCheckpoint) { c.Seq-- },
		"hash":      func(c *AuditCheckpoint) { c.Hash = append([]byte{1}, c.Hash[1:]...) },
		"count":     func(c *AuditCheckpoint) { c.Count++ },
		"number":    func(c *AuditCheckpoint) { c.Number++ },
		"time":      func(c *AuditCheckpoint) { c.SignedAt = c.SignedAt.Add(time.Second) },
		"signature": func(c *AuditCheckpoint) { c.Signature = append([]byte(nil), c.Signature...); c.Signature[10] ^= 1 },
	}
	for name, alter := range bad {
		x := c
		alter(&x)
		if err := x.Verify(key.Public()); err == nil || !strings.Contains(err.Error(), "bad signature") {
			t.Errorf("altered %s: %v, want a bad signature", name, err)
		}
	}
	// Signed by another key (the database owner's own key) and relabelled.
	forged, err := SignAuditCheckpoint(other, AuditCheckpoint{Number: 3, Seq: 41, Hash: make([]byte, 32), Count: 40, SignedAt: time.Now()})
	must(t, err)
	if err := forged.Verify(key.Public()); err == nil || !strings.Contains(err.Error(), "not the checkpoint key") {
		t.Errorf("another key: %v", err)
	}
	forged.KeyID = c.KeyID
	if err := forged.Verify(key.Public()); err == nil || !strings.Contains(err.Error(), "bad signature") {
		t.Errorf("another key, relabelled: %v", err)
	}
	if _, err := SignAuditCheckpoint(key, AuditCheckpoint{Number: 1, Seq: 1, Hash: []byte{1}, SignedAt: time.Now()}); err == nil {
		t.Error("a checkpoint without a full hash was signed")
	}
}

func appendN(t *testing.T, s *Store, n int) []AuditEvent {
	t.Helper()
	var out []AuditEvent
	for i := 0; i < n; i++ {
		e, err := s.AppendAudit(bg, AuditEvent{Actor: "system", Action: "test.event", ObjectRef: fmt.Sprintf("object/%d", i),
			Details: json.RawMessage(fmt.Sprintf(`{"i": %d}`, i))})
		must(t, err)
		out = append(out, e)
	}
	return out
}

func signNext(t *testing.T, s *Store, key *ecdsa.PrivateKey, from *AuditCheckpoint) AuditCheckpoint {
	t.Helper()
	next, err := s.NextAuditCheckpoint(bg, from)
	must(t, err)
	next.SignedAt = time.Now()
	c, err := SignAuditCheckpoint(key, next)
	must(t, err)
	must(t, s.SaveAuditCheckpoint(bg, c))
	must(t, s.SaveAuditCheckpoint(bg, c)) // idempotent
	return c
}

// The owner edits a row in place and recomputes every hash after it: the
// links all verify, the checkpoints do not, and the signer refuses to
// checkpoint over it.
func TestAuditCheckpointsDetectInPlaceRebuild(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	key := checkpointKey(t)
	evs := appendN(t, s, 10)
	c1 := signNext(t, s, key, nil)
	if c1.Number != 1 || c1.Seq != evs[9].Seq || c1.Count != 10 {
		t.Fatalf("first checkpoint %+v", c1)
	}
	evs = append(evs, appendN(t, s, 5)...)
	c2 := signNext(t, s, key, &c1)
	if c2.Number != 2 || c2.Seq != evs[14].Seq || c2.Count != 15 {
		t.Fatalf("second checkpoint %+v", c2)
	}
	if again, err := s.NextAuditCheckpoint(bg, &c2); err != nil || again.Seq != c2.Seq {
		t.Fatalf("nothing new: %+v %v", again, err)
	}
	res, err := s.CheckAudit(bg, key.Public(), &c2, "file")
	must(t, err)
	if res.BrokenSeq != 0 || len(res.Problems) != 0 || res.Checkpoints != 2 || res.Events != 15 {
		t.Fatalf("untouched chain: %+v", res)
	}
	// A forged checkpoint row is refused, the others still count.
	forged := c2
	forged.Number, forged.Seq, forged.Count = 3, evs[14].Seq+100, 115
	tx := s.db.MustBegin()
	tx.MustExec(`INSERT INTO audit_checkpoints (number, seq, hash, count, signed_at, key_id, signature) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		forged.Number, forged.Seq, forged.Hash, forged.Count, forged.SignedAt, forged.KeyID, forged.Signature)
	must(t, tx.Commit())
	res, err = s.CheckAudit(bg, key.Public(), nil, "")
	must(t, err)
	if len(res.Problems) != 1 || !strings.Contains(res.Problems[0], "audit checkpoint 3 has a bad signature") || res.Checkpoints != 2 {
		t.Fatalf("forged checkpoint: %+v", res)
	}
	tx = s.db.MustBegin()
	tx.MustExec(`SET LOCAL session_replication_role = replica`)
	tx.MustExec(`DELETE FROM audit_checkpoints WHERE number = 3`)
	must(t, tx.Commit())

	// Rebuild from row 4 on, in place.
	rows, err := s.ListAudit(bg, 0, 100)
	must(t, err)
	tx = s.db.MustBegin()
	tx.MustExec(`SET LOCAL session_replication_role = replica`)
	prev := rows[2].Hash
	for i := 3; i < len(rows); i++ {
		e := rows[i]
		if i == 3 {
			e.Actor = "staff:mallory"
		}
		e.PrevHash = prev
		e.Hash, err = auditHash(prev, e)
		must(t, err)
		tx.MustExec(`UPDATE audit_events SET actor = $1, prev_hash = $2, hash = $3 WHERE seq = $4`, e.Actor, e.PrevHash, e.Hash, e.Seq)
		prev = e.Hash
	}
	must(t, tx.Commit())
	if _, ok, _ := s.VerifyAudit(bg); !ok {
		t.Fatal("the rebuilt chain should link")
	}
	res, err = s.CheckAudit(bg, key.Public(), &c2, "file")
	must(t, err)
	want := []string{
		fmt.Sprintf("audit chain rebuilt: row %d hash differs from the signed checkpoint 1 ", c1.Seq),
		fmt.Sprintf("audit chain rebuilt: row %d hash differs from the signed checkpoint 2 ", c2.Seq),
	}
	if res.BrokenSeq != 0 || len(res.Problems) != 2 || !strings.HasPrefix(res.Problems[0], want[0]) || !strings.HasPrefix(res.Problems[1], want[1]) {
		t.Fatalf("after the rebuild: %+v, want %q", res.Problems, want)
	}
	// The signer will not launder it into a new checkpoint.
	appendN(t, s, 1)
	if _, err := s.NextAuditCheckpoint(bg, &c2); !errors.Is(err, ErrAuditTampered) || !strings.Contains(err.Error(), want[1]) {
		t.Fatalf("next checkpoint over a rebuilt chain: %v", err)
	}
}

// Deleting the newest rows leaves a chain that links; the checkpoint names
// the lost row, and the signer refuses to checkpoint the shorter chain.
func TestAuditCheckpointsDetectCutTail(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	key := checkpointKey(t)
	evs := appendN(t, s, 4)
	c1 := signNext(t, s, key, nil)
	tx := s.db.MustBegin()
	tx.MustExec(`SET LOCAL session_replication_role = replica`)
	tx.MustExec(`DELETE FROM audit_events WHERE seq >= $1`, evs[2].Seq)
	must(t, tx.Commit())
	res, err := s.CheckAudit(bg, key.Public(), nil, "")
	must(t, err)
	want := fmt.Sprintf("audit tail cut: checkpoint 1 (signed %s) names row %d which no longer exists", c1.SignedAt.Format(time.RFC3339), c1.Seq)
	if res.BrokenSeq != 0 || len(res.Problems) != 1 || res.Problems[0] != want {
		t.Fatalf("cut tail: %+v, want %q", res.Problems, want)
	}
	if _, err := s.NextAuditCheckpoint(bg, &c1); !errors.Is(err, ErrAuditTampered) || !strings.Contains(err.Error(), "audit tail cut") {
		t.Fatalf("next checkpoint over a cut tail: %v", err)
	}
	// Without the public key, stored checkpoints are a problem, not ignored.
	res, err = s.CheckAudit(bg, nil, nil, "")
	must(t, err)
	if len(res.Problems) != 1 || !strings.Contains(res.Problems[0], "no checkpoint public key") {
		t.Fatalf("no public key: %+v", res.Problems)
	}
	// The public key file round trip, written once.
	dir := t.TempDir()
	must(t, WriteAuditCheckpointPublicKey(dir, key.Public()))
	must(t, WriteAuditCheckpointPublicKey(dir, key.Public()))
	if err := WriteAuditCheckpointPublicKey(dir, checkpointKey(t).Public()); err == nil {
		t.Fatal("the public key file was replaced")
	}
	pub, err := ReadAuditCheckpointPublicKey(dir)
	must(t, err)
	must(t, c1.Verify(pub))
	must(t, os.WriteFile(filepath.Join(dir, AuditCheckpointPublicKeyFile), []byte("junk"), 0o644))
	if _, err := ReadAuditCheckpointPublicKey(dir); err == nil {
		t.Fatal("a junk public key file was read")
	}
}
