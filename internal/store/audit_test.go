package store

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// Eight writers over two Store values: writers sharing a Store are
// combined into batches, and the two Stores contend on the advisory lock the
// way two worker processes do.
func TestAuditChainUnderConcurrency(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	stores := []*Store{s, New(s.db, nil, nil)}
	const writers, each = 8, 1000
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < each; i++ {
				_, err := stores[w%len(stores)].AppendAudit(bg, AuditEvent{Actor: fmt.Sprintf("workflow:w%d", w), Action: "test.event",
					ObjectRef: fmt.Sprintf("object/%d/%d", w, i),
					Details:   json.RawMessage(fmt.Sprintf(`{"i": %d, "w": %d, "nested": {"z": 1.50, "a": [1e2, "<&>", "日本"]}}`, i, w))})
				if err != nil {
					errs <- err
					return
				}
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	t.Logf("%d appends by %d writers in %s", writers*each, writers, time.Since(start).Round(time.Millisecond))
	if n := count(t, s, "audit_events"); n != writers*each {
		t.Fatalf("%d rows, want %d", n, writers*each)
	}
	start = time.Now()
	seq, ok, err := s.VerifyAudit(bg)
	must(t, err)
	if !ok {
		t.Fatalf("chain broken at seq %d", seq)
	}
	t.Logf("verified %d rows in %s", writers*each, time.Since(start).Round(time.Millisecond))

	// The database refuses edits through the trigger.
	for _, q := range []string{`UPDATE audit_events SET actor = 'x' WHERE seq = 10`, `DELETE FROM audit_events WHERE seq = 10`, `TRUNCATE audit_events`} {
		_, err := s.db.Exec(q)
		if err == nil || !strings.Contains(err.Error(), "append-only") {
			t.Fatalf("%s: %v, want the append-only refusal", q, err)
		}
	}

	// A superuser who disables the triggers can edit a row, but the chain
	// names exactly that row.
	var target int64
	must(t, s.db.Get(&target, `SELECT seq FROM audit_events ORDER BY seq OFFSET 4321 LIMIT 1`))
	tx := s.db.MustBegin()
	tx.MustExec(`SET LOCAL session_replication_role = replica`)
	tx.MustExec(`UPDATE audit_events SET details = '{"i": 999}' WHERE seq = $1`, target)
	must(t, tx.Commit())
	seq, ok, err = s.VerifyAudit(bg)
	must(t, err)
	if ok || seq != target {
		t.Fatalf("VerifyAudit = (%d, %v), want (%d, false)", seq, ok, target)
	}
}

func TestAuditEdgeCases(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	if seq, ok, err := s.VerifyAudit(bg); err != nil || !ok || seq != 0 {
		t.Fatalf("empty log: %d %v %v", seq, ok, err)
	}
	first, err := s.AppendAudit(bg, AuditEvent{Actor: "system", Action: "a", EventKey: "k1"})
	must(t, err)
	if string(first.Details) != "{}" || len(first.PrevHash) != 32 || first.PrevHash[0] != 0 {
		t.Fatalf("first event: %+v", first)
	}
	again, err := s.AppendAudit(bg, AuditEvent{Actor: "system", Action: "a", EventKey: "k1"})
	must(t, err)
	if again.Seq != first.Seq || string(again.Hash) != string(first.Hash) {
		t.Fatalf("retried key appended again: %d vs %d", again.Seq, first.Seq)
	}
	batch, err := s.AppendAuditBatch(bg, []AuditEvent{
		{Actor: "system", Action: "b", Details: json.RawMessage(`{"b":2,"a":1}`)},
		{Actor: "system", Action: "a", EventKey: "k1"},
		{Actor: "system", Action: "c", EventKey: "k2"},
	})
	must(t, err)
	if batch[1].Seq != first.Seq || batch[2].PrevHash == nil || string(batch[2].PrevHash) != string(batch[0].Hash) {
		t.Fatalf("batch: %+v", batch)
	}
	if _, err := s.AppendAudit(bg, AuditEvent{Actor: "x", Action: "y", Details: json.RawMessage(`{not json`)}); err == nil {
		t.Fatal("invalid details accepted")
	}
	head, hash, err := s.AuditHead(bg)
	must(t, err)
	if head != batch[2].Seq || string(hash) != string(batch[2].Hash) {
		t.Fatalf("head %d", head)
	}
	if _, ok, _ := s.VerifyAudit(bg); !ok {
		t.Fatal("chain broken")
	}
	// Deleting a middle row names the row after it.
	tx := s.db.MustBegin()
	tx.MustExec(`SET LOCAL session_replication_role = replica`)
	tx.MustExec(`DELETE FROM audit_events WHERE seq = $1`, batch[0].Seq)
	must(t, tx.Commit())
	if seq, ok, _ := s.VerifyAudit(bg); ok || seq != batch[2].Seq {
		t.Fatalf("after delete: %d %v", seq, ok)
	}
}
