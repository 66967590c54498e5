package store

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"hash/fnv"
	"time"

	"certdesk/internal/db"
)

// ErrSerialTaken: the candidate serial is reserved by another application
// (with 127 random bits, practically never); draw a new one and retry.
var ErrSerialTaken = errors.New("store: serial already reserved by another application")

// Issuance is the serial reserved for an application before signing.
// ReservedAt (whole seconds) is meant as the certificate's notBefore, so a
// retried signing of the same application produces the same TBS.
type Issuance struct {
	ApplicationID string    `db:"application_id"`
	Serial        string    `db:"serial"`
	ReservedAt    time.Time `db:"reserved_at"`
}

// ReserveSerial reserves candidate as the serial of applicationID and
// returns the reservation. If the application already has one, that one is
// returned and candidate is ignored: this is what makes signing idempotent.
func (s *Store) ReserveSerial(ctx context.Context, applicationID, candidate string) (Issuance, error) {
	candidate = NormalizeSerial(candidate)
	var out Issuance
	err := s.inTx(ctx, func(tx *sqlxTx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO issuances (application_id, serial) VALUES ($1, $2)
			ON CONFLICT (application_id) DO NOTHING`, applicationID, candidate)
		switch pqCode(err) {
		case "":
		case codeUniqueViolation:
			return fmt.Errorf("%w: %s", ErrSerialTaken, candidate)
		case codeForeignKeyViolation:
			return fmt.Errorf("%w: application %s", ErrNotFound, applicationID)
		case codeCheckViolation:
			return fmt.Errorf("store: serial %q is not a positive hex integer of at most 20 octets: %w", candidate, err)
		default:
			return fmt.Errorf("store: reserve serial for %s: %w", applicationID, err)
		}
		return tx.GetContext(ctx, &out, `SELECT application_id, serial, reserved_at FROM issuances WHERE application_id = $1`, applicationID)
	})
	return out, err
}

// GetIssuance reads an application's reservation.
func (s *Store) GetIssuance(ctx context.Context, applicationID string) (Issuance, error) {
	var out Issuance
	err := s.db.GetContext(ctx, &out, `SELECT application_id, serial, reserved_at FROM issuances WHERE application_id = $1`, applicationID)
	return out, notFoundOrNil(err, "issuance of application %s", applicationID)
}

// issuanceSlots bounds the issuance locks held at once in this process.
// Each holder keeps one pooled connection for its lock and needs a second
// for its reads and writes: with as many holders as the pool has
// connections, all would wait for each other. At most half the pool holds
// locks.
var issuanceSlots = make(chan struct{}, db.MaxOpenConns/2)

// WithIssuanceLock runs fn while holding the advisory lock of one
// application's issuance, so that concurrent or retried signings of the
// same application run one after the other (the second then finds the
// first's certificate). The lock is a session lock on a dedicated pooled
// connection, released when fn returns; fn's own queries use other
// connections. It waits for a free slot and for the lock, or for ctx.
func (s *Store) WithIssuanceLock(ctx context.Context, applicationID string, fn func(ctx context.Context) error) error {
	select {
	case issuanceSlots <- struct{}{}:
		defer func() { <-issuanceSlots }()
	case <-ctx.Done():
		return ctx.Err()
	}
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	lock := issuanceLockKey(applicationID)
	if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock($1)`, lock); err != nil {
		// A wait cancelled just as the lock was granted would leave the
		// lock held by a pooled session: drop the session instead.
		_ = conn.Raw(func(any) error { return driver.ErrBadConn })
		return fmt.Errorf("store: issuance lock of %s: %w", applicationID, err)
	}
	defer conn.ExecContext(context.Background(), `SELECT pg_advisory_unlock($1)`, lock) //nolint:errcheck
	return fn(ctx)
}

// issuanceLockKey is the advisory lock key of an application's issuance:
// FNV-1a of "issue:<id>", shifted to a non-negative int64. Workers of every
// version must derive the same key, or two could sign at once.
func issuanceLockKey(applicationID string) int64 {
	h := fnv.New64a()
	h.Write([]byte("issue:" + applicationID))
	return int64(h.Sum64() >> 1)
}
