package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"time"
)

// Staff is a CertDesk staff member with a personal credential.
type Staff struct {
	ID          string
	DisplayName string
	TokenPrefix string // first characters of the token, for display
	CreatedAt   time.Time
	DisabledAt  *time.Time
}

// Active reports whether the staff member may act.
func (s Staff) Active() bool { return s.DisabledAt == nil }

type staffRow struct {
	ID          string     `db:"id"`
	DisplayName string     `db:"display_name"`
	TokenPrefix string     `db:"token_prefix"`
	CreatedAt   time.Time  `db:"created_at"`
	DisabledAt  *time.Time `db:"disabled_at"`
}

func (r staffRow) staff() Staff {
	return Staff{ID: r.ID, DisplayName: r.DisplayName, TokenPrefix: r.TokenPrefix, CreatedAt: r.CreatedAt, DisabledAt: r.DisabledAt}
}

const staffCols = `id, display_name, token_prefix, created_at, disabled_at`

// staffTokenPurpose separates staff token digests from every other blind
// index, so a digest here matches nothing elsewhere.
const staffTokenPurpose = "staff-token"

// GenerateStaffToken returns a new personal staff bearer token ("cds_" + 256
// random bits, base64url). Print it once; the store keeps only its digest.
func GenerateStaffToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("store: reading random staff token: %w", err)
	}
	return "cds_" + base64.RawURLEncoding.EncodeToString(b), nil
}

func (s *Store) staffDigest(token string) (string, error) {
	if s.bidx == nil {
		return "", ErrNoKeys
	}
	return hex.EncodeToString(s.bidx.Sum(staffTokenPurpose, token)), nil
}

// CreateStaff inserts a staff member whose credential is token (only its
// keyed digest is stored). An existing id is ErrConflict: a staff member's
// token is never replaced silently.
func (s *Store) CreateStaff(ctx context.Context, id, name, token string) error {
	if len(token) < 16 {
		return errors.New("store: staff token too short")
	}
	digest, err := s.staffDigest(token)
	if err != nil {
		return err
	}
	var inserted bool
	err = s.db.GetContext(ctx, &inserted, `
		INSERT INTO staff (id, display_name, token_digest, token_prefix)
		VALUES ($1, $2, $3, $4)
		ON CONFLICT (id) DO NOTHING
		RETURNING true`, id, name, digest, token[:APIKeyPrefixLen])
	switch {
	case err == nil:
		return nil
	case errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("%w: staff member %s exists", ErrConflict, id)
	case pqCode(err) == codeCheckViolation:
		return fmt.Errorf("store: staff member %q refused (id: letters, digits, '.', '_', '@' or '-', at most 64; name not empty): %w", id, err)
	}
	return fmt.Errorf("store: create staff %s: %w", id, err)
}

// GetStaff reads a staff member by id, disabled or not.
func (s *Store) GetStaff(ctx context.Context, id string) (Staff, error) {
	var row staffRow
	if err := s.db.GetContext(ctx, &row, `SELECT `+staffCols+` FROM staff WHERE id = $1`, id); err != nil {
		return Staff{}, notFound(err, "staff member %s", id)
	}
	return row.staff(), nil
}

// StaffByToken authenticates a personal staff token: the active staff
// member it belongs to, or ErrNotFound (unknown or disabled, not told apart).
func (s *Store) StaffByToken(ctx context.Context, token string) (Staff, error) {
	digest, err := s.staffDigest(token)
	if err != nil {
		return Staff{}, err
	}
	var row staffRow
	if err := s.db.GetContext(ctx, &row, `SELECT `+staffCols+` FROM staff
		WHERE token_digest = $1 AND disabled_at IS NULL`, digest); err != nil {
		return Staff{}, notFound(err, "staff member with this token")
	}
	return row.staff(), nil
}

// ListStaff returns every staff member, by id. No secrets.
func (s *Store) ListStaff(ctx context.Context) ([]Staff, error) {
	var rows []staffRow
	if err := s.db.SelectContext(ctx, &rows, `SELECT `+staffCols+` FROM staff ORDER BY id`); err != nil {
		return nil, fmt.Errorf("store: list staff: %w", err)
	}
	out := make([]Staff, len(rows))
	for i, r := range rows {
		out[i] = r.staff()
	}
	return out, nil
}

// DisableStaff stops a staff member's token from authenticating and their
// name from being accepted on decisions. Idempotent: the first time is kept.
func (s *Store) DisableStaff(ctx context.Context, id string, at time.Time) error {
	res, err := s.db.ExecContext(ctx, `UPDATE staff SET disabled_at = COALESCE(disabled_at, $2) WHERE id = $1`, id, at)
	return oneRow(res, err, "staff member %s", id)
}
