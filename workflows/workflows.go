// Package workflows holds CertDesk's durable processes, one file each. They
// do no I/O: every read, write, signature and email is an activity, so a
// workflow can be replayed from its history after any crash.
package workflows

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"certdesk/activities"
	"certdesk/internal/cases"
	"certdesk/internal/mailer"
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

// localActivitiesChange is the workflow.GetVersion change ID under which the
// Application workflow runs its storage and email steps as local activities.
const localActivitiesChange = "application-local-activities"

// localActivityOptions retry a local storage or email step like
// defaultActivityOptions: an outage delays the case, never loses it. A retry
// wait longer than the workflow task timeout becomes a durable timer. A
// local activity's ScheduleToCloseTimeout defaults to its StartToCloseTimeout
// (one attempt's worth), so it is set to the longest a case may wait.
func localActivityOptions() workflow.LocalActivityOptions {
	o := defaultActivityOptions()
	return workflow.LocalActivityOptions{ScheduleToCloseTimeout: ApplicationExpiry, StartToCloseTimeout: o.StartToCloseTimeout, RetryPolicy: o.RetryPolicy}
}

// setStatus records the case status for staff searching the Temporal UI and
// the human-readable current details. details must hold no personal data.
func setStatus(ctx workflow.Context, status, details string) error {
	workflow.SetCurrentDetails(ctx, details)
	return workflow.UpsertTypedSearchAttributes(ctx, cases.CaseStatus.ValueSet(status))
}

// signingActivityOptions send an activity to the signing worker. Signing is
// idempotent per business key, so retries are safe; a lint refusal is not
// retried.
func signingActivityOptions() workflow.ActivityOptions {
	return workflow.ActivityOptions{
		TaskQueue:           SigningTaskQueue,
		StartToCloseTimeout: 2 * time.Minute,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:        time.Second,
			BackoffCoefficient:     2,
			MaximumInterval:        time.Minute,
			NonRetryableErrorTypes: []string{activities.ErrTypeCSRRejected, activities.ErrTypeInvalid},
		},
	}
}

// applicationErrorOf reports whether err is a non-retryable activity error of
// errType, with its message.
func applicationErrorOf(err error, errType string) (string, bool) {
	var appErr *temporal.ApplicationError
	if err != nil && errors.As(err, &appErr) && appErr.Type() == errType {
		return appErr.Message(), true
	}
	return "", false
}

// notify sends one notice through the Notify activity. The idempotency key is
// the workflow ID, the notice and keyParts, so a replayed or retried send
// goes out once.
func notify(ctx workflow.Context, to activities.Recipient, n mailer.Notice, data any, keyParts ...string) error {
	ctx = workflow.WithActivityOptions(ctx, defaultActivityOptions())
	var a *activities.Activities
	return workflow.ExecuteActivity(ctx, a.Notify, notifyInput(ctx, to, n, data, keyParts...)).Get(ctx, nil)
}

func notifyInput(ctx workflow.Context, to activities.Recipient, n mailer.Notice, data any, keyParts ...string) activities.NotifyInput {
	key := mailer.Key(workflow.GetInfo(ctx).WorkflowExecution.ID, n, keyParts...)
	return activities.NotifyInput{Recipient: to, Message: mailer.Message{Notice: n, Data: data, IdempotencyKey: key}}
}

// deadlineWatch describes the reminders and the escalation of one waiting
// stage; every wait in CertDesk has both.
type deadlineWatch struct {
	caseType   string
	stage      string
	start      time.Time
	reminders  []time.Duration // after start
	escalation time.Duration   // after start: the deadline
	// alerts are further escalations after the deadline (e.g. day 14).
	alerts []time.Duration
}

// startDeadlineWatch emails staff at each reminder and at the escalation
// until the returned stop is called. Staff notices are best effort for the
// case: a failure to email is retried by the activity, never fails the case.
func startDeadlineWatch(ctx workflow.Context, d deadlineWatch) (stop func()) {
	wctx, cancel := workflow.WithCancel(ctx)
	info := workflow.GetInfo(ctx)
	caseID := info.WorkflowExecution.ID
	if i := strings.IndexByte(caseID, '/'); i >= 0 {
		caseID = caseID[i+1:]
	}
	type point struct {
		at     time.Duration
		notice mailer.Notice
		key    string
	}
	var points []point
	for i, r := range d.reminders {
		points = append(points, point{r, mailer.StaffReminder, fmt.Sprintf("%s-reminder-%d", d.stage, i+1)})
	}
	points = append(points, point{d.escalation, mailer.StaffEscalation, d.stage + "-escalation"})
	for i, a := range d.alerts {
		points = append(points, point{a, mailer.StaffEscalation, fmt.Sprintf("%s-alert-%d", d.stage, i+1)})
	}
	workflow.Go(wctx, func(gctx workflow.Context) {
		for _, p := range points {
			wait := d.start.Add(p.at).Sub(workflow.Now(gctx))
			if wait > 0 {
				if err := workflow.Sleep(gctx, wait); err != nil {
					return // stopped
				}
			}
			note := "reminder: waiting in " + d.stage
			if p.notice == mailer.StaffEscalation {
				note = "escalation: deadline reached in " + d.stage
			}
			_ = notify(gctx, activities.Recipient{Staff: true}, p.notice, mailer.StaffCaseData{
				CaseType: d.caseType, CaseID: caseID, WorkflowID: info.WorkflowExecution.ID,
				DueAt: d.start.Add(d.escalation), Note: note,
			}, p.key)
		}
	})
	return cancel
}

// checkReviewer refuses a decision whose reviewer is not an active staff
// member (issue 17). Workflows do no I/O, so a local activity asks the staff
// table; it runs in the Update handler, not the validator (validators must
// not block). Histories from before the check replay without it. checked
// says whether the activity ran (the handler yielded).
func checkReviewer(ctx workflow.Context, reviewer string) (checked bool, err error) {
	if workflow.GetVersion(ctx, "review-staff-checked", workflow.DefaultVersion, 1) == workflow.DefaultVersion {
		return false, nil
	}
	lctx := workflow.WithLocalActivityOptions(ctx, staffCheckOptions())
	var a *activities.Activities
	return true, workflow.ExecuteLocalActivity(lctx, a.CheckStaff, reviewer).Get(ctx, nil)
}

// auditDecision records a checked staff decision with its reviewer as the
// audit actor, before the case acts on it.
func auditDecision(ctx workflow.Context, update, reviewer, decision string) error {
	lctx := workflow.WithLocalActivityOptions(ctx, staffCheckOptions())
	var a *activities.Activities
	return workflow.ExecuteLocalActivity(lctx, a.AuditStaffDecision, activities.StaffDecisionInput{
		Reviewer: reviewer, Update: update, Subject: workflow.GetInfo(ctx).WorkflowExecution.ID, Decision: decision,
	}).Get(ctx, nil)
}

// staffCheckOptions bound the staff check by what a caller waiting on the
// Update can bear: a database outage fails the decision (the reviewer sends
// it again) rather than holding the call for days.
func staffCheckOptions() workflow.LocalActivityOptions {
	o := localActivityOptions()
	o.ScheduleToCloseTimeout = time.Minute
	o.StartToCloseTimeout = 10 * time.Second
	return o
}

// Registry is what Register needs of a worker.
type Registry interface {
	RegisterWorkflow(w interface{})
}

// Register registers every CertDesk workflow on a worker.
func Register(r Registry) {
	r.RegisterWorkflow(SystemCheck)
	r.RegisterWorkflow(Application)
	r.RegisterWorkflow(Verification)
	r.RegisterWorkflow(Revocation)
	r.RegisterWorkflow(MassRevocation)
	r.RegisterWorkflow(PublishCRLs)
	r.RegisterWorkflow(Correction)
	r.RegisterWorkflow(Disclosure)
	r.RegisterWorkflow(Inquiry)
	r.RegisterWorkflow(PolicyNotice)
}

// registerReview registers the staff review Update shared by applications
// and corrections: accepted only while awaiting() holds and no decision has
// been made, validated (approve, or reject with a reason; a reviewer named),
// recorded by record and handed to the waiting code through the returned
// channel. The Update returns the case state.
func registerReview[T any](ctx workflow.Context, what func() string, awaiting func() bool, decided func() bool,
	record func(ReviewDecision), state func() T) (workflow.Channel, error) {
	ch := workflow.NewBufferedChannel(ctx, 1)
	err := workflow.SetUpdateHandlerWithOptions(ctx, ReviewUpdate,
		func(ctx workflow.Context, d ReviewDecision) (T, error) {
			checked, err := checkReviewer(ctx, d.Reviewer)
			if err != nil {
				var zero T
				return zero, err
			}
			if checked {
				if err := auditDecision(ctx, ReviewUpdate, d.Reviewer, d.Decision); err != nil {
					var zero T
					return zero, err
				}
				// The check and audit yielded: another decision may have
				// been taken meanwhile.
				if !awaiting() || decided() {
					var zero T
					return zero, fmt.Errorf("%s is not awaiting review", what())
				}
			}
			record(d)
			ch.Send(ctx, d)
			return state(), nil
		},
		workflow.UpdateHandlerOptions{Validator: func(ctx workflow.Context, d ReviewDecision) error {
			if !awaiting() || decided() {
				return fmt.Errorf("%s is not awaiting review", what())
			}
			return validateDecision(d.Decision, d.Reviewer, d.Reason, "approve", "reject")
		}})
	return ch, err
}
