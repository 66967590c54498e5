package activities

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"time"

	"certdesk/internal/pki"
	"certdesk/internal/store"
)

// AuditCheckpointKeyLabel is the key-store label of the key that signs
// audit checkpoints. It lives with the CA keys (encrypted file or PKCS#11
// token), so the database's owner cannot sign a checkpoint.
const AuditCheckpointKeyLabel = "audit-checkpoint"

// AuditCheckpointStore is what signing a checkpoint reads and writes.
type AuditCheckpointStore interface {
	ListAuditCheckpoints(ctx context.Context) ([]store.AuditCheckpoint, error)
	NextAuditCheckpoint(ctx context.Context, from *store.AuditCheckpoint) (store.AuditCheckpoint, error)
	SaveAuditCheckpoint(ctx context.Context, c store.AuditCheckpoint) error
}

// AuditCheckpointResult says which checkpoint now covers the chain.
type AuditCheckpointResult struct {
	Number int64
	Seq    int64
	Count  int64
	New    bool // false: nothing was appended since the newest checkpoint
}

// SignAuditCheckpoint signs a checkpoint of the audit chain head with the
// checkpoint key (made on first use) and keeps it in audit_checkpoints and
// in the CA directory. The PublishCRLs schedule runs it. It refuses, non
// retryably, to sign over a chain that no longer extends the newest
// checkpoint. Idempotent: a retry finds the checkpoint it stored.
func (s *SigningActivities) SignAuditCheckpoint(ctx context.Context) (AuditCheckpointResult, error) {
	if s.Keys == nil || s.CA == nil {
		s.Log.Warn("no key store: audit checkpoints are not signed")
		return AuditCheckpointResult{}, nil
	}
	st, ok := s.Store.(AuditCheckpointStore)
	if !ok {
		return AuditCheckpointResult{}, nonRetryable(ErrTypeInvalid, "the signing store cannot keep audit checkpoints", nil)
	}
	res, err := SignAuditCheckpoint(ctx, st, s.Keys, s.CA.Dir(), time.Now())
	if err == nil && res.New {
		s.Log.Info("audit checkpoint signed", "number", res.Number, "seq", res.Seq)
	}
	return res, err
}

// SignAuditCheckpoint is the activity's work, for the worker and tests: dir
// is the CA directory that holds the public key and the checkpoint copy.
func SignAuditCheckpoint(ctx context.Context, st AuditCheckpointStore, keys pki.KeyStore, dir string, now time.Time) (AuditCheckpointResult, error) {
	key, err := auditCheckpointKey(ctx, keys, dir)
	if err != nil {
		return AuditCheckpointResult{}, err
	}
	from, err := newestCheckpoint(ctx, st, key.Public(), dir)
	if err != nil {
		return AuditCheckpointResult{}, err
	}
	next, err := st.NextAuditCheckpoint(ctx, from)
	if errors.Is(err, store.ErrAuditTampered) {
		return AuditCheckpointResult{}, nonRetryable(ErrTypeInvalid, "no audit checkpoint signed: "+err.Error(), nil)
	}
	if err != nil {
		return AuditCheckpointResult{}, err
	}
	if from != nil && next.Seq == from.Seq {
		// Nothing new; a retry after the table write still leaves the
		// copy in the CA directory up to date.
		if err := syncCheckpointFile(dir, *from, key.Public()); err != nil {
			return AuditCheckpointResult{}, err
		}
		return AuditCheckpointResult{Number: from.Number, Seq: from.Seq, Count: from.Count}, nil
	}
	if next.Seq == 0 {
		return AuditCheckpointResult{}, nil // an empty log
	}
	next.SignedAt = now
	signed, err := store.SignAuditCheckpoint(key, next)
	if err != nil {
		return AuditCheckpointResult{}, err
	}
	// The table first: every checkpoint in the file is then in the table,
	// and verify-audit reports one missing from the table as deleted.
	if err := st.SaveAuditCheckpoint(ctx, signed); err != nil {
		return AuditCheckpointResult{}, err
	}
	if err := store.WriteAuditCheckpointFile(dir, signed); err != nil {
		return AuditCheckpointResult{}, fmt.Errorf("write %s: %w", store.AuditCheckpointFile, err)
	}
	return AuditCheckpointResult{Number: signed.Number, Seq: signed.Seq, Count: signed.Count, New: true}, nil
}

// auditCheckpointKey loads the checkpoint key, or makes it (and its public
// key file) when the CA directory has no public key yet: CA directories
// made before checkpoints existed get one on the first run.
func auditCheckpointKey(ctx context.Context, keys pki.KeyStore, dir string) (crypto.Signer, error) {
	pub, err := store.ReadAuditCheckpointPublicKey(dir)
	if err != nil {
		return nil, err
	}
	if pub == nil {
		key, gerr := keys.Generate(ctx, AuditCheckpointKeyLabel, pki.ECDSAP256)
		if gerr != nil {
			// The key may exist while its public file was lost.
			var lerr error
			if key, lerr = keys.Load(ctx, AuditCheckpointKeyLabel); lerr != nil {
				return nil, fmt.Errorf("audit checkpoint key %q: cannot create it (%v) nor load it (%v)", AuditCheckpointKeyLabel, gerr, lerr)
			}
		}
		if err := store.WriteAuditCheckpointPublicKey(dir, key.Public()); err != nil {
			return nil, err
		}
		return key, nil
	}
	key, err := keys.Load(ctx, AuditCheckpointKeyLabel)
	if err != nil {
		return nil, fmt.Errorf("audit checkpoint key %q (its public key is %s in %s): %w", AuditCheckpointKeyLabel, store.AuditCheckpointPublicKeyFile, dir, err)
	}
	if ec, ok := key.Public().(*ecdsa.PublicKey); !ok || !ec.Equal(pub) {
		return nil, nonRetryable(ErrTypeInvalid, fmt.Sprintf("audit checkpoint key %q does not match %s in %s", AuditCheckpointKeyLabel, store.AuditCheckpointPublicKeyFile, dir), nil)
	}
	return key, nil
}

// newestCheckpoint is the newest validly signed checkpoint in the table or
// the CA directory (nil: none). Forged rows are skipped here and reported
// by verify-audit.
func newestCheckpoint(ctx context.Context, st AuditCheckpointStore, pub crypto.PublicKey, dir string) (*store.AuditCheckpoint, error) {
	all, err := st.ListAuditCheckpoints(ctx)
	if err != nil {
		return nil, err
	}
	file, err := store.ReadAuditCheckpointFile(dir)
	if err != nil {
		return nil, err
	}
	if file != nil {
		all = append(all, *file)
	}
	var newest *store.AuditCheckpoint
	for i := range all {
		if all[i].Verify(pub) == nil && (newest == nil || all[i].Number > newest.Number) {
			newest = &all[i]
		}
	}
	return newest, nil
}

func syncCheckpointFile(dir string, c store.AuditCheckpoint, pub crypto.PublicKey) error {
	file, err := store.ReadAuditCheckpointFile(dir)
	if err != nil {
		return err
	}
	if file != nil && file.Verify(pub) == nil && file.Number >= c.Number {
		return nil
	}
	return store.WriteAuditCheckpointFile(dir, c)
}
