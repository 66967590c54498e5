package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// ProvisionStop is a request to stop provision to third parties (O9) and
// staff's decision on it.
type ProvisionStop struct {
	InquiryID   string     `db:"inquiry_id"`
	Status      string     `db:"status"` // requested, stopped or refused
	DecidedBy   string     `db:"decided_by"`
	RequestedAt time.Time  `db:"requested_at"`
	DecidedAt   *time.Time `db:"decided_at"`
}

// Provision stop statuses.
const (
	ProvisionStopRequested = "requested"
	ProvisionStopStopped   = "stopped"
	ProvisionStopRefused   = "refused"
)

// RequestProvisionStop registers a stop request received as inquiry
// inquiryID (kind stop_provision). Idempotent.
func (s *Store) RequestProvisionStop(ctx context.Context, inquiryID string, at time.Time) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO provision_stops (inquiry_id, requested_at) VALUES ($1, $2)
		ON CONFLICT (inquiry_id) DO NOTHING`, inquiryID, at)
	if pqCode(err) == codeForeignKeyViolation {
		return fmt.Errorf("%w: inquiry %s", ErrNotFound, inquiryID)
	}
	if err != nil {
		return fmt.Errorf("store: request provision stop %s: %w", inquiryID, err)
	}
	return nil
}

// DecideProvisionStop records staff's decision (stopped or refused). The
// first decision stays: the same one again is a no-op, another is
// ErrConflict.
func (s *Store) DecideProvisionStop(ctx context.Context, inquiryID, status, decidedBy string, at time.Time) error {
	if status != ProvisionStopStopped && status != ProvisionStopRefused {
		return fmt.Errorf("store: provision stop decision %q is not stopped or refused", status)
	}
	res, err := s.db.ExecContext(ctx, `UPDATE provision_stops SET status = $2, decided_by = $3, decided_at = $4
		WHERE inquiry_id = $1 AND status = 'requested'`, inquiryID, status, decidedBy, at)
	if err != nil {
		return fmt.Errorf("store: decide provision stop %s: %w", inquiryID, err)
	}
	if n, _ := res.RowsAffected(); n == 1 {
		return nil
	}
	cur, err := s.GetProvisionStop(ctx, inquiryID)
	if err != nil {
		return err
	}
	if cur.Status == status {
		return nil
	}
	return fmt.Errorf("%w: provision stop %s is already %s", ErrConflict, inquiryID, cur.Status)
}

// GetProvisionStop reads the stop request registered for an inquiry.
func (s *Store) GetProvisionStop(ctx context.Context, inquiryID string) (ProvisionStop, error) {
	var p ProvisionStop
	err := s.db.GetContext(ctx, &p, `SELECT inquiry_id, status, decided_by, requested_at, decided_at
		FROM provision_stops WHERE inquiry_id = $1`, inquiryID)
	return p, notFoundOrNil(err, "provision stop %s", inquiryID)
}

// ProvisionStoppedForEmail reports whether staff stopped provision to third
// parties for the person writing from this address: what provision code
// (for example the reseller API's reads) consults.
func (s *Store) ProvisionStoppedForEmail(ctx context.Context, email string) (bool, error) {
	if s.bidx == nil {
		return false, ErrNoKeys
	}
	idx := s.bidx.Email(email)
	if idx == nil {
		return false, nil
	}
	var stopped bool
	err := s.db.GetContext(ctx, &stopped, `SELECT EXISTS (SELECT 1 FROM provision_stops p JOIN inquiries q ON q.id = p.inquiry_id
		WHERE q.contact_bidx = $1 AND p.status = 'stopped')`, idx)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return false, fmt.Errorf("store: provision stop lookup: %w", err)
	}
	return stopped, nil
}
