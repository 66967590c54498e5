package workflows

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"certdesk/activities"
	"certdesk/internal/dcv"
	"certdesk/internal/mailer"
	"certdesk/internal/product"
	"certdesk/internal/status"
)

// Updates an ACME order's application workflow takes from the ACME server
// (starter/acmeorders). Both carry only public values.
const (
	// ACMEChallengeUpdate: the client asked for a challenge to be
	// validated (RFC 8555 §7.5.1); body ACMEChallenge.
	ACMEChallengeUpdate = "acme-challenge"
	// ACMEFinalizeUpdate: the client finalized the ready order with its CSR
	// (§7.4); body ACMEFinalize.
	ACMEFinalizeUpdate = "acme-finalize"
)

// acmeChange is the workflow.GetVersion change ID under which an
// application may be an ACME order (ApplicationInput.ACME).
const acmeChange = "application-acme"

// acmeOVChange is the workflow.GetVersion change ID under which an ACME
// order for server-ov whose account's EAB is bound to an already verified
// organisation (ACMEOrderInput.Organization) reuses that organisation's
// identity verification instead of starting a new one; staff review still
// follows. Asked only by such orders, so no other history gains a marker.
const acmeOVChange = "application-acme-ov"

// ACME challenge validation retries: the client responds once it has
// published the key authorization, so a few quick attempts (DNS
// propagation, a web server reload) before the challenge is invalid.
var (
	ACMEValidationAttempts int32 = 5
	ACMEValidationInterval       = 2 * time.Second
)

// ACMEOrderInput makes an application an ACME order: it is started at
// newOrder without a CSR, validates each authorization when the client
// responds to a challenge, and takes the CSR at finalize.
type ACMEOrderInput struct {
	OrderID   string
	AccountID string
	// ExpiresAt is the order's expiry (RFC 8555 §7.1.3): the application
	// expires with it rather than after ApplicationExpiry.
	ExpiresAt time.Time
	// AccountURI is the account's URL, for CAA accounturi (RFC 8657).
	AccountURI string `json:",omitempty"`
	// Authorizations are the order's, one per identifier.
	Authorizations []ACMEAuthorization
	// Organization, for a server-ov order, is the already verified
	// organisation the account's EAB is bound to (change ID acmeOVChange):
	// references only; its subject data is in ApplicationInput.Subscriber,
	// as for any OV application.
	Organization *ACMEOrganization `json:",omitempty"`
}

// ACMEOrganization names the records that proved an ACME account's
// organisation: the reseller's issued server-ov application and its passed
// identity verification (store.VerifiedOrganization).
type ACMEOrganization struct {
	ApplicationID  string
	VerificationID string
}

// ACMEAuthorization is one authorization of an ACME order.
type ACMEAuthorization struct {
	ID     string
	Domain string // "*.example.com" for a wildcard
}

// ACMEChallenge is the body of ACMEChallengeUpdate.
type ACMEChallenge struct {
	AuthzID     string
	ChallengeID string
	// Method is dcv.MethodACMEHTTP01 or dcv.MethodACMEDNS01.
	Method string
	// KeyAuthorization is token "." account key thumbprint (public).
	KeyAuthorization string
}

// ACMEFinalize is the body of ACMEFinalizeUpdate.
type ACMEFinalize struct {
	CSRPEM string
}

// ACMEState is the ACME part of ApplicationState.
type ACMEState struct {
	OrderID   string
	AccountID string
	// Authorizations maps each authorization id to pending, processing,
	// valid or invalid.
	Authorizations map[string]string
	Finalized      bool
}

// acmeOrder is the ACME part of a running application.
type acmeOrder struct {
	queue  []ACMEChallenge
	csrPEM string
	// methods maps each domain to the ACME method that validated it (CAA
	// validationmethods, RFC 8657).
	methods   map[string]string
	finalized bool
	// finishedOrder is set once the ACME order has its outcome recorded.
	finishedOrder bool
}

// setupACME registers the ACME Updates of an application that is an ACME order.
func (w *application) setupACME(ctx workflow.Context) error {
	if workflow.GetVersion(ctx, acmeChange, workflow.DefaultVersion, 1) < 1 {
		return temporal.NewNonRetryableApplicationError("an ACME order needs workflow version "+acmeChange, activities.ErrTypeInvalid, nil)
	}
	in := w.in.ACME
	w.acme = &acmeOrder{methods: map[string]string{}}
	w.state.ACME = &ACMEState{OrderID: in.OrderID, AccountID: in.AccountID, Authorizations: map[string]string{}}
	for _, az := range in.Authorizations {
		w.state.ACME.Authorizations[az.ID] = "pending"
	}
	if err := workflow.SetUpdateHandlerWithOptions(ctx, ACMEChallengeUpdate,
		func(ctx workflow.Context, c ACMEChallenge) error {
			w.state.ACME.Authorizations[c.AuthzID] = "processing"
			w.acme.queue = append(w.acme.queue, c)
			return nil
		},
		workflow.UpdateHandlerOptions{Validator: func(ctx workflow.Context, c ACMEChallenge) error {
			st, ok := w.state.ACME.Authorizations[c.AuthzID]
			switch {
			case !ok:
				return fmt.Errorf("authorization %q is not one of order %s", c.AuthzID, in.OrderID)
			case st != "pending" && st != "processing":
				return fmt.Errorf("authorization %s is %s", c.AuthzID, st)
			case c.ChallengeID == "" || (c.Method != dcv.MethodACMEHTTP01 && c.Method != dcv.MethodACMEDNS01):
				return errors.New("a challenge needs its id and method acme-http-01 or acme-dns-01")
			case !strings.Contains(c.KeyAuthorization, "."):
				return errors.New("the key authorization is token.thumbprint")
			case w.committed || w.withdrawn || w.expired:
				return errors.New("the order is closed")
			}
			return nil
		}}); err != nil {
		return err
	}
	return workflow.SetUpdateHandlerWithOptions(ctx, ACMEFinalizeUpdate,
		func(ctx workflow.Context, f ACMEFinalize) error {
			w.acme.csrPEM, w.acme.finalized = f.CSRPEM, true
			w.state.ACME.Finalized = true
			return nil
		},
		workflow.UpdateHandlerOptions{Validator: func(ctx workflow.Context, f ACMEFinalize) error {
			for id, st := range w.state.ACME.Authorizations {
				if st != "valid" {
					return fmt.Errorf("order %s is not ready: authorization %s is %s", in.OrderID, id, st)
				}
			}
			switch {
			case w.acme.finalized:
				return errors.New("the order is finalized already")
			case !strings.Contains(f.CSRPEM, "CERTIFICATE REQUEST"):
				return errors.New("the CSR must be PEM")
			case w.withdrawn || w.expired:
				return errors.New("the order is closed")
			}
			return nil
		}})
}

// acmeSteps are an ACME order's first steps: record the application (no CSR
// yet), validate each authorization as the client responds, take the CSR at
// finalize and check it. It then continues as any application.
func (w *application) acmeSteps(ctx workflow.Context) error {
	var a *activities.Activities
	in := w.in
	var rec activities.RecordApplicationResult
	if err := w.exec(ctx, a.RecordApplication, activities.RecordApplicationInput{
		ApplicationID: in.ApplicationID, ResellerID: in.ResellerID, WorkflowID: workflow.GetInfo(ctx).WorkflowExecution.ID,
		Product: in.Product, Domains: in.Domains, ValidityDays: in.ValidityDays,
		Subscriber: in.Subscriber, Attestation: in.Attestation, DueAt: w.state.DueAt, ACMEOrderID: in.ACME.OrderID,
	}, &rec); err != nil {
		return err
	}
	w.subscriberID = rec.SubscriberID
	if err := w.notify(ctx, activities.Recipient{SubscriberID: w.subscriberID}, mailer.ApplicationReceived,
		mailer.ApplicationReceivedData{Organization: in.Subscriber.Organization, ApplicationID: in.ApplicationID,
			Product: in.Product, ReceivedAt: workflow.GetInfo(ctx).WorkflowStartTime}); err != nil {
		return err
	}
	if err := w.acmeValidate(ctx); err != nil {
		return err
	}

	// Finalize: the CSR, checked as any application's (O11, O15).
	workflow.SetCurrentDetails(ctx, "order ready: waiting for the ACME client to finalize with its CSR")
	if err := workflow.Await(ctx, func() bool { return w.acme.finalized }); err != nil {
		return err
	}
	w.in.CSRPEM = w.acme.csrPEM
	var csr activities.CheckCSRResult
	err := w.exec(ctx, a.CheckCSR, activities.CheckCSRInput{
		Product: in.Product, CSRPEM: w.in.CSRPEM, Domains: in.Domains, Email: in.Subscriber.Email,
		Subject: activities.SubjectFrom(in.Subscriber, in.Product),
	}, &csr)
	if reason, ok := applicationErrorOf(err, activities.ErrTypeCSRRejected); ok {
		return &rejection{reason: "CSR refused: " + reason, acmeType: "badCSR"}
	} else if err != nil {
		return err
	}
	return w.exec(ctx, a.RecordACMECSR, activities.ACMECSRInput{ApplicationID: in.ApplicationID, CSRPEM: w.in.CSRPEM, SPKISHA256: csr.SPKISHA256}, nil)
}

// acmeReusesVerification reports whether the application is an ACME OV
// order that reuses its bound organisation's identity verification
// (acmeOVChange) rather than running a new one; it then records that
// verification on the case.
func (w *application) acmeReusesVerification(ctx workflow.Context) (bool, error) {
	in := w.in
	if in.ACME == nil || in.ACME.Organization == nil || in.Product != product.ServerOV {
		return false, nil
	}
	if workflow.GetVersion(ctx, acmeOVChange, workflow.DefaultVersion, 1) < 1 {
		return false, nil
	}
	org := in.ACME.Organization
	w.state.VerificationID = org.VerificationID
	return true, w.setStatus(ctx, status.AppVerifyingIdentity, "",
		"organisation verified already: identity verification "+org.VerificationID+" of application "+org.ApplicationID+
			" reused (BR §4.2.1), bound to the account's EAB credentials")
}

// acmeValidate validates each authorization when the client responds to
// one of its challenges: ValidateDomain with the ACME method (the key
// authorization as token), then multi-perspective corroboration, as for any
// application; the outcome goes to the ACME challenge. An invalid
// authorization ends the order (RFC 8555 §7.1.6) and the application.
func (w *application) acmeValidate(ctx workflow.Context) error {
	var a *activities.Activities
	if err := w.setStatus(ctx, status.AppValidating, "", "waiting for the ACME client's challenge responses"); err != nil {
		return err
	}
	domains := map[string]string{}
	for _, az := range w.in.ACME.Authorizations {
		domains[az.ID] = az.Domain
	}
	mpicOn := workflow.GetVersion(ctx, mpicChange, workflow.DefaultVersion, 1) >= 1
	for done := 0; done < len(domains); {
		if err := workflow.Await(ctx, func() bool { return len(w.acme.queue) > 0 }); err != nil {
			return err
		}
		c := w.acme.queue[0]
		w.acme.queue = w.acme.queue[1:]
		if w.state.ACME.Authorizations[c.AuthzID] == "valid" {
			// Another challenge of it validated first.
			if err := w.acmeAlreadyValid(ctx, c); err != nil {
				return err
			}
			continue
		}
		d := domains[c.AuthzID]
		vctx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
			StartToCloseTimeout: 30 * time.Second,
			RetryPolicy: &temporal.RetryPolicy{InitialInterval: ACMEValidationInterval, BackoffCoefficient: 2,
				MaximumAttempts: ACMEValidationAttempts, NonRetryableErrorTypes: []string{activities.ErrTypeInvalid}},
		})
		err := workflow.ExecuteActivity(vctx, a.ValidateDomain, activities.DomainValidationInput{
			ApplicationID: w.in.ApplicationID, Domain: d, Method: c.Method, Token: c.KeyAuthorization,
		}).Get(ctx, nil)
		var problem *activities.ACMEProblem
		if reason, ok := applicationErrorOf(err, activities.ErrTypeInvalid); ok {
			problem = &activities.ACMEProblem{Type: "rejectedIdentifier", Detail: reason}
		} else if ctx.Err() != nil {
			return temporal.NewCanceledError()
		} else if err != nil {
			problem = &activities.ACMEProblem{Type: "incorrectResponse", Detail: "the key authorization was not found: " + rootMessage(err)}
		}
		if problem == nil && mpicOn {
			err := w.corroborate(ctx, perspectiveCheck{check: CheckDCV, name: d, activity: activities.PerspectiveCheckDomainName,
				input:   activities.PerspectiveCheckInput{ApplicationID: w.in.ApplicationID, Domain: d, Method: c.Method, Token: c.KeyAuthorization},
				outcome: activities.OutcomeValid})
			var rej *rejection
			if errors.As(err, &rej) {
				problem = &activities.ACMEProblem{Type: "unauthorized", Detail: rej.reason}
			} else if err != nil {
				return err
			}
		}
		if err := w.exec(ctx, a.RecordACMEChallenge, activities.ACMEChallengeResultInput{ChallengeID: c.ChallengeID, Problem: problem}, nil); err != nil {
			return err
		}
		if problem != nil {
			w.state.ACME.Authorizations[c.AuthzID] = "invalid"
			// The store made the order invalid with the authorization.
			w.acme.finishedOrder = true
			return &rejection{reason: "domain validation of " + d + ": " + problem.Detail}
		}
		w.state.ACME.Authorizations[c.AuthzID] = "valid"
		w.acme.methods[d] = c.Method
		done++
	}
	for _, c := range w.acme.queue {
		if err := w.acmeAlreadyValid(ctx, c); err != nil {
			return err
		}
	}
	w.acme.queue = nil
	return nil
}

// acmeAlreadyValid closes a challenge whose authorization another
// challenge validated first: it is not checked (§7.1.4: the authorization
// lists only the challenge that validated it), and stays out of the way.
func (w *application) acmeAlreadyValid(ctx workflow.Context, c ACMEChallenge) error {
	var a *activities.Activities
	return w.exec(ctx, a.RecordACMEChallenge, activities.ACMEChallengeResultInput{ChallengeID: c.ChallengeID,
		Problem: &activities.ACMEProblem{Type: "malformed", Detail: "the authorization is valid already by another challenge"}}, nil)
}

// acmeIssued records the certificate chain on the ACME order.
func (w *application) acmeIssued(ctx workflow.Context, issued activities.IssueResult) error {
	var a *activities.Activities
	if err := w.exec(ctx, a.RecordACMEOrder, activities.ACMEOrderResultInput{OrderID: w.in.ACME.OrderID,
		Serial: issued.Serial, Issuer: issued.Issuer, CertificatePEM: issued.CertificatePEM}, nil); err != nil {
		return err
	}
	w.acme.finishedOrder = true
	return nil
}

// acmeRefused records a refusal on a finalized ACME order (before
// finalize the order is pending or invalid already and the client sees the
// challenge's problem).
func (w *application) acmeRefused(ctx workflow.Context, typ, reason string) error {
	if w.acme == nil || w.acme.finishedOrder || !w.acme.finalized {
		return nil
	}
	var a *activities.Activities
	if typ == "" {
		typ = "unauthorized"
	}
	return w.exec(ctx, a.RecordACMEOrder, activities.ACMEOrderResultInput{OrderID: w.in.ACME.OrderID,
		Problem: &activities.ACMEProblem{Type: typ, Detail: reason}}, nil)
}

// expiry is how long the application may take from start: the ACME
// order's lifetime, else ApplicationExpiry.
func (w *application) expiry(start time.Time) time.Duration {
	if w.in.ACME != nil && w.in.ACME.ExpiresAt.After(start) && w.in.ACME.ExpiresAt.Sub(start) < ApplicationExpiry {
		return w.in.ACME.ExpiresAt.Sub(start)
	}
	return ApplicationExpiry
}

// expiredReason is the reason of an expired application.
func (w *application) expiredReason() string {
	if w.in.ACME != nil {
		return "the ACME order " + w.in.ACME.OrderID + " expired before it was finalized"
	}
	return "not completed within 30 days"
}

// rootMessage is the message of the innermost error.
func rootMessage(err error) string {
	for {
		next := errors.Unwrap(err)
		if next == nil {
			return err.Error()
		}
		err = next
	}
}
