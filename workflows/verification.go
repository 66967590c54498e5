package workflows

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"time"

	"go.temporal.io/sdk/workflow"

	"certdesk/activities"
	"certdesk/internal/cases"
	"certdesk/internal/challenge"
	"certdesk/internal/mailer"
)

// Verification statuses.
const (
	VerAwaitingCode  = "awaiting_code"
	VerCodeExpired   = "code_expired"
	VerLocked        = "locked"
	VerRegistry      = "registry_lookup"
	VerAwaitingStaff = "awaiting_staff"
	VerVerified      = "verified"
	VerRefused       = "refused"
	VerExpired       = "expired"
)

// Names used to talk to a verification workflow.
const (
	SubmitCodeUpdate      = "submit-code"
	ConfirmIdentityUpdate = "confirm-identity"
)

// Verification policy (design workflow 2).
var (
	CodeValidity           = 10 * time.Minute
	MailboxValueValidity   = challenge.MailboxValueValidity
	CodeMaxAttempts        = 5
	VerificationExpiry     = 14 * 24 * time.Hour
	StaffConfirmReminder   = 2 * 24 * time.Hour
	StaffConfirmEscalation = 3 * 24 * time.Hour
)

// VerificationWorkflowID is the workflow ID of verification id.
func VerificationWorkflowID(id string) string { return cases.TypeVerification + "/" + id }

// VerificationInput describes whose identity is checked and for what.
type VerificationInput struct {
	VerificationID string
	Purpose        string // application or disclosure
	CaseRef        string // the parent's business id
	ResellerID     string
	SubjectRef     string // subscriber id, when one exists
	Email          string // where the one-time code goes
	Organization   string // for the OV registry lookup
	Country        string
	CheckRegistry  bool
	// MailboxControl: the value sent is the Random Value proving control of
	// a client certificate's mailbox (S/MIME BR §3.2.2.1), not a 6-digit
	// code: 128 bits, valid MailboxValueValidity.
	MailboxControl bool `json:",omitempty"`
}

// CodeSubmission is the body of the submit-code Update. Verifications
// started since the verification-secret-in-activity change take only
// Digest, the keyed digest of the value (store.ChallengeDigest): an
// Update's argument stays in workflow history, the value must not.
type CodeSubmission struct {
	Code   string `json:"code"`
	Digest string `json:"digest,omitempty"`
}

// CodeResult answers a code submission. It never echoes the code.
type CodeResult struct {
	Accepted     bool
	AttemptsLeft int
	Locked       bool
	Expired      bool
}

// IdentityDecision is the body of the confirm-identity Update.
type IdentityDecision struct {
	Decision string `json:"decision"` // confirm or refuse
	Reviewer string `json:"reviewer"`
	Evidence string `json:"evidence"` // reference to the documents checked
	Reason   string `json:"reason"`
}

// VerificationState is what the status query returns. No personal data.
type VerificationState struct {
	VerificationID string
	// MailboxControl: the value expected is the 26-character mailbox Random
	// Value, not a 6-digit code.
	MailboxControl bool `json:",omitempty"`
	// DigestOnly: submit-code takes CodeSubmission.Digest, never the value.
	DigestOnly    bool `json:",omitempty"`
	Status        string
	Attempts      int
	CodeExpiresAt time.Time
	Registry      *activities.RegistryResult
	Decision      *IdentityDecision
}

// VerificationResult goes back to the parent workflow.
type VerificationResult struct {
	Verified bool
	Reason   string
	Evidence string
	Reviewer string
}

// Verification checks that the person behind an application or a disclosure
// request controls the email address (one-time code) and that staff have
// seen the documents (O2, O6); for OV it also looks the organisation up in
// the registry.
func Verification(ctx workflow.Context, in VerificationInput) (VerificationResult, error) {
	w := &verification{in: in}
	if err := w.setup(ctx); err != nil {
		return VerificationResult{}, err
	}
	return w.run(ctx)
}

type verification struct {
	in       VerificationInput
	state    VerificationState
	codeHash string
	codeOK   bool
	codeCh   workflow.Channel
	staffCh  workflow.Channel
	// keyed: the value is made, emailed and checked by activities
	// (IssueChallenge, CheckChallenge) and never enters history.
	keyed    bool
	checking bool // a CheckChallenge is running: attempts count in order
}

// verificationSecretChange is the workflow.GetVersion change ID under which
// the one-time value is made and checked inside activities; histories from
// before it replay the SideEffect path.
const verificationSecretChange = "verification-secret-in-activity"

func (w *verification) setup(ctx workflow.Context) error {
	w.keyed = workflow.GetVersion(ctx, verificationSecretChange, workflow.DefaultVersion, 1) == 1
	w.state = VerificationState{VerificationID: w.in.VerificationID, MailboxControl: w.in.MailboxControl, DigestOnly: w.keyed, Status: VerAwaitingCode}
	if err := workflow.UpsertTypedSearchAttributes(ctx,
		cases.CaseType.ValueSet(cases.TypeVerification),
		cases.CaseStatus.ValueSet(VerAwaitingCode),
		cases.DueAt.ValueSet(workflow.Now(ctx).Add(VerificationExpiry)),
	); err != nil {
		return err
	}
	if w.in.ResellerID != "" {
		if err := workflow.UpsertTypedSearchAttributes(ctx, cases.ResellerID.ValueSet(w.in.ResellerID)); err != nil {
			return err
		}
	}
	if err := workflow.SetQueryHandler(ctx, StatusQuery, func() (VerificationState, error) { return w.state, nil }); err != nil {
		return err
	}
	w.codeCh = workflow.NewBufferedChannel(ctx, 1)
	w.staffCh = workflow.NewBufferedChannel(ctx, 1)
	if err := workflow.SetUpdateHandlerWithOptions(ctx, SubmitCodeUpdate,
		func(ctx workflow.Context, s CodeSubmission) (CodeResult, error) {
			if w.keyed {
				return w.checkDigest(ctx, s.Digest)
			}
			return w.checkCode(ctx, s.Code), nil
		},
		workflow.UpdateHandlerOptions{Validator: func(ctx workflow.Context, s CodeSubmission) error {
			switch {
			// A refused Update is not kept in history: a value sent in
			// clear is refused here, before it could be. (The starter
			// checked the value's form before digesting it.)
			case w.keyed && (s.Code != "" || !challenge.IsDigest(s.Digest)):
				return fmt.Errorf("send the keyed digest of the value (digest), never the value: the Update is kept in workflow history")
			case w.keyed:
			case w.in.MailboxControl && !challenge.IsMailboxValue(s.Code):
				return fmt.Errorf("the mailbox value is the 26 characters (A–Z, 2–7) sent by email")
			case !w.in.MailboxControl && !challenge.IsCode(s.Code):
				return fmt.Errorf("the code is 6 digits")
			}
			if w.state.Status != VerAwaitingCode {
				return fmt.Errorf("verification %s is not waiting for a code (%s)", w.in.VerificationID, w.state.Status)
			}
			return nil
		}}); err != nil {
		return err
	}
	return workflow.SetUpdateHandlerWithOptions(ctx, ConfirmIdentityUpdate,
		func(ctx workflow.Context, d IdentityDecision) (VerificationState, error) {
			checked, err := checkReviewer(ctx, d.Reviewer)
			if err != nil {
				return VerificationState{}, err
			}
			if checked {
				if err := auditDecision(ctx, ConfirmIdentityUpdate, d.Reviewer, d.Decision); err != nil {
					return VerificationState{}, err
				}
				if w.state.Status != VerAwaitingStaff || w.state.Decision != nil {
					return VerificationState{}, fmt.Errorf("verification %s is %s, not waiting for staff", w.in.VerificationID, w.state.Status)
				}
			}
			w.state.Decision = &d
			w.staffCh.Send(ctx, d)
			return w.state, nil
		},
		workflow.UpdateHandlerOptions{Validator: func(ctx workflow.Context, d IdentityDecision) error {
			if w.state.Status != VerAwaitingStaff || w.state.Decision != nil {
				return fmt.Errorf("verification %s is %s, not waiting for staff", w.in.VerificationID, w.state.Status)
			}
			if err := validateDecision(d.Decision, d.Reviewer, d.Reason, "confirm", "refuse"); err != nil {
				return err
			}
			if d.Decision == "confirm" && d.Evidence == "" {
				return fmt.Errorf("a confirmation needs evidence: name the documents checked")
			}
			return nil
		}})
}

// checkCode compares in constant time against the hash kept in state; the
// code itself is never kept by the workflow after it is emailed.
func (w *verification) checkCode(ctx workflow.Context, code string) CodeResult {
	if workflow.Now(ctx).After(w.state.CodeExpiresAt) {
		w.state.Status = VerCodeExpired
		w.codeCh.Send(ctx, false)
		return CodeResult{Expired: true}
	}
	w.state.Attempts++
	sum := sha256.Sum256([]byte(w.in.VerificationID + ":" + code))
	return w.decide(ctx, subtle.ConstantTimeCompare([]byte(hex.EncodeToString(sum[:])), []byte(w.codeHash)) == 1)
}

// checkDigest has CheckChallenge compare a submitted digest with the one
// stored when the value was sent: the workflow never holds the expected
// digest, so nothing in history can be replayed as a right answer. Checks
// run one at a time so attempts count in order.
func (w *verification) checkDigest(ctx workflow.Context, digest string) (CodeResult, error) {
	if err := workflow.Await(ctx, func() bool { return !w.checking }); err != nil {
		return CodeResult{}, err
	}
	if w.state.Status != VerAwaitingCode {
		return CodeResult{}, fmt.Errorf("verification %s is not waiting for a code (%s)", w.in.VerificationID, w.state.Status)
	}
	if workflow.Now(ctx).After(w.state.CodeExpiresAt) {
		w.state.Status = VerCodeExpired
		w.codeCh.Send(ctx, false)
		return CodeResult{Expired: true}, nil
	}
	w.checking = true
	defer func() { w.checking = false }()
	w.state.Attempts++ // counted before the check: a failed check is an attempt too
	var a *activities.Activities
	var res activities.CheckChallengeResult
	actx := workflow.WithActivityOptions(ctx, defaultActivityOptions())
	if err := workflow.ExecuteActivity(actx, a.CheckChallenge, activities.CheckChallengeInput{
		VerificationID: w.in.VerificationID, Digest: digest,
	}).Get(ctx, &res); err != nil {
		return CodeResult{}, err
	}
	if w.state.Status != VerAwaitingCode { // the value expired during the check
		return CodeResult{Expired: w.state.Status == VerCodeExpired, Locked: w.state.Status == VerLocked}, nil
	}
	return w.decide(ctx, res.Match), nil
}

// decide applies the outcome of one counted attempt.
func (w *verification) decide(ctx workflow.Context, match bool) CodeResult {
	if match {
		w.codeOK = true
		w.state.Status = VerAwaitingStaff
		w.codeCh.Send(ctx, true)
		return CodeResult{Accepted: true, AttemptsLeft: CodeMaxAttempts - w.state.Attempts}
	}
	left := CodeMaxAttempts - w.state.Attempts
	if left <= 0 {
		w.state.Status = VerLocked
		w.codeCh.Send(ctx, false)
		return CodeResult{Locked: true}
	}
	return CodeResult{AttemptsLeft: left}
}

func (w *verification) run(ctx workflow.Context) (VerificationResult, error) {
	ctx = workflow.WithActivityOptions(ctx, defaultActivityOptions())
	var a *activities.Activities

	validity := CodeValidity
	if w.in.MailboxControl {
		validity = MailboxValueValidity
	}
	if err := w.sendValue(ctx, validity); err != nil {
		return VerificationResult{}, err
	}
	if err := setStatus(ctx, VerAwaitingCode, "waiting for the one-time code"); err != nil {
		return VerificationResult{}, err
	}

	// Wait for the right code, a lockout, or the code's expiry.
	var ok bool
	timedOut := false
	sel := workflow.NewSelector(ctx)
	sel.AddReceive(w.codeCh, func(c workflow.ReceiveChannel, _ bool) { c.Receive(ctx, &ok) })
	sel.AddFuture(workflow.NewTimer(ctx, validity), func(workflow.Future) { timedOut = true })
	sel.Select(ctx)
	if timedOut && !w.codeOK {
		w.state.Status = VerCodeExpired
	}
	if !w.codeOK {
		reason := "the one-time code expired"
		if w.state.Status == VerLocked {
			reason = fmt.Sprintf("%d wrong codes: locked", CodeMaxAttempts)
		}
		return w.finish(ctx, false, reason, "", "")
	}

	// Organisation registry lookup for OV.
	if w.in.CheckRegistry {
		w.state.Status = VerRegistry
		var reg activities.RegistryResult
		if err := workflow.ExecuteActivity(ctx, a.LookupOrganization, activities.RegistryQuery{
			Organization: w.in.Organization, Country: w.in.Country,
		}).Get(ctx, &reg); err != nil {
			return VerificationResult{}, err
		}
		w.state.Registry = &reg
		if !reg.Found {
			return w.finish(ctx, false, "organisation not found in the registry", "", "")
		}
	}
	return w.staffCheck(ctx)
}

// sendValue makes and emails the one-time code (or, for a client
// certificate, the mailbox Random Value). The code goes to the address
// given, even when a subscriber record matches: a disclosure must not
// reveal that one does.
func (w *verification) sendValue(ctx workflow.Context, validity time.Duration) error {
	w.state.CodeExpiresAt = workflow.Now(ctx).Add(validity)
	to := activities.Recipient{Email: w.in.Email, RefHint: w.in.SubjectRef}
	if w.keyed {
		// Derived, stored as a keyed digest and emailed inside the
		// activity: history holds the expiry, not the value.
		var a *activities.Activities
		kind := challenge.KindCode
		if w.in.MailboxControl {
			kind = challenge.KindMailbox
		}
		return workflow.ExecuteActivity(ctx, a.IssueChallenge, activities.ChallengeInput{
			VerificationID: w.in.VerificationID, Attempt: 1, Kind: kind, Recipient: to,
			ExpiresAt: w.state.CodeExpiresAt, ExpiryMinutes: int(validity / time.Minute), MaxAttempts: CodeMaxAttempts,
			IdempotencyKey: mailer.Key(workflow.GetInfo(ctx).WorkflowExecution.ID, mailer.VerificationCode),
		}).Get(ctx, nil)
	}
	// Before the change: drawn once in a SideEffect and emailed from here,
	// so the value is in history (kept for replay only).
	newValue := activities.NewOneTimeCode
	if w.in.MailboxControl {
		newValue = activities.NewMailboxValue
	}
	var code string
	if err := workflow.SideEffect(ctx, func(workflow.Context) any { return newValue() }).Get(&code); err != nil {
		return err
	}
	sum := sha256.Sum256([]byte(w.in.VerificationID + ":" + code))
	w.codeHash = hex.EncodeToString(sum[:])
	return notify(ctx, to, mailer.VerificationCode, mailer.VerificationCodeData{
		Code: code, ExpiryMinutes: int(validity / time.Minute), MaxAttempts: CodeMaxAttempts, MailboxControl: w.in.MailboxControl,
	})
}

// staffCheck waits for staff to check the documents.
func (w *verification) staffCheck(ctx workflow.Context) (VerificationResult, error) {
	// Staff check the documents.
	w.state.Status = VerAwaitingStaff
	if err := setStatus(ctx, VerAwaitingStaff, "waiting for the staff confirm-identity Update"); err != nil {
		return VerificationResult{}, err
	}
	start := workflow.Now(ctx)
	if err := workflow.UpsertTypedSearchAttributes(ctx, cases.DueAt.ValueSet(start.Add(StaffConfirmEscalation))); err != nil {
		return VerificationResult{}, err
	}
	stop := startDeadlineWatch(ctx, deadlineWatch{caseType: cases.TypeVerification, stage: VerAwaitingStaff, start: start,
		reminders: []time.Duration{StaffConfirmReminder}, escalation: StaffConfirmEscalation})
	var d IdentityDecision
	expired := false
	sel := workflow.NewSelector(ctx)
	sel.AddReceive(w.staffCh, func(c workflow.ReceiveChannel, _ bool) { c.Receive(ctx, &d) })
	sel.AddFuture(workflow.NewTimer(ctx, VerificationExpiry), func(workflow.Future) { expired = true })
	sel.Select(ctx)
	stop()
	if expired {
		w.state.Status = VerExpired
		return w.finish(ctx, false, "no staff decision before the verification expired", "", "")
	}
	if d.Decision == "refuse" {
		return w.finish(ctx, false, d.Reason, d.Evidence, d.Reviewer)
	}
	return w.finish(ctx, true, "", d.Evidence, d.Reviewer)
}

func (w *verification) finish(ctx workflow.Context, verified bool, reason, evidence, reviewer string) (VerificationResult, error) {
	var a *activities.Activities
	if w.keyed {
		// A check still running (the value expired meanwhile) answers its
		// caller before the case closes.
		if err := workflow.Await(ctx, func() bool { return !w.checking }); err != nil {
			return VerificationResult{}, err
		}
	}
	status := VerVerified
	if !verified {
		status = w.state.Status
		if status == VerAwaitingCode || status == VerAwaitingStaff || status == VerRegistry {
			status = VerRefused
		}
	}
	w.state.Status = status
	if err := workflow.ExecuteActivity(ctx, a.RecordVerification, activities.VerificationRecord{
		VerificationID: w.in.VerificationID, Purpose: w.in.Purpose, CaseRef: w.in.CaseRef, SubjectRef: w.in.SubjectRef,
		Result: status, Reason: reason, Evidence: evidence, DecidedBy: reviewer,
		Attempts: w.state.Attempts, Locked: status == VerLocked,
	}).Get(ctx, nil); err != nil {
		return VerificationResult{}, err
	}
	if err := setStatus(ctx, status, "verification "+status); err != nil {
		return VerificationResult{}, err
	}
	return VerificationResult{Verified: verified, Reason: reason, Evidence: evidence, Reviewer: reviewer}, nil
}
