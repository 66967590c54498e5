package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/json"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/lib/pq"
)

// AuditEvent is one row of the hash-chained audit log (O8). Details must
// not hold personal data: refer to people by subscriber or case id.
type AuditEvent struct {
	Seq       int64
	EventKey  string // optional: a retried activity with the same key appends once
	At        time.Time
	Actor     string // "staff:<id>", "reseller:<id>", "system", "workflow:<id>"
	Action    string // e.g. "certificate.revoked"
	ObjectRef string // e.g. "certificate/1a2b…", "application/a_1"
	Details   json.RawMessage
	PrevHash  []byte
	Hash      []byte
}

// auditLockKey is the pg_advisory_xact_lock key serialising appends
// ("certdesk-audit" folded into 64 bits; any fixed constant works).
const auditLockKey int64 = 0x63647e6175646974

// auditGenesis is the prev_hash of the first event.
var auditGenesis = make([]byte, sha256.Size)

// auditRecord fixes the canonical JSON an event's hash covers. Field order
// is the struct's. Seq is included, so a row cannot be renumbered; At is
// UTC with microseconds (what timestamptz keeps); Details is re-encoded
// canonically (see canonicalJSON).
type auditRecord struct {
	V         int             `json:"v"`
	Seq       int64           `json:"seq"`
	EventKey  string          `json:"event_key"`
	At        string          `json:"at"`
	Actor     string          `json:"actor"`
	Action    string          `json:"action"`
	ObjectRef string          `json:"object_ref"`
	Details   json.RawMessage `json:"details"`
}

// auditContent is the canonical JSON of an event's own content.
func auditContent(e AuditEvent) ([]byte, error) {
	details, err := canonicalJSON(e.Details)
	if err != nil {
		return nil, err
	}
	return json.Marshal(auditRecord{V: 1, Seq: e.Seq, EventKey: e.EventKey, At: auditTime(e.At),
		Actor: e.Actor, Action: e.Action, ObjectRef: e.ObjectRef, Details: details})
}

// auditHash is SHA-256(prev_hash || canonical JSON of the event).
func auditHash(prev []byte, e AuditEvent) ([]byte, error) {
	content, err := auditContent(e)
	if err != nil {
		return nil, err
	}
	h := sha256.New()
	h.Write(prev)
	h.Write(content)
	return h.Sum(nil), nil
}

func auditTime(t time.Time) string {
	return t.UTC().Truncate(time.Microsecond).Format(time.RFC3339Nano)
}

// canonicalJSON decodes and re-encodes a JSON value: object keys sorted,
// no insignificant space, numbers through float64. jsonb rewrites what it
// stores (key order, spacing, number spelling), so the hash must cover a
// form both the writer and the verifier derive identically.
func canonicalJSON(raw json.RawMessage) (json.RawMessage, error) {
	if len(bytes.TrimSpace(raw)) == 0 {
		return json.RawMessage(`{}`), nil
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, fmt.Errorf("store: audit details are not valid JSON: %w", err)
	}
	out, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("store: audit details: %w", err)
	}
	return out, nil
}

// AppendAudit appends one event to the chain and returns it with its seq
// and hashes. With an EventKey already in the log the existing event is
// returned and nothing is appended (retried activities).
//
// Appends are serialised by a transaction-scoped advisory lock taken before
// the chain head is read, so writers in any number of processes never fork
// the chain. Within one process, concurrent calls are combined: one
// goroutine writes everything queued so far in one transaction (one lock,
// one commit), which keeps throughput up when many activities audit at once.
// If ctx ends while the event is queued or in flight, the call returns
// ctx.Err() and the event may or may not be written: retry with an EventKey.
func (s *Store) AppendAudit(ctx context.Context, e AuditEvent) (AuditEvent, error) {
	// Validate here, so one bad event cannot fail the others in its batch.
	details, err := canonicalJSON(e.Details)
	if err != nil {
		return AuditEvent{}, err
	}
	e.Details = details
	r := &auditReq{e: e, done: make(chan struct{})}
	q := &s.audit
	q.mu.Lock()
	q.pending = append(q.pending, r)
	if !q.writing {
		q.writing = true
		go s.auditWriter()
	}
	q.mu.Unlock()
	select {
	case <-r.done:
		return r.out, r.err
	case <-ctx.Done():
		return AuditEvent{}, ctx.Err()
	}
}

// auditQueue holds the appends waiting for this process's audit writer.
type auditQueue struct {
	mu      sync.Mutex
	pending []*auditReq
	writing bool
}

type auditReq struct {
	e    AuditEvent
	out  AuditEvent
	err  error
	done chan struct{}
}

// auditMaxBatch bounds one combined transaction.
const auditMaxBatch = 500

// auditWriter drains the queue batch by batch and exits when it is empty.
func (s *Store) auditWriter() {
	q := &s.audit
	for {
		q.mu.Lock()
		n := min(len(q.pending), auditMaxBatch)
		if n == 0 {
			q.writing = false
			q.mu.Unlock()
			return
		}
		batch := append([]*auditReq(nil), q.pending[:n]...)
		q.pending = append([]*auditReq(nil), q.pending[n:]...)
		q.mu.Unlock()

		events := make([]AuditEvent, n)
		for i, r := range batch {
			events[i] = r.e
		}
		// Callers may give up (their ctx); the batch is shared, so it runs
		// on its own bounded context.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		out, err := s.AppendAuditBatch(ctx, events)
		cancel()
		for i, r := range batch {
			if err == nil {
				r.out = out[i]
			}
			r.err = err
			close(r.done)
		}
	}
}

// AppendAuditBatch appends several events in one transaction, in order,
// bypassing the in-process queue. Events whose EventKey is already in the
// log (or earlier in the batch) are returned as stored.
//
// Under the lock the cost is constant per batch, not per event: read the
// chain head and allocate the seqs (one statement), hash in Go, insert
// every row (one statement).
func (s *Store) AppendAuditBatch(ctx context.Context, events []AuditEvent) ([]AuditEvent, error) {
	out := make([]AuditEvent, len(events))
	// Prepare outside the lock: defaults, canonical details.
	var keys []string
	for i := range events {
		e := events[i]
		if e.At.IsZero() {
			e.At = time.Now()
		}
		e.At = e.At.UTC().Truncate(time.Microsecond)
		details, err := canonicalJSON(e.Details)
		if err != nil {
			return nil, err
		}
		e.Details = details
		out[i] = e
		if e.EventKey != "" {
			keys = append(keys, e.EventKey)
		}
	}
	err := s.inTx(ctx, func(tx *sqlxTx) error {
		// A statement of its own, without parameters (simple protocol, one
		// round trip): the statements after it take their snapshots once
		// the previous holder has committed, so they see its rows.
		if _, err := tx.ExecContext(ctx, fmt.Sprintf(`SELECT pg_advisory_xact_lock(%d)`, auditLockKey)); err != nil {
			return fmt.Errorf("store: audit lock: %w", err)
		}
		stored := map[string]AuditEvent{}
		if len(keys) > 0 {
			var rows []auditRow
			if err := tx.SelectContext(ctx, &rows, `SELECT `+auditCols+` FROM audit_events WHERE event_key = ANY($1)`, stringArray(keys)); err != nil {
				return fmt.Errorf("store: audit event keys: %w", err)
			}
			for _, r := range rows {
				stored[r.EventKey] = r.event()
			}
		}
		var fresh []int // indexes of out to insert
		for i, e := range out {
			if e.EventKey != "" {
				if _, dup := stored[e.EventKey]; dup {
					continue
				}
				stored[e.EventKey] = AuditEvent{} // later duplicates in the batch are resolved below
			}
			fresh = append(fresh, i)
		}
		if len(fresh) > 0 {
			var head struct {
				Hash []byte        `db:"hash"`
				Seqs pq.Int64Array `db:"seqs"`
			}
			err := tx.GetContext(ctx, &head, fmt.Sprintf(`SELECT
				(SELECT hash FROM audit_events ORDER BY seq DESC LIMIT 1) AS hash,
				array(SELECT nextval('audit_events_seq_seq') FROM generate_series(1, %d)) AS seqs`, len(fresh)))
			if err != nil {
				return fmt.Errorf("store: read audit chain head: %w", err)
			}
			// Sequence values only grow, and every appender holds the lock
			// while allocating, so these are above every seq in the log.
			sort.Slice(head.Seqs, func(a, b int) bool { return head.Seqs[a] < head.Seqs[b] })
			prev := head.Hash
			if prev == nil {
				prev = auditGenesis
			}
			n := len(fresh)
			var (
				seqs    = make(pq.Int64Array, n)
				evKeys  = make([]sql.NullString, n)
				ats     = make(pq.StringArray, n)
				actors  = make(pq.StringArray, n)
				actions = make(pq.StringArray, n)
				objects = make(pq.StringArray, n)
				details = make(pq.StringArray, n)
				prevs   = make(pq.ByteaArray, n)
				hashes  = make(pq.ByteaArray, n)
			)
			for j, i := range fresh {
				e := &out[i]
				e.Seq, e.PrevHash = head.Seqs[j], prev
				if e.Hash, err = auditHash(prev, *e); err != nil {
					return err
				}
				prev = e.Hash
				seqs[j], evKeys[j], ats[j], actors[j], actions[j] = e.Seq, nullStr(e.EventKey), pgTime(e.At), e.Actor, e.Action
				objects[j], details[j], prevs[j], hashes[j] = e.ObjectRef, string(e.Details), e.PrevHash, e.Hash
				if e.EventKey != "" {
					stored[e.EventKey] = *e
				}
			}
			_, err = tx.ExecContext(ctx, `
				INSERT INTO audit_events (seq, event_key, at, actor, action, object_ref, details, prev_hash, hash)
				SELECT * FROM unnest($1::bigint[], $2::text[], $3::timestamptz[], $4::text[], $5::text[], $6::text[],
					$7::jsonb[], $8::bytea[], $9::bytea[])`,
				seqs, nullStringArray(evKeys), ats, actors, actions, objects, details, prevs, hashes)
			if err != nil {
				return fmt.Errorf("store: append audit events: %w", err)
			}
		}
		for i, e := range out {
			if e.EventKey != "" {
				out[i] = stored[e.EventKey]
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// nullStringArray is a text[] whose invalid entries are NULL.
func nullStringArray(v []sql.NullString) any {
	return pq.GenericArray{A: v}
}

type auditRow struct {
	Seq       int64     `db:"seq"`
	EventKey  string    `db:"event_key"`
	At        time.Time `db:"at"`
	Actor     string    `db:"actor"`
	Action    string    `db:"action"`
	ObjectRef string    `db:"object_ref"`
	Details   string    `db:"details"`
	PrevHash  []byte    `db:"prev_hash"`
	Hash      []byte    `db:"hash"`
}

const auditCols = `seq, COALESCE(event_key, '') AS event_key, at, actor, action, object_ref, details::text AS details, prev_hash, hash`

func (r auditRow) event() AuditEvent {
	return AuditEvent{Seq: r.Seq, EventKey: r.EventKey, At: r.At.UTC(), Actor: r.Actor, Action: r.Action,
		ObjectRef: r.ObjectRef, Details: json.RawMessage(r.Details), PrevHash: r.PrevHash, Hash: r.Hash}
}

// auditPage is how many rows VerifyAudit reads per query: memory stays
// bounded however long the log, and no query holds a snapshot for long.
const auditPage = 5000

// VerifyAudit walks the whole chain in seq order, page by page, and checks
// each row's prev_hash against the previous row's hash and its hash against
// its content. It returns ok, or the seq of the first broken row: a row
// edited in place is named itself; a deleted row shows as the next one.
// Deleting the newest rows, or rebuilding every hash after an edit, cannot
// be detected from inside the database: CheckAudit compares the chain with
// signed checkpoints (audit_checkpoint.go) to catch both.
func (s *Store) VerifyAudit(ctx context.Context) (firstBrokenSeq int64, ok bool, err error) {
	broken, err := s.walkAudit(ctx, 0, auditGenesis, nil)
	if err != nil {
		return 0, false, err
	}
	return broken, broken == 0, nil
}

// walkAudit checks the rows with seq > after in order: each must link to
// the one before it (prev is the hash of row after, or the genesis) and
// hash to its own content. visit, if not nil, sees every row that verifies.
// It stops at the first broken row and returns its seq (0: none broken).
func (s *Store) walkAudit(ctx context.Context, after int64, prev []byte, visit func(AuditEvent)) (broken int64, err error) {
	for {
		var rows []auditRow
		if err := s.db.SelectContext(ctx, &rows, `SELECT `+auditCols+` FROM audit_events WHERE seq > $1 ORDER BY seq LIMIT $2`,
			after, auditPage); err != nil {
			return 0, fmt.Errorf("store: read audit log: %w", err)
		}
		for _, r := range rows {
			e := r.event()
			if !bytes.Equal(e.PrevHash, prev) {
				return e.Seq, nil
			}
			want, err := auditHash(prev, e)
			if err != nil || !bytes.Equal(want, e.Hash) {
				return e.Seq, nil
			}
			if visit != nil {
				visit(e)
			}
			prev = e.Hash
			after = e.Seq
		}
		if len(rows) < auditPage {
			return 0, nil
		}
	}
}

// AuditHead returns the newest event's seq and hash (0 and the genesis hash
// for an empty log), to be recorded outside the database.
func (s *Store) AuditHead(ctx context.Context) (seq int64, hash []byte, err error) {
	var rows []auditRow
	if err := s.db.SelectContext(ctx, &rows, `SELECT `+auditCols+` FROM audit_events ORDER BY seq DESC LIMIT 1`); err != nil {
		return 0, nil, fmt.Errorf("store: audit head: %w", err)
	}
	if len(rows) == 0 {
		return 0, auditGenesis, nil
	}
	return rows[0].Seq, rows[0].Hash, nil
}

// ListAudit returns up to limit events with seq > after, in order.
func (s *Store) ListAudit(ctx context.Context, after int64, limit int) ([]AuditEvent, error) {
	var rows []auditRow
	if err := s.db.SelectContext(ctx, &rows, `SELECT `+auditCols+` FROM audit_events WHERE seq > $1 ORDER BY seq LIMIT $2`, after, limit); err != nil {
		return nil, fmt.Errorf("store: list audit: %w", err)
	}
	out := make([]AuditEvent, len(rows))
	for i, r := range rows {
		out[i] = r.event()
	}
	return out, nil
}
