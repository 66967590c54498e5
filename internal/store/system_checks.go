package store

import (
	"context"
	"fmt"
)

// RecordSystemCheck writes the row of one end-to-end system check. A
// retry finds it already there and changes nothing.
func (s *Store) RecordSystemCheck(ctx context.Context, checkID, workflowID string) error {
	if _, err := s.db.ExecContext(ctx,
		`INSERT INTO system_checks (check_id, workflow_id) VALUES ($1, $2) ON CONFLICT (check_id) DO NOTHING`,
		checkID, workflowID); err != nil {
		return fmt.Errorf("store: system check %s: %w", checkID, err)
	}
	return nil
}
