package workflows

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/testsuite"

	"certdesk/activities"
	"certdesk/internal/challenge"
	"certdesk/internal/mailer"
)

func verInput(registry bool) VerificationInput {
	return VerificationInput{VerificationID: "ver-1", Purpose: "application", CaseRef: "app_1", ResellerID: "rs_a",
		SubjectRef: "sub_1", Email: "taro@example.jp", Organization: "Example K.K.", Country: "JP", CheckRegistry: registry}
}

// testChallengeKeys stand for the server's challenge key in unit tests.
var testChallengeKeys, _ = challenge.NewKeys([]byte("workflow-unit-test-challenge-key!"))

// verMocks records the verification outcome written to the database.
// IssueChallenge and CheckChallenge behave as the real ones: the value is
// derived, "emailed" (recorded in sent, as Notify would) and its digest
// kept; a check compares digests.
func verMocks(env *testsuite.TestWorkflowEnvironment, sent *notices, rec *activities.VerificationRecord, found bool) {
	var a *activities.Activities
	var mu sync.Mutex
	digests := map[string]string{}
	env.OnActivity(a.IssueChallenge, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.ChallengeInput) (activities.ChallengeIssued, error) {
			v := testChallengeKeys.Value(in.Kind, in.VerificationID, in.Attempt)
			mu.Lock()
			digests[in.VerificationID] = testChallengeKeys.Digest(in.Kind, in.VerificationID, v)
			mu.Unlock()
			sent.mu.Lock()
			sent.list = append(sent.list, sentNotice{At: env.Now(), To: in.Recipient, Notice: mailer.VerificationCode, Key: in.IdempotencyKey,
				Data: &mailer.VerificationCodeData{Code: v, ExpiryMinutes: in.ExpiryMinutes, MaxAttempts: in.MaxAttempts,
					MailboxControl: in.Kind == challenge.KindMailbox}})
			sent.mu.Unlock()
			return activities.ChallengeIssued{ExpiresAt: in.ExpiresAt}, nil
		}).Maybe()
	env.OnActivity(a.CheckChallenge, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.CheckChallengeInput) (activities.CheckChallengeResult, error) {
			mu.Lock()
			defer mu.Unlock()
			return activities.CheckChallengeResult{Match: challenge.Equal(in.Digest, digests[in.VerificationID])}, nil
		}).Maybe()
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
		}, digestOf(code()))
	}, after)
}

// digestOf is what the starter sends for a value submitted to ver-1.
func digestOf(v string) CodeSubmission {
	kind := challenge.KindCode
	if challenge.IsMailboxValue(v) {
		kind = challenge.KindMailbox
	}
	return CodeSubmission{Digest: testChallengeKeys.Digest(kind, verInput(false).VerificationID, v)}
}

// submitRaw sends s as it is and records a refusal.
func submitRaw(env *testsuite.TestWorkflowEnvironment, after time.Duration, s CodeSubmission, rejected *error) {
	env.RegisterDelayedCallback(func() {
		env.UpdateWorkflow(SubmitCodeUpdate, fmt.Sprint("raw-", after), &testsuite.TestUpdateCallback{
			OnReject:   func(err error) { *rejected = err },
			OnAccept:   func() {},
			OnComplete: func(any, error) {},
		}, s)
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
	verMocks(env, sent, &rec, true)
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
	verMocks(env, sent, &rec, true)
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
	verMocks(env, sent, &rec, true)
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
	verMocks(env, sent, &rec, true)
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
	verMocks(env, sent, &rec, false)
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
	verMocks(env, sent, &rec, true)
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
// §3.2.2.1): 128 bits, valid 24 hours; the value sent in clear is refused
// by the validator (the starter checks the form and sends its digest). The
// value, submitted after 20 hours, is still accepted.
func TestVerificationMailboxRandomValue(t *testing.T) {
	env, sent := newEnv(t)
	var rec activities.VerificationRecord
	verMocks(env, sent, &rec, true)
	in := verInput(false)
	in.MailboxControl = true
	var sixDigitErr error
	var res CodeResult
	submitRaw(env, time.Hour, CodeSubmission{Code: "123456"}, &sixDigitErr)
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

// The one-time code is made, emailed and checked inside activities: no
// activity input or result and no Notify the workflow sends carries it,
// the code sent in clear is refused (a refused Update is not kept in
// history) and only its keyed digest reaches CheckChallenge.
func TestVerificationValueNeverInWorkflow(t *testing.T) {
	env, sent := newEnv(t)
	var rec activities.VerificationRecord
	verMocks(env, sent, &rec, true)
	var seen []string
	env.SetOnActivityStartedListener(func(info *activity.Info, _ context.Context, args converter.EncodedValues) {
		var in map[string]any
		_ = args.Get(&in)
		b, _ := json.Marshal(in)
		seen = append(seen, info.ActivityType.Name+" "+string(b))
	})
	env.SetOnActivityCompletedListener(func(info *activity.Info, res converter.EncodedValue, _ error) {
		var out any
		if res != nil && res.HasValue() {
			_ = res.Get(&out)
		}
		b, _ := json.Marshal(out)
		seen = append(seen, info.ActivityType.Name+" -> "+string(b))
	})
	var clearErr error
	var res CodeResult
	submitRaw(env, time.Second, CodeSubmission{Code: "123456"}, &clearErr)
	submitCode(env, time.Minute, func() string { return emailedCode(t, sent) }, &res, nil)
	confirm(env, time.Hour, IdentityDecision{Decision: "confirm", Reviewer: "bob", Evidence: "doc-42"}, nil)
	env.ExecuteWorkflow(Verification, verInput(false))
	if r := verResult(t, env); !r.Verified || !res.Accepted || rec.Attempts != 1 {
		t.Fatalf("result %+v, code %+v, recorded %+v", r, res, rec)
	}
	code := emailedCode(t, sent)
	if clearErr == nil || !strings.Contains(clearErr.Error(), "digest") {
		t.Fatalf("a code sent in clear: %v", clearErr)
	}
	if len(seen) == 0 {
		t.Fatal("no activity seen")
	}
	for _, s := range seen {
		if strings.Contains(s, code) {
			t.Errorf("the code %s is in workflow history: %s", code, s)
		}
	}
	for _, n := range sent.list {
		if d, ok := n.Data.(*mailer.VerificationCodeData); ok && n.Key == "" {
			t.Errorf("the workflow emailed the code itself: %+v", d)
		}
	}
}
