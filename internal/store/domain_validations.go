package store

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// DomainValidation is the domain control validation of one domain of an
// application (BR §3.2.2.4: HTTP file or DNS TXT).
type DomainValidation struct {
	ApplicationID string     `db:"application_id"`
	Domain        string     `db:"domain"`
	Method        string     `db:"method"` // http-01 or dns-txt
	Token         string     `db:"token"`
	Result        string     `db:"result"` // pending, valid or invalid
	Detail        string     `db:"detail"` // why it failed; no personal data
	ValidatedAt   *time.Time `db:"validated_at"`
	CreatedAt     time.Time  `db:"created_at"`
	UpdatedAt     time.Time  `db:"updated_at"`
}

const domainValidationCols = `application_id, domain, method, token, result, detail, validated_at, created_at, updated_at`

// EnsureDomainValidation records a pending validation and returns the stored
// row. Idempotent per (application, domain): a retry returns the first
// token, so the value the subscriber published stays the one checked.
func (s *Store) EnsureDomainValidation(ctx context.Context, dv DomainValidation) (DomainValidation, error) {
	dv.Domain = normalizeDomain(dv.Domain)
	_, err := s.db.ExecContext(ctx, `
		INSERT INTO domain_validations (application_id, domain, method, token)
		VALUES ($1, $2, $3, $4)
		ON CONFLICT (application_id, domain) DO NOTHING`, dv.ApplicationID, dv.Domain, dv.Method, dv.Token)
	if err != nil {
		if pqCode(err) == codeForeignKeyViolation {
			return DomainValidation{}, fmt.Errorf("%w: application %s", ErrNotFound, dv.ApplicationID)
		}
		return DomainValidation{}, fmt.Errorf("store: domain validation %s/%s: %w", dv.ApplicationID, dv.Domain, err)
	}
	var out DomainValidation
	err = s.db.GetContext(ctx, &out, `SELECT `+domainValidationCols+` FROM domain_validations
		WHERE application_id = $1 AND domain = $2`, dv.ApplicationID, dv.Domain)
	return out, notFoundOrNil(err, "domain validation %s/%s", dv.ApplicationID, dv.Domain)
}

// SetDomainValidationResult records the outcome of a check. Idempotent: it
// sets absolute values, so a retry writes the same row again.
func (s *Store) SetDomainValidationResult(ctx context.Context, applicationID, domain, result, detail string, at time.Time) error {
	var validated *time.Time
	if result == "valid" {
		validated = &at
	}
	res, err := s.db.ExecContext(ctx, `UPDATE domain_validations
		SET result = $3, detail = $4, validated_at = $5, updated_at = now()
		WHERE application_id = $1 AND domain = $2`, applicationID, normalizeDomain(domain), result, detail, validated)
	return oneRow(res, err, "domain validation %s/%s", applicationID, domain)
}

// ListDomainValidations lists an application's validations by domain.
func (s *Store) ListDomainValidations(ctx context.Context, applicationID string) ([]DomainValidation, error) {
	var out []DomainValidation
	err := s.db.SelectContext(ctx, &out, `SELECT `+domainValidationCols+` FROM domain_validations
		WHERE application_id = $1 ORDER BY domain`, applicationID)
	if err != nil {
		return nil, fmt.Errorf("store: list domain validations of %s: %w", applicationID, err)
	}
	return out, nil
}

// normalizeDomain lower-cases and drops a trailing dot, as DNS compares.
func normalizeDomain(d string) string {
	return strings.TrimSuffix(strings.ToLower(strings.TrimSpace(d)), ".")
}
