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
	"certdesk/internal/mpic"
	"certdesk/internal/product"
	"certdesk/internal/status"
)

// Names staff and the starter use to talk to an application workflow.
const (
	ReviewUpdate   = "review"
	WithdrawSignal = "withdraw"
	StatusQuery    = "status"
)

// Application timing. Variables, not constants, only so tests can read them.
var (
	ApplicationExpiry      = 30 * 24 * time.Hour
	ReviewReminderAfter    = 2 * 24 * time.Hour
	ReviewEscalationAfter  = 3 * 24 * time.Hour
	DomainValidationPeriod = 10 * time.Second
)

// ApplicationWorkflowID is the workflow ID of application id.
func ApplicationWorkflowID(id string) string { return cases.TypeApplication + "/" + id }

// ApplicationInput is a reseller's application as the starter received it.
type ApplicationInput struct {
	ApplicationID string
	ResellerID    string
	Product       string
	CSRPEM        string
	Domains       []string
	ValidityDays  int
	Subscriber    activities.SubscriberData
	Attestation   activities.Attestation
	// Flagged sends a DV application to staff review (e.g. a high-risk name).
	Flagged bool
	// DomainValidationMethod is "http-01" (file under /.well-known/pki-validation/)
	// or "dns-txt"; empty means http-01.
	DomainValidationMethod string
	// WithoutCT issues a TLS certificate without Certificate Transparency
	// (no precertificate, no SCTs), as before the application-ct change:
	// the starter sets it only under CERTDESK_CT_DISABLED, a benchmark
	// comparison on a development stack.
	WithoutCT bool `json:",omitempty"`
	// ACME, when set, makes the application an ACME order (change ID
	// acmeChange): started at newOrder without a CSR, validated by the
	// client's challenge responses, finalized with the CSR (acme.go).
	ACME *ACMEOrderInput `json:",omitempty"`
}

// ReviewDecision is the body of the review Update.
type ReviewDecision struct {
	Decision string `json:"decision"` // approve or reject
	Reviewer string `json:"reviewer"`
	Reason   string `json:"reason"`
}

// mailboxValueChange is the workflow.GetVersion change ID under which a
// client-sign application proves mailbox control with a Random Value
// instead of the 6-digit code.
const mailboxValueChange = "application-mailbox-value"

// ApplicationState is what the status query returns. No personal data.
type ApplicationState struct {
	ApplicationID     string
	ResellerID        string
	Product           string
	Status            string
	Reason            string
	DueAt             time.Time
	VerificationID    string
	CertificateSerial string
	NotAfter          time.Time
	// DomainTokens maps each domain to the token to publish for validation.
	DomainTokens map[string]string
	// DCVMethod is how every domain is validated (http-01: the file under
	// /.well-known/pki-validation/, dns-txt: _pki-validation TXT).
	DCVMethod string `json:",omitempty"`
	// Corroborations maps each domain to its multi-perspective
	// corroboration (BR §3.2.2.9): each perspective's result and the verdict.
	Corroborations map[string]Corroboration `json:",omitempty"`
	// CAA is the newest CAA check of each name (BR §3.2.2.8).
	CAA    []activities.CAAOutcome `json:",omitempty"`
	Review *ReviewDecision
	// ACME is the ACME order's progress when the application is one.
	ACME *ACMEState `json:",omitempty"`
}

// ApplicationResult is the workflow's outcome.
type ApplicationResult struct {
	Status            string
	Reason            string
	CertificateSerial string
}

// Application runs one application from receipt to an issued certificate or
// a final refusal (workflow 1 of the design; O1, O2, O11, O15).
func Application(ctx workflow.Context, in ApplicationInput) (ApplicationResult, error) {
	w := &application{in: in}
	if err := w.setup(ctx); err != nil {
		return ApplicationResult{}, err
	}
	return w.run(ctx)
}

type application struct {
	in    ApplicationInput
	state ApplicationState

	subscriberID string
	// local runs the storage and email steps as local activities in the
	// workflow worker (change ID localActivitiesChange): each one then costs
	// no Temporal round trip, only a marker in the next workflow task.
	local bool
	// committed is set once signing starts: a withdrawal can no longer stop it.
	committed  bool
	withdrawn  bool
	expired    bool
	reviewCh   workflow.Channel
	cancelWait workflow.CancelFunc
	// perspectives are the remote perspectives, listed once per case.
	perspectives []mpic.Perspective
	// caaChecks counts CAA checks: each gets its own evidence rows.
	caaChecks int
	// issued is set once the certificate (the final one, under CT) is
	// signed: a later failure (an email) leaves the application issued.
	issued bool
	// acme is the ACME order's part, when the application is one.
	acme *acmeOrder
	// acmeType is the RFC 8555 error type of the refusal finish records.
	acmeType string
}

func (w *application) setup(ctx workflow.Context) error {
	start := workflow.Now(ctx)
	w.local = workflow.GetVersion(ctx, localActivitiesChange, workflow.DefaultVersion, 1) >= 1
	w.state = ApplicationState{
		ApplicationID: w.in.ApplicationID,
		ResellerID:    w.in.ResellerID,
		Product:       w.in.Product,
		Status:        status.AppReceived,
		DueAt:         start.Add(w.expiry(start)),
	}
	if err := workflow.UpsertTypedSearchAttributes(ctx,
		cases.CaseType.ValueSet(cases.TypeApplication),
		cases.CaseStatus.ValueSet(status.AppReceived),
		cases.ResellerID.ValueSet(w.in.ResellerID),
		cases.DueAt.ValueSet(w.state.DueAt),
	); err != nil {
		return err
	}
	if err := workflow.SetQueryHandler(ctx, StatusQuery, func() (ApplicationState, error) { return w.state, nil }); err != nil {
		return err
	}
	if w.in.ACME != nil {
		if err := w.setupACME(ctx); err != nil {
			return err
		}
	}
	var err error
	w.reviewCh, err = registerReview(ctx, func() string { return "application " + w.in.ApplicationID + " (" + w.state.Status + ")" },
		func() bool { return w.state.Status == status.AppAwaitingReview }, func() bool { return w.state.Review != nil },
		func(d ReviewDecision) { w.state.Review = &d }, func() ApplicationState { return w.state })
	return err
}

// validateDecision refuses a staff decision that is not one of allowed, has
// no reviewer, or refuses without a reason.
func validateDecision(decision, reviewer, reason string, allowed ...string) error {
	ok := false
	for _, a := range allowed {
		ok = ok || decision == a
	}
	if !ok {
		return fmt.Errorf("decision %q is not one of %s", decision, strings.Join(allowed, ", "))
	}
	if strings.TrimSpace(reviewer) == "" {
		return errors.New("reviewer is required: say who decides")
	}
	if decision == allowed[len(allowed)-1] && strings.TrimSpace(reason) == "" {
		return fmt.Errorf("a %s needs a reason", decision)
	}
	return nil
}

func (w *application) run(ctx workflow.Context) (ApplicationResult, error) {
	// Withdrawal and expiry cancel whatever step is waiting, until signing
	// starts; the outcome is then recorded on a disconnected context.
	waitCtx, cancel := workflow.WithCancel(ctx)
	w.cancelWait = cancel
	withdrawCh := workflow.GetSignalChannel(ctx, WithdrawSignal)
	workflow.Go(ctx, func(gctx workflow.Context) {
		timer := workflow.NewTimer(gctx, w.state.DueAt.Sub(workflow.Now(gctx)))
		for !w.committed {
			sel := workflow.NewSelector(gctx)
			sel.AddReceive(withdrawCh, func(c workflow.ReceiveChannel, _ bool) {
				c.Receive(gctx, nil)
				if !w.committed {
					w.withdrawn = true
					cancel()
				}
			})
			sel.AddFuture(timer, func(workflow.Future) {
				if !w.committed {
					w.expired = true
					cancel()
				}
			})
			sel.Select(gctx)
			if w.withdrawn || w.expired {
				return
			}
		}
	})

	serial, err := w.steps(waitCtx)
	final := ctx
	if temporal.IsCanceledError(err) || (err != nil && (w.withdrawn || w.expired)) {
		final, _ = workflow.NewDisconnectedContext(ctx)
		switch {
		case w.withdrawn:
			return w.finish(final, status.AppWithdrawn, "withdrawn by the reseller")
		case w.expired:
			return w.finish(final, status.AppExpired, w.expiredReason())
		}
	}
	var rej *rejection
	if errors.As(err, &rej) && w.acme != nil {
		w.acmeType = rej.acmeType
	}
	switch {
	case errors.As(err, &rej) && rej.failed:
		return w.finish(final, status.AppFailed, rej.reason)
	case errors.As(err, &rej):
		return w.finish(final, status.AppRejected, rej.reason)
	case err != nil && w.issued:
		// Issued stays issued: a later step (an email) failed for good.
		return ApplicationResult{Status: status.AppIssued, CertificateSerial: w.state.CertificateSerial}, err
	case err != nil:
		res, ferr := w.finish(final, status.AppFailed, "internal failure: "+err.Error())
		if ferr != nil {
			return res, fmt.Errorf("%w (recording the failure also failed: %v)", err, ferr)
		}
		return res, err
	}
	w.state.CertificateSerial = serial
	return ApplicationResult{Status: status.AppIssued, CertificateSerial: serial}, nil
}

// rejection ends an application as rejected with a reason the reseller
// sees; failed marks a refusal at signing time (status failed: the review had
// approved it).
type rejection struct {
	reason string
	failed bool
	// acmeType is the RFC 8555 error type an ACME order shows (default
	// unauthorized).
	acmeType string
}

func (r *rejection) Error() string { return r.reason }

func (w *application) steps(ctx workflow.Context) (string, error) {
	ctx = workflow.WithActivityOptions(ctx, defaultActivityOptions())
	in := w.in

	var err error
	if in.ACME != nil {
		// 1–3 for an ACME order: recorded at newOrder, domains validated by
		// the challenges, then the finalize CSR checked.
		err = w.acmeSteps(ctx)
	} else {
		err = w.receive(ctx)
	}
	if err != nil {
		return "", err
	}

	// 4. Identity verification for OV and client products (O2); an ACME OV
	// order reuses its account's already verified organisation.
	reused, err := w.acmeReusesVerification(ctx)
	if err != nil {
		return "", err
	}
	if !reused && (in.Product == product.ServerOV || in.Product == product.ClientSign) {
		if err := w.verifyIdentity(ctx); err != nil {
			return "", err
		}
	}

	// 5. Staff review for OV and client, and DV when flagged.
	if in.Product != product.ServerDV || in.Flagged {
		if err := w.review(ctx); err != nil {
			return "", err
		}
	}

	// 6. CAA, corroborated, right before signing (O18, O19).
	caaOn := workflow.GetVersion(ctx, caaChange, workflow.DefaultVersion, 1) >= 1
	if caaOn {
		if err := w.checkCAA(ctx); err != nil {
			return "", err
		}
	}

	// 7. Lint and sign on the signing queue; from here a withdrawal is refused.
	w.committed = true
	if err := w.setStatus(ctx, status.AppIssuing, "", "signing on the signing queue"); err != nil {
		return "", err
	}
	sctx := workflow.WithActivityOptions(ctx, signingActivityOptions())
	// sign runs one signing activity; when the signer finds the CAA check
	// too old (signing waited past its 8 hours) it checks again and signs.
	sign := func(activity any, input any, out *activities.IssueResult) error {
		for attempt := 1; ; attempt++ {
			err := workflow.ExecuteActivity(sctx, activity, input).Get(ctx, out)
			reason, stale := applicationErrorOf(err, activities.ErrTypeStaleEvidence)
			if !stale || !caaOn || attempt >= CAAAttempts {
				if stale {
					err = temporal.NewNonRetryableApplicationError(reason, activities.ErrTypeCSRRejected, nil)
				}
				return err
			}
			workflow.SetCurrentDetails(ctx, reason)
			if err := w.checkCAA(ctx); err != nil {
				var rej *rejection
				if errors.As(err, &rej) {
					rej.failed = true
				}
				return err
			}
		}
	}
	var sa *activities.SigningActivities
	var issued activities.IssueResult
	if product.TLS(in.Product) && !in.WithoutCT && workflow.GetVersion(ctx, ctChange, workflow.DefaultVersion, 1) >= 1 {
		issued, err = w.issueLogged(ctx, sign)
	} else {
		err = sign(sa.IssueCertificate, w.issueInput(), &issued)
	}
	if reason, ok := applicationErrorOf(err, activities.ErrTypeCSRRejected); ok {
		// The pre-issuance lint or a last check refused: nothing was signed,
		// or only the precertificate.
		if w.state.CertificateSerial != "" {
			reason += " (precertificate " + w.state.CertificateSerial + " was signed and stays revocable)"
		}
		return "", &rejection{reason: "issuance refused: " + reason, failed: true}
	} else if err != nil {
		return "", err
	}
	w.issued = true
	w.state.CertificateSerial = issued.Serial
	w.state.NotAfter = issued.NotAfter
	if err := workflow.UpsertTypedSearchAttributes(ctx, cases.CertificateSerial.ValueSet(issued.Serial)); err != nil {
		return "", err
	}
	if err := w.setStatus(ctx, status.AppIssued, "", "certificate "+issued.Serial+" issued"); err != nil {
		return "", err
	}
	if w.acme != nil {
		if err := w.acmeIssued(ctx, issued); err != nil {
			return "", err
		}
	}

	// 7. Email the subscriber (certificate attached) and the reseller.
	data := mailer.ReviewIssuedData{Organization: in.Subscriber.Organization, ApplicationID: in.ApplicationID,
		Product: in.Product, Serial: issued.Serial, NotBefore: issued.NotBefore, NotAfter: issued.NotAfter,
		CertificatePEM: []byte(issued.CertificatePEM)}
	for _, s := range issued.SCTs {
		data.CTLogs = append(data.CTLogs, mailer.CTLogEntry{Log: s.Log, Operator: s.Operator, Timestamp: s.Timestamp, Link: s.Link, Entry: s.LeafIndex})
	}
	if err := w.notify(ctx, activities.Recipient{SubscriberID: w.subscriberID}, mailer.ReviewIssued, data); err != nil {
		return "", err
	}
	if err := w.notify(ctx, activities.Recipient{ResellerID: in.ResellerID}, mailer.ReviewIssued, data, "reseller"); err != nil {
		return "", err
	}
	return issued.Serial, nil
}

// receive is steps 1–3 of an application from the reseller API.
func (w *application) receive(ctx workflow.Context) error {
	var a *activities.Activities
	in := w.in
	// 1. CSR and key checks (O11, O15).
	var csr activities.CheckCSRResult
	err := w.exec(ctx, a.CheckCSR, activities.CheckCSRInput{
		Product: in.Product, CSRPEM: in.CSRPEM, Domains: in.Domains, Email: in.Subscriber.Email,
		Subject: activities.SubjectFrom(in.Subscriber, in.Product),
	}, &csr)
	if reason, ok := applicationErrorOf(err, activities.ErrTypeCSRRejected); ok {
		return &rejection{reason: reason}
	} else if err != nil {
		return err
	}

	// 2. Record the application with its attestation (O1).
	var rec activities.RecordApplicationResult
	if err := w.exec(ctx, a.RecordApplication, activities.RecordApplicationInput{
		ApplicationID: in.ApplicationID, ResellerID: in.ResellerID, WorkflowID: workflow.GetInfo(ctx).WorkflowExecution.ID,
		Product: in.Product, CSRPEM: in.CSRPEM, SPKISHA256: csr.SPKISHA256, Domains: in.Domains, ValidityDays: in.ValidityDays,
		Subscriber: in.Subscriber, Attestation: in.Attestation, DueAt: w.state.DueAt,
	}, &rec); err != nil {
		return err
	}
	w.subscriberID = rec.SubscriberID
	if err := w.notify(ctx, activities.Recipient{SubscriberID: w.subscriberID}, mailer.ApplicationReceived,
		mailer.ApplicationReceivedData{Organization: in.Subscriber.Organization, ApplicationID: in.ApplicationID,
			Product: in.Product, ReceivedAt: workflow.GetInfo(ctx).WorkflowStartTime}); err != nil {
		return err
	}

	// 3. Domain control validation for TLS products.
	if in.Product == product.ServerDV || in.Product == product.ServerOV {
		if err := w.validateDomains(ctx); err != nil {
			return err
		}
	}

	return nil
}

func (w *application) validateDomains(ctx workflow.Context) error {
	var a *activities.Activities
	if err := w.setStatus(ctx, status.AppValidating, "", "waiting for domain control validation"); err != nil {
		return err
	}
	method := w.in.DomainValidationMethod
	if method == "" {
		method = "http-01"
	}
	var tokens map[string]string
	if err := workflow.SideEffect(ctx, func(workflow.Context) any { return activities.NewDomainTokens(w.in.Domains) }).Get(&tokens); err != nil {
		return err
	}
	w.state.DomainTokens, w.state.DCVMethod = tokens, method
	for _, d := range w.in.Domains {
		// The reseller publishes the token when it is ready; retry until then,
		// bounded by the application's expiry (which cancels this context).
		vctx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
			StartToCloseTimeout: 30 * time.Second,
			RetryPolicy: &temporal.RetryPolicy{InitialInterval: DomainValidationPeriod, BackoffCoefficient: 1.5,
				MaximumInterval: 10 * time.Minute, NonRetryableErrorTypes: []string{activities.ErrTypeInvalid}},
		})
		err := workflow.ExecuteActivity(vctx, a.ValidateDomain, activities.DomainValidationInput{
			ApplicationID: w.in.ApplicationID, Domain: d, Method: method, Token: tokens[d],
		}).Get(ctx, nil)
		if reason, ok := applicationErrorOf(err, activities.ErrTypeInvalid); ok {
			return &rejection{reason: "domain validation: " + reason}
		} else if err != nil {
			return err
		}
		if workflow.GetVersion(ctx, mpicChange, workflow.DefaultVersion, 1) >= 1 {
			if err := w.corroborate(ctx, perspectiveCheck{check: CheckDCV, name: d, activity: activities.PerspectiveCheckDomainName,
				input:   activities.PerspectiveCheckInput{ApplicationID: w.in.ApplicationID, Domain: d, Method: method, Token: tokens[d]},
				outcome: activities.OutcomeValid}); err != nil {
				return err
			}
		}
	}
	return nil
}

func (w *application) verifyIdentity(ctx workflow.Context) error {
	verID := "ver-" + w.in.ApplicationID
	w.state.VerificationID = verID
	if err := w.setStatus(ctx, status.AppVerifyingIdentity, "", "identity verification "+verID); err != nil {
		return err
	}
	cctx := workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{
		WorkflowID:        VerificationWorkflowID(verID),
		ParentClosePolicy: enums.PARENT_CLOSE_POLICY_TERMINATE,
		StaticSummary:     "Identity verification for application " + w.in.ApplicationID,
		StaticDetails:     "Product " + w.in.Product + ", reseller " + w.in.ResellerID + ". Staff: send confirm-identity after checking the documents.",
		TypedSearchAttributes: temporal.NewSearchAttributes(
			cases.CaseType.ValueSet(cases.TypeVerification),
			cases.ResellerID.ValueSet(w.in.ResellerID),
		),
	})
	var res VerificationResult
	if err := workflow.ExecuteChildWorkflow(cctx, Verification, VerificationInput{
		VerificationID: verID,
		Purpose:        cases.TypeApplication,
		CaseRef:        w.in.ApplicationID,
		ResellerID:     w.in.ResellerID,
		SubjectRef:     w.subscriberID,
		Email:          w.in.Subscriber.Email,
		Organization:   w.in.Subscriber.Organization,
		Country:        w.in.Subscriber.Country,
		CheckRegistry:  w.in.Product == product.ServerOV,
		// Mailbox control for client certificates by a Random Value (S/MIME
		// BR §3.2.2.1), for applications started since mailboxValueChange.
		MailboxControl: product.Client(w.in.Product) && workflow.GetVersion(ctx, mailboxValueChange, workflow.DefaultVersion, 1) >= 1,
	}).Get(ctx, &res); err != nil {
		return err
	}
	if !res.Verified {
		return &rejection{reason: "identity verification failed: " + res.Reason}
	}
	return nil
}

func (w *application) review(ctx workflow.Context) error {
	if err := w.setStatus(ctx, status.AppAwaitingReview, "", "waiting for the staff review Update"); err != nil {
		return err
	}
	due := workflow.Now(ctx).Add(ReviewEscalationAfter)
	if err := workflow.UpsertTypedSearchAttributes(ctx, cases.DueAt.ValueSet(due)); err != nil {
		return err
	}
	stop := startDeadlineWatch(ctx, deadlineWatch{
		caseType: cases.TypeApplication, stage: status.AppAwaitingReview, start: workflow.Now(ctx),
		reminders: []time.Duration{ReviewReminderAfter}, escalation: ReviewEscalationAfter,
	})
	defer stop()
	var d ReviewDecision
	sel := workflow.NewSelector(ctx)
	sel.AddReceive(w.reviewCh, func(c workflow.ReceiveChannel, _ bool) { c.Receive(ctx, &d) })
	sel.AddReceive(ctx.Done(), func(workflow.ReceiveChannel, bool) {})
	sel.Select(ctx)
	if ctx.Err() != nil {
		return temporal.NewCanceledError()
	}
	if err := workflow.UpsertTypedSearchAttributes(ctx, cases.DueAt.ValueSet(w.state.DueAt)); err != nil {
		return err
	}
	if d.Decision == "reject" {
		return &rejection{reason: d.Reason}
	}
	return nil
}

// finish records a final status other than issued and tells the subscriber.
func (w *application) finish(ctx workflow.Context, final, reason string) (ApplicationResult, error) {
	ctx = workflow.WithActivityOptions(ctx, defaultActivityOptions())
	w.committed = true
	if err := w.setStatus(ctx, final, reason, final+": "+reason); err != nil {
		return ApplicationResult{}, err
	}
	if err := w.acmeRefused(ctx, w.acmeType, final+": "+reason); err != nil {
		return ApplicationResult{}, err
	}
	if final == status.AppRejected {
		data := mailer.ReviewRejectedData{Organization: w.in.Subscriber.Organization, ApplicationID: w.in.ApplicationID, Reason: reason}
		if w.subscriberID != "" {
			if err := w.notify(ctx, activities.Recipient{SubscriberID: w.subscriberID}, mailer.ReviewRejected, data); err != nil {
				return ApplicationResult{}, err
			}
		}
		if err := w.notify(ctx, activities.Recipient{ResellerID: w.in.ResellerID}, mailer.ReviewRejected, data, "reseller"); err != nil {
			return ApplicationResult{}, err
		}
	}
	return ApplicationResult{Status: final, Reason: reason}, nil
}

// setStatus moves the case: workflow state, search attribute, details and,
// once the application is recorded, the applications row.
func (w *application) setStatus(ctx workflow.Context, status, reason, details string) error {
	w.state.Status, w.state.Reason = status, reason
	if err := setStatus(ctx, status, details); err != nil {
		return err
	}
	if w.subscriberID == "" {
		return nil // not recorded yet (a CSR refused before the row exists)
	}
	var a *activities.Activities
	return w.exec(ctx, a.SetApplicationStatus, activities.ApplicationStatusInput{
		ApplicationID: w.in.ApplicationID, Status: status, Reason: reason,
		VerificationID: w.state.VerificationID, Serial: w.state.CertificateSerial,
	}, nil)
}

func (w *application) notify(ctx workflow.Context, to activities.Recipient, n mailer.Notice, data any, keyParts ...string) error {
	if !w.local {
		return notify(ctx, to, n, data, keyParts...)
	}
	var a *activities.Activities
	return w.exec(ctx, a.Notify, notifyInput(ctx, to, n, data, keyParts...), nil)
}

// exec runs one storage or email step: a local activity for applications
// started since localActivitiesChange, an activity on the task queue before.
func (w *application) exec(ctx workflow.Context, activity, in, out any) error {
	if w.local {
		ctx = workflow.WithLocalActivityOptions(ctx, localActivityOptions())
		return workflow.ExecuteLocalActivity(ctx, activity, in).Get(ctx, out)
	}
	ctx = workflow.WithActivityOptions(ctx, defaultActivityOptions())
	return workflow.ExecuteActivity(ctx, activity, in).Get(ctx, out)
}

// issueInput is what the signer signs from.
func (w *application) issueInput() activities.IssueInput {
	in := w.in
	return activities.IssueInput{
		ApplicationID: in.ApplicationID, ResellerID: in.ResellerID, SubscriberID: w.subscriberID,
		Product: in.Product, CSRPEM: in.CSRPEM, Domains: in.Domains, ValidityDays: in.ValidityDays,
		Subject: activities.SubjectFrom(in.Subscriber, in.Product), Email: certEmail(in),
	}
}

// certEmail is the mailbox printed in a client certificate; TLS certificates
// carry none.
func certEmail(in ApplicationInput) string {
	if in.Product == product.ClientSign {
		return in.Subscriber.Email
	}
	return ""
}
