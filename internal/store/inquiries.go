package store

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// Inquiry kinds (O9): the inquiries.kind column.
const (
	InquiryKindInquiry       = "inquiry"
	InquiryKindComplaint     = "complaint"
	InquiryKindStopProvision = "stop_provision" // a request to stop provision to third parties
)

// Inquiry is an inquiry, complaint or request to stop provision to third
// parties (O9). Contact and body are encrypted; if the contact is an email
// address it is also blind-indexed so a disclosure finds it.
type Inquiry struct {
	ID         string
	Kind       string // inquiry, complaint or stop_provision
	Contact    string // how to answer: an email address, or other contact details
	Body       string
	Status     string // received, in_progress, answered or closed
	Answer     string
	DueAt      time.Time
	AnsweredAt *time.Time
	WorkflowID string
	CreatedAt  time.Time
	UpdatedAt  time.Time
}

type inquiryRow struct {
	ID         string     `db:"id"`
	Kind       string     `db:"kind"`
	ContactEnc []byte     `db:"contact_enc"`
	BodyEnc    []byte     `db:"body_enc"`
	Status     string     `db:"status"`
	AnswerEnc  []byte     `db:"answer_enc"`
	DueAt      time.Time  `db:"due_at"`
	AnsweredAt *time.Time `db:"answered_at"`
	WorkflowID string     `db:"workflow_id"`
	CreatedAt  time.Time  `db:"created_at"`
	UpdatedAt  time.Time  `db:"updated_at"`
}

const inquiryCols = `id, kind, contact_enc, body_enc, status, answer_enc, due_at, answered_at, workflow_id, created_at, updated_at`

// CreateInquiry records an inquiry as received. Idempotent by id.
func (s *Store) CreateInquiry(ctx context.Context, q Inquiry) error {
	if s.bidx == nil {
		return ErrNoKeys
	}
	w := s.sealer("inquiries", q.ID)
	contact, body := w.req("contact_enc", []byte(q.Contact)), w.req("body_enc", []byte(q.Body))
	if w.err != nil {
		return w.err
	}
	var bidx []byte
	if strings.Contains(q.Contact, "@") {
		bidx = s.bidx.Email(q.Contact)
	}
	_, err := s.db.ExecContext(ctx, `INSERT INTO inquiries (id, kind, contact_enc, contact_bidx, body_enc, due_at, workflow_id)
		VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (id) DO NOTHING`,
		q.ID, q.Kind, contact, bidx, body, q.DueAt, q.WorkflowID)
	if err != nil {
		return fmt.Errorf("store: create inquiry %s: %w", q.ID, err)
	}
	return nil
}

// GetInquiry reads an inquiry with its text decrypted.
func (s *Store) GetInquiry(ctx context.Context, id string) (Inquiry, error) {
	var row inquiryRow
	if err := s.db.GetContext(ctx, &row, `SELECT `+inquiryCols+` FROM inquiries WHERE id = $1`, id); err != nil {
		return Inquiry{}, notFound(err, "inquiry %s", id)
	}
	return s.inquiryFromRow(row)
}

// ListInquiriesByEmail lists inquiries whose contact is this address
// (disclosure compilation).
func (s *Store) ListInquiriesByEmail(ctx context.Context, email string) ([]Inquiry, error) {
	if s.bidx == nil {
		return nil, ErrNoKeys
	}
	idx := s.bidx.Email(email)
	if idx == nil {
		return nil, nil
	}
	var rows []inquiryRow
	if err := s.db.SelectContext(ctx, &rows, `SELECT `+inquiryCols+` FROM inquiries WHERE contact_bidx = $1 ORDER BY created_at, id`, idx); err != nil {
		return nil, fmt.Errorf("store: list inquiries: %w", err)
	}
	out := make([]Inquiry, 0, len(rows))
	for _, r := range rows {
		q, err := s.inquiryFromRow(r)
		if err != nil {
			return nil, err
		}
		out = append(out, q)
	}
	return out, nil
}

// SetInquiryStatus sets the status (absolute: retry-safe). Answered
// inquiries only move to closed.
func (s *Store) SetInquiryStatus(ctx context.Context, id, status string) error {
	res, err := s.db.ExecContext(ctx, `UPDATE inquiries SET status = $2, updated_at = now()
		WHERE id = $1 AND (status NOT IN ('answered', 'closed') OR $2 IN ('closed', status))`, id, status)
	if err != nil {
		return fmt.Errorf("store: set inquiry %s status: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 1 {
		return nil
	}
	if _, err := s.GetInquiry(ctx, id); err != nil {
		return err
	}
	return fmt.Errorf("%w: inquiry %s is answered or closed and cannot become %s", ErrInvalidTransition, id, status)
}

// AnswerInquiry records the answer and marks the inquiry answered.
// Idempotent: the first answer and its time stay.
func (s *Store) AnswerInquiry(ctx context.Context, id, answer string, at time.Time) error {
	enc, err := s.seal("inquiries", "answer_enc", id, []byte(answer))
	if err != nil {
		return err
	}
	res, err := s.db.ExecContext(ctx, `UPDATE inquiries SET answer_enc = COALESCE(answer_enc, $2), answered_at = COALESCE(answered_at, $3),
			status = CASE WHEN status = 'closed' THEN status ELSE 'answered' END, updated_at = now()
		WHERE id = $1`, id, enc, at)
	return oneRow(res, err, "inquiry %s", id)
}

// ListOpenInquiriesDue lists unanswered inquiries due before t.
func (s *Store) ListOpenInquiriesDue(ctx context.Context, before time.Time, limit int) ([]string, error) {
	var ids []string
	err := s.db.SelectContext(ctx, &ids, `SELECT id FROM inquiries WHERE status IN ('received', 'in_progress') AND due_at < $1
		ORDER BY due_at LIMIT $2`, before, limit)
	if err != nil {
		return nil, fmt.Errorf("store: list due inquiries: %w", err)
	}
	return ids, nil
}

func (s *Store) inquiryFromRow(r inquiryRow) (Inquiry, error) {
	o := s.opener("inquiries", r.ID)
	q := Inquiry{ID: r.ID, Kind: r.Kind, Contact: o.str("contact_enc", r.ContactEnc), Body: o.str("body_enc", r.BodyEnc),
		Status: r.Status, Answer: o.str("answer_enc", r.AnswerEnc), DueAt: r.DueAt, AnsweredAt: r.AnsweredAt,
		WorkflowID: r.WorkflowID, CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt}
	return q, o.err
}
