package workflows

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"certdesk/activities"
	"certdesk/internal/dcv"
	"certdesk/internal/product"
	"certdesk/internal/status"
)

func acmeInput() ApplicationInput {
	in := appInput(product.ServerDV)
	in.CSRPEM = ""
	in.ACME = &ACMEOrderInput{OrderID: "ord_1", AccountID: "acct_1",
		Authorizations: []ACMEAuthorization{{ID: "authz_1", Domain: "www.example.jp"}}}
	return in
}

// acmeRecords are what the ACME activities recorded.
type acmeRecords struct {
	challenges []activities.ACMEChallengeResultInput
	orders     []activities.ACMEOrderResultInput
	csrs       []activities.ACMECSRInput
	validated  []activities.DomainValidationInput
}

func acmeMocks(env *testsuite.TestWorkflowEnvironment, rec *acmeRecords) {
	var a *activities.Activities
	env.OnActivity(a.RecordACMEChallenge, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.ACMEChallengeResultInput) error {
		rec.challenges = append(rec.challenges, in)
		return nil
	}).Maybe()
	env.OnActivity(a.RecordACMEOrder, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.ACMEOrderResultInput) error {
		rec.orders = append(rec.orders, in)
		return nil
	}).Maybe()
	env.OnActivity(a.RecordACMECSR, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.ACMECSRInput) error {
		rec.csrs = append(rec.csrs, in)
		return nil
	}).Maybe()
}

func sendUpdate(env *testsuite.TestWorkflowEnvironment, after time.Duration, name, id string, arg any, rejected *error) {
	env.RegisterDelayedCallback(func() {
		env.UpdateWorkflow(name, id, &testsuite.TestUpdateCallback{
			OnReject: func(err error) {
				if rejected != nil {
					*rejected = err
				}
			},
			OnAccept: func() {}, OnComplete: func(any, error) {},
		}, arg)
	}, after)
}

var testChallenge = ACMEChallenge{AuthzID: "authz_1", ChallengeID: "chall_1", Method: dcv.MethodACMEHTTP01, KeyAuthorization: "tok.thumb"}

// TestACMEOrderIssues: an ACME order is recorded without a CSR, validates
// its authorization with ValidateDomain (ACME method, key authorization)
// and the perspectives when the challenge Update arrives, refuses an early
// finalize, takes the CSR, signs through CT and records the chain on the
// order.
func TestACMEOrderIssues(t *testing.T) {
	env, _ := newEnv(t)
	var statuses []string
	var a *activities.Activities
	var rec acmeRecords
	env.OnActivity(a.ValidateDomain, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.DomainValidationInput) error {
		rec.validated = append(rec.validated, in)
		return nil
	})
	env.OnActivity(a.RecordApplication, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.RecordApplicationInput) (activities.RecordApplicationResult, error) {
		if in.CSRPEM != "" || in.ACMEOrderID != "ord_1" {
			return activities.RecordApplicationResult{}, errors.New("an ACME application is recorded with its order and no CSR")
		}
		return activities.RecordApplicationResult{SubscriberID: "sub_app_1"}, nil
	})
	acmeMocks(env, &rec)
	var early, dup, foreign error
	sendUpdate(env, time.Second, ACMEFinalizeUpdate, "fin-early", ACMEFinalize{CSRPEM: "-----BEGIN CERTIFICATE REQUEST-----"}, &early)
	// Two challenges of one authorization at once (one callback): the second
	// arrives while the first is being validated.
	env.RegisterDelayedCallback(func() {
		cb := func(rejected *error) *testsuite.TestUpdateCallback {
			return &testsuite.TestUpdateCallback{OnReject: func(err error) { *rejected = err }, OnAccept: func() {}, OnComplete: func(any, error) {}}
		}
		var first error
		env.UpdateWorkflow(ACMEChallengeUpdate, "chall_1", cb(&first), testChallenge)
		env.UpdateWorkflow(ACMEChallengeUpdate, "chall_2", cb(&dup), ACMEChallenge{AuthzID: "authz_1", ChallengeID: "chall_2", Method: dcv.MethodACMEDNS01, KeyAuthorization: "t.k"})
	}, 2*time.Second)
	var late error
	sendUpdate(env, 30*time.Second, ACMEChallengeUpdate, "chall_3", ACMEChallenge{AuthzID: "authz_1", ChallengeID: "chall_3", Method: dcv.MethodACMEDNS01, KeyAuthorization: "t.k"}, &late)
	sendUpdate(env, 30*time.Second, ACMEChallengeUpdate, "chall_x", ACMEChallenge{AuthzID: "authz_other", ChallengeID: "chall_x", Method: dcv.MethodACMEDNS01, KeyAuthorization: "t.k"}, &foreign)
	sendUpdate(env, time.Minute, ACMEFinalizeUpdate, "fin", ACMEFinalize{CSRPEM: "-----BEGIN CERTIFICATE REQUEST-----\nx\n-----END CERTIFICATE REQUEST-----\n"}, nil)
	appMocks(env, &statuses) // after the mocks above: the first match wins
	env.ExecuteWorkflow(Application, acmeInput())
	r := result(t, env)
	if r.Status != status.AppIssued || r.CertificateSerial != "1a2b" {
		t.Fatalf("result %+v", r)
	}
	if early == nil || !strings.Contains(early.Error(), "not ready") {
		t.Fatalf("finalize before the authorization is valid: %v", early)
	}
	if dup != nil {
		t.Fatalf("a second challenge for an authorization being validated was refused: %v", dup)
	}
	if late == nil || foreign == nil {
		t.Fatalf("a challenge after the authorization is valid (%v) or of another order (%v) was accepted", late, foreign)
	}
	if len(rec.validated) != 1 || rec.validated[0].Method != dcv.MethodACMEHTTP01 || rec.validated[0].Token != "tok.thumb" {
		t.Fatalf("validations %+v", rec.validated)
	}
	if len(*recordedRounds) == 0 || (*recordedRounds)[0].Check != CheckDCV {
		t.Fatal("the challenge was not corroborated by the perspectives")
	}
	// The second challenge is closed unchecked: the first validated it.
	if len(rec.challenges) != 2 || rec.challenges[0].ChallengeID != "chall_1" || rec.challenges[0].Problem != nil ||
		rec.challenges[1].ChallengeID != "chall_2" || rec.challenges[1].Problem == nil {
		t.Fatalf("challenges %+v", rec.challenges)
	}
	if len(rec.csrs) != 1 || !strings.Contains(rec.csrs[0].CSRPEM, "CERTIFICATE REQUEST") {
		t.Fatalf("CSR records %+v", rec.csrs)
	}
	if len(rec.orders) != 1 || rec.orders[0].Serial != "1a2b" || rec.orders[0].Issuer != "tls-1" || rec.orders[0].Problem != nil {
		t.Fatalf("order records %+v", rec.orders)
	}
	if got := strings.Join(statuses, ","); got != "validating,issuing,issued" {
		t.Fatalf("statuses %s", got)
	}
}

// TestACMEChallengeInvalid: a key authorization never found makes the
// challenge invalid with incorrectResponse and rejects the application.
func TestACMEChallengeInvalid(t *testing.T) {
	env, _ := newEnv(t)
	var statuses []string
	var a *activities.Activities
	var rec acmeRecords
	env.OnActivity(a.ValidateDomain, mock.Anything, mock.Anything).Return(errors.New("dcv: not yet: no such file"))
	acmeMocks(env, &rec)
	sendUpdate(env, time.Second, ACMEChallengeUpdate, "chall_1", testChallenge, nil)
	appMocks(env, &statuses) // after the mocks above: the first match wins
	env.ExecuteWorkflow(Application, acmeInput())
	r := result(t, env)
	if r.Status != status.AppRejected || !strings.Contains(r.Reason, "www.example.jp") {
		t.Fatalf("result %+v", r)
	}
	if len(rec.challenges) != 1 || rec.challenges[0].Problem == nil || rec.challenges[0].Problem.Type != "incorrectResponse" {
		t.Fatalf("challenges %+v", rec.challenges)
	}
	if len(rec.orders) != 0 {
		t.Fatalf("the pending order was finished too: %+v", rec.orders)
	}
}

// TestACMEBadCSR: a CSR the checks refuse makes the finalized order
// invalid with badCSR.
func TestACMEBadCSR(t *testing.T) {
	env, _ := newEnv(t)
	var statuses []string
	var a *activities.Activities
	var rec acmeRecords
	env.OnActivity(a.CheckCSR, mock.Anything, mock.Anything).Return(activities.CheckCSRResult{},
		temporal.NewNonRetryableApplicationError("RSA key of 1024 bits", activities.ErrTypeCSRRejected, nil))
	acmeMocks(env, &rec)
	sendUpdate(env, time.Second, ACMEChallengeUpdate, "chall_1", testChallenge, nil)
	sendUpdate(env, time.Minute, ACMEFinalizeUpdate, "fin", ACMEFinalize{CSRPEM: "-----BEGIN CERTIFICATE REQUEST-----"}, nil)
	appMocks(env, &statuses) // after the mocks above: the first match wins
	env.ExecuteWorkflow(Application, acmeInput())
	r := result(t, env)
	if r.Status != status.AppRejected {
		t.Fatalf("result %+v", r)
	}
	if len(rec.orders) != 1 || rec.orders[0].Problem == nil || rec.orders[0].Problem.Type != "badCSR" || !strings.Contains(rec.orders[0].Problem.Detail, "1024") {
		t.Fatalf("order records %+v", rec.orders)
	}
}

// TestACMEOrderExpires: an ACME order that is never finalized expires with
// the order (7 days), not after the 30 days of an application.
func TestACMEOrderExpires(t *testing.T) {
	env, _ := newEnv(t)
	var statuses []string
	var rec acmeRecords
	acmeMocks(env, &rec)
	appMocks(env, &statuses)
	start := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	env.SetStartTime(start)
	in := acmeInput()
	in.ACME.ExpiresAt = start.Add(7 * 24 * time.Hour)
	sendUpdate(env, time.Second, ACMEChallengeUpdate, "chall_1", testChallenge, nil)
	env.ExecuteWorkflow(Application, in)
	r := result(t, env)
	if r.Status != status.AppExpired || !strings.Contains(r.Reason, "ord_1") {
		t.Fatalf("result %+v", r)
	}
	if got := env.Now().Sub(start); got > 8*24*time.Hour {
		t.Fatalf("expired after %v, want the order's 7 days", got)
	}
}

// TestACMECAAParameters: the CAA check of an ACME order names the account
// URL and the challenge type that validated each name (RFC 8657); a CAA
// refusal makes the finalized order invalid with the caa error.
func TestACMECAAParameters(t *testing.T) {
	env, _ := newEnv(t)
	var statuses []string
	var rec acmeRecords
	var a *activities.Activities
	var asked []activities.CAARequest
	env.OnActivity(a.CheckCAA, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.CAAInput) ([]activities.CAAOutcome, error) {
		asked = append(asked, in.Requests...)
		return []activities.CAAOutcome{{Name: in.Requests[0].Name, Rule: "accounturi-mismatch", Reason: "bound to another account"}}, nil
	})
	acmeMocks(env, &rec)
	appMocks(env, &statuses)
	in := acmeInput()
	in.ACME.AccountURI = "https://acme.certdesk.example/acme/account/acct_1"
	sendUpdate(env, time.Second, ACMEChallengeUpdate, "chall_1", testChallenge, nil)
	sendUpdate(env, time.Minute, ACMEFinalizeUpdate, "fin", ACMEFinalize{CSRPEM: "-----BEGIN CERTIFICATE REQUEST-----"}, nil)
	env.ExecuteWorkflow(Application, in)
	r := result(t, env)
	if r.Status != status.AppRejected {
		t.Fatalf("result %+v", r)
	}
	if len(asked) == 0 || asked[0].AccountURI != in.ACME.AccountURI || asked[0].Method != "http-01" || asked[0].Name != "www.example.jp" {
		t.Fatalf("CAA requests %+v", asked)
	}
	if len(rec.orders) != 1 || rec.orders[0].Problem == nil || rec.orders[0].Problem.Type != "caa" {
		t.Fatalf("order records %+v", rec.orders)
	}
}
