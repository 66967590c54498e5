package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"certdesk/internal/challenge"
)

// Challenge is one value sent to prove control of a mailbox, as stored:
// its keyed digest only (challenge.Keys.Digest).
type Challenge struct {
	VerificationID string
	Attempt        int
	Kind           challenge.Kind // KindCode or KindMailbox
	Digest         string
	ExpiresAt      time.Time
}

// challengeKeys are the keys digests are made with: derived from the blind
// index key, so only a Store built with it can make or check them.
func (s *Store) challengeKeys() (*challenge.Keys, error) {
	if s.bidx == nil {
		return nil, ErrNoKeys
	}
	return challenge.FromBlindIndex(s.bidx)
}

// ChallengeDigest is the keyed digest of a value submitted for a
// verification: what the starter sends in the submit-code Update instead
// of the value, which would stay in workflow history.
func (s *Store) ChallengeDigest(verificationID string, kind challenge.Kind, value string) (string, error) {
	k, err := s.challengeKeys()
	if err != nil {
		return "", err
	}
	return k.Digest(kind, verificationID, value), nil
}

// SaveChallenge records a value's digest. Idempotent: the same challenge
// again is a no-op; another digest for the same attempt is ErrConflict.
func (s *Store) SaveChallenge(ctx context.Context, c Challenge) error {
	if !challenge.IsDigest(c.Digest) || c.Attempt <= 0 || c.ExpiresAt.IsZero() {
		return fmt.Errorf("store: challenge of %s: digest, attempt and expiry are required", c.VerificationID)
	}
	var stored string
	err := s.db.GetContext(ctx, &stored, `INSERT INTO verification_challenges (verification_id, attempt, kind, value_digest, expires_at)
		VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (verification_id, attempt) DO UPDATE SET verification_id = EXCLUDED.verification_id
		RETURNING value_digest`, c.VerificationID, c.Attempt, string(c.Kind), c.Digest, c.ExpiresAt)
	if err != nil {
		return fmt.Errorf("store: save challenge of %s: %w", c.VerificationID, err)
	}
	if !challenge.Equal(stored, c.Digest) {
		return fmt.Errorf("%w: verification %s attempt %d has another value", ErrConflict, c.VerificationID, c.Attempt)
	}
	return nil
}

// MatchChallenge compares a submitted digest with the newest value sent
// for a verification, in constant time, and notes a match. Idempotent. No
// value sent is ErrNotFound.
func (s *Store) MatchChallenge(ctx context.Context, verificationID, digest string) (bool, error) {
	var row struct {
		Attempt int    `db:"attempt"`
		Digest  string `db:"value_digest"`
	}
	err := s.db.GetContext(ctx, &row, `SELECT attempt, value_digest FROM verification_challenges
		WHERE verification_id = $1 ORDER BY attempt DESC LIMIT 1`, verificationID)
	if errors.Is(err, sql.ErrNoRows) {
		return false, fmt.Errorf("%w: no value sent for verification %s", ErrNotFound, verificationID)
	}
	if err != nil {
		return false, fmt.Errorf("store: read challenge of %s: %w", verificationID, err)
	}
	if !challenge.Equal(row.Digest, digest) {
		return false, nil
	}
	if _, err := s.db.ExecContext(ctx, `UPDATE verification_challenges SET matched_at = now()
		WHERE verification_id = $1 AND attempt = $2 AND matched_at IS NULL`, verificationID, row.Attempt); err != nil {
		return false, fmt.Errorf("store: note challenge match of %s: %w", verificationID, err)
	}
	return true, nil
}

// LinkTokenDigest is what is stored for a download-link token armed since
// migration 00041: a keyed digest (challenge.KindLink).
func (s *Store) LinkTokenDigest(token string) (string, error) {
	k, err := s.challengeKeys()
	if err != nil {
		return "", err
	}
	return k.Digest(challenge.KindLink, "", token), nil
}
