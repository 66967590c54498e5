package workflows

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/testsuite"

	"certdesk/activities"
	"certdesk/internal/mailer"
)

type inqRecorder struct {
	mu       sync.Mutex
	recorded []activities.RecordInquiryInput
	statuses []string
	answers  []activities.AnswerInquiryInput
}

func inqMocks(env *testsuite.TestWorkflowEnvironment, r *inqRecorder) {
	var a *activities.Activities
	env.OnActivity(a.RecordInquiry, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.RecordInquiryInput) error {
			r.mu.Lock()
			defer r.mu.Unlock()
			r.recorded = append(r.recorded, in)
			return nil
		}).Maybe()
	env.OnActivity(a.SetInquiryStatus, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.InquiryStatusInput) error {
			r.mu.Lock()
			defer r.mu.Unlock()
			r.statuses = append(r.statuses, in.Status)
			return nil
		}).Maybe()
	env.OnActivity(a.AnswerInquiry, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.AnswerInquiryInput) error {
			r.mu.Lock()
			defer r.mu.Unlock()
			r.answers = append(r.answers, in)
			return nil
		}).Maybe()
}

func inqInput(kind, contact string) InquiryInput {
	return InquiryInput{InquiryID: "inq_1", Kind: kind, Contact: contact, Body: "証明書情報の第三者提供について伺います。"}
}

func runInquiry(env *testsuite.TestWorkflowEnvironment, in InquiryInput) {
	env.SetStartWorkflowOptions(client.StartWorkflowOptions{ID: InquiryWorkflowID(in.InquiryID)})
	env.ExecuteWorkflow(Inquiry, in)
}

func inqResult(t *testing.T, env *testsuite.TestWorkflowEnvironment) InquiryResult {
	t.Helper()
	if !env.IsWorkflowCompleted() {
		t.Fatal("workflow did not complete")
	}
	if err := env.GetWorkflowError(); err != nil {
		t.Fatalf("workflow error: %v", err)
	}
	var r InquiryResult
	if err := env.GetWorkflowResult(&r); err != nil {
		t.Fatal(err)
	}
	return r
}

func TestInquiryAcknowledgedAnsweredAndEmailed(t *testing.T) {
	env, sent := newEnv(t)
	r := &inqRecorder{}
	inqMocks(env, r)
	start := env.Now()
	var waiting InquiryState
	env.RegisterDelayedCallback(func() {
		v, _ := env.QueryWorkflow(StatusQuery)
		_ = v.Get(&waiting)
	}, time.Hour)
	pdUpdate(env, 24*time.Hour, AnswerUpdate, InquiryAnswer{Answer: "指定事業者への提供は規程4.1に基づきます。", Reviewer: "erin"}, nil)
	runInquiry(env, inqInput(activities.InquiryKindInquiry, "hanako@example.jp"))
	res := inqResult(t, env)
	if res.Status != InqAnswered || res.Decision != "" || !res.AnsweredAt.Equal(start.Add(24*time.Hour)) {
		t.Fatalf("result %+v", res)
	}
	if len(r.recorded) != 1 || !r.recorded[0].DueAt.Equal(start.Add(5*24*time.Hour)) || r.recorded[0].WorkflowID != "inquiry/inq_1" {
		t.Fatalf("recorded %+v", r.recorded)
	}
	ack := sent.of(mailer.InquiryAcknowledged)
	if len(ack) != 1 || ack[0].To.Email != "hanako@example.jp" || !ack[0].At.Equal(start) {
		t.Fatalf("acknowledgement %+v", ack)
	}
	if d := noticeData[mailer.InquiryAcknowledgedData](ack[0].Data); !d.AnswerBy.Equal(start.Add(5 * 24 * time.Hour)) {
		t.Fatalf("answer by %s", d.AnswerBy)
	}
	if waiting.Status != InqAwaitingAnswer || !waiting.EmailContact {
		t.Fatalf("state while waiting %+v", waiting)
	}
	if len(r.answers) != 1 || r.answers[0].Reviewer != "erin" || r.answers[0].Kind != activities.InquiryKindInquiry {
		t.Fatalf("answers %+v", r.answers)
	}
	ans := sent.of(mailer.InquiryAnswered)
	if len(ans) != 1 || noticeData[mailer.InquiryAnsweredData](ans[0].Data).Answer == "" {
		t.Fatalf("answer notice %+v", ans)
	}
	if got := strings.Join(r.statuses, ","); got != "in_progress" {
		t.Fatalf("row statuses %s", got)
	}
}

func TestInquiryStopProvisionNeedsADecision(t *testing.T) {
	env, _ := newEnv(t)
	r := &inqRecorder{}
	inqMocks(env, r)
	var noDecision, badDecision error
	pdUpdate(env, time.Hour, AnswerUpdate, InquiryAnswer{Answer: "承りました。", Reviewer: "erin"}, &noDecision)
	pdUpdate(env, 2*time.Hour, AnswerUpdate, InquiryAnswer{Answer: "承りました。", Reviewer: "erin", Decision: "maybe"}, &badDecision)
	pdUpdate(env, 3*time.Hour, AnswerUpdate, InquiryAnswer{Answer: "第三者提供を停止しました。", Reviewer: "erin", Decision: "stop"}, nil)
	runInquiry(env, inqInput(activities.InquiryKindStopProvision, "hanako@example.jp"))
	res := inqResult(t, env)
	if res.Decision != "stop" {
		t.Fatalf("result %+v", res)
	}
	if noDecision == nil || badDecision == nil {
		t.Fatalf("answers without a valid decision accepted: %v %v", noDecision, badDecision)
	}
	if len(r.recorded) != 1 || r.recorded[0].Kind != activities.InquiryKindStopProvision {
		t.Fatalf("recorded %+v", r.recorded)
	}
	if len(r.answers) != 1 || r.answers[0].Decision != "stop" {
		t.Fatalf("answers %+v", r.answers)
	}
}

func TestInquiryAnswerValidator(t *testing.T) {
	env, _ := newEnv(t)
	r := &inqRecorder{}
	inqMocks(env, r)
	var empty, noReviewer, decisionOnComplaint, second error
	pdUpdate(env, time.Hour, AnswerUpdate, InquiryAnswer{Answer: "  ", Reviewer: "erin"}, &empty)
	pdUpdate(env, 2*time.Hour, AnswerUpdate, InquiryAnswer{Answer: "ご指摘ありがとうございます。"}, &noReviewer)
	pdUpdate(env, 3*time.Hour, AnswerUpdate, InquiryAnswer{Answer: "ご指摘ありがとうございます。", Reviewer: "erin", Decision: "stop"}, &decisionOnComplaint)
	pdUpdate(env, 4*time.Hour, AnswerUpdate, InquiryAnswer{Answer: "ご指摘ありがとうございます。", Reviewer: "erin"}, nil)
	pdUpdate(env, 4*time.Hour, AnswerUpdate, InquiryAnswer{Answer: "again", Reviewer: "erin"}, &second)
	runInquiry(env, inqInput(activities.InquiryKindComplaint, "hanako@example.jp"))
	inqResult(t, env)
	for name, err := range map[string]error{"empty": empty, "no reviewer": noReviewer, "decision on a complaint": decisionOnComplaint, "second answer": second} {
		if err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if len(r.answers) != 1 {
		t.Fatalf("%d answers recorded", len(r.answers))
	}
}

func TestInquiryReminderAtThreeDaysEscalationAtFive(t *testing.T) {
	env, sent := newEnv(t)
	r := &inqRecorder{}
	inqMocks(env, r)
	start := env.Now()
	pdUpdate(env, 6*24*time.Hour, AnswerUpdate, InquiryAnswer{Answer: "回答いたします。", Reviewer: "erin"}, nil)
	runInquiry(env, inqInput(activities.InquiryKindComplaint, "hanako@example.jp"))
	inqResult(t, env)
	rem, esc := sent.of(mailer.StaffReminder), sent.of(mailer.StaffEscalation)
	if len(rem) != 1 || len(esc) != 1 {
		t.Fatalf("reminders %d escalations %d", len(rem), len(esc))
	}
	if rem[0].At.Sub(start) != 3*24*time.Hour || esc[0].At.Sub(start) != 5*24*time.Hour {
		t.Fatalf("reminder at %s, escalation at %s", rem[0].At.Sub(start), esc[0].At.Sub(start))
	}
	if d := noticeData[mailer.StaffCaseData](esc[0].Data); d.CaseType != "inquiry" || d.CaseID != "inq_1" {
		t.Fatalf("staff data %+v", d)
	}
}

func TestInquiryWithoutEmailContactSendsNothingToTheRequester(t *testing.T) {
	env, sent := newEnv(t)
	r := &inqRecorder{}
	inqMocks(env, r)
	pdUpdate(env, time.Hour, AnswerUpdate, InquiryAnswer{Answer: "お電話で回答済み。", Reviewer: "erin"}, nil)
	runInquiry(env, inqInput(activities.InquiryKindInquiry, "03-1234-5678（平日）"))
	if res := inqResult(t, env); res.Status != InqAnswered {
		t.Fatalf("result %+v", res)
	}
	for _, n := range sent.list {
		if !n.To.Staff {
			t.Fatalf("notice %s sent to a contact that is not an email address", n.Notice)
		}
	}
	if len(r.answers) != 1 {
		t.Fatal("the answer is recorded all the same")
	}
}

func TestInquiryInputChecked(t *testing.T) {
	for name, in := range map[string]InquiryInput{
		"unknown kind": {InquiryID: "inq_2", Kind: "praise", Contact: "a@example.jp", Body: "x"},
		"no contact":   {InquiryID: "inq_2", Kind: "inquiry", Body: "x"},
		"no body":      {InquiryID: "inq_2", Kind: "inquiry", Contact: "a@example.jp"},
	} {
		t.Run(name, func(t *testing.T) {
			env, _ := newEnv(t)
			env.ExecuteWorkflow(Inquiry, in)
			if err := env.GetWorkflowError(); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}
