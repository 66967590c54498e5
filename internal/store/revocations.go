package store

import (
	"context"
	"fmt"
	"time"

	"github.com/lib/pq"
)

// BR §7.2.2 CRL reason codes CertDesk may use. certificateHold (6) and the
// others are not allowed (O13).
const (
	ReasonUnspecified          = 0
	ReasonKeyCompromise        = 1
	ReasonAffiliationChanged   = 3
	ReasonSuperseded           = 4
	ReasonCessationOfOperation = 5
	ReasonPrivilegeWithdrawn   = 9
)

// ValidReasonCode reports whether code may appear in a CertDesk CRL.
func ValidReasonCode(code int) bool {
	switch code {
	case 0, 1, 3, 4, 5, 9:
		return true
	}
	return false
}

func checkReason(code int) error {
	if !ValidReasonCode(code) {
		return fmt.Errorf("store: revocation reason code %d is not allowed: BR §7.2.2 permits only 0, 1, 3, 4, 5 and 9 (no certificateHold)", code)
	}
	return nil
}

// Revocation is the record of a revocation (取消), open while RevokedAt is nil.
type Revocation struct {
	Serial          string     `db:"serial"`
	ReasonCode      int        `db:"reason_code"`
	RequestedByKind string     `db:"requested_by_kind"` // reseller, subscriber, key-holder, staff or ca
	RequestedByRef  string     `db:"requested_by_ref"`  // reseller id, subscriber id, staff id, incident id
	RequestedAt     time.Time  `db:"requested_at"`
	Deadline        *time.Time `db:"deadline"`
	RevokedAt       *time.Time `db:"revoked_at"`
	WorkflowID      string     `db:"workflow_id"`
}

const revocationCols = `serial, reason_code, requested_by_kind, requested_by_ref, requested_at, deadline, revoked_at, workflow_id`

// RequestRevocation records a revocation request and returns the stored
// record. Idempotent by serial. While the request is open a repeated request
// may only escalate it: the reason can rise to keyCompromise and the
// deadline can move earlier; the first requester stays on record.
func (s *Store) RequestRevocation(ctx context.Context, r Revocation) (Revocation, error) {
	if err := checkReason(r.ReasonCode); err != nil {
		return Revocation{}, err
	}
	r.Serial = NormalizeSerial(r.Serial)
	var out Revocation
	err := s.inTx(ctx, func(tx *sqlxTx) error {
		_, err := tx.ExecContext(ctx, `
			INSERT INTO revocations (serial, reason_code, requested_by_kind, requested_by_ref, requested_at, deadline, workflow_id)
			VALUES ($1, $2, $3, $4, $5, $6, $7)
			ON CONFLICT (serial) DO UPDATE SET
				reason_code = CASE WHEN EXCLUDED.reason_code = 1 THEN 1 ELSE revocations.reason_code END,
				deadline = LEAST(revocations.deadline, EXCLUDED.deadline)
			WHERE revocations.revoked_at IS NULL
			  AND ((EXCLUDED.reason_code = 1 AND revocations.reason_code <> 1)
			       OR EXCLUDED.deadline < revocations.deadline)`,
			r.Serial, r.ReasonCode, r.RequestedByKind, r.RequestedByRef, r.RequestedAt, r.Deadline, r.WorkflowID)
		if pqCode(err) == codeForeignKeyViolation {
			return fmt.Errorf("%w: certificate %s", ErrNotFound, r.Serial)
		}
		if err != nil {
			return fmt.Errorf("store: request revocation of %s: %w", r.Serial, err)
		}
		return tx.GetContext(ctx, &out, `SELECT `+revocationCols+` FROM revocations WHERE serial = $1`, r.Serial)
	})
	return out, err
}

// GetRevocation reads a revocation record.
func (s *Store) GetRevocation(ctx context.Context, serial string) (Revocation, error) {
	serial = NormalizeSerial(serial)
	var out Revocation
	err := s.db.GetContext(ctx, &out, `SELECT `+revocationCols+` FROM revocations WHERE serial = $1`, serial)
	return out, notFoundOrNil(err, "revocation of %s", serial)
}

// RevokeBatch describes one batch revocation.
type RevokeBatch struct {
	ReasonCode      int
	RequestedByKind string
	RequestedByRef  string
	WorkflowID      string
	RevokedAt       time.Time
}

// RevokeResult counts what a batch did.
type RevokeResult struct {
	Revoked        int      // newly revoked by this call
	AlreadyRevoked int      // were revoked before (a retry, or an earlier case)
	Unknown        []string // serials CertDesk never issued
}

// RevokeBatch revokes serials in one transaction: one
// UPDATE … WHERE serial = ANY($1) on certificates, one insert into
// revocations with ON CONFLICT, and removal of pre-signed "good" OCSP
// responses so the responder cannot serve one after revocation.
//
// Revoked stays revoked, and a retry changes nothing: an already revoked
// certificate keeps its revocation time and reason, except that the reason
// may rise to keyCompromise (1) (BR §7.2.2 lets the CA record compromise
// learnt later); no reason is ever weakened. An open request (see
// RequestRevocation) is closed with b's time; its first requester stays.
func (s *Store) RevokeBatch(ctx context.Context, serials []string, b RevokeBatch) (RevokeResult, error) {
	if err := checkReason(b.ReasonCode); err != nil {
		return RevokeResult{}, err
	}
	if b.RevokedAt.IsZero() {
		return RevokeResult{}, fmt.Errorf("store: RevokeBatch needs the revocation time (RevokedAt)")
	}
	serials = uniqueSerials(serials)
	arr := pq.StringArray(serials)
	var res RevokeResult
	err := s.inTx(ctx, func(tx *sqlxTx) error {
		if err := tx.SelectContext(ctx, &res.Unknown, `SELECT s FROM unnest($1::text[]) s
			WHERE NOT EXISTS (SELECT 1 FROM certificates c WHERE c.serial = s) ORDER BY s`, arr); err != nil {
			return fmt.Errorf("store: revoke batch: %w", err)
		}
		r, err := tx.ExecContext(ctx, `UPDATE certificates SET status = 'revoked' WHERE serial = ANY($1) AND status = 'valid'`, arr)
		if err != nil {
			return fmt.Errorf("store: revoke batch: %w", err)
		}
		n, _ := r.RowsAffected()
		res.Revoked = int(n)
		res.AlreadyRevoked = len(serials) - len(res.Unknown) - res.Revoked
		_, err = tx.ExecContext(ctx, `
			INSERT INTO revocations (serial, reason_code, requested_by_kind, requested_by_ref, requested_at, revoked_at, workflow_id)
			SELECT c.serial, $2, $3, $4, $5, $5, $6 FROM certificates c WHERE c.serial = ANY($1)
			`+revocationMerge,
			arr, b.ReasonCode, b.RequestedByKind, b.RequestedByRef, b.RevokedAt, b.WorkflowID)
		if err != nil {
			return fmt.Errorf("store: record revocations: %w", err)
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM ocsp_responses WHERE serial = ANY($1) AND status = 'good'`, arr)
		if err != nil {
			return fmt.Errorf("store: drop stale OCSP responses: %w", err)
		}
		return nil
	})
	return res, err
}

// RevokedEntry is one CRL entry.
type RevokedEntry struct {
	Serial     string    `db:"serial"`
	ReasonCode int       `db:"reason_code"`
	RevokedAt  time.Time `db:"revoked_at"`
}

// ListRevoked lists the entries of one CRL shard of issuer, in serial order.
// If validAt is set, certificates expired by then are left out (an entry
// may go once the certificate has expired).
func (s *Store) ListRevoked(ctx context.Context, issuer string, shard int, validAt time.Time) ([]RevokedEntry, error) {
	var out []RevokedEntry
	err := s.db.SelectContext(ctx, &out, `
		SELECT c.serial, r.reason_code, r.revoked_at
		FROM certificates c JOIN revocations r ON r.serial = c.serial
		WHERE c.issuer = $1 AND c.crl_shard = $2 AND c.status = 'revoked' AND r.revoked_at IS NOT NULL
		  AND ($3::timestamptz IS NULL OR c.not_after > $3)
		ORDER BY c.serial`, issuer, shard, nullTime(validAt))
	if err != nil {
		return nil, fmt.Errorf("store: list revoked for %s shard %d: %w", issuer, shard, err)
	}
	return out, nil
}

// ListOpenRevocations lists requests not yet carried out, earliest deadline
// first (staff escalation).
func (s *Store) ListOpenRevocations(ctx context.Context, limit int) ([]Revocation, error) {
	var out []Revocation
	err := s.db.SelectContext(ctx, &out, `SELECT `+revocationCols+` FROM revocations
		WHERE revoked_at IS NULL ORDER BY deadline NULLS LAST, serial LIMIT $1`, limit)
	if err != nil {
		return nil, fmt.Errorf("store: list open revocations: %w", err)
	}
	return out, nil
}

// nullTime maps the zero time to NULL.
func nullTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// revocationMerge is how a revocation row already present absorbs a new
// one: a requested revocation becomes revoked, the first reason stays, and
// keyCompromise (1) always wins (BR 4.9.1.1; RFC 5280 5.3.1).
const revocationMerge = `
			ON CONFLICT (serial) DO UPDATE SET
				revoked_at = COALESCE(revocations.revoked_at, EXCLUDED.revoked_at),
				reason_code = CASE
					WHEN EXCLUDED.reason_code = 1 OR revocations.reason_code = 1 THEN 1
					WHEN revocations.revoked_at IS NULL THEN EXCLUDED.reason_code
					ELSE revocations.reason_code END
			WHERE revocations.revoked_at IS NULL
			   OR (EXCLUDED.reason_code = 1 AND revocations.reason_code <> 1)`
