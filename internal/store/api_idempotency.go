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
// Records older than ttl count as absent (and are replaced); a reservation
// never completed within stale (a crashed process) is taken over.
func (s *Store) ReserveIdempotencyKey(ctx context.Context, scope, key string, hash []byte, ttl, stale time.Duration) (IdempotencyRecord, bool, error) {
	var rec IdempotencyRecord
	err := s.db.GetContext(ctx, &rec, `
		INSERT INTO idempotency_keys (scope, key, request_hash) VALUES ($1, $2, $3)
		ON CONFLICT (scope, key) DO UPDATE
			SET request_hash = EXCLUDED.request_hash, status = NULL, response_body = NULL,
			    content_type = '', location = '', created_at = now(), completed_at = NULL
			WHERE idempotency_keys.created_at < now() - $4::interval
			   OR (idempotency_keys.completed_at IS NULL AND idempotency_keys.created_at < now() - $5::interval
			       AND idempotency_keys.request_hash = EXCLUDED.request_hash)
		RETURNING scope, key, request_hash, status, response_body, content_type, location, created_at, completed_at`,
		scope, key, hash, pgInterval(ttl), pgInterval(stale))
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
		return s.ReserveIdempotencyKey(ctx, scope, key, hash, ttl, stale)
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

// CompleteIdempotencyKey stores the answer of a reserved key.
func (s *Store) CompleteIdempotencyKey(ctx context.Context, scope, key string, status int, contentType, location string, body []byte) error {
	res, err := s.db.ExecContext(ctx, `UPDATE idempotency_keys
		SET status = $3, content_type = $4, location = $5, response_body = $6, completed_at = now()
		WHERE scope = $1 AND key = $2 AND completed_at IS NULL`, scope, key, status, contentType, location, body)
	return oneRow(res, err, "idempotency key reservation")
}

// ReleaseIdempotencyKey deletes an uncompleted reservation (the request
// failed; the client may retry with the same key).
func (s *Store) ReleaseIdempotencyKey(ctx context.Context, scope, key string) error {
	_, err := s.db.ExecContext(ctx, `DELETE FROM idempotency_keys WHERE scope = $1 AND key = $2 AND completed_at IS NULL`, scope, key)
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
