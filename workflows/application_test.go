package workflows

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"certdesk/activities"
	"certdesk/internal/mailer"
	"certdesk/internal/mpic"
	"certdesk/internal/product"
	"certdesk/internal/status"
)

const testPEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"

func appInput(prod string) ApplicationInput {
	in := ApplicationInput{
		ApplicationID: "app_1", ResellerID: "rs_a", Product: prod, CSRPEM: "csr", ValidityDays: 90,
		Subscriber:  activities.SubscriberData{Organization: "Example K.K.", Name: "山田 太郎", Email: "taro@example.jp", Country: "JP"},
		Attestation: activities.Attestation{TermsVersion: "2026-01", Truthful: true},
	}
	if prod != product.ClientSign {
		in.Domains = []string{"www.example.jp"}
	}
	return in
}

// appMocks installs activity mocks for a happy path; statuses records the
// statuses written to the database.
func appMocks(env *testsuite.TestWorkflowEnvironment, statuses *[]string) {
	var a *activities.Activities
	var sa *activities.SigningActivities
	env.OnActivity(a.CheckCSR, mock.Anything, mock.Anything).Return(activities.CheckCSRResult{SPKISHA256: "ab"}, nil).Maybe()
	env.OnActivity(a.RecordApplication, mock.Anything, mock.Anything).Return(activities.RecordApplicationResult{SubscriberID: "sub_app_1"}, nil).Maybe()
	env.OnActivity(a.SetApplicationStatus, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.ApplicationStatusInput) error {
			*statuses = append(*statuses, in.Status)
			return nil
		}).Maybe()
	env.OnActivity(a.ValidateDomain, mock.Anything, mock.Anything).Return(nil).Maybe()
	perspectiveMocks(env)
	env.OnActivity(sa.IssueCertificate, mock.Anything, mock.Anything).Return(activities.IssueResult{
		Serial: "1a2b", Issuer: "tls-1", NotBefore: time.Now(), NotAfter: time.Now().Add(90 * 24 * time.Hour), CertificatePEM: testPEM,
	}, nil).Maybe()
	ctMocks(env)
}

// ctMocks: the TLS path through Certificate Transparency, happy.
func ctMocks(env *testsuite.TestWorkflowEnvironment) {
	var sa *activities.SigningActivities
	var cta *activities.CTActivities
	env.OnActivity(sa.IssuePrecertificate, mock.Anything, mock.Anything).Return(activities.IssueResult{
		Serial: "1a2b", Issuer: "tls-1", NotBefore: time.Now(), NotAfter: time.Now().Add(90 * 24 * time.Hour), CertificatePEM: testPEM, CTState: "precert",
	}, nil).Maybe()
	env.OnActivity(cta.SubmitPrecertificate, mock.Anything, mock.Anything).Return(activities.SubmitPrecertResult{Required: 2, Logs: []string{"a", "b"}}, nil).Maybe()
	env.OnActivity(sa.IssueFinalCertificate, mock.Anything, mock.Anything).Return(activities.IssueResult{
		Serial: "1a2b", Issuer: "tls-1", NotBefore: time.Now(), NotAfter: time.Now().Add(90 * 24 * time.Hour), CertificatePEM: testPEM, CTState: "final",
		SCTs: []activities.SCTInfo{{Log: "log a", Operator: "op a", Link: "http://127.0.0.1/a/tile/data/000"}, {Log: "log b", Operator: "op b", Link: "http://127.0.0.1/b/tile/data/000"}},
	}, nil).Maybe()
}

// testPerspectives are the development set: five remote perspectives in
// three RIR regions, as BR §3.2.2.9 asks from 2026-12-15.
var testPerspectives = mpic.Development

// perspectiveMocks lists testPerspectives and records the corroboration
// rounds. Every remote check answers "valid" unless perspectiveOutcomes
// names the perspective (newEnv registers the check).
func perspectiveMocks(env *testsuite.TestWorkflowEnvironment) *[]activities.CorroborationInput {
	var a *activities.Activities
	var recorded []activities.CorroborationInput
	env.OnActivity(a.ListPerspectives, mock.Anything).Return(testPerspectives, nil).Maybe()
	env.OnActivity(a.CheckCAA, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.CAAInput) ([]activities.CAAOutcome, error) {
			var out []activities.CAAOutcome
			for _, r := range in.Requests {
				o, ok := caaAnswers[r.Name]
				if !ok {
					o = activities.CAAOutcome{Permitted: true, Rule: "no-caa"}
				}
				o.Name = r.Name
				out = append(out, o)
			}
			return out, nil
		}).Maybe()
	env.OnActivity(a.RecordCorroboration, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.CorroborationInput) error {
			recorded = append(recorded, in)
			return nil
		}).Maybe()
	recordedRounds = &recorded
	return &recorded
}

// caaAnswers overrides the primary CAA outcome of names in the current test.
var caaAnswers map[string]activities.CAAOutcome

// recordedRounds are the corroboration rounds the current test's
// perspectiveMocks recorded.
var recordedRounds *[]activities.CorroborationInput

func verified(ok bool, reason string) func(workflow.Context, VerificationInput) (VerificationResult, error) {
	return func(workflow.Context, VerificationInput) (VerificationResult, error) {
		return VerificationResult{Verified: ok, Reason: reason, Reviewer: "bob"}, nil
	}
}

func sendReview(env *testsuite.TestWorkflowEnvironment, after time.Duration, d ReviewDecision, rejected *error) {
	env.RegisterDelayedCallback(func() {
		env.UpdateWorkflow(ReviewUpdate, fmt.Sprint("review-", after), &testsuite.TestUpdateCallback{
			OnReject: func(err error) {
				if rejected != nil {
					*rejected = err
				}
			},
			OnAccept:   func() {},
			OnComplete: func(any, error) {},
		}, d)
	}, after)
}

func result(t *testing.T, env *testsuite.TestWorkflowEnvironment) ApplicationResult {
	t.Helper()
	if !env.IsWorkflowCompleted() {
		t.Fatal("workflow did not complete")
	}
	if err := env.GetWorkflowError(); err != nil {
		t.Fatalf("workflow error: %v", err)
	}
	var r ApplicationResult
	if err := env.GetWorkflowResult(&r); err != nil {
		t.Fatal(err)
	}
	return r
}

func TestApplicationDVIssuesWithoutReview(t *testing.T) {
	env, sent := newEnv(t)
	var statuses []string
	appMocks(env, &statuses)
	env.ExecuteWorkflow(Application, appInput(product.ServerDV))
	r := result(t, env)
	if r.Status != status.AppIssued || r.CertificateSerial != "1a2b" {
		t.Fatalf("result %+v", r)
	}
	if got := strings.Join(statuses, ","); got != "validating,issuing,issued" {
		t.Fatalf("statuses %s", got)
	}
	if n := len(sent.of(mailer.ReviewIssued)); n != 2 {
		t.Fatalf("%d issued notices, want subscriber and reseller", n)
	}
	if n := len(sent.of(mailer.ApplicationReceived)); n != 1 {
		t.Fatalf("%d received notices", n)
	}
}

func TestApplicationClientApproved(t *testing.T) {
	env, _ := newEnv(t)
	var statuses []string
	appMocks(env, &statuses)
	env.OnWorkflow(Verification, mock.Anything, mock.Anything).Return(verified(true, ""))
	sendReview(env, time.Hour, ReviewDecision{Decision: "approve", Reviewer: "alice"}, nil)
	env.ExecuteWorkflow(Application, appInput(product.ClientSign))
	r := result(t, env)
	if r.Status != status.AppIssued {
		t.Fatalf("result %+v", r)
	}
	if got := strings.Join(statuses, ","); got != "verifying_identity,awaiting_review,issuing,issued" {
		t.Fatalf("statuses %s", got)
	}
}

func TestApplicationRejectedByReview(t *testing.T) {
	env, sent := newEnv(t)
	var statuses []string
	appMocks(env, &statuses)
	env.OnWorkflow(Verification, mock.Anything, mock.Anything).Return(verified(true, ""))
	sendReview(env, time.Hour, ReviewDecision{Decision: "reject", Reviewer: "alice", Reason: "organisation name does not match the registry"}, nil)
	env.ExecuteWorkflow(Application, appInput(product.ServerOV))
	r := result(t, env)
	if r.Status != status.AppRejected || !strings.Contains(r.Reason, "registry") {
		t.Fatalf("result %+v", r)
	}
	if n := len(sent.of(mailer.ReviewRejected)); n != 2 {
		t.Fatalf("%d rejection notices, want subscriber and reseller", n)
	}
}

func TestReviewValidatorRefusesBadDecisions(t *testing.T) {
	for _, tc := range []struct {
		name string
		d    ReviewDecision
		want string
	}{
		{"unknown decision", ReviewDecision{Decision: "maybe", Reviewer: "alice"}, "not one of"},
		{"no reviewer", ReviewDecision{Decision: "approve"}, "reviewer is required"},
		{"reject without reason", ReviewDecision{Decision: "reject", Reviewer: "alice"}, "needs a reason"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env, _ := newEnv(t)
			var statuses []string
			appMocks(env, &statuses)
			env.OnWorkflow(Verification, mock.Anything, mock.Anything).Return(verified(true, ""))
			var rejected error
			sendReview(env, time.Hour, tc.d, &rejected)
			// A valid decision afterwards still goes through: a bad one is not recorded.
			sendReview(env, 2*time.Hour, ReviewDecision{Decision: "approve", Reviewer: "alice"}, nil)
			env.ExecuteWorkflow(Application, appInput(product.ClientSign))
			if rejected == nil || !strings.Contains(rejected.Error(), tc.want) {
				t.Fatalf("validator said %v, want %q", rejected, tc.want)
			}
			if r := result(t, env); r.Status != status.AppIssued {
				t.Fatalf("result %+v", r)
			}
		})
	}
}

func TestReviewRefusedOutsideReviewStage(t *testing.T) {
	env, _ := newEnv(t)
	var statuses []string
	appMocks(env, &statuses)
	var rejected error
	// DV skips review: a review Update is refused.
	sendReview(env, 0, ReviewDecision{Decision: "approve", Reviewer: "alice"}, &rejected)
	env.ExecuteWorkflow(Application, appInput(product.ServerDV))
	if rejected == nil || !strings.Contains(rejected.Error(), "not awaiting review") {
		t.Fatalf("validator said %v", rejected)
	}
}

func TestApplicationWithdrawnWhileInReview(t *testing.T) {
	env, _ := newEnv(t)
	var statuses []string
	appMocks(env, &statuses)
	env.OnWorkflow(Verification, mock.Anything, mock.Anything).Return(verified(true, ""))
	env.RegisterDelayedCallback(func() { env.SignalWorkflow(WithdrawSignal, nil) }, 5*time.Hour)
	env.ExecuteWorkflow(Application, appInput(product.ServerOV))
	r := result(t, env)
	if r.Status != status.AppWithdrawn {
		t.Fatalf("result %+v", r)
	}
	if statuses[len(statuses)-1] != status.AppWithdrawn {
		t.Fatalf("statuses %v", statuses)
	}
}

func TestReviewReminderAndEscalation(t *testing.T) {
	env, sent := newEnv(t)
	var statuses []string
	appMocks(env, &statuses)
	env.OnWorkflow(Verification, mock.Anything, mock.Anything).Return(verified(true, ""))
	start := env.Now()
	sendReview(env, 4*24*time.Hour, ReviewDecision{Decision: "approve", Reviewer: "alice"}, nil)
	env.ExecuteWorkflow(Application, appInput(product.ClientSign))
	if r := result(t, env); r.Status != status.AppIssued {
		t.Fatalf("result %+v", r)
	}
	rem, esc := sent.of(mailer.StaffReminder), sent.of(mailer.StaffEscalation)
	if len(rem) != 1 || len(esc) != 1 {
		t.Fatalf("reminders %d escalations %d, want 1 and 1", len(rem), len(esc))
	}
	if d := rem[0].At.Sub(start); d < 2*24*time.Hour || d > 2*24*time.Hour+time.Minute {
		t.Fatalf("reminder after %s, want 2 days", d)
	}
	if d := esc[0].At.Sub(start); d < 3*24*time.Hour || d > 3*24*time.Hour+time.Minute {
		t.Fatalf("escalation after %s, want 3 days", d)
	}
	if !rem[0].To.Staff || !esc[0].To.Staff {
		t.Fatal("staff notices must go to staff")
	}
}

func TestApplicationExpiresAfter30Days(t *testing.T) {
	env, _ := newEnv(t)
	var statuses []string
	appMocks(env, &statuses)
	env.OnWorkflow(Verification, mock.Anything, mock.Anything).Return(verified(true, ""))
	start := env.Now()
	env.ExecuteWorkflow(Application, appInput(product.ClientSign))
	r := result(t, env)
	if r.Status != status.AppExpired {
		t.Fatalf("result %+v", r)
	}
	if d := env.Now().Sub(start); d < 30*24*time.Hour || d > 30*24*time.Hour+time.Hour {
		t.Fatalf("expired after %s", d)
	}
}

func TestApplicationCSRRejected(t *testing.T) {
	env, _ := newEnv(t)
	var a *activities.Activities
	env.OnActivity(a.CheckCSR, mock.Anything, mock.Anything).Return(activities.CheckCSRResult{},
		temporal.NewNonRetryableApplicationError("RSA key of 1024 bits: use at least 2048", activities.ErrTypeCSRRejected, nil))
	env.ExecuteWorkflow(Application, appInput(product.ServerDV))
	r := result(t, env)
	if r.Status != status.AppRejected || !strings.Contains(r.Reason, "2048") {
		t.Fatalf("result %+v", r)
	}
}

func TestApplicationIdentityVerificationFailure(t *testing.T) {
	env, _ := newEnv(t)
	var statuses []string
	appMocks(env, &statuses)
	env.OnWorkflow(Verification, mock.Anything, mock.Anything).Return(verified(false, "5 wrong codes: locked"))
	env.ExecuteWorkflow(Application, appInput(product.ClientSign))
	r := result(t, env)
	if r.Status != status.AppRejected || !strings.Contains(r.Reason, "locked") {
		t.Fatalf("result %+v", r)
	}
}

func TestApplicationStatusQuery(t *testing.T) {
	env, _ := newEnv(t)
	var statuses []string
	appMocks(env, &statuses)
	env.OnWorkflow(Verification, mock.Anything, mock.Anything).Return(verified(true, ""))
	var seen ApplicationState
	env.RegisterDelayedCallback(func() {
		v, err := env.QueryWorkflow(StatusQuery)
		if err != nil {
			t.Error(err)
			return
		}
		_ = v.Get(&seen)
	}, time.Hour)
	sendReview(env, 2*time.Hour, ReviewDecision{Decision: "approve", Reviewer: "alice"}, nil)
	env.ExecuteWorkflow(Application, appInput(product.ClientSign))
	result(t, env)
	if seen.Status != status.AppAwaitingReview || seen.VerificationID != "ver-app_1" || seen.DueAt.IsZero() {
		t.Fatalf("query saw %+v", seen)
	}
}

// A storage outage longer than one attempt's timeout delays a local step; it
// must not fail the application (a local activity's ScheduleToCloseTimeout
// would otherwise default to one StartToCloseTimeout).
func TestApplicationLocalStepOutlivesAnOutage(t *testing.T) {
	env, _ := newEnv(t)
	var statuses []string
	var a *activities.Activities
	calls := 0
	env.OnActivity(a.RecordApplication, mock.Anything, mock.Anything).Return(
		func(context.Context, activities.RecordApplicationInput) (activities.RecordApplicationResult, error) {
			calls++
			if calls <= 8 { // 1+2+4+...+60 s of backoff: over 4 minutes
				return activities.RecordApplicationResult{}, temporal.NewApplicationError("store: connection refused", "")
			}
			return activities.RecordApplicationResult{SubscriberID: "sub_app_1"}, nil
		})
	appMocks(env, &statuses)
	env.ExecuteWorkflow(Application, appInput(product.ServerDV))
	r := result(t, env)
	if r.Status != status.AppIssued || calls != 9 {
		t.Fatalf("result %+v after %d RecordApplication calls", r, calls)
	}
}

// One remote perspective sees another answer (a simulated hijack): with five
// perspectives one non-corroboration is allowed, so the certificate issues,
// and the recorded round names the disagreeing perspective.
func TestApplicationMPICToleratesOneHijackedPerspective(t *testing.T) {
	env, _ := newEnv(t)
	var statuses []string
	appMocks(env, &statuses)
	recorded := recordedRounds
	perspectiveOutcomes = map[string]string{"eu-west": activities.OutcomeInvalid}
	env.ExecuteWorkflow(Application, appInput(product.ServerDV))
	if r := result(t, env); r.Status != status.AppIssued {
		t.Fatalf("result %+v", r)
	}
	if len(*recorded) != 2 || (*recorded)[0].Check != CheckDCV || !(*recorded)[0].Decision.OK ||
		len((*recorded)[0].Decision.NonCorroborating) != 1 || !strings.HasPrefix((*recorded)[0].Decision.NonCorroborating[0], "eu-west") ||
		(*recorded)[1].Check != CheckCAA || !(*recorded)[1].Decision.OK {
		t.Fatalf("recorded rounds %+v", *recorded)
	}
	var st ApplicationState
	v, err := env.QueryWorkflow(StatusQuery)
	if err != nil || v.Get(&st) != nil || len(st.Corroborations["dcv:www.example.jp"].Determinations) != len(testPerspectives) {
		t.Fatalf("status query shows no per-perspective results: %v %+v", err, st.Corroborations)
	}
}

// Two of five perspectives disagree: more than the quorum allows. Every
// round is tried and recorded, then the application is refused naming the
// rule, not issued.
func TestApplicationMPICRefusesTooManyDisagreeing(t *testing.T) {
	env, _ := newEnv(t)
	var statuses []string
	appMocks(env, &statuses)
	recorded := recordedRounds
	perspectiveOutcomes = map[string]string{"eu-west": activities.OutcomeInvalid, "ap-northeast": activities.OutcomeError}
	env.ExecuteWorkflow(Application, appInput(product.ServerDV))
	r := result(t, env)
	if r.Status == status.AppIssued || !strings.Contains(r.Reason, "BR §3.2.2.9") || !strings.Contains(r.Reason, "not corroborated") {
		t.Fatalf("result %+v", r)
	}
	if len(*recorded) != CorroborationRounds || (*recorded)[0].Check != CheckDCV {
		t.Fatalf("%d rounds recorded, want %d DCV rounds", len(*recorded), CorroborationRounds)
	}
	for _, c := range *recorded {
		if c.Decision.OK {
			t.Fatalf("round %d passed: %+v", c.Round, c.Decision)
		}
	}
}

// CAA that names another CA refuses the application before anything is
// signed, and the reason names the rule and the record.
func TestApplicationCAAForbids(t *testing.T) {
	env, _ := newEnv(t)
	var statuses []string
	appMocks(env, &statuses)
	caaAnswers = map[string]activities.CAAOutcome{"www.example.jp": {Permitted: false, Rule: "not-authorized",
		Reason: "no issue property names certdesk.example", Record: `0 issue "other-ca.example"`}}
	env.ExecuteWorkflow(Application, appInput(product.ServerDV))
	r := result(t, env)
	if r.Status != status.AppRejected || !strings.Contains(r.Reason, "BR §3.2.2.8") || !strings.Contains(r.Reason, "other-ca.example") {
		t.Fatalf("result %+v", r)
	}
	for _, s := range statuses {
		if s == status.AppIssuing {
			t.Fatal("signing started although CAA forbids issuance")
		}
	}
}

// A client certificate's CAA check is issuemail for the mailbox domain, and
// two perspectives seeing other CAA records refuse it.
func TestApplicationCAAClientMailboxNotCorroborated(t *testing.T) {
	env, _ := newEnv(t)
	var statuses []string
	var names []activities.CAARequest
	var a *activities.Activities
	env.OnActivity(a.CheckCAA, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.CAAInput) ([]activities.CAAOutcome, error) {
			names = in.Requests
			return []activities.CAAOutcome{{Name: in.Requests[0].Name, Permitted: true, Rule: "no-caa"}}, nil
		})
	appMocks(env, &statuses)
	perspectiveCAAOutcomes = map[string]string{"us-east": activities.OutcomeForbid, "eu-west": activities.OutcomeForbid}
	env.OnWorkflow(Verification, mock.Anything, mock.Anything).Return(verified(true, ""))
	sendReview(env, time.Hour, ReviewDecision{Decision: "approve", Reviewer: "alice"}, nil)
	env.ExecuteWorkflow(Application, appInput(product.ClientSign))
	r := result(t, env)
	if r.Status == status.AppIssued || !strings.Contains(r.Reason, "caa of example.jp not corroborated") {
		t.Fatalf("result %+v", r)
	}
	if len(names) != 1 || names[0].Name != "example.jp" || !names[0].Mailbox {
		t.Fatalf("CAA requests %+v, want the mailbox domain with issuemail", names)
	}
}

// Signing that waited past the CAA check's validity is refused by the
// signer as stale; the workflow checks CAA again and signs.
func TestApplicationStaleCAARechecked(t *testing.T) {
	env, _ := newEnv(t)
	var statuses []string
	var sa *activities.SigningActivities
	calls := 0
	env.OnActivity(sa.IssuePrecertificate, mock.Anything, mock.Anything).Return(
		func(context.Context, activities.IssueInput) (activities.IssueResult, error) {
			calls++
			if calls == 1 {
				return activities.IssueResult{}, temporal.NewNonRetryableApplicationError("CAA checked too long ago", activities.ErrTypeStaleEvidence, nil)
			}
			return activities.IssueResult{Serial: "1a2b", Issuer: "tls-1", NotBefore: time.Now(), NotAfter: time.Now().Add(90 * 24 * time.Hour), CertificatePEM: testPEM, CTState: "precert"}, nil
		})
	appMocks(env, &statuses)
	env.ExecuteWorkflow(Application, appInput(product.ServerDV))
	r := result(t, env)
	caaRounds := 0
	for _, c := range *recordedRounds {
		if c.Check == CheckCAA {
			caaRounds++
		}
	}
	if r.Status != status.AppIssued || calls != 2 || caaRounds != 2 {
		t.Fatalf("result %+v after %d signing calls and %d CAA corroborations", r, calls, caaRounds)
	}
}
