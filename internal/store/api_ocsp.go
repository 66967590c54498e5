package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/lib/pq"
)

// OCSPForIssuer is what the OCSP front end needs for one request.
type OCSPForIssuer struct {
	// Issued: the serial is a certificate of this issuer. When false the
	// responder must answer "unauthorized", never "good" (O14).
	Issued bool
	// Response is the pre-signed response, nil when none is stored yet.
	Response *OCSPResponse
}

// GetOCSPForIssuer reads, in one statement, whether serial was issued by
// issuer and its pre-signed OCSP response. It needs no key ring.
func (s *Store) GetOCSPForIssuer(ctx context.Context, issuer, serial string) (OCSPForIssuer, error) {
	serial = NormalizeSerial(serial)
	var row struct {
		Serial     string         `db:"serial"`
		DER        []byte         `db:"der"`
		Status     sql.NullString `db:"status"`
		ProducedAt sql.NullTime   `db:"produced_at"`
		ThisUpdate sql.NullTime   `db:"this_update"`
		NextUpdate sql.NullTime   `db:"next_update"`
	}
	err := s.db.GetContext(ctx, &row, `SELECT c.serial, o.der, o.status, o.produced_at, o.this_update, o.next_update
		FROM certificates c LEFT JOIN ocsp_responses o ON o.serial = c.serial
		WHERE c.serial = $1 AND c.issuer = $2`, serial, issuer)
	if errors.Is(err, sql.ErrNoRows) {
		return OCSPForIssuer{}, nil
	}
	if err != nil {
		return OCSPForIssuer{}, fmt.Errorf("store: OCSP lookup of %s: %w", serial, err)
	}
	out := OCSPForIssuer{Issued: true}
	if row.DER != nil {
		out.Response = &OCSPResponse{Serial: row.Serial, DER: row.DER, Status: row.Status.String,
			ProducedAt: row.ProducedAt.Time, ThisUpdate: row.ThisUpdate.Time, NextUpdate: row.NextUpdate.Time}
	}
	return out, nil
}

// GetOCSPForIssuerBatch is GetOCSPForIssuer for many serials of one issuer
// in one statement (the OCSP front end's cache refresh). The map has an
// entry for every serial asked, keyed by the serial as given.
func (s *Store) GetOCSPForIssuerBatch(ctx context.Context, issuer string, serials []string) (map[string]OCSPForIssuer, error) {
	out := make(map[string]OCSPForIssuer, len(serials))
	if len(serials) == 0 {
		return out, nil
	}
	norm := normalizeSerials(serials)
	var rows []struct {
		Serial     string         `db:"serial"`
		Issued     bool           `db:"issued"`
		DER        []byte         `db:"der"`
		Status     sql.NullString `db:"status"`
		ProducedAt sql.NullTime   `db:"produced_at"`
		ThisUpdate sql.NullTime   `db:"this_update"`
		NextUpdate sql.NullTime   `db:"next_update"`
	}
	err := s.db.SelectContext(ctx, &rows, `SELECT u.serial, c.serial IS NOT NULL AS issued, o.der, o.status, o.produced_at, o.this_update, o.next_update
		FROM unnest($1::text[]) AS u(serial)
		LEFT JOIN certificates c ON c.serial = u.serial AND c.issuer = $2
		LEFT JOIN ocsp_responses o ON o.serial = c.serial`, pq.StringArray(norm), issuer)
	if err != nil {
		return nil, fmt.Errorf("store: OCSP batch lookup of %d serials: %w", len(serials), err)
	}
	byNorm := make(map[string]OCSPForIssuer, len(rows))
	for _, row := range rows {
		res := OCSPForIssuer{Issued: row.Issued}
		if row.Issued && row.DER != nil {
			res.Response = &OCSPResponse{Serial: row.Serial, DER: row.DER, Status: row.Status.String,
				ProducedAt: row.ProducedAt.Time, ThisUpdate: row.ThisUpdate.Time, NextUpdate: row.NextUpdate.Time}
		}
		byNorm[row.Serial] = res
	}
	for i, s := range serials {
		out[s] = byNorm[norm[i]]
	}
	return out, nil
}
