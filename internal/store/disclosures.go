package store

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/lib/pq"
)

// Disclosure request states. The O6 clock pauses (PausedReason set) only
// while waiting for the requester; the state does not change for a pause.
const (
	DisclosureReceived          = "received"
	DisclosureVerifyingIdentity = "verifying_identity"
	DisclosureCompiling         = "compiling"
	DisclosureDelivering        = "delivering"
	DisclosureDelivered         = "delivered"
	DisclosureClosed            = "closed"
)

// ErrLinkUnavailable: the download link is unknown, expired or used up. The
// public endpoint must not tell these apart.
var ErrLinkUnavailable = errors.New("store: download link unknown, expired or used up")

// DisclosureRequest is a data subject's disclosure request (開示, O6).
type DisclosureRequest struct {
	ID             string
	Name           string
	Email          string
	Phone          string // the phone number given at application time (second matching factor)
	PostalAddress  string // required for paper delivery
	State          string
	StateReason    string
	ReceivedAt     time.Time
	DueAt          time.Time
	DeliveryMethod string // electronic or paper
	VerificationID string
	PackageRef     string
	LinkExpiresAt  *time.Time
	DownloadsLeft  int
	PausedReason   string
	PausedAt       *time.Time
	DeliveredAt    *time.Time
	WorkflowID     string
	UpdatedAt      time.Time
}

type disclosureRow struct {
	ID               string         `db:"id"`
	NameEnc          []byte         `db:"name_enc"`
	EmailEnc         []byte         `db:"email_enc"`
	PhoneEnc         []byte         `db:"phone_enc"`
	PostalAddressEnc []byte         `db:"postal_address_enc"`
	State            string         `db:"state"`
	StateReason      string         `db:"state_reason"`
	ReceivedAt       time.Time      `db:"received_at"`
	DueAt            time.Time      `db:"due_at"`
	DeliveryMethod   string         `db:"delivery_method"`
	VerificationID   sql.NullString `db:"verification_id"`
	PackageRef       sql.NullString `db:"package_ref"`
	LinkExpiresAt    *time.Time     `db:"link_expires_at"`
	DownloadsLeft    int            `db:"downloads_left"`
	PausedReason     sql.NullString `db:"paused_reason"`
	PausedAt         *time.Time     `db:"paused_at"`
	DeliveredAt      *time.Time     `db:"delivered_at"`
	WorkflowID       string         `db:"workflow_id"`
	UpdatedAt        time.Time      `db:"updated_at"`
}

const disclosureCols = `id, name_enc, email_enc, phone_enc, postal_address_enc, state, state_reason, received_at, due_at,
	delivery_method, verification_id, package_ref, link_expires_at, downloads_left, paused_reason, paused_at,
	delivered_at, workflow_id, updated_at`

// CreateDisclosureRequest records a request. Idempotent by id.
func (s *Store) CreateDisclosureRequest(ctx context.Context, r DisclosureRequest) error {
	if s.bidx == nil {
		return ErrNoKeys
	}
	if r.DeliveryMethod == "" {
		r.DeliveryMethod = "electronic"
	}
	if r.ReceivedAt.IsZero() {
		r.ReceivedAt = time.Now()
	}
	w := s.sealer("disclosure_requests", r.ID)
	name := w.opt("name_enc", r.Name)
	email := w.req("email_enc", []byte(r.Email))
	phone := w.opt("phone_enc", r.Phone)
	addr := w.opt("postal_address_enc", r.PostalAddress)
	if w.err != nil {
		return w.err
	}
	_, err := s.db.ExecContext(ctx, `
		INSERT INTO disclosure_requests (id, email_bidx, name_enc, email_enc, phone_enc, phone_bidx, postal_address_enc,
			received_at, due_at, delivery_method, workflow_id)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
		ON CONFLICT (id) DO NOTHING`,
		r.ID, s.bidx.Email(r.Email), name, email, phone, s.bidx.Phone(r.Phone), addr, r.ReceivedAt, r.DueAt,
		r.DeliveryMethod, r.WorkflowID)
	if pqCode(err) == codeCheckViolation {
		return fmt.Errorf("store: disclosure request %s refused (an email address is required; paper delivery needs a postal address): %w", r.ID, err)
	}
	if err != nil {
		return fmt.Errorf("store: create disclosure request %s: %w", r.ID, err)
	}
	return nil
}

// GetDisclosureRequest reads a request with its personal data decrypted.
func (s *Store) GetDisclosureRequest(ctx context.Context, id string) (DisclosureRequest, error) {
	var row disclosureRow
	if err := s.db.GetContext(ctx, &row, `SELECT `+disclosureCols+` FROM disclosure_requests WHERE id = $1`, id); err != nil {
		return DisclosureRequest{}, notFound(err, "disclosure request %s", id)
	}
	o := s.opener("disclosure_requests", row.ID)
	r := DisclosureRequest{
		ID: row.ID, Name: o.str("name_enc", row.NameEnc), Email: o.str("email_enc", row.EmailEnc),
		Phone:         o.str("phone_enc", row.PhoneEnc),
		PostalAddress: o.str("postal_address_enc", row.PostalAddressEnc),
		State:         row.State, StateReason: row.StateReason, ReceivedAt: row.ReceivedAt, DueAt: row.DueAt,
		DeliveryMethod: row.DeliveryMethod, VerificationID: row.VerificationID.String, PackageRef: row.PackageRef.String,
		LinkExpiresAt: row.LinkExpiresAt, DownloadsLeft: row.DownloadsLeft, PausedReason: row.PausedReason.String,
		PausedAt: row.PausedAt, DeliveredAt: row.DeliveredAt, WorkflowID: row.WorkflowID, UpdatedAt: row.UpdatedAt,
	}
	return r, o.err
}

// SetDisclosureState sets the state with a reason (absolute: retry-safe).
// Delivered and closed requests stay as they are.
func (s *Store) SetDisclosureState(ctx context.Context, id, state, reason string) error {
	res, err := s.db.ExecContext(ctx, `UPDATE disclosure_requests SET state = $2, state_reason = $3,
			delivered_at = CASE WHEN $2 = 'delivered' THEN COALESCE(delivered_at, now()) ELSE delivered_at END,
			updated_at = now()
		WHERE id = $1 AND (state NOT IN ('delivered', 'closed') OR state = $2)`, id, state, reason)
	if err != nil {
		return fmt.Errorf("store: set disclosure %s state: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 1 {
		return nil
	}
	if _, err := s.GetDisclosureRequest(ctx, id); err != nil {
		return err
	}
	return fmt.Errorf("%w: disclosure request %s is finished and cannot become %s", ErrInvalidTransition, id, state)
}

// SetDisclosureVerification links the identity verification case.
func (s *Store) SetDisclosureVerification(ctx context.Context, id, verificationID string) error {
	res, err := s.db.ExecContext(ctx, `UPDATE disclosure_requests SET verification_id = $2, updated_at = now() WHERE id = $1`, id, verificationID)
	return oneRow(res, err, "disclosure request %s", id)
}

// PauseDisclosure stops the O6 clock while waiting for the requester (for
// example for identity documents); the reason is kept. Idempotent: the
// first pause time stays.
func (s *Store) PauseDisclosure(ctx context.Context, id, reason string, at time.Time) error {
	if reason == "" {
		return fmt.Errorf("store: a disclosure pause needs a reason (O6: paused only while waiting for the requester)")
	}
	res, err := s.db.ExecContext(ctx, `UPDATE disclosure_requests SET paused_reason = $2,
			paused_at = COALESCE(paused_at, $3), updated_at = now() WHERE id = $1`, id, reason, at)
	return oneRow(res, err, "disclosure request %s", id)
}

// ResumeDisclosure restarts the clock and moves the due time to newDue (the
// workflow adds the paused time). Idempotent.
func (s *Store) ResumeDisclosure(ctx context.Context, id string, newDue time.Time) error {
	res, err := s.db.ExecContext(ctx, `UPDATE disclosure_requests SET paused_reason = NULL, paused_at = NULL,
			due_at = $2, updated_at = now() WHERE id = $1`, id, newDue)
	return oneRow(res, err, "disclosure request %s", id)
}

// DisclosurePackage is the compiled answer to a disclosure request: JSON
// and a readable HTML rendering (both encrypted at rest) and the CA's
// detached CMS signature over the JSON.
type DisclosurePackage struct {
	ID           string
	RequestID    string
	JSON         []byte
	HTML         []byte
	SignatureDER []byte
	CreatedAt    time.Time
}

// SaveDisclosurePackage stores the package and points the request at it, in
// one transaction. Idempotent per request: the first package saved stays
// (a retried compile does not replace what may already have been sent), and
// the stored package's id is returned.
func (s *Store) SaveDisclosurePackage(ctx context.Context, p DisclosurePackage) (string, error) {
	w := s.sealer("disclosure_packages", p.ID)
	js, html := w.req("json_enc", p.JSON), w.req("html_enc", p.HTML)
	if w.err != nil {
		return "", w.err
	}
	var id string
	err := s.inTx(ctx, func(tx *sqlxTx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO disclosure_packages (id, request_id, json_enc, html_enc, signature_der)
			VALUES ($1, $2, $3, $4, $5) ON CONFLICT (request_id) DO NOTHING`, p.ID, p.RequestID, js, html, p.SignatureDER)
		switch pqCode(err) {
		case "":
		case codeForeignKeyViolation:
			return fmt.Errorf("%w: disclosure request %s", ErrNotFound, p.RequestID)
		case codeUniqueViolation:
			return fmt.Errorf("%w: package id %s is used by another request", ErrConflict, p.ID)
		default:
			return fmt.Errorf("store: save disclosure package: %w", err)
		}
		if err := tx.GetContext(ctx, &id, `SELECT id FROM disclosure_packages WHERE request_id = $1`, p.RequestID); err != nil {
			return fmt.Errorf("store: read back disclosure package: %w", err)
		}
		_, err = tx.ExecContext(ctx, `UPDATE disclosure_requests SET package_ref = $2, updated_at = now()
			WHERE id = $1 AND package_ref IS DISTINCT FROM $2`, p.RequestID, id)
		return err
	})
	return id, err
}

// GetDisclosurePackage reads a package by id.
func (s *Store) GetDisclosurePackage(ctx context.Context, id string) (DisclosurePackage, error) {
	var row struct {
		ID           string    `db:"id"`
		RequestID    string    `db:"request_id"`
		JSONEnc      []byte    `db:"json_enc"`
		HTMLEnc      []byte    `db:"html_enc"`
		SignatureDER []byte    `db:"signature_der"`
		CreatedAt    time.Time `db:"created_at"`
	}
	if err := s.db.GetContext(ctx, &row, `SELECT id, request_id, json_enc, html_enc, signature_der, created_at
		FROM disclosure_packages WHERE id = $1`, id); err != nil {
		return DisclosurePackage{}, notFound(err, "disclosure package %s", id)
	}
	o := s.opener("disclosure_packages", row.ID)
	p := DisclosurePackage{ID: row.ID, RequestID: row.RequestID, JSON: o.bytes("json_enc", row.JSONEnc),
		HTML: o.bytes("html_enc", row.HTMLEnc), SignatureDER: row.SignatureDER, CreatedAt: row.CreatedAt}
	return p, o.err
}

// HashLinkToken is what was stored for a download link token (SHA-256 hex)
// before migration 00041; links armed since are stored by LinkTokenDigest.
func HashLinkToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// SetDisclosureLink arms the download link: token hash, expiry and number
// of downloads. Setting the same link again is a no-op (retry-safe); a new
// token replaces the old one (re-sending a link).
func (s *Store) SetDisclosureLink(ctx context.Context, id, tokenHash string, expiresAt time.Time, downloads int) error {
	res, err := s.db.ExecContext(ctx, `UPDATE disclosure_requests SET link_token_hash = $2, link_expires_at = $3,
			downloads_left = $4, updated_at = now()
		WHERE id = $1 AND link_token_hash IS DISTINCT FROM $2`, id, tokenHash, expiresAt, downloads)
	if err != nil {
		return fmt.Errorf("store: set disclosure link of %s: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 1 {
		return nil
	}
	var exists bool
	if err := s.db.GetContext(ctx, &exists, `SELECT true FROM disclosure_requests WHERE id = $1`, id); err != nil {
		return notFound(err, "disclosure request %s", id)
	}
	return nil
}

// ConsumeDisclosureDownload spends one download of the link whose token is
// given and returns the package. Atomic: concurrent downloads never exceed
// the allowance. Unknown, expired and used-up links are all
// ErrLinkUnavailable. The token is looked up by its keyed digest
// (LinkTokenDigest) and, for links armed before migration 00041, by its
// SHA-256.
func (s *Store) ConsumeDisclosureDownload(ctx context.Context, token string, now time.Time) (DisclosurePackage, error) {
	hashes := []string{HashLinkToken(token)}
	if d, err := s.LinkTokenDigest(token); err == nil {
		hashes = append(hashes, d)
	}
	var pkg string
	err := s.db.GetContext(ctx, &pkg, `UPDATE disclosure_requests SET downloads_left = downloads_left - 1, updated_at = now()
		WHERE link_token_hash = ANY($1) AND link_expires_at > $2 AND downloads_left > 0 AND package_ref IS NOT NULL
		RETURNING package_ref`, pq.Array(hashes), now)
	if errors.Is(err, sql.ErrNoRows) {
		return DisclosurePackage{}, ErrLinkUnavailable
	}
	if err != nil {
		return DisclosurePackage{}, fmt.Errorf("store: consume disclosure download: %w", err)
	}
	return s.GetDisclosurePackage(ctx, pkg)
}

// ListOpenDisclosuresDue lists unfinished, unpaused requests due before t.
func (s *Store) ListOpenDisclosuresDue(ctx context.Context, before time.Time, limit int) ([]string, error) {
	var ids []string
	err := s.db.SelectContext(ctx, &ids, `SELECT id FROM disclosure_requests
		WHERE state NOT IN ('delivered', 'closed') AND paused_at IS NULL AND due_at < $1
		ORDER BY due_at LIMIT $2`, before, limit)
	if err != nil {
		return nil, fmt.Errorf("store: list due disclosures: %w", err)
	}
	return ids, nil
}
