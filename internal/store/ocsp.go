package store

import (
	"context"
	"fmt"
	"time"

	"github.com/lib/pq"

	"certdesk/internal/status"
)

// OCSPResponse is a pre-signed OCSP response for one serial.
type OCSPResponse struct {
	Serial     string    `db:"serial"`
	DER        []byte    `db:"der"`
	Status     string    `db:"status"` // good or revoked
	ProducedAt time.Time `db:"produced_at"`
	ThisUpdate time.Time `db:"this_update"`
	NextUpdate time.Time `db:"next_update"`
}

// UpsertOCSP stores a response; see UpsertOCSPBatch for the rules.
func (s *Store) UpsertOCSP(ctx context.Context, r OCSPResponse) (stored bool, err error) {
	n, err := s.UpsertOCSPBatch(ctx, []OCSPResponse{r})
	return n == 1, err
}

// UpsertOCSPBatch stores many responses in one statement and returns how
// many were stored. A response is skipped, not an error, when it would
// mislead: "good" for a certificate that is revoked (even by a revocation
// committing concurrently: the certificate row is locked and re-checked),
// "good" replacing "revoked", or one older (thisUpdate) than the stored
// one. Serials CertDesk never issued are skipped too: the responder must
// never say "good" for them (O14).
func (s *Store) UpsertOCSPBatch(ctx context.Context, rs []OCSPResponse) (int, error) {
	if len(rs) == 0 {
		return 0, nil
	}
	serials := make([]string, len(rs))
	ders := make(pq.ByteaArray, len(rs))
	statuses := make([]string, len(rs))
	produced := make([]string, len(rs))
	this := make([]string, len(rs))
	next := make([]string, len(rs))
	for i, r := range rs {
		if r.Status != status.OCSPGood && r.Status != status.OCSPRevoked {
			return 0, fmt.Errorf("store: OCSP status for %s must be good or revoked (unknown serials get no stored response), not %q", r.Serial, r.Status)
		}
		serials[i], ders[i], statuses[i] = NormalizeSerial(r.Serial), r.DER, r.Status
		produced[i], this[i], next[i] = pgTime(r.ProducedAt), pgTime(r.ThisUpdate), pgTime(r.NextUpdate)
	}
	res, err := s.db.ExecContext(ctx, `
		INSERT INTO ocsp_responses (serial, der, status, produced_at, this_update, next_update)
		SELECT u.serial, u.der, u.status, u.produced_at, u.this_update, u.next_update
		FROM unnest($1::text[], $2::bytea[], $3::text[], $4::timestamptz[], $5::timestamptz[], $6::timestamptz[])
			AS u(serial, der, status, produced_at, this_update, next_update)
		JOIN certificates c ON c.serial = u.serial
		WHERE NOT (c.status = 'revoked' AND u.status = 'good')
		ORDER BY u.serial
		FOR SHARE OF c
		ON CONFLICT (serial) DO UPDATE SET der = EXCLUDED.der, status = EXCLUDED.status,
			produced_at = EXCLUDED.produced_at, this_update = EXCLUDED.this_update,
			next_update = EXCLUDED.next_update, updated_at = now()
		WHERE ocsp_responses.this_update <= EXCLUDED.this_update
		  AND NOT (ocsp_responses.status = 'revoked' AND EXCLUDED.status = 'good')`,
		pq.StringArray(serials), ders, pq.StringArray(statuses), pq.StringArray(produced), pq.StringArray(this), pq.StringArray(next))
	if err != nil {
		return 0, fmt.Errorf("store: upsert OCSP responses: %w", err)
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}

// GetOCSP returns the stored response for a serial, or ErrNotFound.
func (s *Store) GetOCSP(ctx context.Context, serial string) (OCSPResponse, error) {
	serial = NormalizeSerial(serial)
	var r OCSPResponse
	err := s.db.GetContext(ctx, &r, `SELECT serial, der, status, produced_at, this_update, next_update FROM ocsp_responses WHERE serial = $1`, serial)
	return r, notFoundOrNil(err, "OCSP response for %s", serial)
}

// ListOCSPDue returns up to limit serials, after the serial after (keyset
// pagination), of unexpired certificates whose response is missing or has
// nextUpdate before refreshBefore: the work list of the OCSP signer.
func (s *Store) ListOCSPDue(ctx context.Context, refreshBefore time.Time, after string, limit int) ([]CertificateRef, error) {
	var out []CertificateRef
	err := s.db.SelectContext(ctx, &out, certRefSelect+`
		LEFT JOIN ocsp_responses o ON o.serial = c.serial
		WHERE c.serial > $1 AND c.not_after > now() AND (o.serial IS NULL OR o.next_update < $2)
		ORDER BY c.serial LIMIT $3`, NormalizeSerial(after), refreshBefore, limit)
	if err != nil {
		return nil, fmt.Errorf("store: list OCSP due: %w", err)
	}
	return out, nil
}

// pgTime formats a time for a timestamptz[] literal without losing precision.
func pgTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.999999Z07:00") }
