package store

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/lib/pq"
)

// RevokedByWorkflow is one certificate revoked by a given workflow.
type RevokedByWorkflow struct {
	Serial       string    `db:"serial"`
	SubscriberID string    `db:"subscriber_id"`
	ReasonCode   int       `db:"reason_code"`
	RevokedAt    time.Time `db:"revoked_at"`
}

// ListRevocationsByWorkflow pages, in serial order after the cursor, through
// the certificates a workflow (a mass revocation) revoked: the work list of
// its notices.
func (s *Store) ListRevocationsByWorkflow(ctx context.Context, workflowID, after string, limit int) ([]RevokedByWorkflow, error) {
	var out []RevokedByWorkflow
	err := s.db.SelectContext(ctx, &out, `
		SELECT r.serial, c.subscriber_id, r.reason_code, r.revoked_at
		FROM revocations r JOIN certificates c ON c.serial = r.serial
		WHERE r.workflow_id = $1 AND r.serial > $2 AND r.revoked_at IS NOT NULL
		ORDER BY r.serial LIMIT $3`, workflowID, NormalizeSerial(after), limit)
	if err != nil {
		return nil, fmt.Errorf("store: list revocations of %s: %w", workflowID, err)
	}
	return out, nil
}

// ShardRef names one CRL shard of an issuer.
type ShardRef struct {
	Issuer string
	Shard  int
}

// RevokePageResult says what RevokePage did.
type RevokePageResult struct {
	Count   int        // certificates in the page, revoked now or before
	Revoked int        // newly revoked by this call
	Last    string     // the page's last serial: the next cursor ("" for an empty page)
	Shards  []ShardRef // CRL shards the page touches, sorted
}

// RevokePage revokes the next page of a mass revocation: up to limit
// certificates that sel matches after the keyset cursor, valid or already
// revoked (sel.IncludeRevoked is implied, so a retried page finds what its
// first try revoked and reports the same page and cursor). It is one
// statement, hence one transaction, with the rules of RevokeBatch: the
// certificates still valid (or revoked without a revocation record) become
// revoked, their revocation is recorded with b's time, an already recorded
// revocation keeps its time and reason, and their pre-signed "good" OCSP
// responses are dropped. Nothing travels between PostgreSQL and the caller
// but the page's summary.
func (s *Store) RevokePage(ctx context.Context, sel Selector, after string, limit int, b RevokeBatch) (RevokePageResult, error) {
	if sel.empty() {
		return RevokePageResult{}, fmt.Errorf("store: a selector needs at least one of issuer, serials, issued-between or reseller; refusing to select every certificate")
	}
	if limit <= 0 {
		return RevokePageResult{}, fmt.Errorf("store: limit must be positive")
	}
	if err := checkReason(b.ReasonCode); err != nil {
		return RevokePageResult{}, err
	}
	if b.RevokedAt.IsZero() {
		return RevokePageResult{}, fmt.Errorf("store: RevokePage needs the revocation time (RevokedAt)")
	}
	sel.IncludeRevoked = true
	where, args := sel.where(after)
	n := len(args)
	args = append(args, limit, b.ReasonCode, b.RequestedByKind, b.RequestedByRef, b.RevokedAt, b.WorkflowID)
	q := fmt.Sprintf(`
		WITH sel AS MATERIALIZED (
			SELECT c.serial, c.issuer, c.crl_shard, c.status FROM certificates c
			WHERE %s ORDER BY c.serial LIMIT $%d
		), page AS MATERIALIZED (
			SELECT s.*, r.revoked_at FROM sel s
			LEFT JOIN LATERAL (SELECT r.revoked_at FROM revocations r WHERE r.serial = s.serial LIMIT 1) r ON true
		), todo AS MATERIALIZED (
			SELECT array_agg(serial ORDER BY serial) AS serials FROM page WHERE status = 'valid' OR revoked_at IS NULL
		), upd AS (
			UPDATE certificates c SET status = 'revoked'
			WHERE c.serial = ANY((SELECT serials FROM todo)::text[]) AND c.status = 'valid'
			RETURNING c.serial
		), rec AS (
			INSERT INTO revocations (serial, reason_code, requested_by_kind, requested_by_ref, requested_at, revoked_at, workflow_id)
			SELECT u.serial, $%d, $%d, $%d, $%d, $%d, $%d FROM todo, unnest(todo.serials) AS u(serial)`+revocationMerge+`
			RETURNING 1
		), drop_good AS (
			DELETE FROM ocsp_responses o
			WHERE o.serial = ANY((SELECT serials FROM todo)::text[]) AND o.status = 'good'
			RETURNING 1
		)
		SELECT (SELECT count(*) FROM page) AS count,
			(SELECT count(*) FROM upd) AS revoked,
			COALESCE((SELECT serial FROM page ORDER BY serial DESC LIMIT 1), '') AS last,
			(SELECT count(*) FROM rec) + (SELECT count(*) FROM drop_good) AS side,
			COALESCE((SELECT array_agg(issuer ORDER BY issuer, crl_shard) FROM (SELECT DISTINCT issuer, crl_shard FROM page) d), '{}') AS issuers,
			COALESCE((SELECT array_agg(crl_shard ORDER BY issuer, crl_shard) FROM (SELECT DISTINCT issuer, crl_shard FROM page) d), '{}') AS shards`,
		strings.Join(where, " AND "), n+1, n+2, n+3, n+4, n+5, n+5, n+6)
	var row struct {
		Count   int            `db:"count"`
		Revoked int            `db:"revoked"`
		Last    string         `db:"last"`
		Side    int            `db:"side"`
		Issuers pq.StringArray `db:"issuers"`
		Shards  pq.Int64Array  `db:"shards"`
	}
	if err := s.db.GetContext(ctx, &row, q, args...); err != nil {
		return RevokePageResult{}, fmt.Errorf("store: revoke page: %w", err)
	}
	res := RevokePageResult{Count: row.Count, Revoked: row.Revoked, Last: row.Last}
	if len(row.Issuers) != len(row.Shards) {
		return RevokePageResult{}, fmt.Errorf("store: revoke page: %d issuers for %d shards", len(row.Issuers), len(row.Shards))
	}
	for i := range row.Issuers {
		res.Shards = append(res.Shards, ShardRef{Issuer: row.Issuers[i], Shard: int(row.Shards[i])})
	}
	return res, nil
}
