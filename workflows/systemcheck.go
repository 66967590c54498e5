package workflows

import (
	"fmt"

	"go.temporal.io/sdk/workflow"

	"certdesk/activities"
	"certdesk/internal/cases"
)

// SystemCheckInput names one end-to-end check of the stack.
type SystemCheckInput struct {
	CheckID string
}

// SystemCheckResult reports what the check touched.
type SystemCheckResult struct {
	CheckID   string
	MessageID string
}

// SystemCheckWorkflowID is the workflow ID of check id.
func SystemCheckWorkflowID(id string) string { return cases.TypeSystemCheck + "/" + id }

// SystemCheck proves a deployment end to end: a worker picks up the task,
// writes a row to PostgreSQL and sends the staff mailbox an email. Operators
// run it after an install or an incident (`temporal workflow start --type
// SystemCheck ...`); the integration tests run it against the real services.
func SystemCheck(ctx workflow.Context, in SystemCheckInput) (SystemCheckResult, error) {
	if in.CheckID == "" {
		return SystemCheckResult{}, fmt.Errorf("system check: CheckID is required")
	}
	ctx = workflow.WithActivityOptions(ctx, defaultActivityOptions())
	if err := workflow.UpsertTypedSearchAttributes(ctx, cases.CaseType.ValueSet(cases.TypeSystemCheck)); err != nil {
		return SystemCheckResult{}, err
	}
	if err := setStatus(ctx, "running", "recording the check in PostgreSQL"); err != nil {
		return SystemCheckResult{}, err
	}
	wfID := workflow.GetInfo(ctx).WorkflowExecution.ID
	var a *activities.Activities
	if err := workflow.ExecuteActivity(ctx, a.RecordSystemCheck, activities.SystemCheckInput{CheckID: in.CheckID, WorkflowID: wfID}).Get(ctx, nil); err != nil {
		return SystemCheckResult{}, err
	}
	if err := setStatus(ctx, "running", "emailing the staff mailbox"); err != nil {
		return SystemCheckResult{}, err
	}
	var msgID string
	if err := workflow.ExecuteActivity(ctx, a.SendSystemCheckEmail, activities.SystemCheckInput{CheckID: in.CheckID, WorkflowID: wfID}).Get(ctx, &msgID); err != nil {
		return SystemCheckResult{}, err
	}
	if err := setStatus(ctx, "done", "database row written and email sent"); err != nil {
		return SystemCheckResult{}, err
	}
	return SystemCheckResult{CheckID: in.CheckID, MessageID: msgID}, nil
}
