package activities

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/big"
	"runtime"
	"time"

	"go.temporal.io/sdk/activity"

	"certdesk/internal/pki"
	"certdesk/internal/store"
)

// PublishCRLsInput names the shards to regenerate.
type PublishCRLsInput struct {
	Shards []ShardRef
}

// PublishCRLs signs and stores a new CRL for each shard, with a CRLNumber
// drawn from the database (strictly increasing per shard, O14). A retry
// publishes a newer CRL, never an older one. Shards are independent, so
// they are built on every core at once (listing one shard in PostgreSQL
// while another is encoded and signed).
func (s *SigningActivities) PublishCRLs(ctx context.Context, in PublishCRLsInput) error {
	workers := min(runtime.GOMAXPROCS(0), len(in.Shards), 4)
	if workers <= 1 {
		for i, sh := range in.Shards {
			if err := s.publishCRL(ctx, sh); err != nil {
				return err
			}
			activity.RecordHeartbeat(ctx, i)
		}
		return nil
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	next := make(chan ShardRef)
	done := make(chan error, len(in.Shards)) // never blocks a worker
	for range workers {
		go func() {
			for sh := range next {
				done <- s.publishCRL(ctx, sh)
			}
		}()
	}
	go func() {
		defer close(next)
		for _, sh := range in.Shards {
			select {
			case next <- sh:
			case <-ctx.Done():
				return
			}
		}
	}()
	for i := range in.Shards {
		if err := <-done; err != nil {
			return err // the deferred cancel stops the feeder; workers drain
		}
		activity.RecordHeartbeat(ctx, i)
	}
	return nil
}

// crlListed, if set (tests only), runs after a shard's entries are read.
var crlListed func(ShardRef)

// publishCRL draws the shard's CRLNumber before it reads the entries. Two
// publishers of one shard can overlap (the daily schedule and a mass
// revocation); SaveCRL keeps the highest number, so the highest number must
// carry the newest content. Read-then-number let a publisher that had read
// early, but drew its number late, replace a complete CRL with a stale one:
// certificates revoked in between vanished from the published CRL until the
// next publication. Numbered first, a CRL's entries are read after every
// lower-numbered CRL was numbered, so the one kept lists at least what any
// publication started before it listed.
func (s *SigningActivities) publishCRL(ctx context.Context, sh ShardRef) error {
	issuer, ok := s.CA.Issuer(sh.Issuer)
	if !ok {
		return nonRetryable(ErrTypeInvalid, "unknown issuer "+sh.Issuer, nil)
	}
	number, err := s.Store.NextCRLNumber(ctx, sh.Issuer, sh.Shard)
	if err != nil {
		return err
	}
	revoked, err := s.Store.ListRevoked(ctx, sh.Issuer, sh.Shard, time.Now().UTC())
	if err != nil {
		return err
	}
	if crlListed != nil {
		crlListed(sh)
	}
	// thisUpdate after the read: no entry's revocation time is later.
	now := time.Now().UTC().Truncate(time.Second)
	entries := make([]pki.CRLEntry, len(revoked))
	for i, r := range revoked {
		n, ok := new(big.Int).SetString(r.Serial, 16)
		if !ok {
			return nonRetryable(ErrTypeInvalid, "stored serial is not hex: "+r.Serial, nil)
		}
		entries[i] = pki.CRLEntry{Serial: n, RevokedAt: r.RevokedAt, Reason: r.ReasonCode}
	}
	der, err := issuer.CRL(ctx, &pki.CRLRequest{Shard: sh.Shard, Number: big.NewInt(number), ThisUpdate: now, Entries: entries})
	if err != nil {
		return fmt.Errorf("CRL %s/%d: %w", sh.Issuer, sh.Shard, err)
	}
	// Audited once signed, before it is published: each CRLNumber is one
	// signature (a retry draws a new number and is a new CRL).
	sum := sha256.Sum256(der)
	if err := s.auditSigning(ctx, AuditCRLSigned, fmt.Sprintf("crl:%s/%d", sh.Issuer, sh.Shard), map[string]any{
		"number": number, "entries": len(entries), "this_update": now.Format(time.RFC3339), "sha256": hex.EncodeToString(sum[:]),
	}, fmt.Sprint(number)); err != nil {
		return err
	}
	_, err = s.Store.SaveCRL(ctx, store.CRL{Issuer: sh.Issuer, Shard: sh.Shard, Number: number, ThisUpdate: now,
		NextUpdate: now.Add(pki.DefaultCRLValidity), DER: der})
	return err
}

// PublishAllCRLs regenerates every shard of every issuer: the daily schedule
// (BR: at least every 4 days, nextUpdate ≤ 10 days).
func (s *SigningActivities) PublishAllCRLs(ctx context.Context) (int, error) {
	var shards []ShardRef
	for _, is := range s.CA.Issuers() {
		for i := 0; i < is.CRLShards(); i++ {
			shards = append(shards, ShardRef{Issuer: is.ID(), Shard: i})
		}
	}
	return len(shards), s.PublishCRLs(ctx, PublishCRLsInput{Shards: shards})
}
