package workflows

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"certdesk/activities"
	"certdesk/internal/product"
	"certdesk/internal/status"
)

// acmeOVInput is an ACME server-ov order of an account whose EAB is bound
// to the organisation application app_ov_0 verified.
func acmeOVInput() ApplicationInput {
	in := acmeInput()
	in.Product = product.ServerOV
	in.Subscriber = activities.SubscriberData{Name: "ACME account acct_1", Email: "ops@example.jp",
		Organization: "Example K.K.", Locality: "Chiyoda-ku", Province: "Tokyo", Country: "JP"}
	in.ACME.Organization = &ACMEOrganization{ApplicationID: "app_ov_0", VerificationID: "ver-app_ov_0"}
	return in
}

// TestACMEOVOrderWaitsForReview: an ACME server-ov order of an account
// bound to a verified organisation validates and finalizes as any ACME
// order, reuses the organisation's identity verification (no new
// Verification child), then waits for the staff review Update (the
// reviewer checked by CheckStaff: an unknown one is refused) and only then
// signs through CT with the organisation's subject and records the chain on
// the order.
func TestACMEOVOrderWaitsForReview(t *testing.T) {
	env, _ := newEnv(t)
	refusedStaff = map[string]bool{"mallory": true}
	defer func() { refusedStaff = nil }()
	var statuses []string
	var rec acmeRecords
	var sa *activities.SigningActivities
	var verifications []statusWithVer
	var a *activities.Activities
	env.OnActivity(a.SetApplicationStatus, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.ApplicationStatusInput) error {
		statuses = append(statuses, in.Status)
		verifications = append(verifications, statusWithVer{in.Status, in.VerificationID})
		return nil
	})
	childStarted := false
	env.OnWorkflow(Verification, mock.Anything, mock.Anything).Return(func(workflow.Context, VerificationInput) (VerificationResult, error) {
		childStarted = true
		return VerificationResult{}, errors.New("no new verification for a verified organisation")
	}).Maybe()
	var precert activities.IssueInput
	env.OnActivity(sa.IssuePrecertificate, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.IssueInput) (activities.IssueResult, error) {
		precert = in
		return activities.IssueResult{Serial: "1a2b", Issuer: "tls-1", NotBefore: time.Now(), NotAfter: time.Now().Add(90 * 24 * time.Hour),
			CertificatePEM: testPEM, CTState: "precert"}, nil
	})
	acmeMocks(env, &rec)
	sendUpdate(env, time.Second, ACMEChallengeUpdate, "chall_1", testChallenge, nil)
	sendUpdate(env, time.Minute, ACMEFinalizeUpdate, "fin", ACMEFinalize{CSRPEM: "-----BEGIN CERTIFICATE REQUEST-----\nx\n-----END CERTIFICATE REQUEST-----\n"}, nil)
	// Before the review nothing is signed and the order has no outcome.
	var signedEarly bool
	var orderEarly int
	env.RegisterDelayedCallback(func() {
		signedEarly = precert.ApplicationID != ""
		orderEarly = len(rec.orders)
	}, 23*time.Hour)
	var refused error
	env.RegisterDelayedCallback(func() {
		env.UpdateWorkflow(ReviewUpdate, "bad-review", &testsuite.TestUpdateCallback{
			OnReject: func(err error) { refused = err }, OnAccept: func() {},
			OnComplete: func(_ any, err error) {
				if err != nil {
					refused = err
				}
			},
		}, ReviewDecision{Decision: "approve", Reviewer: "mallory"})
	}, 23*time.Hour+time.Minute)
	sendReview(env, 24*time.Hour, ReviewDecision{Decision: "approve", Reviewer: "alice"}, nil)
	appMocks(env, &statuses) // after the mocks above: the first match wins
	env.ExecuteWorkflow(Application, acmeOVInput())
	r := result(t, env)
	if r.Status != status.AppIssued || r.CertificateSerial != "1a2b" {
		t.Fatalf("result %+v", r)
	}
	if childStarted {
		t.Fatal("a new identity verification was started for an already verified organisation")
	}
	if got := strings.Join(statuses, ","); got != "validating,verifying_identity,awaiting_review,issuing,issued" {
		t.Fatalf("statuses %s", got)
	}
	if verifications[1].ver != "ver-app_ov_0" {
		t.Fatalf("the reused verification was not recorded on the case: %+v", verifications)
	}
	if signedEarly || orderEarly != 0 {
		t.Fatalf("signed (%v) or order recorded (%d) before the staff review", signedEarly, orderEarly)
	}
	if refused == nil || !strings.Contains(refused.Error(), "not an active staff member") {
		t.Fatalf("review by an unknown reviewer: %v, want refused", refused)
	}
	if len(staffDecisions) != 1 || staffDecisions[0].Reviewer != "alice" {
		t.Fatalf("audited decisions %+v", staffDecisions)
	}
	if precert.Product != product.ServerOV || precert.Subject.Organization != "Example K.K." || precert.Subject.Locality != "Chiyoda-ku" ||
		precert.Subject.Country != "JP" || !strings.Contains(precert.CSRPEM, "CERTIFICATE REQUEST") {
		t.Fatalf("signed from %+v", precert)
	}
	if len(rec.orders) != 1 || rec.orders[0].Serial != "1a2b" || rec.orders[0].Problem != nil {
		t.Fatalf("order records %+v", rec.orders)
	}
}

// TestACMEOVOrderRejectedByReview: staff rejecting the review makes the
// finalized order invalid with the reason.
func TestACMEOVOrderRejectedByReview(t *testing.T) {
	env, _ := newEnv(t)
	var statuses []string
	var rec acmeRecords
	acmeMocks(env, &rec)
	sendUpdate(env, time.Second, ACMEChallengeUpdate, "chall_1", testChallenge, nil)
	sendUpdate(env, time.Minute, ACMEFinalizeUpdate, "fin", ACMEFinalize{CSRPEM: "-----BEGIN CERTIFICATE REQUEST-----\nx\n-----END CERTIFICATE REQUEST-----\n"}, nil)
	sendReview(env, time.Hour, ReviewDecision{Decision: "reject", Reviewer: "alice", Reason: "organisation dissolved"}, nil)
	appMocks(env, &statuses)
	env.ExecuteWorkflow(Application, acmeOVInput())
	r := result(t, env)
	if r.Status != status.AppRejected || r.Reason != "organisation dissolved" {
		t.Fatalf("result %+v", r)
	}
	if len(rec.orders) != 1 || rec.orders[0].Problem == nil || rec.orders[0].Problem.Type != "unauthorized" ||
		!strings.Contains(rec.orders[0].Problem.Detail, "organisation dissolved") {
		t.Fatalf("order records %+v", rec.orders)
	}
}

// statusWithVer is one recorded status with its verification.
type statusWithVer struct{ status, ver string }
