package store

import (
	"context"
	"fmt"
	"time"
)

// CRL is the latest CRL published for one shard of an issuer.
type CRL struct {
	Issuer     string    `db:"issuer"`
	Shard      int       `db:"shard"`
	Number     int64     `db:"number"`
	ThisUpdate time.Time `db:"this_update"`
	NextUpdate time.Time `db:"next_update"`
	DER        []byte    `db:"der"`
}

// NextCRLNumber allocates the next CRLNumber of an issuer's shard in one
// atomic statement: numbers are strictly increasing (O14) however many
// signers run. A retried activity gets a new, higher number; gaps are fine.
func (s *Store) NextCRLNumber(ctx context.Context, issuer string, shard int) (int64, error) {
	var n int64
	err := s.db.GetContext(ctx, &n, `INSERT INTO crl_state (issuer, shard, last_number) VALUES ($1, $2, 1)
		ON CONFLICT (issuer, shard) DO UPDATE SET last_number = crl_state.last_number + 1, updated_at = now()
		RETURNING last_number`, issuer, shard)
	if err != nil {
		return 0, fmt.Errorf("store: next CRL number for %s shard %d: %w", issuer, shard, err)
	}
	return n, nil
}

// SaveCRL stores a signed CRL as the shard's latest, unless a CRL with a
// higher number is already stored (a late retry must not roll the
// published CRL back). saved reports whether c is now the latest. The
// number must come from NextCRLNumber.
func (s *Store) SaveCRL(ctx context.Context, c CRL) (saved bool, err error) {
	res, err := s.db.ExecContext(ctx, `UPDATE crl_state SET number = $3, this_update = $4, next_update = $5, der = $6, updated_at = now()
		WHERE issuer = $1 AND shard = $2 AND (number IS NULL OR number <= $3)`,
		c.Issuer, c.Shard, c.Number, c.ThisUpdate, c.NextUpdate, c.DER)
	if pqCode(err) == codeCheckViolation {
		return false, fmt.Errorf("store: CRL number %d for %s shard %d was never allocated; get numbers from NextCRLNumber", c.Number, c.Issuer, c.Shard)
	}
	if err != nil {
		return false, fmt.Errorf("store: save CRL %s shard %d: %w", c.Issuer, c.Shard, err)
	}
	n, _ := res.RowsAffected()
	if n == 1 {
		return true, nil
	}
	var exists bool
	if err := s.db.GetContext(ctx, &exists, `SELECT true FROM crl_state WHERE issuer = $1 AND shard = $2`, c.Issuer, c.Shard); err != nil {
		return false, notFound(err, "CRL state for %s shard %d (allocate a number with NextCRLNumber first)", c.Issuer, c.Shard)
	}
	return false, nil
}

// LatestCRL returns the shard's latest stored CRL, or ErrNotFound.
func (s *Store) LatestCRL(ctx context.Context, issuer string, shard int) (CRL, error) {
	var c CRL
	err := s.db.GetContext(ctx, &c, `SELECT issuer, shard, number, this_update, next_update, der FROM crl_state
		WHERE issuer = $1 AND shard = $2 AND der IS NOT NULL`, issuer, shard)
	return c, notFoundOrNil(err, "CRL for %s shard %d", issuer, shard)
}

// ListCRLs returns the latest CRL of every shard of issuer, by shard.
func (s *Store) ListCRLs(ctx context.Context, issuer string) ([]CRL, error) {
	var out []CRL
	err := s.db.SelectContext(ctx, &out, `SELECT issuer, shard, number, this_update, next_update, der FROM crl_state
		WHERE issuer = $1 AND der IS NOT NULL ORDER BY shard`, issuer)
	if err != nil {
		return nil, fmt.Errorf("store: list CRLs of %s: %w", issuer, err)
	}
	return out, nil
}
