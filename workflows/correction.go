package workflows

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"certdesk/activities"
	"certdesk/internal/cases"
	"certdesk/internal/mailer"
	"certdesk/internal/product"
	"certdesk/internal/revocation"
)

// Correction statuses (also the CaseStatus search attribute).
const (
	CorrReceived       = "received"
	CorrRefused        = "refused" // not the managing reseller, or no usable change: nothing written
	CorrAwaitingReview = "awaiting_review"
	CorrApplied        = "applied" // contact-only change written (final)
	CorrReissuing      = "reissuing"
	CorrCompleted      = "completed" // old certificate revoked, new application opened
	CorrRejected       = "rejected"  // staff rejected the printed change
	CorrFailed         = "failed"
)

// Correction timing: "without delay" — staff hear of a correction still
// open after 3 days and it escalates at 5.
var (
	CorrectionReminderAfter   = 3 * 24 * time.Hour
	CorrectionEscalationAfter = 5 * 24 * time.Hour
)

// CorrectionWorkflowID is the workflow ID of correction id.
func CorrectionWorkflowID(id string) string { return cases.TypeCorrection + "/" + id }

// ReissueApplicationID is the id of the application a printed correction
// opens: derived from the correction, so a retried step opens the same one.
func ReissueApplicationID(correctionID string) string { return correctionID + "-reissue" }

// CorrectionInput is a reseller's correction as the starter received it
// (the starter checked that the reseller manages the certificate; the
// workflow checks again). Changes maps field names (see activities.Field*;
// short aliases such as "organization", "email" are accepted) to the
// corrected values.
type CorrectionInput struct {
	CorrectionID string
	Serial       string
	ResellerID   string
	Changes      map[string]string
	Reason       string // the reseller's reason, for the staff reviewer
}

// CorrectionState is what the status query returns. Field names, never
// values: no personal data.
type CorrectionState struct {
	CorrectionID             string
	Serial                   string
	ResellerID               string
	Status                   string
	Reason                   string
	Classification           string // contact or printed
	ChangedFields            []string
	PrintedFields            []string
	ReviewRequired           bool
	Review                   *ReviewDecision
	DueAt                    time.Time
	RevocationWorkflowID     string
	RevokedAt                time.Time
	NewApplicationID         string
	NewApplicationWorkflowID string
}

// CorrectionResult is the workflow's outcome.
type CorrectionResult struct {
	Status           string
	Reason           string
	RevokedAt        time.Time
	NewApplicationID string
}

// Correction applies a correction of certificate information sent by the
// managing reseller (workflow 3; O3, O5, APPI Art. 34). Contact-only
// fields are applied to the subscriber record and the subject is told
// which fields changed; a change to anything printed in the certificate
// revokes it (superseded) and opens a new application with the corrected
// data, after staff review for OV and client certificates.
func Correction(ctx workflow.Context, in CorrectionInput) (CorrectionResult, error) {
	w := &correction{in: in}
	if err := w.setup(ctx); err != nil {
		return CorrectionResult{}, err
	}
	return w.run(ctx)
}

type correction struct {
	in       CorrectionInput
	state    CorrectionState
	plan     activities.CorrectionPlan
	reviewCh workflow.Channel
}

func (w *correction) setup(ctx workflow.Context) error {
	start := workflow.GetInfo(ctx).WorkflowStartTime
	w.state = CorrectionState{
		CorrectionID: w.in.CorrectionID, Serial: strings.ToLower(w.in.Serial), ResellerID: w.in.ResellerID,
		Status: CorrReceived, DueAt: start.Add(CorrectionEscalationAfter),
	}
	if err := workflow.UpsertTypedSearchAttributes(ctx,
		cases.CaseType.ValueSet(cases.TypeCorrection),
		cases.CaseStatus.ValueSet(CorrReceived),
		cases.ResellerID.ValueSet(w.in.ResellerID),
		cases.CertificateSerial.ValueSet(w.state.Serial),
		cases.DueAt.ValueSet(w.state.DueAt),
	); err != nil {
		return err
	}
	if err := workflow.SetQueryHandler(ctx, StatusQuery, func() (CorrectionState, error) { return w.state, nil }); err != nil {
		return err
	}
	var err error
	w.reviewCh, err = registerReview(ctx, func() string { return "correction " + w.in.CorrectionID + " (" + w.state.Status + ")" },
		func() bool { return w.state.Status == CorrAwaitingReview }, func() bool { return w.state.Review != nil },
		func(d ReviewDecision) { w.state.Review = &d }, func() CorrectionState { return w.state })
	return err
}

// correctionStop ends a correction with a final status and a reason the
// reseller sees.
type correctionStop struct{ status, reason string }

func (c *correctionStop) Error() string { return c.status + ": " + c.reason }

func (w *correction) run(ctx workflow.Context) (CorrectionResult, error) {
	ctx = workflow.WithActivityOptions(ctx, defaultActivityOptions())
	var a *activities.Activities

	// 1. Authorise and plan. Writes nothing: another reseller's certificate,
	// or a change that cannot be made, ends here with nothing behind.
	err := workflow.ExecuteActivity(ctx, a.CheckCorrection, activities.CheckCorrectionInput{
		CorrectionID: w.in.CorrectionID, Serial: w.in.Serial, ResellerID: w.in.ResellerID, Changes: w.in.Changes,
	}).Get(ctx, &w.plan)
	for _, t := range []string{activities.ErrTypeNotFound, activities.ErrTypeNotAuthorized, activities.ErrTypeInvalid} {
		if reason, ok := applicationErrorOf(err, t); ok {
			return w.refuse(ctx, reason)
		}
	}
	if err != nil {
		return CorrectionResult{}, err
	}
	w.state.Serial, w.state.Classification = w.plan.Serial, w.plan.Classification
	w.state.ChangedFields, w.state.PrintedFields, w.state.ReviewRequired = w.plan.ChangedFields, w.plan.PrintedFields, w.plan.ReviewRequired
	if err := workflow.UpsertTypedSearchAttributes(ctx, cases.CertificateSerial.ValueSet(w.plan.Serial)); err != nil {
		return CorrectionResult{}, err
	}

	// 2. A printed change re-applies with the certificate's key: check now
	// that the new application can go through, before anything is revoked.
	if w.plan.Reissue != nil {
		r := w.plan.Reissue
		in := activities.CheckCSRInput{Product: r.Product, CSRPEM: r.CSRPEM, Domains: r.Domains,
			Subject: activities.SubjectFrom(r.Subscriber, r.Product)}
		if r.Product == product.ClientSign {
			in.Domains, in.Email = nil, r.Subscriber.Email
		}
		err := workflow.ExecuteActivity(ctx, a.CheckCSR, in).Get(ctx, nil)
		if reason, ok := applicationErrorOf(err, activities.ErrTypeCSRRejected); ok {
			return w.refuse(ctx, "the new certificate could not be issued for the certificate's key: "+reason+"; submit a new application with a new key")
		} else if err != nil {
			return CorrectionResult{}, err
		}
	}

	// 3. Record it; from here the correction is on file.
	stop := startDeadlineWatch(ctx, deadlineWatch{caseType: cases.TypeCorrection, stage: "correction",
		start:     workflow.GetInfo(ctx).WorkflowStartTime,
		reminders: []time.Duration{CorrectionReminderAfter}, escalation: CorrectionEscalationAfter})
	defer stop()
	if err := workflow.ExecuteActivity(ctx, a.RecordCorrection, activities.RecordCorrectionInput{
		CorrectionID: w.in.CorrectionID, Serial: w.plan.Serial, ResellerID: w.in.ResellerID,
		WorkflowID: workflow.GetInfo(ctx).WorkflowExecution.ID, Changes: w.plan.Changes, Classification: w.plan.Classification,
	}).Get(ctx, nil); err != nil {
		return CorrectionResult{}, err
	}

	var res CorrectionResult
	if w.plan.Classification == activities.CorrectionContact {
		res, err = w.applyContact(ctx)
	} else {
		res, err = w.reissue(ctx)
	}
	var cs *correctionStop
	if errors.As(err, &cs) {
		return w.finish(ctx, cs.status, cs.reason)
	}
	return res, err
}

// refuse ends the case before anything was written.
func (w *correction) refuse(ctx workflow.Context, reason string) (CorrectionResult, error) {
	w.state.Status, w.state.Reason = CorrRefused, reason
	if err := setStatus(ctx, CorrRefused, "refused; nothing recorded"); err != nil {
		return CorrectionResult{}, err
	}
	return CorrectionResult{Status: CorrRefused, Reason: reason}, nil
}

// applyContact writes fields not printed in the certificate and tells the
// subject which fields changed (APPI Art. 34), and the previous address too
// when the address itself changed.
func (w *correction) applyContact(ctx workflow.Context) (CorrectionResult, error) {
	var a *activities.Activities
	if err := workflow.ExecuteActivity(ctx, a.ApplyCorrection, activities.ApplyCorrectionInput{
		CorrectionID: w.in.CorrectionID, SubscriberID: w.plan.SubscriberID, Changes: w.plan.Changes,
	}).Get(ctx, nil); err != nil {
		return CorrectionResult{}, err
	}
	if err := w.setStatus(ctx, CorrApplied, "", fmt.Sprintf("applied %d contact field(s)", len(w.plan.ChangedFields))); err != nil {
		return CorrectionResult{}, err
	}
	data := mailer.CorrectionAppliedData{Organization: w.plan.Organization, CorrectionID: w.in.CorrectionID,
		Serial: w.plan.Serial, ChangedFields: w.plan.ChangedFields, AppliedAt: workflow.Now(ctx)}
	if err := notify(ctx, activities.Recipient{SubscriberID: w.plan.SubscriberID}, mailer.CorrectionApplied, data); err != nil {
		return CorrectionResult{}, err
	}
	if w.plan.EmailChanged {
		key := mailer.Key(workflow.GetInfo(ctx).WorkflowExecution.ID, mailer.CorrectionApplied, "previous-contact")
		if err := workflow.ExecuteActivity(ctx, a.NotifyPreviousContact, activities.PreviousContactInput{
			CorrectionID: w.in.CorrectionID, IdempotencyKey: key, Data: data,
		}).Get(ctx, nil); err != nil {
			return CorrectionResult{}, err
		}
	}
	return CorrectionResult{Status: CorrApplied}, nil
}

// reissue handles a printed change: review (OV, client), revocation of the
// old certificate (superseded), a new application with the corrected data
// for the reseller to complete, both linked to the correction.
func (w *correction) reissue(ctx workflow.Context) (CorrectionResult, error) {
	var a *activities.Activities
	if w.plan.ReviewRequired {
		if err := w.setStatus(ctx, CorrAwaitingReview, "", "waiting for the staff review Update"); err != nil {
			return CorrectionResult{}, err
		}
		var d ReviewDecision
		w.reviewCh.Receive(ctx, &d)
		if d.Decision == "reject" {
			return CorrectionResult{}, &correctionStop{CorrRejected, d.Reason}
		}
	}
	if err := w.setStatus(ctx, CorrReissuing, "", "revoking "+w.plan.Serial+" (superseded) and opening a new application"); err != nil {
		return CorrectionResult{}, err
	}

	revokedAt, err := w.revoke(ctx)
	if err != nil {
		return CorrectionResult{}, err
	}
	w.state.RevokedAt = revokedAt
	if err := workflow.ExecuteActivity(ctx, a.UpdateCorrection, activities.CorrectionUpdate{
		CorrectionID: w.in.CorrectionID, RevocationSerial: w.plan.Serial,
	}).Get(ctx, nil); err != nil {
		return CorrectionResult{}, err
	}

	appID, err := w.reapply(ctx)
	if err != nil {
		return CorrectionResult{}, err
	}

	data := mailer.CorrectionReissueData{Organization: w.plan.Organization, CorrectionID: w.in.CorrectionID,
		OldSerial: w.plan.Serial, RevokedAt: revokedAt, NewApplicationID: appID, ChangedFields: w.plan.ChangedFields}
	if err := notify(ctx, activities.Recipient{SubscriberID: w.plan.SubscriberID}, mailer.CorrectionReissue, data, "subscriber"); err != nil {
		return CorrectionResult{}, err
	}
	if err := notify(ctx, activities.Recipient{ResellerID: w.in.ResellerID}, mailer.CorrectionReissue, data, "reseller"); err != nil {
		return CorrectionResult{}, err
	}
	// The old record stays the record of the old certificate; its contact
	// fields are corrected too (after the notice, which thus reaches the
	// address on record when the correction was made).
	contact := map[string]string{}
	for f, v := range w.plan.Changes {
		if !containsField(w.plan.PrintedFields, f) {
			contact[f] = v
		}
	}
	if len(contact) > 0 {
		if err := workflow.ExecuteActivity(ctx, a.ApplyCorrection, activities.ApplyCorrectionInput{
			CorrectionID: w.in.CorrectionID, SubscriberID: w.plan.SubscriberID, Changes: contact,
		}).Get(ctx, nil); err != nil {
			return CorrectionResult{}, err
		}
	}
	if err := w.setStatus(ctx, CorrCompleted, "", "revoked "+w.plan.Serial+"; new application "+appID); err != nil {
		return CorrectionResult{}, err
	}
	return CorrectionResult{Status: CorrCompleted, RevokedAt: revokedAt, NewApplicationID: appID}, nil
}

// revoke runs (or joins) the revocation of the old certificate as an
// abandoned child: it keeps its own BR deadline whatever happens here.
func (w *correction) revoke(ctx workflow.Context) (time.Time, error) {
	revID := RevocationWorkflowID(w.plan.Serial)
	w.state.RevocationWorkflowID = revID
	req := RevocationInput{
		Serial: w.plan.Serial, Reason: revocation.Superseded.String(), Requester: Requester{Kind: RequesterReseller, ID: w.in.ResellerID},
		Comment: "correction " + w.in.CorrectionID, RequestedAt: workflow.Now(ctx),
	}
	cctx := workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{
		WorkflowID:        revID,
		ParentClosePolicy: enums.PARENT_CLOSE_POLICY_ABANDON,
		StaticSummary:     "Revocation of " + w.plan.Serial + " (superseded: correction " + w.in.CorrectionID + ")",
		StaticDetails:     "Printed fields corrected: " + strings.Join(w.plan.PrintedFields, ", ") + ". Requested by reseller " + w.in.ResellerID + " through correction " + w.in.CorrectionID + ".",
	})
	f := workflow.ExecuteChildWorkflow(cctx, Revocation, req)
	if err := f.GetChildWorkflowExecution().Get(ctx, nil); err != nil {
		var started *serviceerror.WorkflowExecutionAlreadyStarted
		if !errors.As(err, &started) && !strings.Contains(err.Error(), "already started") {
			return time.Time{}, err
		}
		// A revocation of this certificate is already under way: join it
		// and wait until it is done.
		if err := workflow.SignalExternalWorkflow(ctx, revID, "", RequestSignal, req).Get(ctx, nil); err != nil {
			return time.Time{}, err
		}
		var a *activities.Activities
		wctx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
			StartToCloseTimeout: 30 * time.Second,
			RetryPolicy:         &temporal.RetryPolicy{InitialInterval: 30 * time.Second, BackoffCoefficient: 2, MaximumInterval: 10 * time.Minute},
		})
		var at time.Time
		err := workflow.ExecuteActivity(wctx, a.AwaitRevoked, w.plan.Serial).Get(ctx, &at)
		return at, err
	}
	var res RevocationResult
	if err := f.Get(ctx, &res); err != nil {
		return time.Time{}, err
	}
	if res.Status != RevRevoked {
		return time.Time{}, &correctionStop{CorrFailed, "the revocation of " + w.plan.Serial + " was refused: " + res.Refusal}
	}
	return res.RevokedAt, nil
}

// reapply opens the new application, prefilled with the corrected data, as
// an abandoned child the reseller completes (domain validation, identity
// verification, review), and links it once its record exists.
func (w *correction) reapply(ctx workflow.Context) (string, error) {
	r := w.plan.Reissue
	appID := ReissueApplicationID(w.in.CorrectionID)
	w.state.NewApplicationID, w.state.NewApplicationWorkflowID = appID, ApplicationWorkflowID(appID)
	in := ApplicationInput{
		ApplicationID: appID, ResellerID: w.in.ResellerID, Product: r.Product, CSRPEM: r.CSRPEM, Domains: r.Domains,
		ValidityDays: r.ValidityDays, Subscriber: r.Subscriber,
		// The reseller's correction request carries the applicant's
		// declaration forward: same terms as the original application.
		Attestation: activities.Attestation{TermsVersion: r.TermsVersion, Truthful: true, AttestedAt: workflow.GetInfo(ctx).WorkflowStartTime},
	}
	if r.Product == product.ClientSign {
		in.Domains = nil
	}
	cctx := workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{
		WorkflowID:        ApplicationWorkflowID(appID),
		ParentClosePolicy: enums.PARENT_CLOSE_POLICY_ABANDON,
		StaticSummary:     "Application " + appID + ": " + r.Product + " re-application after correction " + w.in.CorrectionID,
		StaticDetails:     "Prefilled with the corrected data and the key of " + w.plan.Serial + " (revoked, superseded). Reseller " + w.in.ResellerID + " completes it.",
		TypedSearchAttributes: temporal.NewSearchAttributes(
			cases.CaseType.ValueSet(cases.TypeApplication),
			cases.ResellerID.ValueSet(w.in.ResellerID),
		),
	})
	f := workflow.ExecuteChildWorkflow(cctx, Application, in)
	if err := f.GetChildWorkflowExecution().Get(ctx, nil); err != nil {
		var started *serviceerror.WorkflowExecutionAlreadyStarted
		if !errors.As(err, &started) && !strings.Contains(err.Error(), "already started") {
			return "", err
		}
	}

	// The application records itself as its second step; link it then. If
	// the application ends before its record exists, give the link a last
	// short try and fail the correction with the application's reason.
	var a *activities.Activities
	link := activities.CorrectionUpdate{CorrectionID: w.in.CorrectionID, NewApplicationID: appID}
	lctx, cancelLink := workflow.WithCancel(ctx)
	linkF := workflow.ExecuteActivity(lctx, a.UpdateCorrection, link)
	var linkErr error
	linked, childDone := false, false
	var appRes ApplicationResult
	sel := workflow.NewSelector(ctx)
	sel.AddFuture(linkF, func(f workflow.Future) { linkErr, linked = f.Get(ctx, nil), true })
	sel.AddFuture(f, func(f workflow.Future) { _ = f.Get(ctx, &appRes); childDone = true })
	sel.Select(ctx)
	if linked && linkErr != nil {
		return "", linkErr
	}
	if !linked && childDone {
		cancelLink()
		lastCtx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
			StartToCloseTimeout: time.Minute,
			RetryPolicy:         &temporal.RetryPolicy{InitialInterval: 5 * time.Second, BackoffCoefficient: 2, MaximumAttempts: 4},
		})
		if err := workflow.ExecuteActivity(lastCtx, a.UpdateCorrection, link).Get(ctx, nil); err != nil {
			return "", &correctionStop{CorrFailed, fmt.Sprintf("certificate %s was revoked but the new application %s ended before it was recorded (%s: %s)",
				w.plan.Serial, appID, appRes.Status, appRes.Reason)}
		}
	}
	return appID, nil
}

// finish records a final status other than applied or completed.
func (w *correction) finish(ctx workflow.Context, status, reason string) (CorrectionResult, error) {
	if err := w.setStatus(ctx, status, reason, status+": "+reason); err != nil {
		return CorrectionResult{}, err
	}
	return CorrectionResult{Status: status, Reason: reason, RevokedAt: w.state.RevokedAt, NewApplicationID: w.state.NewApplicationID}, nil
}

// setStatus moves the case: workflow state, search attribute, details and
// the corrections row (whose statuses are coarser: awaiting review is
// still "received" there).
func (w *correction) setStatus(ctx workflow.Context, status, reason, details string) error {
	w.state.Status, w.state.Reason = status, reason
	if err := setStatus(ctx, status, details); err != nil {
		return err
	}
	row := status
	if status == CorrAwaitingReview {
		row = CorrReceived
	}
	var a *activities.Activities
	return workflow.ExecuteActivity(ctx, a.UpdateCorrection, activities.CorrectionUpdate{
		CorrectionID: w.in.CorrectionID, Status: row,
	}).Get(ctx, nil)
}

func containsField(list []string, s string) bool {
	i := sort.SearchStrings(list, s)
	return i < len(list) && list[i] == s
}
