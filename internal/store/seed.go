package store

import (
	"context"
	"crypto/sha256"
	"fmt"
	"time"

	"certdesk/internal/product"
)

// SeedSpec describes synthetic certificates for load tests and benchmarks.
type SeedSpec struct {
	N          int
	Issuer     string
	Shards     int   // the issuer's CRL shard count; shard = serial mod Shards, as pki.ShardFor
	SerialBase int64 // first serial; serials are SerialBase..SerialBase+N-1 (hex)
	ResellerID string
	Product    string
	NotBefore  time.Time
	NotAfter   time.Time
}

// SeedCertificates bulk-inserts spec.N valid certificates, with one
// subscriber and one placeholder application each sharing a single
// subscriber record, in a handful of set-based statements. It exists for
// benchmarks and load tests (mass revocation of a million certificates); the
// DER and CSR columns hold placeholders, not real certificates.
func (s *Store) SeedCertificates(ctx context.Context, spec SeedSpec) error {
	if spec.N <= 0 || spec.Issuer == "" || spec.Shards <= 0 || spec.SerialBase <= 0 || spec.ResellerID == "" {
		return fmt.Errorf("store: seed: N, Issuer, Shards, SerialBase and ResellerID are required")
	}
	if spec.Product == "" {
		spec.Product = product.ServerDV
	}
	subID := fmt.Sprintf("sub_seed_%x", spec.SerialBase)
	if err := s.UpsertSubscriber(ctx, Subscriber{ID: subID, ResellerID: spec.ResellerID, Name: "seed", Email: subID + "@seed.invalid", Country: "JP"}); err != nil {
		return err
	}
	spki := sha256.Sum256([]byte(subID))
	return s.inTx(ctx, func(tx *sqlxTx) error {
		if _, err := tx.ExecContext(ctx, `
			INSERT INTO applications (id, reseller_id, subscriber_id, product, domains, csr_enc, spki_sha256, validity_days,
				attestation_terms_version, attestation_truthful, attested_at, status, workflow_id, certificate_serial)
			SELECT 'seed_' || to_hex($1::bigint + i), $2, $3, $4, ARRAY['seed.example.com'], '\x00'::bytea, $5, 90, 'seed', true, now(), 'issued', '',
				to_hex($1::bigint + i)
			FROM generate_series(0, $6::bigint - 1) i
			ON CONFLICT (id) DO NOTHING`,
			spec.SerialBase, spec.ResellerID, subID, spec.Product, spki[:], spec.N); err != nil {
			return fmt.Errorf("store: seed applications: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `
			INSERT INTO certificates (serial, issuer, der_enc, not_before, not_after, spki_sha256, status, reseller_id,
				subscriber_id, application_id, product, crl_shard)
			SELECT to_hex($1::bigint + i), $2, '\x00'::bytea, $3, $4, $5, 'valid', $6, $7, 'seed_' || to_hex($1::bigint + i), $8,
				(($1::bigint + i) % $9)::int
			FROM generate_series(0, $10::bigint - 1) i
			ON CONFLICT (serial) DO NOTHING`,
			spec.SerialBase, spec.Issuer, spec.NotBefore, spec.NotAfter, spki[:], spec.ResellerID, subID, spec.Product, spec.Shards, spec.N); err != nil {
			return fmt.Errorf("store: seed certificates: %w", err)
		}
		return nil
	})
}
