package workflows

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/testsuite"

	"certdesk/activities"
	"certdesk/internal/challenge"
	"certdesk/internal/mailer"
)

func verInput(registry bool) VerificationInput {
	return VerificationInput{VerificationID: "ver-1", Purpose: "application", CaseRef: "app_1", ResellerID: "rs_a",
		SubjectRef: "sub_1", Email: "taro@example.jp", Organization: "Example K.K.", Country: "JP", CheckRegistry: registry}
}

// verMocks records the verification outcome written to the database.
func verMocks(env *testsuite.TestWorkflowEnvironment, rec *activities.VerificationRecord, found bool) {
	var a *activities.Activities
	env.OnActivity(a.RecordVerification, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.VerificationRecord) error { *rec = in; return nil }).Maybe()
	env.OnActivity(a.LookupOrganization, mock.Anything, mock.Anything).Return(activities.RegistryResult{Found: found, RegistryID: "1010001000002"}, nil).Maybe()
}

// emailedCode returns the code in the verification_code notice.
func emailedCode(t *testing.T, sent *notices) string {
	t.Helper()
	codes := sent.of(mailer.VerificationCode)
	if len(codes) != 1 {
		t.Fatalf("%d code emails", len(codes))
	}
	return codes[0].Data.(*mailer.VerificationCodeData).Code
}

func submitCode(env *testsuite.TestWorkflowEnvironment, after time.Duration, code func() string, out *CodeResult, rejected *error) {
	env.RegisterDelayedCallback(func() {
		env.UpdateWorkflow(SubmitCodeUpdate, fmt.Sprint("code-", after), &testsuite.TestUpdateCallback{
			OnReject: func(err error) {
				if rejected != nil {
					*rejected = err
				}
			},
			OnAccept: func() {},
			OnComplete: func(v any, err error) {
				if r, ok := v.(CodeResult); ok && out != nil {
					*out = r
				}
			},
		}, CodeSubmission{Code: code()})
	}, after)
}

func confirm(env *testsuite.TestWorkflowEnvironment, after time.Duration, d IdentityDecision, rejected *error) {
	env.RegisterDelayedCallback(func() {
		env.UpdateWorkflow(ConfirmIdentityUpdate, fmt.Sprint("confirm-", after), &testsuite.TestUpdateCallback{
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

func verResult(t *testing.T, env *testsuite.TestWorkflowEnvironment) VerificationResult {
	t.Helper()
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	var r VerificationResult
	if err := env.GetWorkflowResult(&r); err != nil {
		t.Fatal(err)
	}
	return r
}

func TestVerificationCodeThenStaffConfirm(t *testing.T) {
	env, sent := newEnv(t)
	var rec activities.VerificationRecord
	verMocks(env, &rec, true)
	var res CodeResult
	submitCode(env, time.Minute, func() string { return emailedCode(t, sent) }, &res, nil)
	confirm(env, time.Hour, IdentityDecision{Decision: "confirm", Reviewer: "bob", Evidence: "doc-42"}, nil)
	env.ExecuteWorkflow(Verification, verInput(true))
	r := verResult(t, env)
	if !r.Verified || r.Evidence != "doc-42" || r.Reviewer != "bob" {
		t.Fatalf("result %+v", r)
	}
	if !res.Accepted || res.AttemptsLeft != CodeMaxAttempts-1 {
		t.Fatalf("code result %+v", res)
	}
	if rec.Result != VerVerified || rec.DecidedBy != "bob" || rec.Attempts != 1 {
		t.Fatalf("recorded %+v", rec)
	}
	if to := sent.of(mailer.VerificationCode)[0].To; to.Email != "taro@example.jp" {
		t.Fatalf("code sent to %+v", to)
	}
}

func TestVerificationCodeExpires(t *testing.T) {
	env, sent := newEnv(t)
	var rec activities.VerificationRecord
	verMocks(env, &rec, true)
	start := env.Now()
	env.ExecuteWorkflow(Verification, verInput(false))
	r := verResult(t, env)
	if r.Verified || !strings.Contains(r.Reason, "expired") {
		t.Fatalf("result %+v", r)
	}
	if rec.Result != VerCodeExpired {
		t.Fatalf("recorded %+v", rec)
	}
	if d := env.Now().Sub(start); d != CodeValidity {
		t.Fatalf("gave up after %s, want %s", d, CodeValidity)
	}
	if len(sent.of(mailer.VerificationCode)) != 1 {
		t.Fatal("one code email")
	}
}

func TestVerificationLocksAfterFiveWrongCodes(t *testing.T) {
	env, sent := newEnv(t)
	var rec activities.VerificationRecord
	verMocks(env, &rec, true)
	results := make([]CodeResult, 5)
	wrong := func() string {
		c := emailedCode(t, sent)
		if c == "000000" {
			return "000001"
		}
		return "000000"
	}
	for i := 0; i < 5; i++ {
		submitCode(env, time.Duration(i+1)*time.Second, wrong, &results[i], nil)
	}
	env.ExecuteWorkflow(Verification, verInput(false))
	r := verResult(t, env)
	if r.Verified || !strings.Contains(r.Reason, "locked") {
		t.Fatalf("result %+v", r)
	}
	if results[0].AttemptsLeft != 4 || results[3].AttemptsLeft != 1 || !results[4].Locked {
		t.Fatalf("attempts %+v", results)
	}
	if rec.Result != VerLocked || !rec.Locked || rec.Attempts != 5 {
		t.Fatalf("recorded %+v", rec)
	}
}

func TestVerificationRefusedByStaff(t *testing.T) {
	env, sent := newEnv(t)
	var rec activities.VerificationRecord
	verMocks(env, &rec, true)
	submitCode(env, time.Minute, func() string { return emailedCode(t, sent) }, nil, nil)
	var bad error
	confirm(env, 30*time.Minute, IdentityDecision{Decision: "confirm", Reviewer: "bob"}, &bad) // no evidence
	confirm(env, time.Hour, IdentityDecision{Decision: "refuse", Reviewer: "bob", Reason: "document expired"}, nil)
	env.ExecuteWorkflow(Verification, verInput(false))
	r := verResult(t, env)
	if r.Verified || r.Reason != "document expired" {
		t.Fatalf("result %+v", r)
	}
	if bad == nil || !strings.Contains(bad.Error(), "evidence") {
		t.Fatalf("validator: %v", bad)
	}
	if rec.Result != VerRefused {
		t.Fatalf("recorded %+v", rec)
	}
}

func TestVerificationOVOrganisationNotInRegistry(t *testing.T) {
	env, sent := newEnv(t)
	var rec activities.VerificationRecord
	verMocks(env, &rec, false)
	submitCode(env, time.Minute, func() string { return emailedCode(t, sent) }, nil, nil)
	env.ExecuteWorkflow(Verification, verInput(true))
	r := verResult(t, env)
	if r.Verified || !strings.Contains(r.Reason, "registry") {
		t.Fatalf("result %+v", r)
	}
}

func TestVerificationStaffReminderAndEscalation(t *testing.T) {
	env, sent := newEnv(t)
	var rec activities.VerificationRecord
	verMocks(env, &rec, true)
	submitCode(env, time.Minute, func() string { return emailedCode(t, sent) }, nil, nil)
	confirm(env, 4*24*time.Hour, IdentityDecision{Decision: "confirm", Reviewer: "bob", Evidence: "doc"}, nil)
	env.ExecuteWorkflow(Verification, verInput(false))
	if r := verResult(t, env); !r.Verified {
		t.Fatalf("result %+v", r)
	}
	if len(sent.of(mailer.StaffReminder)) != 1 || len(sent.of(mailer.StaffEscalation)) != 1 {
		t.Fatalf("reminders %d escalations %d", len(sent.of(mailer.StaffReminder)), len(sent.of(mailer.StaffEscalation)))
	}
}

// A client certificate's mailbox is proved by a Random Value (S/MIME BR
// §3.2.2.1): 128 bits, valid 24 hours, and a 6-digit code is refused by
// the validator. The value, submitted after 20 hours, is still accepted.
func TestVerificationMailboxRandomValue(t *testing.T) {
	env, sent := newEnv(t)
	var rec activities.VerificationRecord
	verMocks(env, &rec, true)
	in := verInput(false)
	in.MailboxControl = true
	var sixDigitErr error
	var res CodeResult
	submitCode(env, time.Hour, func() string { return "123456" }, nil, &sixDigitErr)
	submitCode(env, 20*time.Hour, func() string { return emailedCode(t, sent) }, &res, nil)
	confirm(env, 21*time.Hour, IdentityDecision{Decision: "confirm", Reviewer: "alice", Evidence: "passport checked"}, nil)
	env.ExecuteWorkflow(Verification, in)
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	d := sent.of(mailer.VerificationCode)[0].Data.(*mailer.VerificationCodeData)
	if !challenge.IsMailboxValue(d.Code) || !d.MailboxControl || d.ExpiryMinutes != 24*60 {
		t.Fatalf("mailbox notice %+v", d)
	}
	if sixDigitErr == nil || !res.Accepted || rec.Result != VerVerified {
		t.Fatalf("6-digit code: %v; value accepted %v; result %s", sixDigitErr, res.Accepted, rec.Result)
	}
}
