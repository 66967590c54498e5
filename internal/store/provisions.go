package store

import (
	"context"
	"fmt"
	"time"

	"github.com/lib/pq"
)

// Provision is one record of personal data provided to a third party (O7,
// APPI Art. 29): when, to whom, about whom, which items, on what basis. The
// database refuses to update these rows or delete them before 3 years.
type Provision struct {
	ID            string         `db:"id"` // caller's key, e.g. "<workflow id>/provision/<step>"
	ProvidedAt    time.Time      `db:"provided_at"`
	RecipientKind string         `db:"recipient_kind"` // reseller, requester, authority or other
	RecipientRef  string         `db:"recipient_ref"`  // reseller id, requester ref, authority name
	PersonRef     string         `db:"person_ref"`     // subscriber id
	DataItems     pq.StringArray `db:"data_items"`     // e.g. {"name","email","certificate"}
	LegalBasis    string         `db:"legal_basis"`    // e.g. "consent (subscriber agreement §5)"
	ContextRef    string         `db:"context_ref"`    // the case: workflow id, API request id
	CreatedAt     time.Time      `db:"created_at"`
}

const provisionCols = `id, provided_at, recipient_kind, recipient_ref, person_ref, data_items, legal_basis, context_ref, created_at`

// RecordProvision appends a provision record. Idempotent by id.
func (s *Store) RecordProvision(ctx context.Context, p Provision) error {
	if p.ProvidedAt.IsZero() {
		p.ProvidedAt = time.Now()
	}
	_, err := s.db.ExecContext(ctx, `INSERT INTO third_party_provisions (id, provided_at, recipient_kind, recipient_ref,
			person_ref, data_items, legal_basis, context_ref)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (id) DO NOTHING`,
		p.ID, p.ProvidedAt, p.RecipientKind, p.RecipientRef, p.PersonRef, stringArray(p.DataItems), p.LegalBasis, p.ContextRef)
	if pqCode(err) == codeCheckViolation {
		return fmt.Errorf("store: provision record %s refused: recipient kind must be reseller/requester/authority/other and recipient, person, data items and legal basis are all required: %w", p.ID, err)
	}
	if err != nil {
		return fmt.Errorf("store: record provision %s: %w", p.ID, err)
	}
	return nil
}

// ListProvisionsByPerson lists the provision records about a person, oldest
// first (part of every disclosure).
func (s *Store) ListProvisionsByPerson(ctx context.Context, personRef string) ([]Provision, error) {
	var out []Provision
	err := s.db.SelectContext(ctx, &out, `SELECT `+provisionCols+` FROM third_party_provisions
		WHERE person_ref = $1 ORDER BY provided_at, id`, personRef)
	if err != nil {
		return nil, fmt.Errorf("store: list provisions of %s: %w", personRef, err)
	}
	return out, nil
}

// StaffAccess is one access by staff to a person's data (O8).
type StaffAccess struct {
	ID         int64     `db:"id"`
	EventKey   string    `db:"event_key"` // optional ("" = none): makes a retried activity record once
	StaffID    string    `db:"staff_id"`
	PersonRef  string    `db:"person_ref"` // subscriber id, disclosure request id, …
	Purpose    string    `db:"purpose"`    // why, e.g. "disclosure compile", "review application a_1"
	Channel    string    `db:"channel"`    // through what, e.g. "temporal-ui codec decode"
	AccessedAt time.Time `db:"accessed_at"`
}

// RecordStaffAccess appends an access record. With an event key it is
// idempotent (a retry records nothing new).
func (s *Store) RecordStaffAccess(ctx context.Context, a StaffAccess) error {
	if a.AccessedAt.IsZero() {
		a.AccessedAt = time.Now()
	}
	_, err := s.db.ExecContext(ctx, `INSERT INTO staff_access_log (event_key, staff_id, person_ref, purpose, channel, accessed_at)
		VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (event_key) DO NOTHING`,
		nullStr(a.EventKey), a.StaffID, a.PersonRef, a.Purpose, a.Channel, a.AccessedAt)
	if err != nil {
		return fmt.Errorf("store: record staff access: %w", err)
	}
	return nil
}

// ListStaffAccessByPerson lists who accessed a person's data, oldest first.
func (s *Store) ListStaffAccessByPerson(ctx context.Context, personRef string) ([]StaffAccess, error) {
	var out []StaffAccess
	err := s.db.SelectContext(ctx, &out, `SELECT id, COALESCE(event_key, '') AS event_key, staff_id, person_ref, purpose, channel, accessed_at
		FROM staff_access_log WHERE person_ref = $1 ORDER BY accessed_at, id`, personRef)
	if err != nil {
		return nil, fmt.Errorf("store: list staff access of %s: %w", personRef, err)
	}
	return out, nil
}
