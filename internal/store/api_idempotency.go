package store

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// IdempotencyRecord is a stored answer to a POST with an Idempotency-Key.
// Completed is false while the first request is still being processed.
type IdempotencyRecord struct {
	Scope        string     `db:"scope"`
	Key          string     `db:"key"`
	RequestHash  []byte     `db:"request_hash"`
	Status       *int       `db:"status"`
	ResponseBody []byte     `db:"response_body"`
	ContentType  string     `db:"content_type"`
	Location     string     `db:"location"`
	CreatedAt    time.Time  `db:"created_at"`
	CompletedAt  *time.Time `db:"completed_at"`
}

// Completed reports whether the record holds a stored answer.
func (r IdempotencyRecord) Completed() bool { return r.Status != nil }

// Idempotency outcomes of ReserveIdempotencyKey.
var (
	// ErrIdempotencyMismatch: the key was used with a different request.
	ErrIdempotencyMismatch = errors.New("store: idempotency key used with a different request")
	// ErrIdempotencyInProgress: the first request with this key is still running.
	ErrIdempotencyInProgress = errors.New("store: idempotency key in progress")
)

// ReserveIdempotencyKey claims (scope, key) for a request whose hash is
// hash. It returns:
//   - reserved=true: the caller runs the request, then calls
//     CompleteIdempotencyKey or ReleaseIdempotencyKey;
//   - reserved=false with a completed record: replay the stored answer;
//   - ErrIdempotencyMismatch: the key belongs to another request;
//   - ErrIdempotencyInProgress: the first request is still running.
//
// A completed record older than ttl counts as absent (and is replaced).
// A reservation never completed is taken over by the same request only
// once older than lease, and by another request once older than both
// lease and ttl. lease must be longer than its owner can possibly run
// (the HTTP API bounds its handlers below it), so a reservation younger
// than lease may have a running owner and is never taken over: the caller
// gets ErrIdempotencyInProgress. The returned record's CreatedAt is the
// reservation's fencing token for CompleteIdempotencyKey and
// ReleaseIdempotencyKey: a takeover gives the row a later created_at
// (now(), past the old one plus lease), so an owner that overran its lease
// can neither write its answer into nor free the reservation that replaced
// its own. The fence is "not reserved after me" rather than equality so
// that a test may age a reservation by moving its created_at back.
func (s *Store) ReserveIdempotencyKey(ctx context.Context, scope, key string, hash []byte, ttl, lease time.Duration) (IdempotencyRecord, bool, error) {
	var rec IdempotencyRecord
	err := s.db.GetContext(ctx, &rec, `
		INSERT INTO idempotency_keys (scope, key, request_hash) VALUES ($1, $2, $3)
		ON CONFLICT (scope, key) DO UPDATE
			SET request_hash = EXCLUDED.request_hash, status = NULL, response_body = NULL,
			    content_type = '', location = '', created_at = now(), completed_at = NULL
			WHERE (idempotency_keys.completed_at IS NOT NULL AND idempotency_keys.created_at < now() - $4::interval)
			   OR (idempotency_keys.completed_at IS NULL AND idempotency_keys.created_at < now() - $5::interval
			       AND (idempotency_keys.request_hash = EXCLUDED.request_hash OR idempotency_keys.created_at < now() - $4::interval))
		RETURNING scope, key, request_hash, status, response_body, content_type, location, created_at, completed_at`,
		scope, key, hash, pgInterval(ttl), pgInterval(lease))
	if err == nil {
		return rec, true, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return rec, false, fmt.Errorf("store: reserve idempotency key: %w", err)
	}
	err = s.db.GetContext(ctx, &rec, `SELECT scope, key, request_hash, status, response_body, content_type, location, created_at, completed_at
		FROM idempotency_keys WHERE scope = $1 AND key = $2`, scope, key)
	if errors.Is(err, sql.ErrNoRows) {
		// Released between the two statements: try once more.
		return s.ReserveIdempotencyKey(ctx, scope, key, hash, ttl, lease)
	}
	if err != nil {
		return rec, false, fmt.Errorf("store: read idempotency key: %w", err)
	}
	if !bytes.Equal(rec.RequestHash, hash) {
		return rec, false, ErrIdempotencyMismatch
	}
	if !rec.Completed() {
		return rec, false, ErrIdempotencyInProgress
	}
	return rec, false, nil
}

// CompleteIdempotencyKey stores the answer of the reservation of (scope,
// key) made at reservedAt (the CreatedAt ReserveIdempotencyKey returned).
// It fails with ErrNotFound when that reservation is gone or was taken
// over.
func (s *Store) CompleteIdempotencyKey(ctx context.Context, scope, key string, reservedAt time.Time, status int, contentType, location string, body []byte) error {
	res, err := s.db.ExecContext(ctx, `UPDATE idempotency_keys
		SET status = $4, content_type = $5, location = $6, response_body = $7, completed_at = now()
		WHERE scope = $1 AND key = $2 AND created_at <= $3 AND completed_at IS NULL`, scope, key, reservedAt, status, contentType, location, body)
	return oneRow(res, err, "idempotency key reservation")
}

// ReleaseIdempotencyKey deletes the uncompleted reservation made at
// reservedAt (the request failed; the client may retry with the same
// key). A reservation taken over since is left alone.
func (s *Store) ReleaseIdempotencyKey(ctx context.Context, scope, key string, reservedAt time.Time) error {
	_, err := s.db.ExecContext(ctx, `DELETE FROM idempotency_keys WHERE scope = $1 AND key = $2 AND created_at <= $3 AND completed_at IS NULL`, scope, key, reservedAt)
	if err != nil {
		return fmt.Errorf("store: release idempotency key: %w", err)
	}
	return nil
}

// PurgeIdempotencyKeys deletes records older than age and returns how many.
func (s *Store) PurgeIdempotencyKeys(ctx context.Context, age time.Duration) (int64, error) {
	res, err := s.db.ExecContext(ctx, `DELETE FROM idempotency_keys WHERE created_at < now() - $1::interval`, pgInterval(age))
	if err != nil {
		return 0, fmt.Errorf("store: purge idempotency keys: %w", err)
	}
	return res.RowsAffected()
}

// pgInterval renders a duration as a PostgreSQL interval literal.
func pgInterval(d time.Duration) string { return fmt.Sprintf("%d microseconds", d.Microseconds()) }
