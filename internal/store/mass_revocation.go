package store

import (
	"context"
	"fmt"
	"time"
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
