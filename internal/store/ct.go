package store

import (
	"context"
	"fmt"
	"time"
)

// SCT is a signed certificate timestamp a log returned for a
// precertificate, as stored: the log's ID, the SCT's time and its TLS
// encoding (RFC 6962 §3.2).
type SCT struct {
	LogID     []byte    `db:"log_id"`
	Timestamp time.Time `db:"sct_timestamp"`
	Raw       []byte    `db:"raw"`
}

// SaveSCT records the SCT one log returned for the precertificate serial.
// Idempotent: a log's first stored SCT stays (a log answering a resubmission
// may sign a new timestamp; either is valid, one is kept).
func (s *Store) SaveSCT(ctx context.Context, serial string, sct SCT) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO certificate_scts (serial, log_id, sct_timestamp, raw)
		VALUES ($1, $2, $3, $4) ON CONFLICT (serial, log_id) DO NOTHING`,
		NormalizeSerial(serial), sct.LogID, sct.Timestamp.UTC(), sct.Raw)
	switch pqCode(err) {
	case "":
		return nil
	case codeForeignKeyViolation:
		return fmt.Errorf("%w: no certificate %s for an SCT", ErrNotFound, serial)
	default:
		return fmt.Errorf("store: save SCT of %s: %w", serial, err)
	}
}

// ListSCTs lists the stored SCTs of serial, oldest first.
func (s *Store) ListSCTs(ctx context.Context, serial string) ([]SCT, error) {
	var out []SCT
	if err := s.db.SelectContext(ctx, &out, `SELECT log_id, sct_timestamp, raw FROM certificate_scts
		WHERE serial = $1 ORDER BY sct_timestamp, log_id`, NormalizeSerial(serial)); err != nil {
		return nil, fmt.Errorf("store: list SCTs of %s: %w", serial, err)
	}
	return out, nil
}

// StoreFinalCertificate replaces precertificate serial's DER with the final
// certificate and marks its application issued, in one transaction.
// Idempotent: when the final certificate is already stored it is a no-op
// if der is that certificate and ErrConflict otherwise (a second final
// certificate for one precertificate is misissuance: nothing is written).
func (s *Store) StoreFinalCertificate(ctx context.Context, serial string, der []byte) error {
	serial = NormalizeSerial(serial)
	enc, err := s.seal("certificates", "der_enc", serial, der)
	if err != nil {
		return err
	}
	return s.inTx(ctx, func(tx *sqlxTx) error {
		var row struct {
			State         string `db:"ct_state"`
			ApplicationID string `db:"application_id"`
			DEREnc        []byte `db:"der_enc"`
		}
		if err := tx.GetContext(ctx, &row, `SELECT ct_state, application_id, der_enc FROM certificates WHERE serial = $1 FOR UPDATE`, serial); err != nil {
			return notFound(err, "precertificate %s", serial)
		}
		switch row.State {
		case CTPrecert:
			if _, err := tx.ExecContext(ctx, `UPDATE certificates SET der_enc = $2, ct_state = 'final' WHERE serial = $1`, serial, enc); err != nil {
				return fmt.Errorf("store: store final certificate %s: %w", serial, err)
			}
		case CTFinal:
			stored, err := s.open("certificates", "der_enc", serial, row.DEREnc)
			if err != nil {
				return err
			}
			if string(stored) != string(der) {
				return fmt.Errorf("%w: certificate %s already has a different final certificate", ErrConflict, serial)
			}
		default:
			return fmt.Errorf("%w: certificate %s is not a precertificate (CT state %q)", ErrConflict, serial, row.State)
		}
		return markIssued(ctx, tx, row.ApplicationID, serial)
	})
}
