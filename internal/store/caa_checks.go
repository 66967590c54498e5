package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// CAACheck is one CAA check of one name of an application, with its DNS
// evidence. CheckID names the check (the workflow's attempt), so a retried
// activity writes the same row.
type CAACheck struct {
	ApplicationID string          `db:"application_id"`
	Name          string          `db:"name"`
	CheckID       string          `db:"check_id"`
	Permitted     bool            `db:"permitted"`
	Rule          string          `db:"rule"`
	Reason        string          `db:"reason"`
	Record        string          `db:"record"`
	Evidence      json.RawMessage `db:"evidence"` // caa.Result
	CheckedAt     time.Time       `db:"checked_at"`
	IssueBy       time.Time       `db:"issue_by"`
}

// RecordCAACheck stores a check. Insert-once per (application, name, check).
func (s *Store) RecordCAACheck(ctx context.Context, c CAACheck) error {
	_, err := s.db.ExecContext(ctx, `
		INSERT INTO caa_checks (application_id, name, check_id, permitted, rule, reason, record, evidence, checked_at, issue_by)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
		ON CONFLICT (application_id, name, check_id) DO NOTHING`,
		c.ApplicationID, normalizeDomain(c.Name), c.CheckID, c.Permitted, c.Rule, c.Reason, c.Record, []byte(c.Evidence), c.CheckedAt, c.IssueBy)
	if err != nil {
		if pqCode(err) == codeForeignKeyViolation {
			return fmt.Errorf("%w: application %s", ErrNotFound, c.ApplicationID)
		}
		return fmt.Errorf("store: CAA check %s/%s: %w", c.ApplicationID, c.Name, err)
	}
	return nil
}

// LatestCAAChecks returns the newest check of each name of an application.
func (s *Store) LatestCAAChecks(ctx context.Context, applicationID string) ([]CAACheck, error) {
	var out []CAACheck
	err := s.db.SelectContext(ctx, &out, `SELECT DISTINCT ON (name) application_id, name, check_id, permitted, rule, reason,
		record, evidence, checked_at, issue_by FROM caa_checks WHERE application_id = $1
		ORDER BY name, checked_at DESC`, applicationID)
	if err != nil {
		return nil, fmt.Errorf("store: CAA checks of %s: %w", applicationID, err)
	}
	return out, nil
}
