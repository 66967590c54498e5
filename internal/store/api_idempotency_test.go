package store

import (
	"bytes"
	"crypto/sha256"
	"testing"
	"time"
)

// TestIdempotencyTakeoverIsFenced: a reservation is taken over only once
// older than the lease the caller passes, and the owner of the reservation
// taken over can then neither complete nor release the new one: a request
// that overran its lease cannot write its answer into, or free, the retry's
// reservation.
func TestIdempotencyTakeoverIsFenced(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	hash := sha256.Sum256([]byte("POST /v1/x"))
	const ttl, lease = 24 * time.Hour, 3 * time.Minute

	old, reserved, err := s.ReserveIdempotencyKey(bg, "ip:a", "k", hash[:], ttl, lease)
	if err != nil || !reserved {
		t.Fatalf("first reservation: %v %v", reserved, err)
	}
	// Within the lease: in progress, whatever its age.
	must(t, s.db.Get(new(int), `UPDATE idempotency_keys SET created_at = created_at - interval '170 seconds' RETURNING 1`))
	if _, _, err := s.ReserveIdempotencyKey(bg, "ip:a", "k", hash[:], ttl, lease); err != ErrIdempotencyInProgress {
		t.Fatalf("retry within the lease: %v, want ErrIdempotencyInProgress", err)
	}
	// Past the lease: the retry takes over.
	must(t, s.db.Get(&old.CreatedAt, `UPDATE idempotency_keys SET created_at = created_at - interval '11 seconds' RETURNING created_at`))
	cur, reserved, err := s.ReserveIdempotencyKey(bg, "ip:a", "k", hash[:], ttl, lease)
	if err != nil || !reserved {
		t.Fatalf("retry past the lease: %v %v", reserved, err)
	}
	// The first owner, late, cannot touch the new reservation.
	if err := s.CompleteIdempotencyKey(bg, "ip:a", "k", old.CreatedAt, 201, "application/json", "", []byte(`"late"`)); err == nil {
		t.Fatal("the overtaken owner completed the new reservation")
	}
	must(t, s.ReleaseIdempotencyKey(bg, "ip:a", "k", old.CreatedAt))
	if _, _, err := s.ReserveIdempotencyKey(bg, "ip:a", "k", hash[:], ttl, lease); err != ErrIdempotencyInProgress {
		t.Fatalf("after the overtaken owner's release: %v, want the new reservation still in progress", err)
	}
	// The new owner completes; the answer is its own.
	must(t, s.CompleteIdempotencyKey(bg, "ip:a", "k", cur.CreatedAt, 201, "application/json", "/v1/x/1", []byte(`"mine"`)))
	rec, reserved, err := s.ReserveIdempotencyKey(bg, "ip:a", "k", hash[:], ttl, lease)
	if err != nil || reserved || !rec.Completed() || !bytes.Equal(rec.ResponseBody, []byte(`"mine"`)) || rec.Location != "/v1/x/1" {
		t.Fatalf("replay: %+v %v %v", rec, reserved, err)
	}
	// A completed answer is kept for ttl, never "taken over" by the lease.
	must(t, s.db.Get(new(int), `UPDATE idempotency_keys SET created_at = created_at - interval '1 hour' RETURNING 1`))
	if rec, reserved, err := s.ReserveIdempotencyKey(bg, "ip:a", "k", hash[:], ttl, lease); err != nil || reserved || !rec.Completed() {
		t.Fatalf("completed answer past the lease: %+v %v %v", rec, reserved, err)
	}
}
