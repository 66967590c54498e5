// Package workflows holds CertDesk's durable processes, one file each. They
// do no I/O: every read, write, signature and email is an activity, so a
// workflow can be replayed from its history after any crash.
package workflows

import (
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"certdesk/internal/cases"
)

// Task queues. Only the signing worker, the one process holding CA keys,
// polls SigningTaskQueue.
const (
	TaskQueue        = "certdesk"
	SigningTaskQueue = "certdesk-signing"
)

// defaultActivityOptions retry storage and email activities for as long as a
// case may reasonably wait: an outage of PostgreSQL or SMTP delays a case, it
// never loses one. They run on the workflow's own task queue.
func defaultActivityOptions() workflow.ActivityOptions {
	return workflow.ActivityOptions{
		StartToCloseTimeout: time.Minute,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:    time.Second,
			BackoffCoefficient: 2,
			MaximumInterval:    time.Minute,
		},
	}
}

// setStatus records the case status for staff searching the Temporal UI and
// the human-readable current details. details must hold no personal data.
func setStatus(ctx workflow.Context, status, details string) error {
	workflow.SetCurrentDetails(ctx, details)
	return workflow.UpsertTypedSearchAttributes(ctx, cases.CaseStatus.ValueSet(status))
}
