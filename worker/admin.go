package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"sort"

	"certdesk/activities"
	"certdesk/internal/config"
	"certdesk/internal/db"
	"certdesk/internal/pii"
	"certdesk/internal/store"
)

// verifyAudit walks the audit hash chain, names the first broken row, and
// compares the chain with the signed checkpoints (audit_checkpoints and the
// copy in CERTDESK_CA_DIR, checked with the public key from that directory,
// never from the database): a cut tail or a rebuilt chain fails too. The
// error is one line.
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
	pub, err := store.ReadAuditCheckpointPublicKey(cfg.CADir)
	if err != nil {
		return err
	}
	file, err := store.ReadAuditCheckpointFile(cfg.CADir)
	if err != nil {
		return err
	}
	res, err := st.CheckAudit(ctx, pub, file, filepath.Join(cfg.CADir, store.AuditCheckpointFile))
	if err != nil {
		return err
	}
	var problems []string
	if res.BrokenSeq != 0 {
		problems = append(problems, fmt.Sprintf("audit chain broken at seq %d: that row (or the one before it) was altered; restore it from a backup and investigate", res.BrokenSeq))
	}
	problems = append(problems, res.Problems...)
	if len(problems) > 0 {
		return errors.New(store.JoinAuditProblems(problems))
	}
	fmt.Fprintf(out, "audit chain intact: %d events, head %x", res.Events, res.HeadHash)
	switch {
	case res.Newest != nil:
		fmt.Fprintf(out, "; signed checkpoints matching: %d, the newest %s covers row %d\n", res.Checkpoints, res.Newest, res.Newest.Seq)
	case pub == nil:
		fmt.Fprintf(out, "; no signed checkpoint yet (no %s in %s): a cut tail cannot be detected until the signer makes one\n", store.AuditCheckpointPublicKeyFile, cfg.CADir)
	default:
		fmt.Fprintf(out, "; no signed checkpoint yet: a cut tail cannot be detected until the signer makes one\n")
	}
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
