package workflows

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"certdesk/activities"
	"certdesk/internal/cases"
	"certdesk/internal/mailer"
	"certdesk/internal/revocation"
)

// Revocation statuses.
const (
	RevRequested = "requested"
	RevRefused   = "refused"
	RevRevoking  = "revoking"
	RevRevoked   = "revoked"
)

// RequestSignal joins another request for the same serial to the running
// revocation (the starter uses signal-with-start).
const RequestSignal = "request"

// ConfirmKeyCompromiseUpdate is staff's decision (a ReviewDecision, confirm
// or reject, with the reviewer) on a reseller's keyCompromise claim made
// without proof of possession; the case waits for it after revoking the
// reseller's certificate, for at most KeyCompromiseConfirmWait.
const ConfirmKeyCompromiseUpdate = "confirm-key-compromise"

// KeyCompromiseConfirmWait is how long an unproven claim waits for staff
// (reminder at a third, escalation at two thirds); a variable only so tests
// can read it.
var KeyCompromiseConfirmWait = 3 * 24 * time.Hour

// RevConfirming is the status while staff check an unproven keyCompromise.
const RevConfirming = "confirming-key-compromise"

// Requester kinds.
const (
	RequesterReseller   = "reseller"
	RequesterSubscriber = "subscriber" // proved control of the key
	RequesterStaff      = "staff"
	RequesterSystem     = "system" // a key-compromise cascade, a correction, a mass revocation
)

// Grounds of BR §4.9.1.1 that set a 24-hour deadline without being a
// subscriber request or key compromise.
const (
	GroundUnauthorizedRequest = "unauthorized_request"
	GroundValidationFailed    = "validation_failed"
)

// RevocationWorkflowID is the workflow ID of the revocation of serial (hex).
func RevocationWorkflowID(serial string) string {
	return cases.TypeRevocation + "/" + strings.ToLower(serial)
}

// Requester is who asked for a revocation.
type Requester struct {
	Kind string // reseller, subscriber, staff or system
	ID   string // reseller id, staff id, or the triggering case; no personal data
}

// RevocationInput is one request to revoke one certificate.
type RevocationInput struct {
	Serial      string
	Reason      string // unspecified, keyCompromise, affiliationChanged, superseded, cessationOfOperation, privilegeWithdrawn
	Ground      string // optional BR §4.9.1.1 ground for staff requests
	Requester   Requester
	Comment     string // free text for staff; no personal data
	RequestedAt time.Time
}

// RevocationState is what the status query returns.
type RevocationState struct {
	Serial     string
	Status     string
	Reason     string
	ReasonCode int
	Deadline   time.Time
	RevokedAt  time.Time
	Requests   []Requester
	Cascaded   []string
	Refusal    string
}

// RevocationResult is the workflow's outcome.
type RevocationResult struct {
	Status    string
	RevokedAt time.Time
	Refusal   string
}

// RevocationPolicy maps a request to its CRL reason code and the BR §4.9.1.1
// deadline: 24 hours for key compromise, a subscriber's own request (directly
// or through its reseller), an unauthorised original request and failed
// validation; 5 days for every other cause.
func RevocationPolicy(reason string, requesterKind, ground string) (code int, deadline time.Duration, err error) {
	r, err := revocation.Parse(reason)
	if err != nil {
		return 0, 0, err
	}
	code = int(r)
	switch {
	case r == revocation.KeyCompromise,
		requesterKind == RequesterReseller, requesterKind == RequesterSubscriber,
		ground == GroundUnauthorizedRequest, ground == GroundValidationFailed:
		return code, 24 * time.Hour, nil
	}
	return code, 5 * 24 * time.Hour, nil
}

// Revocation revokes one certificate within its BR deadline (workflow 5;
// O12, O13, O14): authorise, first report, revoke, block a compromised key
// and revoke its other certificates, republish CRL and OCSP, notify.
func Revocation(ctx workflow.Context, in RevocationInput) (RevocationResult, error) {
	w := &revocationCase{in: in}
	if err := w.setup(ctx); err != nil {
		return RevocationResult{}, err
	}
	return w.run(ctx)
}

type revocationCase struct {
	in              RevocationInput
	origRequestedAt time.Time
	state           RevocationState
	target          activities.RevocationTarget

	// complete is keyCompromiseChange: a proven keyCompromise always blocks
	// the key and cascades (also on a revoked certificate and when it joins
	// a running case); an unproven one stays on this certificate.
	complete bool
	// compromised is set once the key is blocked and the siblings are on
	// their way; pending holds a proven keyCompromise that joined the case
	// and still has to be carried out.
	compromised bool
	pending     *Requester
	// confirming is true while staff are asked to confirm an unproven
	// claim; decision is their answer.
	confirming bool
	decision   *ReviewDecision
}

// keyCompromiseChange is the workflow.GetVersion change ID under which a
// keyCompromise is carried out completely (issue 17). Histories recorded
// before it replay the old path: early return on a revoked certificate, a
// first report only for a joining request, and a cascade for any claim.
const keyCompromiseChange = "key-compromise-complete"

// NoteConfirmKeyCompromise is the staff task opened by an unproven
// keyCompromise claim: staff answer with the confirm-key-compromise Update
// (confirm blocks the key and revokes every certificate with it).
const NoteConfirmKeyCompromise = "confirm key compromise: a reseller reported keyCompromise without proof of possession; " +
	"only this certificate was revoked. Send the Update " + ConfirmKeyCompromiseUpdate + " (decision confirm or reject, reviewer, reason): " +
	"confirm blocks the key and revokes every certificate with it"

// provenCompromise reports whether a keyCompromise request by r rests on
// more than a reseller's word: the key holder proved possession (the
// starter's key-proof routes), staff decided, or CertDesk cascades a proven
// compromise.
func provenCompromise(reason string, r Requester) bool {
	return reason == revocation.KeyCompromise.String() && r.Kind != RequesterReseller
}

func (w *revocationCase) setup(ctx workflow.Context) error {
	w.origRequestedAt = w.in.RequestedAt
	if w.in.RequestedAt.IsZero() {
		w.in.RequestedAt = workflow.GetInfo(ctx).WorkflowStartTime
	}
	w.in.Serial = strings.ToLower(w.in.Serial)
	code, deadline, err := RevocationPolicy(w.in.Reason, w.in.Requester.Kind, w.in.Ground)
	if err != nil {
		return temporal.NewNonRetryableApplicationError(err.Error(), activities.ErrTypeInvalid, nil)
	}
	w.state = RevocationState{
		Serial: w.in.Serial, Status: RevRequested, Reason: w.in.Reason, ReasonCode: code,
		Deadline: w.in.RequestedAt.Add(deadline), Requests: []Requester{w.in.Requester},
	}
	if err := workflow.UpsertTypedSearchAttributes(ctx,
		cases.CaseType.ValueSet(cases.TypeRevocation),
		cases.CaseStatus.ValueSet(RevRequested),
		cases.CertificateSerial.ValueSet(w.in.Serial),
		cases.DueAt.ValueSet(w.state.Deadline),
	); err != nil {
		return err
	}
	return workflow.SetQueryHandler(ctx, StatusQuery, func() (RevocationState, error) { return w.state, nil })
}

func (w *revocationCase) run(ctx workflow.Context) (RevocationResult, error) {
	ctx = workflow.WithActivityOptions(ctx, defaultActivityOptions())
	var a *activities.Activities

	// Authorise: the managing reseller, staff, the key holder, or CertDesk itself.
	err := workflow.ExecuteActivity(ctx, a.AuthorizeRevocation, activities.AuthorizeRevocationInput{
		Serial: w.in.Serial, RequesterKind: w.in.Requester.Kind, RequesterID: w.in.Requester.ID,
	}).Get(ctx, &w.target)
	for _, t := range []string{activities.ErrTypeNotAuthorized, activities.ErrTypeNotFound} {
		if reason, ok := applicationErrorOf(err, t); ok {
			w.state.Status, w.state.Refusal = RevRefused, reason
			if err := setStatus(ctx, RevRefused, "refused: "+reason); err != nil {
				return RevocationResult{}, err
			}
			return RevocationResult{Status: RevRefused, Refusal: reason}, nil
		}
	}
	if err != nil {
		return RevocationResult{}, err
	}
	if w.target.ResellerID != "" {
		if err := workflow.UpsertTypedSearchAttributes(ctx, cases.ResellerID.ValueSet(w.target.ResellerID)); err != nil {
			return RevocationResult{}, err
		}
	}

	w.complete = workflow.GetVersion(ctx, keyCompromiseChange, workflow.DefaultVersion, 1) >= 1
	if w.complete {
		if err := workflow.SetUpdateHandlerWithOptions(ctx, ConfirmKeyCompromiseUpdate,
			func(ctx workflow.Context, d ReviewDecision) (RevocationState, error) {
				checked, err := checkReviewer(ctx, d.Reviewer)
				if err != nil {
					return RevocationState{}, err
				}
				if checked {
					if err := auditDecision(ctx, ConfirmKeyCompromiseUpdate, d.Reviewer, d.Decision); err != nil {
						return RevocationState{}, err
					}
					if !w.confirming || w.decision != nil {
						return RevocationState{}, fmt.Errorf("revocation of %s is not awaiting a key compromise confirmation", w.in.Serial)
					}
				}
				w.decision = &d
				return w.state, nil
			},
			workflow.UpdateHandlerOptions{Validator: func(ctx workflow.Context, d ReviewDecision) error {
				if !w.confirming || w.decision != nil {
					return fmt.Errorf("revocation of %s is not awaiting a key compromise confirmation", w.in.Serial)
				}
				return validateDecision(d.Decision, d.Reviewer, d.Reason, "confirm", "reject")
			}}); err != nil {
			return RevocationResult{}, err
		}
	}

	// Later requests for the same serial join this case and get a first
	// report; a proven keyCompromise among them upgrades the case.
	reqCh := workflow.GetSignalChannel(ctx, RequestSignal)
	workflow.Go(ctx, func(gctx workflow.Context) {
		for {
			var extra RevocationInput
			if !reqCh.Receive(gctx, &extra) {
				return
			}
			w.join(gctx, extra)
		}
	})
	// drain takes the requests that arrived in the same workflow task as the
	// case's last step, so none is acknowledged without being carried out.
	drain := func() {
		for {
			var extra RevocationInput
			if !reqCh.ReceiveAsync(&extra) {
				return
			}
			w.join(ctx, extra)
		}
	}

	if w.target.AlreadyRevoked && w.complete {
		// Revoked stays revoked, but a proven keyCompromise still blocks
		// the key, revokes the siblings and upgrades the recorded reason
		// (BR §7.2.2); anything else reports what is on record.
		if provenCompromise(w.in.Reason, w.in.Requester) {
			r := w.in.Requester
			w.pending = &r
			// BR §4.9.5: the report is acted on, so it gets its first report.
			if err := w.firstReport(ctx, w.in.Requester, "1"); err != nil {
				return RevocationResult{}, err
			}
		}
		drain()
		if err := w.carryOutPending(ctx); err != nil {
			return RevocationResult{}, err
		}
		w.state.Status, w.state.RevokedAt = RevRevoked, w.target.RevokedAt
		if err := setStatus(ctx, RevRevoked, "already revoked"); err != nil {
			return RevocationResult{}, err
		}
		return RevocationResult{Status: RevRevoked, RevokedAt: w.target.RevokedAt}, nil
	}
	if w.target.AlreadyRevoked {
		// Revoked stays revoked: report what is on record, change nothing.
		w.state.Status, w.state.RevokedAt = RevRevoked, w.target.RevokedAt
		if err := setStatus(ctx, RevRevoked, "already revoked"); err != nil {
			return RevocationResult{}, err
		}
		return RevocationResult{Status: RevRevoked, RevokedAt: w.target.RevokedAt}, nil
	}

	// BR §4.9.5: a first report to the requester within 24 hours.
	if err := w.firstReport(ctx, w.in.Requester, "1"); err != nil {
		return RevocationResult{}, err
	}
	start := w.in.RequestedAt
	total := w.state.Deadline.Sub(start)
	stop := startDeadlineWatch(ctx, deadlineWatch{caseType: cases.TypeRevocation, stage: RevRevoking, start: start,
		reminders: []time.Duration{total / 2}, escalation: total * 8 / 10})
	defer stop()

	// Revoke in the database.
	w.state.Status = RevRevoking
	if err := setStatus(ctx, RevRevoking, "revoking"); err != nil {
		return RevocationResult{}, err
	}
	var rr activities.RevokeResult
	if err := workflow.ExecuteActivity(ctx, a.RevokeCertificate, activities.RevokeInput{
		Serial: w.in.Serial, ReasonCode: w.state.ReasonCode, RequestedByKind: w.in.Requester.Kind,
		RequestedByRef: w.in.Requester.ID, RequestedAt: w.in.RequestedAt, Deadline: w.state.Deadline,
		WorkflowID: workflow.GetInfo(ctx).WorkflowExecution.ID,
	}).Get(ctx, &rr); err != nil {
		return RevocationResult{}, err
	}
	w.state.RevokedAt = rr.RevokedAt

	// Key compromise: block the key and revoke every other certificate on
	// it, once the compromise is proven; a reseller's claim alone revokes
	// its own certificate and asks staff to confirm.
	switch {
	case w.complete && w.state.ReasonCode == 1 && !w.compromised && w.pending == nil &&
		provenCompromise(revocation.KeyCompromise.String(), w.in.Requester):
		if err := w.blockAndCascade(ctx); err != nil {
			return RevocationResult{}, err
		}
	case w.complete && w.state.ReasonCode == 1 && !w.compromised && w.pending == nil:
		w.confirming = true
		if err := notify(ctx, activities.Recipient{Staff: true}, mailer.StaffEscalation, mailer.StaffCaseData{
			CaseType: cases.TypeRevocation, CaseID: w.in.Serial, WorkflowID: workflow.GetInfo(ctx).WorkflowExecution.ID,
			DueAt: workflow.Now(ctx).Add(KeyCompromiseConfirmWait), Note: NoteConfirmKeyCompromise,
		}, "confirm-key-compromise"); err != nil {
			return RevocationResult{}, err
		}
	case !w.complete && w.state.ReasonCode == 1:
		if err := w.blockAndCascade(ctx); err != nil {
			return RevocationResult{}, err
		}
	}

	// Republish the CRL shard and the OCSP answer (O14).
	if err := publish(ctx, []activities.ShardRef{{Issuer: w.target.Issuer, Shard: w.target.Shard}}, []string{w.in.Serial}); err != nil {
		return RevocationResult{}, err
	}
	if w.complete {
		if err := w.carryOutPending(ctx); err != nil {
			return RevocationResult{}, err
		}
	}
	w.state.Status = RevRevoked
	if err := setStatus(ctx, RevRevoked, "revoked and published"); err != nil {
		return RevocationResult{}, err
	}

	done := mailer.RevocationDoneData{Serial: w.in.Serial, Reason: mailer.RevocationReason(w.state.ReasonCode), RevokedAt: rr.RevokedAt}
	if w.target.SubscriberID != "" {
		if err := notify(ctx, activities.Recipient{SubscriberID: w.target.SubscriberID}, mailer.RevocationDone, done, "subscriber"); err != nil {
			return RevocationResult{}, err
		}
	}
	if w.target.ResellerID != "" {
		if err := notify(ctx, activities.Recipient{ResellerID: w.target.ResellerID}, mailer.RevocationDone, done, "reseller"); err != nil {
			return RevocationResult{}, err
		}
	}
	if w.complete && w.confirming {
		if err := w.awaitConfirmation(ctx); err != nil {
			return RevocationResult{}, err
		}
	}
	if w.complete {
		drain()
		if err := w.carryOutPending(ctx); err != nil {
			return RevocationResult{}, err
		}
	}
	return RevocationResult{Status: RevRevoked, RevokedAt: rr.RevokedAt}, nil
}

// awaitConfirmation waits for staff to confirm or reject an unproven
// keyCompromise claim (the reseller's certificate is already revoked and
// published). A confirmation, or a proven report joining meanwhile, blocks
// the key and revokes the siblings; a rejection or no answer in time leaves
// them alone (a later proven report still reaches them).
func (w *revocationCase) awaitConfirmation(ctx workflow.Context) error {
	w.state.Status = RevConfirming
	if err := setStatus(ctx, RevConfirming, "waiting for staff to confirm the key compromise (Update "+ConfirmKeyCompromiseUpdate+")"); err != nil {
		return err
	}
	stop := startDeadlineWatch(ctx, deadlineWatch{caseType: cases.TypeRevocation, stage: RevConfirming, start: workflow.Now(ctx),
		reminders: []time.Duration{KeyCompromiseConfirmWait / 3}, escalation: KeyCompromiseConfirmWait * 2 / 3})
	defer stop()
	if _, err := workflow.AwaitWithTimeout(ctx, KeyCompromiseConfirmWait, func() bool {
		return w.decision != nil || w.pending != nil || w.compromised
	}); err != nil {
		return err
	}
	w.confirming = false
	if w.decision != nil && w.decision.Decision == "confirm" && w.pending == nil && !w.compromised {
		w.pending = &Requester{Kind: RequesterStaff, ID: w.decision.Reviewer}
	}
	if err := w.carryOutPending(ctx); err != nil {
		return err
	}
	w.state.Status = RevRevoked
	return setStatus(ctx, RevRevoked, "revoked and published")
}

// join takes a later request for the same serial into the case.
func (w *revocationCase) join(ctx workflow.Context, extra RevocationInput) {
	// Signal-with-start also delivers the starting request as a signal:
	// that one has had its first report already.
	if extra.Requester == w.in.Requester && extra.RequestedAt.Equal(w.origRequestedAt) {
		return
	}
	w.state.Requests = append(w.state.Requests, extra.Requester)
	if w.complete && !w.compromised && w.pending == nil && provenCompromise(extra.Reason, extra.Requester) {
		r := extra.Requester
		w.pending = &r
		w.state.Reason, w.state.ReasonCode = revocation.KeyCompromise.String(), int(revocation.KeyCompromise)
	}
	_ = w.firstReport(ctx, extra.Requester, fmt.Sprint(len(w.state.Requests)))
}

// carryOutPending carries out a proven keyCompromise that is not yet done:
// the reason of this certificate rises to keyCompromise (the store never
// weakens a reason), the key is blocked, the siblings are revoked, and the
// CRL and OCSP answer are signed again with the new reason.
func (w *revocationCase) carryOutPending(ctx workflow.Context) error {
	for w.pending != nil && !w.compromised {
		by := *w.pending
		w.pending = nil
		var a *activities.Activities
		var rr activities.RevokeResult
		if err := workflow.ExecuteActivity(ctx, a.RevokeCertificate, activities.RevokeInput{
			Serial: w.in.Serial, ReasonCode: int(revocation.KeyCompromise), RequestedByKind: by.Kind,
			RequestedByRef: by.ID, RequestedAt: workflow.Now(ctx), Deadline: w.state.Deadline,
			WorkflowID: workflow.GetInfo(ctx).WorkflowExecution.ID,
		}).Get(ctx, &rr); err != nil {
			return err
		}
		w.state.Reason, w.state.ReasonCode = revocation.KeyCompromise.String(), int(revocation.KeyCompromise)
		if err := w.blockAndCascade(ctx); err != nil {
			return err
		}
		if err := publish(ctx, []activities.ShardRef{{Issuer: w.target.Issuer, Shard: w.target.Shard}}, []string{w.in.Serial}); err != nil {
			return err
		}
	}
	return nil
}

// blockAndCascade blocks the certificate's key and revokes every other
// certificate with it, whichever reseller manages it.
func (w *revocationCase) blockAndCascade(ctx workflow.Context) error {
	var a *activities.Activities
	var siblings []string
	if err := workflow.ExecuteActivity(ctx, a.BlockKey, activities.BlockKeyInput{
		SPKISHA256: w.target.SPKISHA256, Serial: w.in.Serial, Reason: revocation.KeyCompromise.String(),
	}).Get(ctx, &siblings); err != nil {
		return err
	}
	w.compromised = true
	return w.cascade(ctx, siblings)
}

// firstReport acknowledges a request to the one who made it.
func (w *revocationCase) firstReport(ctx workflow.Context, r Requester, n string) error {
	var to activities.Recipient
	switch r.Kind {
	case RequesterReseller:
		to.ResellerID = r.ID
	case RequesterSubscriber:
		to.SubscriberID = w.target.SubscriberID
	case RequesterStaff:
		to.Staff = true
	default:
		return nil // CertDesk itself asked: nobody to report to
	}
	if to.SubscriberID == "" && to.ResellerID == "" && !to.Staff {
		return nil
	}
	return notify(ctx, to, mailer.RevocationAccepted, mailer.RevocationAcceptedData{
		RequestID: workflow.GetInfo(ctx).WorkflowExecution.ID, Serial: w.in.Serial,
		Reason: mailer.RevocationReason(w.state.ReasonCode), ReceivedAt: w.in.RequestedAt, Deadline: w.state.Deadline,
	}, "request", n)
}

// cascade starts (or joins) the revocation of each sibling certificate.
// Children are abandoned on close: each runs to its own deadline.
func (w *revocationCase) cascade(ctx workflow.Context, serials []string) error {
	for _, s := range serials {
		cctx := workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{
			WorkflowID:        RevocationWorkflowID(s),
			ParentClosePolicy: enums.PARENT_CLOSE_POLICY_ABANDON,
			StaticSummary:     "Revocation of " + s + " (key compromise of " + w.in.Serial + ")",
		})
		f := workflow.ExecuteChildWorkflow(cctx, Revocation, RevocationInput{
			Serial: s, Reason: revocation.KeyCompromise.String(), Requester: Requester{Kind: RequesterSystem, ID: "key-compromise:" + w.in.Serial},
			RequestedAt: workflow.Now(ctx),
		})
		err := f.GetChildWorkflowExecution().Get(ctx, nil)
		var started *serviceerror.WorkflowExecutionAlreadyStarted
		if err != nil && !errors.As(err, &started) && !strings.Contains(err.Error(), "already started") {
			return err
		}
		w.state.Cascaded = append(w.state.Cascaded, s)
	}
	return nil
}

// publish regenerates the CRL shards and signs fresh OCSP answers on the
// signing queue.
func publish(ctx workflow.Context, shards []activities.ShardRef, serials []string) error {
	sctx := workflow.WithActivityOptions(ctx, signingActivityOptions())
	var sa *activities.SigningActivities
	if len(shards) > 0 {
		if err := workflow.ExecuteActivity(sctx, sa.PublishCRLs, activities.PublishCRLsInput{Shards: shards}).Get(ctx, nil); err != nil {
			return err
		}
	}
	if len(serials) > 0 {
		if err := workflow.ExecuteActivity(sctx, sa.SignOCSP, activities.SignOCSPInput{Serials: serials}).Get(ctx, nil); err != nil {
			return err
		}
	}
	return nil
}
