package activities

import (
	"context"
	"errors"
	"fmt"

	"certdesk/internal/store"
)

// ErrTypeStaffRefused is the application error type of CheckStaff when the
// reviewer a decision names is not an active staff member.
const ErrTypeStaffRefused = "StaffRefused"

// CheckStaff, a local activity of the staff decision Updates, accepts id
// only if it names an active staff member (`starter staff add`). Unknown or
// disabled is a non-retryable StaffRefused error the Update returns to its
// caller; a database outage is retried.
func (a *Activities) CheckStaff(ctx context.Context, id string) error {
	m, err := a.Store.GetStaff(ctx, id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nonRetryable(ErrTypeStaffRefused, fmt.Sprintf("reviewer %q is not a staff member", id), nil)
	case err != nil:
		return err
	case !m.Active():
		return nonRetryable(ErrTypeStaffRefused, fmt.Sprintf("staff member %q is disabled", id), nil)
	}
	return nil
}

// StaffDecisionInput is a staff decision an Update accepted.
type StaffDecisionInput struct {
	Reviewer string // an active staff id (CheckStaff)
	Update   string // the Update's name: review, confirm-identity, …
	Subject  string // the case's workflow id
	Decision string // approve, reject, confirm, refuse
}

// AuditStaffDecision appends the decision to the audit log with the
// reviewer as actor ("staff:<id>"), before the workflow acts on it. No
// reason text (it may name people); the case holds it. Idempotent: the
// same decision is one event.
func (a *Activities) AuditStaffDecision(ctx context.Context, in StaffDecisionInput) error {
	return a.audit(ctx, actorOf(in.Reviewer), "staff.decided", "case:"+in.Subject,
		map[string]any{"update": in.Update, "decision": in.Decision})
}
