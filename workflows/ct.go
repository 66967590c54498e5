package workflows

import (
	"errors"
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"certdesk/activities"
	"certdesk/internal/cases"
)

// ctChange is the workflow.GetVersion change ID under which a TLS
// application is issued through Certificate Transparency: precertificate,
// SCTs, final certificate.
const ctChange = "application-ct"

// Certificate Transparency timing. Variables only so tests can shorten them.
var (
	// CTEscalationAfter: staff are told when the logs have not given
	// enough SCTs this long after the precertificate.
	CTEscalationAfter = 30 * time.Minute
	// CTDeadline bounds SCT gathering: the final certificate must follow
	// its precertificate within 48 hours of notBefore (zlint's
	// e_excessively_backdated on SCTs), so after a day the application
	// fails and staff decide about the precertificate.
	CTDeadline = 24 * time.Hour
	// ctRetryInterval is the first wait before asking the logs again.
	ctRetryInterval = 10 * time.Second
)

// ctStage names the wait for SCTs in staff notices.
const ctStage = "ct-logging"

// ctAttempts bounds how often SCTs are gathered again because the signer
// found the stored ones short of the policy (a log list changed between).
const ctAttempts = 3

// issueLogged issues a TLS certificate through Certificate Transparency
// (RFC 6962): the signer signs and stores the precertificate (issued from
// then on: OCSP answers it), the logs return SCTs, the signer signs the
// final certificate with them. Each step is idempotent on the application,
// so a worker killed between steps resumes without a second serial.
func (w *application) issueLogged(ctx workflow.Context, sign func(activity any, in any, out *activities.IssueResult) error) (activities.IssueResult, error) {
	var sa *activities.SigningActivities
	var pre activities.IssueResult
	if err := sign(sa.IssuePrecertificate, w.issueInput(), &pre); err != nil {
		return pre, err
	}
	w.state.CertificateSerial = pre.Serial
	w.state.NotAfter = pre.NotAfter
	if err := workflow.UpsertTypedSearchAttributes(ctx, cases.CertificateSerial.ValueSet(pre.Serial)); err != nil {
		return pre, err
	}
	if pre.CTState == "final" {
		return w.finalize(ctx, pre.Serial) // resumed after the final certificate
	}
	for attempt := 1; ; attempt++ {
		if err := w.gatherSCTs(ctx, pre.Serial); err != nil {
			return pre, err
		}
		res, err := w.finalize(ctx, pre.Serial)
		if _, short := applicationErrorOf(err, activities.ErrTypeCTIncomplete); short && attempt < ctAttempts {
			continue
		}
		return res, err
	}
}

// gatherSCTs asks the logs for SCTs until the policy is met, retrying with
// backoff for CTDeadline; staff are told at CTEscalationAfter. It never
// gives up silently: past the deadline the application fails with the
// precertificate named.
func (w *application) gatherSCTs(ctx workflow.Context, serial string) error {
	workflow.SetCurrentDetails(ctx, "precertificate "+serial+" signed: gathering SCTs from the CT logs")
	stop := startDeadlineWatch(ctx, deadlineWatch{
		caseType: cases.TypeApplication, stage: ctStage, start: workflow.Now(ctx), escalation: CTEscalationAfter,
	})
	defer stop()
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout:    3 * time.Minute,
		HeartbeatTimeout:       time.Minute,
		ScheduleToCloseTimeout: CTDeadline,
		RetryPolicy: &temporal.RetryPolicy{InitialInterval: ctRetryInterval, BackoffCoefficient: 2, MaximumInterval: 5 * time.Minute,
			NonRetryableErrorTypes: []string{activities.ErrTypeInvalid, activities.ErrTypeNotFound}},
	})
	var cta *activities.CTActivities
	var res activities.SubmitPrecertResult
	err := workflow.ExecuteActivity(actx, cta.SubmitPrecertificate, activities.SubmitPrecertInput{
		ApplicationID: w.in.ApplicationID, Serial: serial,
	}).Get(ctx, &res)
	if err != nil && !temporal.IsCanceledError(err) {
		// Retries ran out (CTDeadline) or the precertificate is unusable.
		var app *temporal.ApplicationError
		last := err.Error()
		if errors.As(err, &app) {
			last = app.Message()
		}
		return &rejection{failed: true, reason: fmt.Sprintf("no final certificate: the CT logs did not give enough SCTs within %s (last: %s); precertificate %s was signed and stays revocable: staff decide whether to revoke it", CTDeadline, last, serial)}
	}
	return err
}

// finalize signs (or reads back) the final certificate of precertificate
// serial.
func (w *application) finalize(ctx workflow.Context, serial string) (activities.IssueResult, error) {
	workflow.SetCurrentDetails(ctx, "SCTs gathered: signing the final certificate "+serial)
	var sa *activities.SigningActivities
	var res activities.IssueResult
	sctx := workflow.WithActivityOptions(ctx, signingActivityOptions())
	err := workflow.ExecuteActivity(sctx, sa.IssueFinalCertificate, activities.FinalInput{In: w.issueInput(), Serial: serial}).Get(ctx, &res)
	return res, err
}
