package main

import (
	"context"
	"fmt"
	"io"
	"sort"

	"certdesk/activities"
	"certdesk/internal/config"
	"certdesk/internal/db"
	"certdesk/internal/pii"
)

// verifyAudit walks the audit hash chain and names the first broken row.
func verifyAudit(ctx context.Context, cfg *config.Config, out io.Writer) error {
	pool, err := db.Open(ctx, cfg.DatabaseURL)
	if err != nil {
		return err
	}
	defer pool.Close()
	st, _, err := activities.OpenStore(cfg, pool)
	if err != nil {
		return err
	}
	broken, ok, err := st.VerifyAudit(ctx)
	if err != nil {
		return err
	}
	seq, hash, err := st.AuditHead(ctx)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("audit chain broken at seq %d: that row (or the one before it) was altered; restore it from a backup and investigate", broken)
	}
	fmt.Fprintf(out, "audit chain intact: %d events, head %x\n", seq, hash)
	return nil
}

// rotateKeys re-encrypts every personal-data value not under the newest key
// of CERTDESK_PII_KEYS. Run it after adding a key; remove the old key from
// the ring only after it reports no old key ids left.
func rotateKeys(ctx context.Context, cfg *config.Config, out io.Writer) error {
	pool, err := db.Open(ctx, cfg.DatabaseURL)
	if err != nil {
		return err
	}
	defer pool.Close()
	if err := db.Migrate(ctx, pool, nil); err != nil {
		return err
	}
	st, _, err := activities.OpenStore(cfg, pool)
	if err != nil {
		return err
	}
	ring, err := pii.ParseKeyRing(cfg.PIIKeys)
	if err != nil {
		return fmt.Errorf("config: CERTDESK_PII_KEYS: %w", err)
	}
	rep, err := st.RotateKeys(ctx, ring)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "re-encrypted %d values in %d rows\n", rep.Values, rep.Rows)
	cols := make([]string, 0, len(rep.ByTable))
	for c := range rep.ByTable {
		cols = append(cols, c)
	}
	sort.Strings(cols)
	for _, c := range cols {
		fmt.Fprintf(out, "  %-40s %d\n", c, rep.ByTable[c])
	}
	counts, err := st.KeyIDCounts(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "values per key id now: %v\n", counts)
	return nil
}
