package workflows

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"certdesk/activities"
	"certdesk/internal/cases"
	"certdesk/internal/mailer"
)

// Disclosure statuses (also the CaseStatus search attribute).
const (
	DiscReceived            = "received"
	DiscVerifyingIdentity   = "verifying_identity"
	DiscWaitingForRequester = "waiting_for_requester" // documents asked for: the clock is paused
	DiscCompiling           = "compiling"
	DiscAwaitingApproval    = "awaiting_approval" // compiled; staff check it (approve-disclosure) before it is sent
	DiscPackageRejected     = "package_rejected"  // staff rejected the package: approve it later or refuse
	DiscDelivering          = "delivering"        // electronic: link being armed and emailed
	DiscAwaitingPaper       = "awaiting_paper"    // signed package ready; staff print and mail it
	DiscDelivered           = "delivered"
	DiscRefused             = "refused" // APPI Art. 33(2), ground named
	DiscClosed              = "closed"  // identity not verified
)

// Names staff and the starter use to talk to a disclosure workflow.
const (
	RequestDocumentsUpdate  = "request-documents"
	DocumentsReceivedUpdate = "documents-received"
	DocumentsReceivedSignal = "documents-received"
	RefuseUpdate            = "refuse"
	PaperSentUpdate         = "paper-sent"
	ApproveDisclosureUpdate = "approve-disclosure"
)

// Delivery methods; electronic is the default (O6).
const (
	DeliveryElectronic = "electronic"
	DeliveryPaper      = "paper"
)

// Disclosure timing (O6): an internal target of 7 days from receipt, a
// reminder at day 5, an escalation at day 7 and an alert at day 14; the
// clock is paused only while waiting for the requester. The download link
// lasts 7 days and serves a few downloads.
var (
	DisclosureReminderAfter   = 5 * 24 * time.Hour
	DisclosureEscalationAfter = 7 * 24 * time.Hour
	DisclosureAlertAfter      = 14 * 24 * time.Hour
	DisclosureLinkValidity    = 7 * 24 * time.Hour
	DisclosureLinkDownloads   = 3
	// The staff check of a compiled package: a reminder after a day, an
	// escalation after two (the O6 clock runs on meanwhile).
	DisclosureApprovalReminder   = 24 * time.Hour
	DisclosureApprovalEscalation = 48 * time.Hour
)

// disclosureSecretChange is the workflow.GetVersion change ID under which
// the download token is made and emailed inside SendDisclosureLink;
// histories from before it replay the SideEffect path.
const disclosureSecretChange = "disclosure-secret-in-activity"

// disclosureStaffCheckChange is the workflow.GetVersion change ID under
// which an electronic delivery waits for staff to approve the compiled
// package (approve-disclosure, issue 17); histories from before it deliver
// right after signing.
const disclosureStaffCheckChange = "disclosure-staff-check"

// DisclosureWorkflowID is the workflow ID of disclosure request id.
func DisclosureWorkflowID(id string) string { return cases.TypeDisclosure + "/" + id }

// DisclosureVerificationID is the identity verification of request id.
func DisclosureVerificationID(id string) string { return "ver-disclosure-" + id }

// DisclosurePackageID is the id of the package answering request id.
func DisclosurePackageID(id string) string { return "dp_" + id }

// DisclosureInput is a data subject's request from the public API.
type DisclosureInput struct {
	RequestID     string
	Name          string
	Email         string
	Phone         string    // the phone number given when applying: matched with the name (issue 17)
	Delivery      string    // electronic (default) or paper
	PostalAddress string    // paper delivery only (required then)
	ReceivedAt    time.Time // when the starter received it; default the workflow's start
}

// DocumentsRequest is the body of the request-documents Update: staff ask
// the requester for identity documents. Reason is logged; no personal data.
type DocumentsRequest struct {
	Reviewer string `json:"reviewer"`
	Reason   string `json:"reason"`
}

// DocumentsReceived is the body of the documents-received Update or Signal.
type DocumentsReceived struct {
	Reviewer string `json:"reviewer"`
	Note     string `json:"note"`
}

// DisclosureRefusal is the body of the refuse Update: refusal in whole on
// one ground of APPI Art. 33(2) (1, 2 or 3), named in the notice.
type DisclosureRefusal struct {
	Ground      int    `json:"ground"`
	Reviewer    string `json:"reviewer"`
	Explanation string `json:"explanation"` // shown to the requester (APPI Art. 36)
}

// PaperSent is the body of the paper-sent Update: staff mailed the package.
type PaperSent struct {
	Reviewer  string `json:"reviewer"`
	Reference string `json:"reference"` // e.g. the registered-mail number
}

// PackageDecision is the body of the approve-disclosure Update: a staff
// member checked the compiled package (that it holds only the requester's
// data) before it is sent. Decision is approve or reject (a reason is
// required then; it is kept in the case, not in the audit log). SHA256, if
// given, must be the digest of the package checked (the status query's
// PackageSHA256), so an approval cannot apply to another compilation.
type PackageDecision struct {
	Reviewer string `json:"reviewer"`
	Decision string `json:"decision"`
	Reason   string `json:"reason"`
	SHA256   string `json:"sha256"`
}

// DisclosurePause is one stop of the clock.
type DisclosurePause struct {
	Reviewer string
	Reason   string
	From     time.Time
	Until    time.Time // zero while paused
}

// DisclosureState is what the status query returns. No personal data:
// counts of what was found, never what.
type DisclosureState struct {
	RequestID      string
	Status         string
	Reason         string
	Delivery       string
	ReceivedAt     time.Time
	DueAt          time.Time // moves with pauses
	VerificationID string
	Paused         bool
	PausedTotal    time.Duration
	Pauses         []DisclosurePause
	NothingHeld    bool
	Counts         map[string]int
	Withheld       map[string]int // records found by the address whose name or phone did not match: not disclosed
	Decisions      []PackageDecision
	PackageID      string
	PackageSHA256  string
	LinkExpiresAt  time.Time
	Refusal        *DisclosureRefusal
	PaperSent      *PaperSent
	DeliveredAt    time.Time
}

// DisclosureResult is the workflow's outcome.
type DisclosureResult struct {
	Status      string
	Reason      string
	NothingHeld bool
	PackageID   string
	DeliveredAt time.Time
}

// Disclosure answers a data subject's request for everything held about
// them (workflow 4; O6, O7, APPI Art. 33): identity verification (staff may
// ask for documents, which pauses the clock), compilation by the verified
// address, a package signed by the CA, delivery by the chosen method, and a
// record in the provision ledger. Nothing the requester sees before the
// identity is verified depends on whether data is held.
func Disclosure(ctx workflow.Context, in DisclosureInput) (DisclosureResult, error) {
	w := &disclosure{in: in}
	if err := w.setup(ctx); err != nil {
		return DisclosureResult{}, err
	}
	return w.run(ctx)
}

type disclosure struct {
	in       DisclosureInput
	state    DisclosureState
	compiled activities.CompileDisclosureResult

	refusal     *DisclosureRefusal
	paper       *PaperSent
	approved    *PackageDecision // the staff check passed
	committed   bool             // delivery started: no refusal any more
	closed      bool             // final: the clock stops
	cancelSteps workflow.CancelFunc
	// clockQueue holds pause changes still to be written, in order.
	clockQueue []clockChange
}

type clockChange struct {
	resume bool
	n      int // the pause's number, for the documents notice's key
	in     activities.DisclosurePauseInput
}

func (w *disclosure) setup(ctx workflow.Context) error {
	if w.in.Delivery == "" {
		w.in.Delivery = DeliveryElectronic
	}
	switch {
	case strings.TrimSpace(w.in.RequestID) == "":
		return temporal.NewNonRetryableApplicationError("disclosure: RequestID is required", activities.ErrTypeInvalid, nil)
	case strings.TrimSpace(w.in.Email) == "":
		return temporal.NewNonRetryableApplicationError("disclosure: an email address is required (identity is verified through it)", activities.ErrTypeInvalid, nil)
	case w.in.Delivery != DeliveryElectronic && w.in.Delivery != DeliveryPaper:
		return temporal.NewNonRetryableApplicationError("disclosure: delivery must be electronic or paper", activities.ErrTypeInvalid, nil)
	case w.in.Delivery == DeliveryPaper && strings.TrimSpace(w.in.PostalAddress) == "":
		return temporal.NewNonRetryableApplicationError("disclosure: paper delivery needs a postal address", activities.ErrTypeInvalid, nil)
	}
	if w.in.ReceivedAt.IsZero() {
		w.in.ReceivedAt = workflow.GetInfo(ctx).WorkflowStartTime
	}
	w.state = DisclosureState{
		RequestID: w.in.RequestID, Status: DiscReceived, Delivery: w.in.Delivery, ReceivedAt: w.in.ReceivedAt,
		DueAt: w.in.ReceivedAt.Add(DisclosureEscalationAfter), VerificationID: DisclosureVerificationID(w.in.RequestID),
	}
	if err := workflow.UpsertTypedSearchAttributes(ctx,
		cases.CaseType.ValueSet(cases.TypeDisclosure),
		cases.CaseStatus.ValueSet(DiscReceived),
		cases.DueAt.ValueSet(w.state.DueAt),
	); err != nil {
		return err
	}
	if err := workflow.SetQueryHandler(ctx, StatusQuery, func() (DisclosureState, error) { return w.state, nil }); err != nil {
		return err
	}
	if err := workflow.SetUpdateHandlerWithOptions(ctx, RequestDocumentsUpdate,
		func(ctx workflow.Context, r DocumentsRequest) (DisclosureState, error) {
			w.pause(ctx, r)
			return w.state, nil
		},
		workflow.UpdateHandlerOptions{Validator: func(ctx workflow.Context, r DocumentsRequest) error {
			if w.state.Status != DiscVerifyingIdentity || w.state.Paused || w.refusal != nil || w.closed {
				return fmt.Errorf("disclosure %s is %s: documents can be asked for only while the identity is being verified", w.in.RequestID, w.state.Status)
			}
			if strings.TrimSpace(r.Reviewer) == "" {
				return errors.New("reviewer is required: say who asks")
			}
			return checkLoggedText("reason", r.Reason, true)
		}}); err != nil {
		return err
	}
	if err := workflow.SetUpdateHandlerWithOptions(ctx, DocumentsReceivedUpdate,
		func(ctx workflow.Context, d DocumentsReceived) (DisclosureState, error) {
			w.resume(ctx, d.Reviewer)
			return w.state, nil
		},
		workflow.UpdateHandlerOptions{Validator: func(ctx workflow.Context, d DocumentsReceived) error {
			if !w.state.Paused {
				return fmt.Errorf("disclosure %s is %s, not waiting for the requester", w.in.RequestID, w.state.Status)
			}
			if strings.TrimSpace(d.Reviewer) == "" {
				return errors.New("reviewer is required: say who received the documents")
			}
			return checkLoggedText("note", d.Note, false)
		}}); err != nil {
		return err
	}
	if err := workflow.SetUpdateHandlerWithOptions(ctx, RefuseUpdate,
		func(ctx workflow.Context, r DisclosureRefusal) (DisclosureState, error) {
			if err := w.staffDecision(ctx, RefuseUpdate, r.Reviewer, fmt.Sprintf("refuse (ground %d)", r.Ground), func() error {
				if w.committed || w.closed || w.refusal != nil {
					return fmt.Errorf("disclosure %s is %s: a refusal is possible only before delivery", w.in.RequestID, w.state.Status)
				}
				return nil
			}); err != nil {
				return DisclosureState{}, err
			}
			w.refusal = &r
			w.state.Refusal = &r
			if w.cancelSteps != nil {
				w.cancelSteps()
			}
			return w.state, nil
		},
		workflow.UpdateHandlerOptions{Validator: func(ctx workflow.Context, r DisclosureRefusal) error {
			if w.committed || w.closed || w.refusal != nil {
				return fmt.Errorf("disclosure %s is %s: a refusal is possible only before delivery", w.in.RequestID, w.state.Status)
			}
			if r.Ground < 1 || r.Ground > 3 {
				return fmt.Errorf("ground %d is not an item of APPI Art. 33(2): use 1 (harm to the person or a third party), 2 (serious hindrance to the business) or 3 (violation of other laws)", r.Ground)
			}
			if strings.TrimSpace(r.Reviewer) == "" {
				return errors.New("reviewer is required: say who decides")
			}
			if len([]rune(r.Explanation)) > 2000 {
				return errors.New("the explanation is longer than 2,000 characters")
			}
			return nil
		}}); err != nil {
		return err
	}
	if err := workflow.SetUpdateHandlerWithOptions(ctx, ApproveDisclosureUpdate,
		func(ctx workflow.Context, d PackageDecision) (DisclosureState, error) {
			if _, err := checkReviewer(ctx, d.Reviewer); err != nil {
				return DisclosureState{}, err
			}
			// The check yielded: the case may have moved meanwhile.
			if err := w.checkPackageDecision(d); err != nil {
				return DisclosureState{}, err
			}
			if err := auditDecision(ctx, ApproveDisclosureUpdate, d.Reviewer, d.Decision); err != nil {
				return DisclosureState{}, err
			}
			if err := w.checkPackageDecision(d); err != nil {
				return DisclosureState{}, err
			}
			w.state.Decisions = append(w.state.Decisions, d)
			if d.Decision == "approve" {
				w.approved = &d
			} else {
				w.state.Status = DiscPackageRejected
				_ = setStatus(ctx, DiscPackageRejected, "package rejected by staff: approve-disclosure again, or refuse")
			}
			return w.state, nil
		},
		workflow.UpdateHandlerOptions{Validator: func(ctx workflow.Context, d PackageDecision) error {
			if err := w.checkPackageDecision(d); err != nil {
				return err
			}
			if err := validateDecision(d.Decision, d.Reviewer, d.Reason, "approve", "reject"); err != nil {
				return err
			}
			return checkLoggedText("reason", d.Reason, false)
		}}); err != nil {
		return err
	}
	return workflow.SetUpdateHandlerWithOptions(ctx, PaperSentUpdate,
		func(ctx workflow.Context, p PaperSent) (DisclosureState, error) {
			if err := w.staffDecision(ctx, PaperSentUpdate, p.Reviewer, "sent", func() error {
				if w.state.Status != DiscAwaitingPaper || w.paper != nil || w.refusal != nil {
					return fmt.Errorf("disclosure %s is %s, not waiting for a paper delivery", w.in.RequestID, w.state.Status)
				}
				return nil
			}); err != nil {
				return DisclosureState{}, err
			}
			w.committed = true
			w.paper = &p
			w.state.PaperSent = &p
			return w.state, nil
		},
		workflow.UpdateHandlerOptions{Validator: func(ctx workflow.Context, p PaperSent) error {
			if w.state.Status != DiscAwaitingPaper || w.paper != nil || w.refusal != nil {
				return fmt.Errorf("disclosure %s is %s, not waiting for a paper delivery", w.in.RequestID, w.state.Status)
			}
			if strings.TrimSpace(p.Reviewer) == "" {
				return errors.New("reviewer is required: say who mailed the package")
			}
			return checkLoggedText("reference", p.Reference, false)
		}})
}

// disclosureDecisionsChange is the change ID under which the refuse and
// paper-sent Updates, like approve-disclosure, check that the reviewer is
// active staff and audit the decision under that reviewer.
const disclosureDecisionsChange = "disclosure-decisions-staff-checked"

// staffDecision checks that reviewer is an active staff member and audits
// the decision, for Updates recorded after disclosureDecisionsChange. The
// check yields, so still says whether the decision can apply yet, before
// the audit and after it.
func (w *disclosure) staffDecision(ctx workflow.Context, update, reviewer, decision string, still func() error) error {
	if workflow.GetVersion(ctx, disclosureDecisionsChange, workflow.DefaultVersion, 1) == workflow.DefaultVersion {
		return nil
	}
	if _, err := checkReviewer(ctx, reviewer); err != nil {
		return err
	}
	if err := still(); err != nil {
		return err
	}
	if err := auditDecision(ctx, update, reviewer, decision); err != nil {
		return err
	}
	return still()
}

// checkPackageDecision says whether an approve-disclosure decision can
// apply now: the case waits for the staff check and d names this package.
func (w *disclosure) checkPackageDecision(d PackageDecision) error {
	if (w.state.Status != DiscAwaitingApproval && w.state.Status != DiscPackageRejected) || w.approved != nil ||
		w.refusal != nil || w.closed {
		return fmt.Errorf("disclosure %s is %s, not waiting for the staff check of its package", w.in.RequestID, w.state.Status)
	}
	if d.SHA256 != "" && !strings.EqualFold(d.SHA256, w.state.PackageSHA256) {
		return fmt.Errorf("package digest %s is not the one compiled for disclosure %s (see the status query)", d.SHA256, w.in.RequestID)
	}
	return nil
}

// checkLoggedText refuses text that goes to plain-text logs (pause reasons
// are kept unencrypted) if it is too long or holds an email address.
func checkLoggedText(name, v string, required bool) error {
	if required && strings.TrimSpace(v) == "" {
		return fmt.Errorf("a %s is required", name)
	}
	if len([]rune(v)) > 300 {
		return fmt.Errorf("the %s is longer than 300 characters", name)
	}
	if strings.Contains(v, "@") {
		return fmt.Errorf("the %s is logged: leave personal data such as email addresses out of it", name)
	}
	return nil
}

// disclosureStop ends a disclosure without delivery.
type disclosureStop struct{ status, reason string }

func (d *disclosureStop) Error() string { return d.status + ": " + d.reason }

func (w *disclosure) run(ctx workflow.Context) (DisclosureResult, error) {
	ctx = workflow.WithActivityOptions(ctx, defaultActivityOptions())
	var a *activities.Activities
	wfID := workflow.GetInfo(ctx).WorkflowExecution.ID

	if err := workflow.ExecuteActivity(ctx, a.RecordDisclosureRequest, activities.DisclosureRequestInput{
		RequestID: w.in.RequestID, Name: w.in.Name, Email: w.in.Email, Phone: w.in.Phone, PostalAddress: w.in.PostalAddress,
		Delivery: w.in.Delivery, ReceivedAt: w.in.ReceivedAt, DueAt: w.state.DueAt, WorkflowID: wfID,
	}).Get(ctx, nil); err != nil {
		return DisclosureResult{}, err
	}
	w.startClock(ctx)
	workflow.Go(ctx, w.clockWriter)
	// The starter (or an upload) may say the documents came by Signal.
	docsCh := workflow.GetSignalChannel(ctx, DocumentsReceivedSignal)
	workflow.Go(ctx, func(gctx workflow.Context) {
		for {
			var d DocumentsReceived
			if !docsCh.Receive(gctx, &d) {
				return
			}
			if d.Reviewer == "" {
				d.Reviewer = "system"
			}
			if !w.closed {
				w.resume(gctx, d.Reviewer)
			}
		}
	})

	// The steps run until delivery unless staff refuse (which cancels them).
	stepsCtx, cancel := workflow.WithCancel(ctx)
	w.cancelSteps = cancel
	err := w.steps(stepsCtx)

	final := ctx
	if w.refusal != nil && err != nil {
		final, _ = workflow.NewDisconnectedContext(ctx)
		return w.finishRefused(final)
	}
	var stop *disclosureStop
	if errors.As(err, &stop) {
		return w.finish(final, stop.status, stop.reason)
	}
	if err != nil {
		return DisclosureResult{}, err
	}
	return w.finish(final, DiscDelivered, "")
}

func (w *disclosure) steps(ctx workflow.Context) error {
	var a *activities.Activities
	wfID := workflow.GetInfo(ctx).WorkflowExecution.ID

	// 1. Identity verification: a one-time code to the address given (the
	// first email, the same whether or not data is held), then staff check
	// the documents (confirm-identity on the child).
	if err := w.setStatus(ctx, DiscVerifyingIdentity, "verifying_identity", "", "identity verification "+w.state.VerificationID); err != nil {
		return err
	}
	cctx := workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{
		WorkflowID:        VerificationWorkflowID(w.state.VerificationID),
		ParentClosePolicy: enums.PARENT_CLOSE_POLICY_TERMINATE,
		StaticSummary:     "Identity verification for disclosure request " + w.in.RequestID,
		StaticDetails: "Staff: check the requester's documents, then send confirm-identity here. To ask for documents, send " +
			"request-documents to " + workflow.GetInfo(ctx).WorkflowExecution.ID + " (pauses the O6 clock); documents-received resumes it.",
		TypedSearchAttributes: temporal.NewSearchAttributes(
			cases.CaseType.ValueSet(cases.TypeVerification),
		),
	})
	var ver VerificationResult
	if err := workflow.ExecuteChildWorkflow(cctx, Verification, VerificationInput{
		VerificationID: w.state.VerificationID,
		Purpose:        cases.TypeDisclosure,
		CaseRef:        w.in.RequestID,
		Email:          w.in.Email,
	}).Get(ctx, &ver); err != nil {
		return err
	}
	if w.state.Paused {
		w.resume(ctx, "system") // the documents evidently came: staff decided
	}
	if !ver.Verified {
		w.state.Reason = "identity not verified: " + ver.Reason
		return &disclosureStop{DiscClosed, "identity not verified"}
	}

	// 2. Compile everything held about the verified address, then have the
	// CA sign it on the signing queue.
	if err := w.setStatus(ctx, DiscCompiling, "compiling", "", "compiling and signing the package"); err != nil {
		return err
	}
	if err := workflow.ExecuteActivity(ctx, a.CompileDisclosure, activities.CompileDisclosureInput{
		RequestID:          w.in.RequestID,
		ExcludeKeyPrefixes: []string{wfID + "|", VerificationWorkflowID(w.state.VerificationID) + "|"},
	}).Get(ctx, &w.compiled); err != nil {
		return err
	}
	w.state.NothingHeld, w.state.Counts, w.state.PackageSHA256 = w.compiled.NothingHeld, w.compiled.Counts, w.compiled.SHA256
	w.state.Withheld = w.compiled.Withheld
	// Versioned: before the change an electronic package went out unchecked.
	if w.in.Delivery == DeliveryElectronic &&
		workflow.GetVersion(ctx, disclosureStaffCheckChange, workflow.DefaultVersion, 1) == 1 {
		if err := w.staffCheck(ctx); err != nil {
			return err
		}
	}
	sctx := workflow.WithActivityOptions(ctx, signingActivityOptions())
	var sa *activities.SigningActivities
	var signed activities.SignDisclosureResult
	if err := workflow.ExecuteActivity(sctx, sa.SignDisclosurePackage, activities.SignDisclosureInput{
		RequestID: w.in.RequestID, PackageID: DisclosurePackageID(w.in.RequestID), SHA256: w.compiled.SHA256,
	}).Get(ctx, &signed); err != nil {
		return err
	}
	w.state.PackageID = signed.PackageID

	// 3. Deliver by the method chosen.
	if w.in.Delivery == DeliveryPaper {
		return w.deliverPaper(ctx)
	}
	return w.deliverElectronic(ctx)
}

// staffCheck waits for a staff member to approve the compiled package
// before it is signed and sent (approve-disclosure; issue 17): a shared
// address or a wrong record must be caught by a person, not mailed out.
// A rejection keeps the case waiting for a later approval or a refusal.
// Staff are reminded and the wait escalated like every staff wait.
func (w *disclosure) staffCheck(ctx workflow.Context) error {
	note := fmt.Sprintf("check the compiled disclosure package (the starter's /staff/disclosure-drafts/%s, sha256 %s), "+
		"then send approve-disclosure (approve or reject)", w.in.RequestID, w.compiled.SHA256)
	if n := countOf(w.compiled.Withheld); n > 0 {
		note += fmt.Sprintf("; %d record(s) found by the address alone were withheld (name or phone did not match)", n)
	}
	// The request's row stays "compiling": its states are coarser.
	w.state.Status = DiscAwaitingApproval
	if err := setStatus(ctx, DiscAwaitingApproval, "waiting for the staff check of the package (approve-disclosure Update)"); err != nil {
		return err
	}
	if err := notify(ctx, activities.Recipient{Staff: true}, mailer.StaffReminder, mailer.StaffCaseData{
		CaseType: cases.TypeDisclosure, CaseID: w.in.RequestID, WorkflowID: workflow.GetInfo(ctx).WorkflowExecution.ID,
		DueAt: w.state.DueAt, Note: note,
	}, "package-check"); err != nil {
		return err
	}
	stop := startDeadlineWatch(ctx, deadlineWatch{caseType: cases.TypeDisclosure, stage: DiscAwaitingApproval, start: workflow.Now(ctx),
		reminders: []time.Duration{DisclosureApprovalReminder}, escalation: DisclosureApprovalEscalation})
	defer stop()
	return workflow.Await(ctx, func() bool { return w.approved != nil })
}

func countOf(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

func (w *disclosure) deliverElectronic(ctx workflow.Context) error {
	var a *activities.Activities
	if w.refusal != nil {
		return temporal.NewCanceledError()
	}
	w.committed = true
	if err := w.setStatus(ctx, DiscDelivering, "delivering", "", "delivering electronically"); err != nil {
		return err
	}
	if w.compiled.NothingHeld {
		// A signed "no data" answer, attached to the notice.
		if err := workflow.ExecuteActivity(ctx, a.DeliverDisclosureNothing, activities.DeliverNothingInput{
			RequestID: w.in.RequestID, IdempotencyKey: mailer.Key(workflow.GetInfo(ctx).WorkflowExecution.ID, mailer.DisclosureNothing),
		}).Get(ctx, nil); err != nil {
			return err
		}
		return w.recordDelivery(ctx, "", "nothing held")
	}
	expires := workflow.Now(ctx).Add(DisclosureLinkValidity)
	if workflow.GetVersion(ctx, disclosureSecretChange, workflow.DefaultVersion, 1) == 1 {
		// A download link: the token is derived, stored as a keyed digest
		// and emailed inside the activity; history holds the expiry.
		if err := workflow.ExecuteActivity(ctx, a.SendDisclosureLink, activities.SendLinkInput{
			RequestID: w.in.RequestID, Attempt: 1, ExpiresAt: expires, Downloads: DisclosureLinkDownloads,
			IdempotencyKey: mailer.Key(workflow.GetInfo(ctx).WorkflowExecution.ID, mailer.DisclosureReady),
		}).Get(ctx, nil); err != nil {
			return err
		}
		w.state.LinkExpiresAt = expires
		return w.recordDelivery(ctx, "", "")
	}
	// Before the change: the token was drawn in a SideEffect and emailed
	// from here, so it is in history (kept for replay only).
	var token string
	if err := workflow.SideEffect(ctx, func(workflow.Context) any { return activities.NewLinkToken() }).Get(&token); err != nil {
		return err
	}
	var link activities.ArmLinkResult
	if err := workflow.ExecuteActivity(ctx, a.ArmDisclosureLink, activities.ArmLinkInput{
		RequestID: w.in.RequestID, TokenHash: activities.LinkTokenHash(token), ExpiresAt: expires, Downloads: DisclosureLinkDownloads,
	}).Get(ctx, &link); err != nil {
		return err
	}
	w.state.LinkExpiresAt = expires
	if err := notify(ctx, activities.Recipient{Email: w.in.Email}, mailer.DisclosureReady, mailer.DisclosureReadyData{
		RequestID: w.in.RequestID, DownloadURL: link.DownloadBaseURL + token, ExpiresAt: expires,
	}); err != nil {
		return err
	}
	return w.recordDelivery(ctx, "", "")
}

func (w *disclosure) deliverPaper(ctx workflow.Context) error {
	if err := w.setStatus(ctx, DiscAwaitingPaper, "delivering", "", "waiting for staff to mail the signed package (paper-sent Update)"); err != nil {
		return err
	}
	note := "paper delivery: print the signed disclosure package " + w.state.PackageID +
		" and mail it to the postal address on the request, then send the paper-sent Update"
	if w.compiled.NothingHeld {
		note = "paper delivery: print the signed 'no data held' answer " + w.state.PackageID +
			" and mail it to the postal address on the request, then send the paper-sent Update"
	}
	if n := countOf(w.compiled.Withheld); n > 0 {
		note += fmt.Sprintf("; %d record(s) found by the address alone were withheld (name or phone did not match)", n)
	}
	if err := notify(ctx, activities.Recipient{Staff: true}, mailer.StaffReminder, mailer.StaffCaseData{
		CaseType: cases.TypeDisclosure, CaseID: w.in.RequestID, WorkflowID: workflow.GetInfo(ctx).WorkflowExecution.ID,
		DueAt: w.state.DueAt, Note: note,
	}, "paper-task"); err != nil {
		return err
	}
	if err := workflow.Await(ctx, func() bool { return w.paper != nil }); err != nil {
		return err
	}
	reason := ""
	if w.compiled.NothingHeld {
		reason = "nothing held"
	}
	return w.recordDelivery(ctx, w.paper.Reviewer, reason)
}

// recordDelivery writes the provision ledger and the delivered state.
func (w *disclosure) recordDelivery(ctx workflow.Context, staffID, reason string) error {
	var a *activities.Activities
	now := workflow.Now(ctx)
	if err := workflow.ExecuteActivity(ctx, a.RecordDisclosureDelivery, activities.DisclosureDeliveryInput{
		RequestID: w.in.RequestID, WorkflowID: workflow.GetInfo(ctx).WorkflowExecution.ID, Method: w.in.Delivery,
		PersonRefs: w.compiled.PersonRefs, DataItems: w.compiled.DataItems, DeliveredAt: now, StaffID: staffID, Reason: reason,
	}).Get(ctx, nil); err != nil {
		return err
	}
	w.state.DeliveredAt = now
	return nil
}

// finishRefused closes the request on an APPI Art. 33(2) ground and tells
// the requester, naming the ground.
func (w *disclosure) finishRefused(ctx workflow.Context) (DisclosureResult, error) {
	var a *activities.Activities
	r := w.refusal
	if w.state.Paused {
		w.resume(ctx, r.Reviewer)
	}
	reason := fmt.Sprintf("refused under APPI Art. 33(2) item %d", r.Ground)
	if err := workflow.ExecuteActivity(ctx, a.SetDisclosureState, activities.DisclosureStateInput{
		RequestID: w.in.RequestID, State: "closed", Reason: reason, Actor: "staff:" + r.Reviewer,
	}).Get(ctx, nil); err != nil {
		return DisclosureResult{}, err
	}
	if err := notify(ctx, activities.Recipient{Email: w.in.Email}, mailer.DisclosureRefused, mailer.DisclosureRefusedData{
		RequestID: w.in.RequestID, Ground: mailer.DisclosureGround(r.Ground), Explanation: r.Explanation,
	}); err != nil {
		return DisclosureResult{}, err
	}
	return w.finish(ctx, DiscRefused, reason)
}

// finish records the final status, stops the clock and waits for pending
// pause records and handlers.
func (w *disclosure) finish(ctx workflow.Context, status, reason string) (DisclosureResult, error) {
	ctx = workflow.WithActivityOptions(ctx, defaultActivityOptions())
	if status == DiscClosed {
		var a *activities.Activities
		if w.state.Paused {
			w.resume(ctx, "system")
		}
		if err := workflow.ExecuteActivity(ctx, a.SetDisclosureState, activities.DisclosureStateInput{
			RequestID: w.in.RequestID, State: "closed", Reason: reason,
		}).Get(ctx, nil); err != nil {
			return DisclosureResult{}, err
		}
		if workflow.GetVersion(ctx, "disclosure-closed-notice", workflow.DefaultVersion, 1) == 1 {
			if err := notify(ctx, activities.Recipient{Email: w.in.Email}, mailer.DisclosureClosed,
				mailer.DisclosureClosedData{RequestID: w.in.RequestID}); err != nil {
				return DisclosureResult{}, err
			}
		}
	}
	w.closed = true
	if err := workflow.Await(ctx, func() bool { return len(w.clockQueue) == 0 && workflow.AllHandlersFinished(ctx) }); err != nil {
		return DisclosureResult{}, err
	}
	details := status
	if reason != "" {
		details += ": " + reason
	}
	w.state.Status = status
	if status != DiscDelivered && w.state.Reason == "" {
		w.state.Reason = reason
	}
	if err := setStatus(ctx, status, details); err != nil {
		return DisclosureResult{}, err
	}
	return DisclosureResult{Status: status, Reason: reason, NothingHeld: w.state.NothingHeld, PackageID: w.state.PackageID,
		DeliveredAt: w.state.DeliveredAt}, nil
}

// setStatus moves the case: workflow state, search attribute, details and
// the request's row (whose states are coarser).
func (w *disclosure) setStatus(ctx workflow.Context, status, rowState, reason, details string) error {
	w.state.Status = status
	if err := setStatus(ctx, status, details); err != nil {
		return err
	}
	var a *activities.Activities
	in := activities.DisclosureStateInput{RequestID: w.in.RequestID, State: rowState, Reason: reason}
	if rowState == "verifying_identity" {
		in.VerificationID = w.state.VerificationID
	}
	return workflow.ExecuteActivity(ctx, a.SetDisclosureState, in).Get(ctx, nil)
}

// pause stops the clock: documents were asked for (request-documents).
func (w *disclosure) pause(ctx workflow.Context, r DocumentsRequest) {
	now := workflow.Now(ctx)
	w.state.Paused = true
	w.state.Status = DiscWaitingForRequester
	w.state.Pauses = append(w.state.Pauses, DisclosurePause{Reviewer: r.Reviewer, Reason: r.Reason, From: now})
	_ = setStatus(ctx, DiscWaitingForRequester, "waiting for the requester: "+r.Reason)
	w.clockQueue = append(w.clockQueue, clockChange{n: len(w.state.Pauses), in: activities.DisclosurePauseInput{
		RequestID: w.in.RequestID, Reviewer: r.Reviewer, Reason: r.Reason, At: now}})
}

// resume restarts the clock and moves the due time by the paused time.
func (w *disclosure) resume(ctx workflow.Context, reviewer string) {
	if !w.state.Paused {
		return
	}
	now := workflow.Now(ctx)
	last := &w.state.Pauses[len(w.state.Pauses)-1]
	last.Until = now
	paused := now.Sub(last.From)
	w.state.Paused = false
	w.state.PausedTotal += paused
	w.state.DueAt = w.in.ReceivedAt.Add(DisclosureEscalationAfter + w.state.PausedTotal)
	if w.state.Status == DiscWaitingForRequester {
		w.state.Status = DiscVerifyingIdentity
		_ = setStatus(ctx, DiscVerifyingIdentity, "identity verification "+w.state.VerificationID+" (documents received)")
	}
	_ = workflow.UpsertTypedSearchAttributes(ctx, cases.DueAt.ValueSet(w.state.DueAt))
	w.clockQueue = append(w.clockQueue, clockChange{resume: true, in: activities.DisclosurePauseInput{
		RequestID: w.in.RequestID, Reviewer: reviewer, DueAt: w.state.DueAt, PausedFor: paused}})
}

// clockWriter records pauses and resumptions in the request's row, in the
// order they happened.
func (w *disclosure) clockWriter(ctx workflow.Context) {
	ctx, _ = workflow.NewDisconnectedContext(ctx)
	ctx = workflow.WithActivityOptions(ctx, defaultActivityOptions())
	var a *activities.Activities
	for {
		if err := workflow.Await(ctx, func() bool { return len(w.clockQueue) > 0 }); err != nil {
			return
		}
		c := w.clockQueue[0]
		act := a.PauseDisclosure
		if c.resume {
			act = a.ResumeDisclosure
		}
		if err := workflow.ExecuteActivity(ctx, act, c.in).Get(ctx, nil); err != nil {
			workflow.GetLogger(ctx).Error("disclosure pause not recorded", "request", w.in.RequestID, "error", err)
		}
		// Versioned: histories from before the notice replay unchanged.
		if !c.resume && workflow.GetVersion(ctx, "disclosure-documents-notice", workflow.DefaultVersion, 1) == 1 {
			// Tell the requester what to send: the clock waits for them.
			if err := notify(ctx, activities.Recipient{Email: w.in.Email}, mailer.DisclosureDocuments, mailer.DisclosureDocumentsData{
				RequestID: w.in.RequestID, Reason: c.in.Reason}, "documents", fmt.Sprint(c.n)); err != nil {
				workflow.GetLogger(ctx).Error("documents request not emailed", "request", w.in.RequestID, "error", err)
			}
		}
		w.clockQueue = w.clockQueue[1:]
	}
}

// startClock runs the O6 clock: staff reminder at day 5, escalation at
// day 7, alert at day 14, counted from receipt with paused time left out.
// It is startDeadlineWatch with a pause: the same notices and keys.
func (w *disclosure) startClock(ctx workflow.Context) {
	info := workflow.GetInfo(ctx)
	const stage = "disclosure"
	points := []struct {
		at     time.Duration
		notice mailer.Notice
		key    string
		note   string
	}{
		{DisclosureReminderAfter, mailer.StaffReminder, stage + "-reminder-1", "reminder: disclosure due at day 7 (O6)"},
		{DisclosureEscalationAfter, mailer.StaffEscalation, stage + "-escalation", "escalation: disclosure target of 7 days reached (O6)"},
		{DisclosureAlertAfter, mailer.StaffEscalation, stage + "-alert-1", "alert: disclosure open 14 days, the hard limit (O6)"},
	}
	workflow.Go(ctx, func(gctx workflow.Context) {
		for _, p := range points {
			for {
				if err := workflow.Await(gctx, func() bool { return !w.state.Paused || w.closed }); err != nil || w.closed {
					return
				}
				wait := w.in.ReceivedAt.Add(w.state.PausedTotal + p.at).Sub(workflow.Now(gctx))
				if wait <= 0 {
					break
				}
				if _, err := workflow.AwaitWithTimeout(gctx, wait, func() bool { return w.state.Paused || w.closed }); err != nil || w.closed {
					return
				}
			}
			_ = notify(gctx, activities.Recipient{Staff: true}, p.notice, mailer.StaffCaseData{
				CaseType: cases.TypeDisclosure, CaseID: w.in.RequestID, WorkflowID: info.WorkflowExecution.ID,
				DueAt: w.state.DueAt, Note: p.note,
			}, p.key)
		}
	})
}
