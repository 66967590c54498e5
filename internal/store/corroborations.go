package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// Corroboration is one round of Multi-Perspective Issuance Corroboration
// for one domain and one check (dcv or caa): what the primary perspective
// determined, what each remote perspective determined, and the verdict.
type Corroboration struct {
	ApplicationID  string          `db:"application_id"`
	Domain         string          `db:"domain"`
	Check          string          `db:"check_type"` // dcv or caa
	Round          int             `db:"round"`
	PrimaryOutcome string          `db:"primary_outcome"`
	OK             bool            `db:"ok"`
	Reason         string          `db:"reason"`
	Determinations json.RawMessage `db:"determinations"` // []mpic.Determination
	Decision       json.RawMessage `db:"decision"`       // mpic.Decision
	DecidedAt      time.Time       `db:"decided_at"`
}

// RecordCorroboration stores one round. Insert-once: a retry of the same
// round leaves the first row as it was.
func (s *Store) RecordCorroboration(ctx context.Context, c Corroboration) error {
	_, err := s.db.ExecContext(ctx, `
		INSERT INTO corroborations (application_id, domain, check_type, round, primary_outcome, ok, reason, determinations, decision, decided_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
		ON CONFLICT (application_id, domain, check_type, round) DO NOTHING`,
		c.ApplicationID, normalizeDomain(c.Domain), c.Check, c.Round, c.PrimaryOutcome, c.OK, c.Reason,
		[]byte(c.Determinations), []byte(c.Decision), c.DecidedAt)
	if err != nil {
		if pqCode(err) == codeForeignKeyViolation {
			return fmt.Errorf("%w: application %s", ErrNotFound, c.ApplicationID)
		}
		return fmt.Errorf("store: corroboration %s/%s/%s/%d: %w", c.ApplicationID, c.Domain, c.Check, c.Round, err)
	}
	return nil
}

// ListCorroborations lists an application's corroboration rounds by
// domain, check and round.
func (s *Store) ListCorroborations(ctx context.Context, applicationID string) ([]Corroboration, error) {
	var out []Corroboration
	err := s.db.SelectContext(ctx, &out, `SELECT application_id, domain, check_type, round, primary_outcome, ok, reason,
		determinations, decision, decided_at FROM corroborations WHERE application_id = $1
		ORDER BY domain, check_type, round`, applicationID)
	if err != nil {
		return nil, fmt.Errorf("store: corroborations of %s: %w", applicationID, err)
	}
	return out, nil
}
