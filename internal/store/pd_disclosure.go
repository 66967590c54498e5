package store

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"fmt"
	"time"
)

// DisclosureDraft is a compiled, not yet signed disclosure package: the
// hand-over from the compiling activity to the signing one (see
// schema/00020). SHA256 is the hex digest of JSON, what gets signed.
type DisclosureDraft struct {
	RequestID string
	JSON      []byte
	HTML      []byte
	SHA256    string
	CreatedAt time.Time
}

// SaveDisclosureDraft stores the compiled package of a request and returns
// the digest of the stored JSON. Insert-once: a retried compilation keeps
// the first draft (and its digest), so what the workflow holds stays right.
func (s *Store) SaveDisclosureDraft(ctx context.Context, requestID string, jsonDoc, html []byte) (string, error) {
	w := s.sealer("disclosure_drafts", requestID)
	js, h := w.req("json_enc", jsonDoc), w.req("html_enc", html)
	if w.err != nil {
		return "", w.err
	}
	sum := sha256.Sum256(jsonDoc)
	_, err := s.db.ExecContext(ctx, `INSERT INTO disclosure_drafts (request_id, json_enc, html_enc, sha256)
		VALUES ($1, $2, $3, $4) ON CONFLICT (request_id) DO NOTHING`, requestID, js, h, hex.EncodeToString(sum[:]))
	if pqCode(err) == codeForeignKeyViolation {
		return "", fmt.Errorf("%w: disclosure request %s", ErrNotFound, requestID)
	}
	if err != nil {
		return "", fmt.Errorf("store: save disclosure draft of %s: %w", requestID, err)
	}
	var digest string
	if err := s.db.GetContext(ctx, &digest, `SELECT sha256 FROM disclosure_drafts WHERE request_id = $1`, requestID); err != nil {
		return "", notFound(err, "disclosure draft of %s", requestID)
	}
	return digest, nil
}

// GetDisclosureDraft reads a request's draft with both renderings decrypted.
func (s *Store) GetDisclosureDraft(ctx context.Context, requestID string) (DisclosureDraft, error) {
	var row struct {
		RequestID string    `db:"request_id"`
		JSONEnc   []byte    `db:"json_enc"`
		HTMLEnc   []byte    `db:"html_enc"`
		SHA256    string    `db:"sha256"`
		CreatedAt time.Time `db:"created_at"`
	}
	if err := s.db.GetContext(ctx, &row, `SELECT request_id, json_enc, html_enc, sha256, created_at
		FROM disclosure_drafts WHERE request_id = $1`, requestID); err != nil {
		return DisclosureDraft{}, notFound(err, "disclosure draft of %s", requestID)
	}
	o := s.opener("disclosure_drafts", row.RequestID)
	d := DisclosureDraft{RequestID: row.RequestID, JSON: o.bytes("json_enc", row.JSONEnc), HTML: o.bytes("html_enc", row.HTMLEnc),
		SHA256: row.SHA256, CreatedAt: row.CreatedAt}
	return d, o.err
}

// DeleteDisclosureDraft removes the draft once the signed package is saved
// (one copy of the data at rest, not two). Idempotent.
func (s *Store) DeleteDisclosureDraft(ctx context.Context, requestID string) error {
	if _, err := s.db.ExecContext(ctx, `DELETE FROM disclosure_drafts WHERE request_id = $1`, requestID); err != nil {
		return fmt.Errorf("store: delete disclosure draft of %s: %w", requestID, err)
	}
	return nil
}

// DisclosurePackageRef returns the id of the package saved for a request,
// or "" when none is saved yet, without decrypting anything.
func (s *Store) DisclosurePackageRef(ctx context.Context, requestID string) (string, error) {
	var ref sql.NullString
	err := s.db.GetContext(ctx, &ref, `SELECT package_ref FROM disclosure_requests WHERE id = $1`, requestID)
	if err != nil {
		return "", notFound(err, "disclosure request %s", requestID)
	}
	return ref.String, nil
}

// ListDisclosureRequestsByEmail lists the other disclosure requests made
// with this address (a disclosure discloses earlier ones too), oldest first.
func (s *Store) ListDisclosureRequestsByEmail(ctx context.Context, email, exceptID string) ([]DisclosureRequest, error) {
	if s.bidx == nil {
		return nil, ErrNoKeys
	}
	idx := s.bidx.Email(email)
	if idx == nil {
		return nil, nil
	}
	var ids []string
	if err := s.db.SelectContext(ctx, &ids, `SELECT id FROM disclosure_requests WHERE email_bidx = $1 AND id <> $2
		ORDER BY received_at, id`, idx, exceptID); err != nil {
		return nil, fmt.Errorf("store: list disclosure requests: %w", err)
	}
	out := make([]DisclosureRequest, 0, len(ids))
	for _, id := range ids {
		r, err := s.GetDisclosureRequest(ctx, id)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}
