package store

import (
	"context"
	"errors"
	"fmt"
	"time"
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
