package store

import (
	"context"
	"fmt"
	"time"
)

// BlockedKey is a public key CertDesk refuses to certify (BR §6.1.1.3), by
// the SHA-256 of its SubjectPublicKeyInfo.
type BlockedKey struct {
	SPKISHA256 []byte    `db:"spki_sha256"`
	Reason     string    `db:"reason"` // a revocation.Reason name, e.g. revocation.KeyCompromise
	Source     string    `db:"source"` // the case that blocked it, for example "revocation/1a2b…"
	CreatedAt  time.Time `db:"created_at"`
}

// BlockKey adds a key to the block list. Idempotent: the first record stays.
func (s *Store) BlockKey(ctx context.Context, spkiSHA256 []byte, reason, source string) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO blocked_keys (spki_sha256, reason, source) VALUES ($1, $2, $3)
		ON CONFLICT (spki_sha256) DO NOTHING`, spkiSHA256, reason, source)
	if err != nil {
		return fmt.Errorf("store: block key: %w", err)
	}
	return nil
}

// IsKeyBlocked reports whether a key is on the block list, with its record.
func (s *Store) IsKeyBlocked(ctx context.Context, spkiSHA256 []byte) (BlockedKey, bool, error) {
	var k []BlockedKey
	if err := s.db.SelectContext(ctx, &k, `SELECT spki_sha256, reason, source, created_at FROM blocked_keys WHERE spki_sha256 = $1`, spkiSHA256); err != nil {
		return BlockedKey{}, false, fmt.Errorf("store: check blocked key: %w", err)
	}
	if len(k) == 0 {
		return BlockedKey{}, false, nil
	}
	return k[0], true, nil
}
