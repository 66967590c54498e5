package store

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// ErrAlreadyDecided: a verification already has a different final result.
var ErrAlreadyDecided = errors.New("store: verification already decided")

// Verification is an identity verification case (実在性・権限の確認, O2).
type Verification struct {
	ID          string     `db:"id"`
	SubjectKind string     `db:"subject_kind"` // application, disclosure or correction
	SubjectRef  string     `db:"subject_ref"`  // the id of that case
	Method      string     `db:"method"`       // email-otp, document or registry
	EvidenceRef string     `db:"evidence_ref"` // where the evidence is kept; no personal data
	Result      string     `db:"result"`       // pending, passed or failed
	DecidedBy   string     `db:"decided_by"`   // staff id, or "system"
	DecidedAt   *time.Time `db:"decided_at"`
	Attempts    int        `db:"attempts"`
	Locked      bool       `db:"locked"`
	WorkflowID  string     `db:"workflow_id"`
	CreatedAt   time.Time  `db:"created_at"`
	UpdatedAt   time.Time  `db:"updated_at"`
}

const verificationCols = `id, subject_kind, subject_ref, method, evidence_ref, result, decided_by, decided_at,
	attempts, locked, workflow_id, created_at, updated_at`

// CreateVerification records a pending verification. Idempotent by id.
func (s *Store) CreateVerification(ctx context.Context, v Verification) error {
	_, err := s.db.ExecContext(ctx, `
		INSERT INTO identity_verifications (id, subject_kind, subject_ref, method, workflow_id)
		VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (id) DO NOTHING`, v.ID, v.SubjectKind, v.SubjectRef, v.Method, v.WorkflowID)
	if err != nil {
		return fmt.Errorf("store: create verification %s: %w", v.ID, err)
	}
	return nil
}

// GetVerification reads a verification.
func (s *Store) GetVerification(ctx context.Context, id string) (Verification, error) {
	var v Verification
	err := s.db.GetContext(ctx, &v, `SELECT `+verificationCols+` FROM identity_verifications WHERE id = $1`, id)
	return v, notFoundOrNil(err, "verification %s", id)
}

// RecordVerificationAttempts stores the attempt count and lock the workflow
// holds. Monotonic, so a late retry never lowers the count or unlocks.
func (s *Store) RecordVerificationAttempts(ctx context.Context, id string, attempts int, locked bool) error {
	res, err := s.db.ExecContext(ctx, `UPDATE identity_verifications
		SET attempts = GREATEST(attempts, $2), locked = locked OR $3, updated_at = now()
		WHERE id = $1`, id, attempts, locked)
	return oneRow(res, err, "verification %s", id)
}

// DecideVerification records the final result (passed or failed). The first
// decision stands: repeating it is a no-op, a different one is
// ErrAlreadyDecided.
func (s *Store) DecideVerification(ctx context.Context, id, result, decidedBy, evidenceRef string, at time.Time) error {
	if result != "passed" && result != "failed" {
		return fmt.Errorf("store: verification result must be passed or failed, not %q", result)
	}
	res, err := s.db.ExecContext(ctx, `UPDATE identity_verifications
		SET result = $2, decided_by = $3, evidence_ref = $4, decided_at = $5, updated_at = now()
		WHERE id = $1 AND result = 'pending'`, id, result, decidedBy, evidenceRef, at)
	if err != nil {
		return fmt.Errorf("store: decide verification %s: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 1 {
		return nil
	}
	v, err := s.GetVerification(ctx, id)
	if err != nil {
		return err
	}
	if v.Result == result {
		return nil
	}
	return fmt.Errorf("%w: verification %s is already %s (by %s)", ErrAlreadyDecided, id, v.Result, v.DecidedBy)
}
