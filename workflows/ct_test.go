package workflows

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/temporal"

	"certdesk/activities"
	"certdesk/internal/mailer"
	"certdesk/internal/product"
	"certdesk/internal/status"
)

// A TLS application is signed as a precertificate, logged, then signed as
// the final certificate with the same serial; the subscriber's email names
// the logs.
func TestApplicationCTPrecertSCTsFinal(t *testing.T) {
	for _, prod := range []string{product.ServerDV, product.ServerOV} {
		t.Run(prod, func(t *testing.T) {
			env, sent := newEnv(t)
			var statuses []string
			var order []string
			var sa *activities.SigningActivities
			var cta *activities.CTActivities
			env.OnActivity(sa.IssuePrecertificate, mock.Anything, mock.Anything).Return(
				func(_ context.Context, in activities.IssueInput) (activities.IssueResult, error) {
					order = append(order, "precert")
					return activities.IssueResult{Serial: "1a2b", NotAfter: time.Now().Add(90 * 24 * time.Hour), CertificatePEM: testPEM, CTState: "precert"}, nil
				})
			env.OnActivity(cta.SubmitPrecertificate, mock.Anything, mock.Anything).Return(
				func(_ context.Context, in activities.SubmitPrecertInput) (activities.SubmitPrecertResult, error) {
					order = append(order, "scts:"+in.Serial)
					return activities.SubmitPrecertResult{Required: 2}, nil
				})
			env.OnActivity(sa.IssueFinalCertificate, mock.Anything, mock.Anything).Return(
				func(_ context.Context, in activities.FinalInput) (activities.IssueResult, error) {
					order = append(order, "final:"+in.Serial)
					return activities.IssueResult{Serial: in.Serial, NotAfter: time.Now().Add(90 * 24 * time.Hour), CertificatePEM: testPEM, CTState: "final",
						SCTs: []activities.SCTInfo{{Log: "log a", Operator: "op a", Link: "http://a/tile/data/000"}, {Log: "log b", Operator: "op b", Link: "http://b/tile/data/000"}}}, nil
				})
			appMocks(env, &statuses)
			env.OnWorkflow(Verification, mock.Anything, mock.Anything).Return(verified(true, "")).Maybe()
			sendReview(env, time.Hour, ReviewDecision{Decision: "approve", Reviewer: "alice"}, nil)
			env.ExecuteWorkflow(Application, appInput(prod))
			r := result(t, env)
			if r.Status != status.AppIssued || r.CertificateSerial != "1a2b" {
				t.Fatalf("result %+v", r)
			}
			if got := strings.Join(order, " "); got != "precert scts:1a2b final:1a2b" {
				t.Fatalf("signing steps %q", got)
			}
			var issued []mailer.ReviewIssuedData
			for _, n := range sent.of(mailer.ReviewIssued) {
				issued = append(issued, n.Data.(mailer.ReviewIssuedData))
			}
			if len(issued) != 2 || len(issued[0].CTLogs) != 2 || issued[0].CTLogs[1].Link != "http://b/tile/data/000" {
				t.Fatalf("issued notices %+v", issued)
			}
		})
	}
}

// Client certificates are not logged: no precertificate, no SCTs.
func TestApplicationClientNotLogged(t *testing.T) {
	env, _ := newEnv(t)
	var statuses []string
	var sa *activities.SigningActivities
	var cta *activities.CTActivities
	env.OnActivity(sa.IssuePrecertificate, mock.Anything, mock.Anything).Return(activities.IssueResult{}, errors.New("a client certificate must not be logged")).Never()
	env.OnActivity(cta.SubmitPrecertificate, mock.Anything, mock.Anything).Return(activities.SubmitPrecertResult{}, errors.New("not logged")).Never()
	appMocks(env, &statuses)
	env.OnWorkflow(Verification, mock.Anything, mock.Anything).Return(verified(true, ""))
	sendReview(env, time.Hour, ReviewDecision{Decision: "approve", Reviewer: "alice"}, nil)
	env.ExecuteWorkflow(Application, appInput(product.ClientSign))
	if r := result(t, env); r.Status != status.AppIssued {
		t.Fatalf("result %+v", r)
	}
}

// WithoutCT (CERTDESK_CT_DISABLED, benchmark comparison only) issues a DV
// certificate as before CT: no precertificate, no log submission.
func TestApplicationWithoutCTIssuesDirectly(t *testing.T) {
	env, _ := newEnv(t)
	var statuses []string
	var sa *activities.SigningActivities
	var cta *activities.CTActivities
	env.OnActivity(sa.IssuePrecertificate, mock.Anything, mock.Anything).Return(activities.IssueResult{}, errors.New("CT is off")).Never()
	env.OnActivity(cta.SubmitPrecertificate, mock.Anything, mock.Anything).Return(activities.SubmitPrecertResult{}, errors.New("CT is off")).Never()
	appMocks(env, &statuses)
	in := appInput(product.ServerDV)
	in.WithoutCT = true
	env.ExecuteWorkflow(Application, in)
	if r := result(t, env); r.Status != status.AppIssued {
		t.Fatalf("result %+v", r)
	}
	env.AssertExpectations(t)
}

// With every log down the application waits, escalates to staff, and past
// the deadline fails without a final certificate.
func TestApplicationCTLogsDownEscalatesAndNeverIssues(t *testing.T) {
	// The test environment stops retrying after 10 attempts (about 25
	// minutes of backoff): escalate before that.
	defer func(d time.Duration) { CTEscalationAfter = d }(CTEscalationAfter)
	CTEscalationAfter = 5 * time.Minute
	env, sent := newEnv(t)
	var statuses []string
	var sa *activities.SigningActivities
	var cta *activities.CTActivities
	attempts := 0
	env.OnActivity(cta.SubmitPrecertificate, mock.Anything, mock.Anything).Return(
		func(context.Context, activities.SubmitPrecertInput) (activities.SubmitPrecertResult, error) {
			attempts++
			return activities.SubmitPrecertResult{}, errors.New("CT: 0 SCTs; failed logs: connection refused")
		})
	env.OnActivity(sa.IssueFinalCertificate, mock.Anything, mock.Anything).Return(activities.IssueResult{}, errors.New("must not sign without SCTs")).Never()
	appMocks(env, &statuses)
	env.ExecuteWorkflow(Application, appInput(product.ServerDV))
	r := result(t, env)
	if r.Status != status.AppFailed || !strings.Contains(r.Reason, "precertificate 1a2b") {
		t.Fatalf("result %+v", r)
	}
	if attempts < 3 {
		t.Fatalf("logs asked %d times", attempts)
	}
	esc := sent.of(mailer.StaffEscalation)
	if len(esc) != 1 || esc[0].Data.(*mailer.StaffCaseData).Note != "escalation: deadline reached in "+ctStage {
		t.Fatalf("staff escalations %+v", esc)
	}
	if at := esc[0].At.Sub(testStart); at < CTEscalationAfter || at > CTEscalationAfter+10*time.Minute {
		t.Fatalf("escalated %s after start", at)
	}
}

// The signer finds the stored SCTs short of the policy (the log list
// changed): the workflow gathers again and then signs.
func TestApplicationCTIncompleteGathersAgain(t *testing.T) {
	env, _ := newEnv(t)
	var statuses []string
	var sa *activities.SigningActivities
	var cta *activities.CTActivities
	gathers, finals := 0, 0
	env.OnActivity(cta.SubmitPrecertificate, mock.Anything, mock.Anything).Return(
		func(context.Context, activities.SubmitPrecertInput) (activities.SubmitPrecertResult, error) {
			gathers++
			return activities.SubmitPrecertResult{Required: 2}, nil
		})
	env.OnActivity(sa.IssueFinalCertificate, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.FinalInput) (activities.IssueResult, error) {
			finals++
			if finals == 1 {
				return activities.IssueResult{}, temporal.NewNonRetryableApplicationError("1 SCT", activities.ErrTypeCTIncomplete, nil)
			}
			return activities.IssueResult{Serial: in.Serial, NotAfter: time.Now().Add(90 * 24 * time.Hour), CertificatePEM: testPEM, CTState: "final"}, nil
		})
	appMocks(env, &statuses)
	env.ExecuteWorkflow(Application, appInput(product.ServerDV))
	if r := result(t, env); r.Status != status.AppIssued || gathers != 2 || finals != 2 {
		t.Fatalf("result %+v after %d gathers, %d finals", r, gathers, finals)
	}
}
