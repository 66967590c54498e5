package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Correction statuses.
const (
	CorrectionReceived  = "received"
	CorrectionApplied   = "applied"   // contact-only change written
	CorrectionReissuing = "reissuing" // printed change: revocation and new application under way
	CorrectionCompleted = "completed"
	CorrectionRejected  = "rejected"
	CorrectionFailed    = "failed"
)

// Correction is a reseller-mediated correction (訂正, O5). Old and new
// values are field name → value maps, encrypted together as JSON.
type Correction struct {
	ID               string
	Serial           string
	ResellerID       string
	OldValues        map[string]string
	NewValues        map[string]string
	Classification   string // contact or printed
	Status           string
	RevocationSerial string
	NewApplicationID string
	WorkflowID       string
	CreatedAt        time.Time
	UpdatedAt        time.Time
}

type correctionRow struct {
	ID               string         `db:"id"`
	Serial           string         `db:"serial"`
	ResellerID       string         `db:"reseller_id"`
	OldValuesEnc     []byte         `db:"old_values_enc"`
	NewValuesEnc     []byte         `db:"new_values_enc"`
	Classification   string         `db:"classification"`
	Status           string         `db:"status"`
	RevocationSerial sql.NullString `db:"revocation_serial"`
	NewApplicationID sql.NullString `db:"new_application_id"`
	WorkflowID       string         `db:"workflow_id"`
	CreatedAt        time.Time      `db:"created_at"`
	UpdatedAt        time.Time      `db:"updated_at"`
}

const correctionCols = `id, serial, reseller_id, old_values_enc, new_values_enc, classification, status,
	revocation_serial, new_application_id, workflow_id, created_at, updated_at`

// CreateCorrection records a correction as received. Idempotent by id; the
// same id for another certificate or reseller is ErrConflict.
func (s *Store) CreateCorrection(ctx context.Context, c Correction) error {
	c.Serial = NormalizeSerial(c.Serial)
	oldJSON, err := json.Marshal(orEmpty(c.OldValues))
	if err != nil {
		return fmt.Errorf("store: correction %s: %w", c.ID, err)
	}
	newJSON, err := json.Marshal(orEmpty(c.NewValues))
	if err != nil {
		return fmt.Errorf("store: correction %s: %w", c.ID, err)
	}
	w := s.sealer("corrections", c.ID)
	oldEnc, newEnc := w.req("old_values_enc", oldJSON), w.req("new_values_enc", newJSON)
	if w.err != nil {
		return w.err
	}
	var inserted bool
	err = s.db.GetContext(ctx, &inserted, `
		INSERT INTO corrections (id, serial, reseller_id, old_values_enc, new_values_enc, classification, workflow_id)
		VALUES ($1, $2, $3, $4, $5, $6, $7)
		ON CONFLICT (id) DO NOTHING RETURNING true`,
		c.ID, c.Serial, c.ResellerID, oldEnc, newEnc, c.Classification, c.WorkflowID)
	switch {
	case err == nil:
		return nil
	case pqCode(err) == codeForeignKeyViolation:
		return fmt.Errorf("%w: certificate %s or reseller %s", ErrNotFound, c.Serial, c.ResellerID)
	case !errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("store: create correction %s: %w", c.ID, err)
	}
	var cur struct {
		Serial     string `db:"serial"`
		ResellerID string `db:"reseller_id"`
	}
	if err := s.db.GetContext(ctx, &cur, `SELECT serial, reseller_id FROM corrections WHERE id = $1`, c.ID); err != nil {
		return notFound(err, "correction %s", c.ID)
	}
	if cur.Serial != c.Serial || cur.ResellerID != c.ResellerID {
		return fmt.Errorf("%w: correction id %s is already used for another certificate or reseller", ErrConflict, c.ID)
	}
	return nil
}

// GetCorrection reads a correction for internal use.
func (s *Store) GetCorrection(ctx context.Context, id string) (Correction, error) {
	var row correctionRow
	if err := s.db.GetContext(ctx, &row, `SELECT `+correctionCols+` FROM corrections WHERE id = $1`, id); err != nil {
		return Correction{}, notFound(err, "correction %s", id)
	}
	return s.correctionFromRow(row)
}

// GetCorrectionForReseller reads a correction only if resellerID made it.
func (s *Store) GetCorrectionForReseller(ctx context.Context, id, resellerID string) (Correction, error) {
	var row correctionRow
	if err := s.db.GetContext(ctx, &row, `SELECT `+correctionCols+` FROM corrections WHERE id = $1 AND reseller_id = $2`, id, resellerID); err != nil {
		return Correction{}, notFound(err, "correction %s", id)
	}
	return s.correctionFromRow(row)
}

// ListCorrectionsBySubscriber lists corrections of a subscriber's
// certificates (disclosure compilation).
func (s *Store) ListCorrectionsBySubscriber(ctx context.Context, subscriberID string) ([]Correction, error) {
	var rows []correctionRow
	err := s.db.SelectContext(ctx, &rows, `SELECT `+prefixCols("k.", correctionCols)+`
		FROM corrections k JOIN certificates c ON c.serial = k.serial
		WHERE c.subscriber_id = $1 ORDER BY k.created_at, k.id`, subscriberID)
	if err != nil {
		return nil, fmt.Errorf("store: list corrections of %s: %w", subscriberID, err)
	}
	out := make([]Correction, 0, len(rows))
	for _, r := range rows {
		c, err := s.correctionFromRow(r)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

// SetCorrectionStatus sets the status (absolute, so retries are harmless).
func (s *Store) SetCorrectionStatus(ctx context.Context, id, status string) error {
	res, err := s.db.ExecContext(ctx, `UPDATE corrections SET status = $2, updated_at = now() WHERE id = $1`, id, status)
	return oneRow(res, err, "correction %s", id)
}

// LinkCorrection records the revocation and the new application a printed
// change led to. Either may be "" (not yet known). A link, once set, does
// not change: setting it again to the same value is a no-op, to another is
// ErrConflict.
func (s *Store) LinkCorrection(ctx context.Context, id, revocationSerial, newApplicationID string) error {
	if revocationSerial != "" {
		revocationSerial = NormalizeSerial(revocationSerial)
	}
	res, err := s.db.ExecContext(ctx, `UPDATE corrections SET
			revocation_serial = COALESCE(revocation_serial, $2),
			new_application_id = COALESCE(new_application_id, $3),
			updated_at = now()
		WHERE id = $1
		  AND ($2::text IS NULL OR revocation_serial IS NULL OR revocation_serial = $2)
		  AND ($3::text IS NULL OR new_application_id IS NULL OR new_application_id = $3)`,
		id, nullStr(revocationSerial), nullStr(newApplicationID))
	if pqCode(err) == codeForeignKeyViolation {
		return fmt.Errorf("%w: application %s", ErrNotFound, newApplicationID)
	}
	if err != nil {
		return fmt.Errorf("store: link correction %s: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 1 {
		return nil
	}
	if _, err := s.GetCorrection(ctx, id); err != nil {
		return err
	}
	return fmt.Errorf("%w: correction %s is already linked to another revocation or application", ErrConflict, id)
}

func (s *Store) correctionFromRow(r correctionRow) (Correction, error) {
	o := s.opener("corrections", r.ID)
	oldJSON, newJSON := o.bytes("old_values_enc", r.OldValuesEnc), o.bytes("new_values_enc", r.NewValuesEnc)
	if o.err != nil {
		return Correction{}, o.err
	}
	c := Correction{
		ID: r.ID, Serial: r.Serial, ResellerID: r.ResellerID, Classification: r.Classification,
		Status: r.Status, RevocationSerial: r.RevocationSerial.String, NewApplicationID: r.NewApplicationID.String,
		WorkflowID: r.WorkflowID, CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt,
	}
	if err := json.Unmarshal(oldJSON, &c.OldValues); err != nil {
		return Correction{}, fmt.Errorf("store: correction %s old values: %w", r.ID, err)
	}
	if err := json.Unmarshal(newJSON, &c.NewValues); err != nil {
		return Correction{}, fmt.Errorf("store: correction %s new values: %w", r.ID, err)
	}
	return c, nil
}

func orEmpty(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}
