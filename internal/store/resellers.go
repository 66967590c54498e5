package store

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"time"
)

// Reseller is a designated reseller (指定事業者).
type Reseller struct {
	ID           string
	Name         string
	APIKeyHash   string // SHA-256 hex of the bearer key
	APIKeyPrefix string // first characters of the key, for display
	ContactEmail string // where reseller notices go; encrypted at rest
	CreatedAt    time.Time
	DisabledAt   *time.Time
}

type resellerRow struct {
	ID              string     `db:"id"`
	Name            string     `db:"name"`
	APIKeyHash      string     `db:"api_key_hash"`
	APIKeyPrefix    string     `db:"api_key_prefix"`
	ContactEmailEnc []byte     `db:"contact_email_enc"`
	CreatedAt       time.Time  `db:"created_at"`
	DisabledAt      *time.Time `db:"disabled_at"`
}

const resellerCols = `id, name, api_key_hash, api_key_prefix, contact_email_enc, created_at, disabled_at`

// APIKeyPrefixLen is how much of a key is kept in clear for display.
const APIKeyPrefixLen = 12

// GenerateAPIKey returns a new reseller bearer key ("cdk_" + 43 characters
// of base64url, 256 random bits) and its display prefix. Print the key once;
// store only HashAPIKey(key).
func GenerateAPIKey() (key, prefix string, err error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", "", fmt.Errorf("store: reading random API key: %w", err)
	}
	key = "cdk_" + base64.RawURLEncoding.EncodeToString(b)
	return key, key[:APIKeyPrefixLen], nil
}

// HashAPIKey is the SHA-256 hex stored for a bearer key. Keys carry 256
// random bits, so a fast unsalted hash is enough and keeps lookups indexed.
func HashAPIKey(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}

// CreateReseller inserts a reseller. Idempotent by id; an existing id with a
// different key hash is ErrConflict (use SetResellerKey to change keys).
func (s *Store) CreateReseller(ctx context.Context, r Reseller) error {
	email, err := s.sealOpt("resellers", "contact_email_enc", r.ID, r.ContactEmail)
	if err != nil {
		return err
	}
	var inserted bool
	err = s.db.GetContext(ctx, &inserted, `
		INSERT INTO resellers (id, name, api_key_hash, api_key_prefix, contact_email_enc)
		VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (id) DO NOTHING
		RETURNING true`, r.ID, r.Name, r.APIKeyHash, r.APIKeyPrefix, email)
	switch {
	case err == nil:
		return nil
	case pqCode(err) == codeUniqueViolation:
		return fmt.Errorf("%w: this API key hash is already used by another reseller; generate a new key", ErrConflict)
	case pqCode(err) == codeCheckViolation:
		return fmt.Errorf("store: reseller %q refused (id must look like rs_…, key hash must be SHA-256 hex): %w", r.ID, err)
	case !errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("store: create reseller %s: %w", r.ID, err)
	}
	// The id exists: a retry is fine, a different key is not.
	existing, gerr := s.GetReseller(ctx, r.ID)
	if gerr != nil {
		return gerr
	}
	if existing.APIKeyHash != r.APIKeyHash {
		return fmt.Errorf("%w: reseller %s exists with another API key; use SetResellerKey to rotate it", ErrConflict, r.ID)
	}
	return nil
}

// GetReseller reads a reseller by id, disabled or not.
func (s *Store) GetReseller(ctx context.Context, id string) (Reseller, error) {
	var row resellerRow
	if err := s.db.GetContext(ctx, &row, `SELECT `+resellerCols+` FROM resellers WHERE id = $1`, id); err != nil {
		return Reseller{}, notFound(err, "reseller %s", id)
	}
	return s.resellerFromRow(row)
}

// ResellerByKeyHash authenticates a bearer key: it returns the enabled
// reseller whose key hashes to hash, or ErrNotFound (unknown or disabled,
// not told apart so the API cannot be probed).
func (s *Store) ResellerByKeyHash(ctx context.Context, hash string) (Reseller, error) {
	var row resellerRow
	err := s.db.GetContext(ctx, &row, `SELECT `+resellerCols+` FROM resellers
		WHERE api_key_hash = $1 AND disabled_at IS NULL`, hash)
	if err != nil {
		return Reseller{}, notFound(err, "reseller with this API key")
	}
	return s.resellerFromRow(row)
}

// SetResellerKey replaces a reseller's key (the old one stops working).
func (s *Store) SetResellerKey(ctx context.Context, id, hash, prefix string) error {
	res, err := s.db.ExecContext(ctx, `UPDATE resellers SET api_key_hash = $2, api_key_prefix = $3 WHERE id = $1`, id, hash, prefix)
	return oneRow(res, err, "reseller %s", id)
}

// DisableReseller stops a reseller's key from authenticating. Idempotent: the
// first disable time is kept.
func (s *Store) DisableReseller(ctx context.Context, id string, at time.Time) error {
	res, err := s.db.ExecContext(ctx, `UPDATE resellers SET disabled_at = COALESCE(disabled_at, $2) WHERE id = $1`, id, at)
	return oneRow(res, err, "reseller %s", id)
}

func (s *Store) resellerFromRow(row resellerRow) (Reseller, error) {
	o := s.opener("resellers", row.ID)
	r := Reseller{
		ID: row.ID, Name: row.Name, APIKeyHash: row.APIKeyHash, APIKeyPrefix: row.APIKeyPrefix,
		ContactEmail: o.str("contact_email_enc", row.ContactEmailEnc),
		CreatedAt:    row.CreatedAt, DisabledAt: row.DisabledAt,
	}
	return r, o.err
}
