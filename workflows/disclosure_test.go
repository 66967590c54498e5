package workflows

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"certdesk/activities"
	"certdesk/internal/mailer"
)

// discRecorder records what a disclosure did through its activities.
type discRecorder struct {
	mu        sync.Mutex
	requests  []activities.DisclosureRequestInput
	states    []activities.DisclosureStateInput
	pauses    []activities.DisclosurePauseInput
	resumes   []activities.DisclosurePauseInput
	compiled  []activities.CompileDisclosureInput
	signed    []activities.SignDisclosureInput
	links     []activities.SendLinkInput
	nothing   []activities.DeliverNothingInput
	delivered []activities.DisclosureDeliveryInput
	verInputs []VerificationInput
	verIDs    []string
}

func (r *discRecorder) rowStates() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, s := range r.states {
		out = append(out, s.State)
	}
	return out
}

// discCase configures the mocks of one disclosure test.
type discCase struct {
	verified    bool
	verifyAfter time.Duration // how long identity verification takes
	nothingHeld bool
	// noApprove: no staff approve the compiled package (by default
	// "alice" approves it half an hour after the verification ends).
	noApprove bool
}

func discInput(delivery string) DisclosureInput {
	in := DisclosureInput{RequestID: "dr_1", Name: "山田 太郎", Email: "taro@example.jp", Delivery: delivery}
	if delivery == DeliveryPaper {
		in.PostalAddress = "東京都千代田区1-1"
	}
	return in
}

func discMocks(env *testsuite.TestWorkflowEnvironment, r *discRecorder, c discCase) {
	var a *activities.Activities
	var sa *activities.SigningActivities
	rec := func(f func()) { r.mu.Lock(); defer r.mu.Unlock(); f() }
	env.OnActivity(a.RecordDisclosureRequest, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.DisclosureRequestInput) error {
			rec(func() { r.requests = append(r.requests, in) })
			return nil
		}).Maybe()
	env.OnActivity(a.SetDisclosureState, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.DisclosureStateInput) error {
			rec(func() { r.states = append(r.states, in) })
			return nil
		}).Maybe()
	env.OnActivity(a.PauseDisclosure, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.DisclosurePauseInput) error {
			rec(func() { r.pauses = append(r.pauses, in) })
			return nil
		}).Maybe()
	env.OnActivity(a.ResumeDisclosure, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.DisclosurePauseInput) error {
			rec(func() { r.resumes = append(r.resumes, in) })
			return nil
		}).Maybe()
	env.OnActivity(a.CompileDisclosure, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.CompileDisclosureInput) (activities.CompileDisclosureResult, error) {
			rec(func() { r.compiled = append(r.compiled, in) })
			if c.nothingHeld {
				return activities.CompileDisclosureResult{SHA256: strings.Repeat("0", 64), NothingHeld: true, Counts: map[string]int{}}, nil
			}
			return activities.CompileDisclosureResult{SHA256: strings.Repeat("a", 64),
				Counts:     map[string]int{activities.ItemSubscribers: 2, activities.ItemCertificates: 2, activities.ItemProvisions: 3},
				DataItems:  []string{activities.ItemCertificates, activities.ItemSubscribers, activities.ItemProvisions},
				PersonRefs: []string{"sub_a1", "sub_a2"}}, nil
		}).Maybe()
	env.OnActivity(sa.SignDisclosurePackage, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.SignDisclosureInput) (activities.SignDisclosureResult, error) {
			rec(func() { r.signed = append(r.signed, in) })
			return activities.SignDisclosureResult{PackageID: in.PackageID, SHA256: in.SHA256}, nil
		}).Maybe()
	env.OnActivity(a.SendDisclosureLink, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.SendLinkInput) (activities.NotifyResult, error) {
			rec(func() { r.links = append(r.links, in) })
			return activities.NotifyResult{MessageID: "<ready@test>"}, nil
		}).Maybe()
	env.OnActivity(a.DeliverDisclosureNothing, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.DeliverNothingInput) (activities.NotifyResult, error) {
			rec(func() { r.nothing = append(r.nothing, in) })
			return activities.NotifyResult{}, nil
		}).Maybe()
	env.OnActivity(a.RecordDisclosureDelivery, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.DisclosureDeliveryInput) error {
			rec(func() { r.delivered = append(r.delivered, in) })
			return nil
		}).Maybe()
	env.OnWorkflow(Verification, mock.Anything, mock.Anything).After(c.verifyAfter).Return(
		func(ctx workflow.Context, in VerificationInput) (VerificationResult, error) {
			rec(func() {
				r.verInputs = append(r.verInputs, in)
				r.verIDs = append(r.verIDs, workflow.GetInfo(ctx).WorkflowExecution.ID)
			})
			if !c.verified {
				return VerificationResult{Verified: false, Reason: "the one-time code expired"}, nil
			}
			return VerificationResult{Verified: true, Evidence: "運転免許証", Reviewer: "bob"}, nil
		}).Maybe()
	if !c.noApprove {
		// Rejected (not waiting) for paper deliveries and refused cases.
		pdUpdate(env, c.verifyAfter+30*time.Minute, ApproveDisclosureUpdate, PackageDecision{Reviewer: "alice", Decision: "approve"}, nil)
	}
}

func runDisclosure(env *testsuite.TestWorkflowEnvironment, in DisclosureInput) {
	env.SetStartWorkflowOptions(client.StartWorkflowOptions{ID: DisclosureWorkflowID(in.RequestID)})
	env.ExecuteWorkflow(Disclosure, in)
}

func discResult(t *testing.T, env *testsuite.TestWorkflowEnvironment) DisclosureResult {
	t.Helper()
	if !env.IsWorkflowCompleted() {
		t.Fatal("workflow did not complete")
	}
	if err := env.GetWorkflowError(); err != nil {
		t.Fatalf("workflow error: %v", err)
	}
	var r DisclosureResult
	if err := env.GetWorkflowResult(&r); err != nil {
		t.Fatal(err)
	}
	return r
}

func discState(t *testing.T, env *testsuite.TestWorkflowEnvironment) DisclosureState {
	t.Helper()
	v, err := env.QueryWorkflow(StatusQuery)
	if err != nil {
		t.Fatal(err)
	}
	var s DisclosureState
	if err := v.Get(&s); err != nil {
		t.Fatal(err)
	}
	return s
}

// discQueryAt records the status query's answer at a time.
func discQueryAt(env *testsuite.TestWorkflowEnvironment, at time.Duration, out *DisclosureState) {
	env.RegisterDelayedCallback(func() {
		if v, err := env.QueryWorkflow(StatusQuery); err == nil {
			_ = v.Get(out)
		}
	}, at)
}

func TestDisclosureElectronicDeliveredByLink(t *testing.T) {
	env, sent := newEnv(t)
	r := &discRecorder{}
	discMocks(env, r, discCase{verified: true, verifyAfter: time.Hour})
	start := env.Now()
	var during DisclosureState
	discQueryAt(env, 30*time.Minute, &during)
	runDisclosure(env, discInput(""))
	res := discResult(t, env)
	if res.Status != DiscDelivered || res.NothingHeld || res.PackageID != "dp_dr_1" {
		t.Fatalf("result %+v", res)
	}
	// Recorded with the 7-day due time; electronic by default.
	if len(r.requests) != 1 || r.requests[0].Delivery != DeliveryElectronic || !r.requests[0].DueAt.Equal(start.Add(7*24*time.Hour)) {
		t.Fatalf("request %+v", r.requests)
	}
	// Identity verification: purpose disclosure, the address given, no subject.
	if len(r.verInputs) != 1 || r.verIDs[0] != VerificationWorkflowID("ver-disclosure-dr_1") {
		t.Fatalf("verification %+v %v", r.verInputs, r.verIDs)
	}
	if v := r.verInputs[0]; v.Purpose != "disclosure" || v.Email != "taro@example.jp" || v.SubjectRef != "" || v.CaseRef != "dr_1" {
		t.Fatalf("verification input %+v", v)
	}
	// Nothing went to the requester from the disclosure before identity was
	// verified, and nothing about data held showed in the status.
	for _, n := range sent.list {
		if !n.To.Staff && n.At.Before(start.Add(time.Hour)) {
			t.Fatalf("notice %s to the requester before verification", n.Notice)
		}
	}
	if during.Status != DiscVerifyingIdentity || during.Counts != nil || during.NothingHeld {
		t.Fatalf("state during verification %+v", during)
	}
	// Compiled excluding this request's own emails, signed on the digest.
	if len(r.compiled) != 1 || len(r.compiled[0].ExcludeKeyPrefixes) != 2 ||
		r.compiled[0].ExcludeKeyPrefixes[0] != "disclosure/dr_1|" || r.compiled[0].ExcludeKeyPrefixes[1] != "verification/ver-disclosure-dr_1|" {
		t.Fatalf("compile %+v", r.compiled)
	}
	if len(r.signed) != 1 || r.signed[0].SHA256 != strings.Repeat("a", 64) || r.signed[0].PackageID != "dp_dr_1" {
		t.Fatalf("sign %+v", r.signed)
	}
	// Link: 7 days, 3 downloads, made and emailed inside SendDisclosureLink
	// (the token never passes through the workflow): no disclosure_ready
	// from the workflow itself.
	if len(r.links) != 1 || r.links[0].Downloads != 3 || r.links[0].ExpiresAt.Sub(start.Add(90*time.Minute)) != 7*24*time.Hour ||
		r.links[0].Attempt != 1 || r.links[0].IdempotencyKey != "disclosure/dr_1|disclosure_ready" {
		t.Fatalf("link %+v", r.links)
	}
	if ready := sent.of(mailer.DisclosureReady); len(ready) != 0 {
		t.Fatalf("the workflow emailed the link itself: %+v", ready)
	}
	// Provision ledger: both subscriber records, the items disclosed.
	if len(r.delivered) != 1 || strings.Join(r.delivered[0].PersonRefs, ",") != "sub_a1,sub_a2" ||
		len(r.delivered[0].DataItems) != 3 || r.delivered[0].StaffID != "" || r.delivered[0].Method != DeliveryElectronic {
		t.Fatalf("delivery %+v", r.delivered)
	}
	if got := strings.Join(r.rowStates(), ","); got != "verifying_identity,compiling,delivering" {
		t.Fatalf("row states %s", got)
	}
	if s := discState(t, env); s.Status != DiscDelivered || s.Counts[activities.ItemCertificates] != 2 || s.LinkExpiresAt.IsZero() {
		t.Fatalf("final state %+v", s)
	}
	// One staff notice: check the package (no reminder, no escalation).
	if rem := sent.of(mailer.StaffReminder); len(rem) != 1 || rem[0].Key != "disclosure/dr_1|staff_reminder|package-check" ||
		len(sent.of(mailer.StaffEscalation)) != 0 {
		t.Fatalf("staff notices %+v for a disclosure answered in 90 minutes", rem)
	}
	if len(staffDecisions) != 1 || staffDecisions[0].Reviewer != "alice" || staffDecisions[0].Update != ApproveDisclosureUpdate ||
		staffDecisions[0].Decision != "approve" || staffDecisions[0].Subject != "disclosure/dr_1" {
		t.Fatalf("audited decisions %+v", staffDecisions)
	}
}

func TestDisclosureNothingHeldGetsSignedNoDataAnswer(t *testing.T) {
	env, sent := newEnv(t)
	r := &discRecorder{}
	discMocks(env, r, discCase{verified: true, verifyAfter: time.Hour, nothingHeld: true})
	runDisclosure(env, discInput(DeliveryElectronic))
	res := discResult(t, env)
	if res.Status != DiscDelivered || !res.NothingHeld {
		t.Fatalf("result %+v", res)
	}
	if len(r.signed) != 1 {
		t.Fatal("the no-data answer must be signed too")
	}
	if len(r.nothing) != 1 || r.nothing[0].IdempotencyKey != "disclosure/dr_1|disclosure_nothing_held" {
		t.Fatalf("nothing-held delivery %+v", r.nothing)
	}
	if len(r.links) != 0 || len(sent.of(mailer.DisclosureReady)) != 0 {
		t.Fatal("no download link when nothing is held")
	}
	if len(r.delivered) != 1 || len(r.delivered[0].PersonRefs) != 0 || r.delivered[0].Reason != "nothing held" {
		t.Fatalf("delivery %+v", r.delivered)
	}
}

func TestDisclosureRefusalOnEachGround(t *testing.T) {
	for ground := 1; ground <= 3; ground++ {
		t.Run(fmt.Sprint("ground", ground), func(t *testing.T) {
			env, sent := newEnv(t)
			r := &discRecorder{}
			discMocks(env, r, discCase{verified: true, verifyAfter: 3 * 24 * time.Hour})
			pdUpdate(env, 24*time.Hour, RefuseUpdate, DisclosureRefusal{Ground: ground, Reviewer: "carol", Explanation: "第三者の権利利益を害するおそれ"}, nil)
			runDisclosure(env, discInput(""))
			res := discResult(t, env)
			if res.Status != DiscRefused || !strings.Contains(res.Reason, fmt.Sprintf("Art. 33(2) item %d", ground)) {
				t.Fatalf("result %+v", res)
			}
			ref := sent.of(mailer.DisclosureRefused)
			if len(ref) != 1 || ref[0].To.Email != "taro@example.jp" {
				t.Fatalf("disclosure_refused %+v", ref)
			}
			if d := noticeData[mailer.DisclosureRefusedData](ref[0].Data); int(d.Ground) != ground || d.Explanation == "" || d.RequestID != "dr_1" {
				t.Fatalf("refusal data %+v", d)
			}
			if len(r.compiled) != 0 || len(r.delivered) != 0 || len(r.links) != 0 {
				t.Fatal("a refused request is not compiled or delivered")
			}
			last := r.states[len(r.states)-1]
			if last.State != "closed" || last.Actor != "staff:carol" || !strings.Contains(last.Reason, "33(2)") {
				t.Fatalf("row %+v", last)
			}
			if s := discState(t, env); s.Refusal == nil || s.Refusal.Ground != ground {
				t.Fatalf("state %+v", s)
			}
		})
	}
}

func TestDisclosureRefuseValidator(t *testing.T) {
	env, _ := newEnv(t)
	r := &discRecorder{}
	discMocks(env, r, discCase{verified: true, verifyAfter: 2 * time.Hour})
	var zero, four, noReviewer, afterPaperSent error
	pdUpdate(env, 10*time.Minute, RefuseUpdate, DisclosureRefusal{Ground: 0, Reviewer: "carol"}, &zero)
	pdUpdate(env, 20*time.Minute, RefuseUpdate, DisclosureRefusal{Ground: 4, Reviewer: "carol"}, &four)
	pdUpdate(env, 30*time.Minute, RefuseUpdate, DisclosureRefusal{Ground: 1}, &noReviewer)
	// Paper-sent and a refusal in the same instant: the package is in the
	// post, the refusal comes too late.
	pdUpdate(env, 12*time.Hour, PaperSentUpdate, PaperSent{Reviewer: "dave", Reference: "RR123456789JP"}, nil)
	// Both handlers check their reviewer first (they yield), so the
	// validator may admit the refusal; its handler then finds the package
	// in the post and fails.
	env.RegisterDelayedCallback(func() {
		env.UpdateWorkflow(RefuseUpdate, "refuse-after-paper", &testsuite.TestUpdateCallback{
			OnReject:   func(err error) { afterPaperSent = err },
			OnAccept:   func() {},
			OnComplete: func(_ any, err error) { afterPaperSent = err },
		}, DisclosureRefusal{Ground: 1, Reviewer: "carol"})
	}, 12*time.Hour)
	runDisclosure(env, discInput(DeliveryPaper))
	if res := discResult(t, env); res.Status != DiscDelivered {
		t.Fatalf("result %+v", res)
	}
	for name, err := range map[string]error{"ground 0": zero, "ground 4": four, "no reviewer": noReviewer, "after paper sent": afterPaperSent} {
		if err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if zero != nil && !strings.Contains(zero.Error(), "33(2)") {
		t.Errorf("the refusal should name APPI Art. 33(2): %v", zero)
	}
}

// discClock is the O6 clock's staff notices of a kind (not those of the
// package check).
func discClock(sent *notices, kind mailer.Notice) []sentNotice {
	var out []sentNotice
	for _, n := range sent.of(kind) {
		if strings.Contains(n.Key, "|disclosure-") {
			out = append(out, n)
		}
	}
	return out
}

func TestDisclosureClockRemindsAtDay5EscalatesAt7AlertsAt14(t *testing.T) {
	env, sent := newEnv(t)
	r := &discRecorder{}
	discMocks(env, r, discCase{verified: true, verifyAfter: 15 * 24 * time.Hour})
	start := env.Now()
	runDisclosure(env, discInput(""))
	if res := discResult(t, env); res.Status != DiscDelivered {
		t.Fatalf("result %+v", res)
	}
	rem, esc := discClock(sent, mailer.StaffReminder), discClock(sent, mailer.StaffEscalation)
	if len(rem) != 1 || len(esc) != 2 {
		t.Fatalf("reminders %d escalations %d, want 1 and 2", len(rem), len(esc))
	}
	want := []struct {
		n   sentNotice
		at  time.Duration
		key string
	}{
		{rem[0], 5 * 24 * time.Hour, "disclosure/dr_1|staff_reminder|disclosure-reminder-1"},
		{esc[0], 7 * 24 * time.Hour, "disclosure/dr_1|staff_escalation|disclosure-escalation"},
		{esc[1], 14 * 24 * time.Hour, "disclosure/dr_1|staff_escalation|disclosure-alert-1"},
	}
	for _, w := range want {
		if d := w.n.At.Sub(start); d != w.at || w.n.Key != w.key || !w.n.To.Staff {
			t.Errorf("%s at %s (want %s) to %+v", w.n.Key, d, w.at, w.n.To)
		}
		data := noticeData[mailer.StaffCaseData](w.n.Data)
		if data.CaseType != "disclosure" || data.CaseID != "dr_1" || !data.DueAt.Equal(start.Add(7*24*time.Hour)) {
			t.Errorf("staff data %+v", data)
		}
	}
}

func TestDisclosurePauseForDocumentsStopsTheClock(t *testing.T) {
	env, sent := newEnv(t)
	r := &discRecorder{}
	discMocks(env, r, discCase{verified: true, verifyAfter: 20 * 24 * time.Hour})
	start := env.Now()
	var paused, resumed DisclosureState
	var secondPause, withAddress, earlyResume error
	pdUpdate(env, 1*24*time.Hour, DocumentsReceivedUpdate, DocumentsReceived{Reviewer: "bob"}, &earlyResume)
	pdUpdate(env, 2*24*time.Hour-time.Minute, RequestDocumentsUpdate, DocumentsRequest{Reviewer: "bob", Reason: "mail taro@example.jp"}, &withAddress)
	pdUpdate(env, 2*24*time.Hour, RequestDocumentsUpdate, DocumentsRequest{Reviewer: "bob", Reason: "本人確認書類（運転免許証の写し）の提出を依頼"}, nil)
	pdUpdate(env, 2*24*time.Hour+time.Minute, RequestDocumentsUpdate, DocumentsRequest{Reviewer: "bob", Reason: "again"}, &secondPause)
	discQueryAt(env, 3*24*time.Hour, &paused)
	pdUpdate(env, 6*24*time.Hour, DocumentsReceivedUpdate, DocumentsReceived{Reviewer: "bob", Note: "received by post"}, nil)
	discQueryAt(env, 6*24*time.Hour+time.Minute, &resumed)
	runDisclosure(env, discInput(""))
	if res := discResult(t, env); res.Status != DiscDelivered {
		t.Fatalf("result %+v", res)
	}
	for name, err := range map[string]error{"resume while not paused": earlyResume, "reason with an address": withAddress, "second pause": secondPause} {
		if err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if paused.Status != DiscWaitingForRequester || !paused.Paused || len(paused.Pauses) != 1 {
		t.Fatalf("state while paused %+v", paused)
	}
	if resumed.Status != DiscVerifyingIdentity || resumed.Paused || resumed.PausedTotal != 4*24*time.Hour ||
		!resumed.DueAt.Equal(start.Add(11*24*time.Hour)) {
		t.Fatalf("state after resuming %+v", resumed)
	}
	if len(r.pauses) != 1 || !strings.Contains(r.pauses[0].Reason, "運転免許証") || !r.pauses[0].At.Equal(start.Add(2*24*time.Hour)) {
		t.Fatalf("pause records %+v", r.pauses)
	}
	if len(r.resumes) != 1 || !r.resumes[0].DueAt.Equal(start.Add(11*24*time.Hour)) || r.resumes[0].PausedFor != 4*24*time.Hour {
		t.Fatalf("resume records %+v", r.resumes)
	}
	docs := sent.of(mailer.DisclosureDocuments)
	if len(docs) != 1 || docs[0].To.Email == "" || !strings.Contains(docs[0].Data.(*mailer.DisclosureDocumentsData).Reason, "運転免許証") {
		t.Fatalf("documents notices %+v", docs)
	}
	// Paused 4 days: reminder at day 9, escalation at day 11, alert at day 18.
	rem, esc := discClock(sent, mailer.StaffReminder), discClock(sent, mailer.StaffEscalation)
	if len(rem) != 1 || len(esc) != 2 {
		t.Fatalf("reminders %d escalations %d", len(rem), len(esc))
	}
	for _, w := range []struct {
		n  sentNotice
		at time.Duration
	}{{rem[0], 9 * 24 * time.Hour}, {esc[0], 11 * 24 * time.Hour}, {esc[1], 18 * 24 * time.Hour}} {
		if d := w.n.At.Sub(start); d != w.at {
			t.Errorf("%s at day %.2f, want %.0f", w.n.Key, d.Hours()/24, w.at.Hours()/24)
		}
	}
	if data := noticeData[mailer.StaffCaseData](esc[0].Data); !data.DueAt.Equal(start.Add(11 * 24 * time.Hour)) {
		t.Errorf("escalation due %s", data.DueAt)
	}
}

func TestDisclosureDocumentsReceivedSignalResumes(t *testing.T) {
	env, sent := newEnv(t)
	r := &discRecorder{}
	discMocks(env, r, discCase{verified: true, verifyAfter: 10 * 24 * time.Hour})
	start := env.Now()
	pdUpdate(env, 1*24*time.Hour, RequestDocumentsUpdate, DocumentsRequest{Reviewer: "bob", Reason: "本人確認書類の提出を依頼"}, nil)
	env.RegisterDelayedCallback(func() {
		env.SignalWorkflow(DocumentsReceivedSignal, DocumentsReceived{Reviewer: "upload"})
	}, 3*24*time.Hour)
	runDisclosure(env, discInput(""))
	if res := discResult(t, env); res.Status != DiscDelivered {
		t.Fatalf("result %+v", res)
	}
	if len(r.resumes) != 1 || r.resumes[0].PausedFor != 2*24*time.Hour {
		t.Fatalf("resume %+v", r.resumes)
	}
	rem := discClock(sent, mailer.StaffReminder)
	if len(rem) != 1 || rem[0].At.Sub(start) != 7*24*time.Hour {
		t.Fatalf("reminder %+v (want day 5 + 2 days paused)", rem)
	}
}

func TestDisclosureVerificationEndingWhilePausedResumes(t *testing.T) {
	env, _ := newEnv(t)
	r := &discRecorder{}
	discMocks(env, r, discCase{verified: true, verifyAfter: 4 * 24 * time.Hour})
	pdUpdate(env, 1*24*time.Hour, RequestDocumentsUpdate, DocumentsRequest{Reviewer: "bob", Reason: "本人確認書類の提出を依頼"}, nil)
	runDisclosure(env, discInput(""))
	if res := discResult(t, env); res.Status != DiscDelivered {
		t.Fatalf("result %+v", res)
	}
	if len(r.pauses) != 1 || len(r.resumes) != 1 || r.resumes[0].Reviewer != "system" {
		t.Fatalf("pauses %+v resumes %+v", r.pauses, r.resumes)
	}
}

func TestDisclosurePaperDeliveryIsAStaffTask(t *testing.T) {
	env, sent := newEnv(t)
	r := &discRecorder{}
	discMocks(env, r, discCase{verified: true, verifyAfter: time.Hour})
	var waiting DisclosureState
	var noReviewer, early, notStaff error
	pdUpdate(env, 30*time.Minute, PaperSentUpdate, PaperSent{Reviewer: "dave"}, &early)
	discQueryAt(env, 2*time.Hour, &waiting)
	pdUpdate(env, 2*24*time.Hour, PaperSentUpdate, PaperSent{Reference: "RR123456789JP"}, &noReviewer)
	// A reviewer who is not active staff: the handler's check refuses it.
	env.RegisterDelayedCallback(func() {
		env.UpdateWorkflow(PaperSentUpdate, "paper-by-nobody", &testsuite.TestUpdateCallback{
			OnReject: func(err error) { notStaff = err }, OnAccept: func() {},
			OnComplete: func(_ any, err error) { notStaff = err },
		}, PaperSent{Reviewer: "nobody", Reference: "RR123456789JP"})
	}, 2*24*time.Hour+time.Hour)
	pdUpdate(env, 3*24*time.Hour, PaperSentUpdate, PaperSent{Reviewer: "dave", Reference: "RR123456789JP"}, nil)
	runDisclosure(env, discInput(DeliveryPaper))
	res := discResult(t, env)
	if res.Status != DiscDelivered {
		t.Fatalf("result %+v", res)
	}
	if early == nil || noReviewer == nil || notStaff == nil {
		t.Fatalf("paper-sent before the package / without reviewer / by a non-staff reviewer accepted: %v %v %v", early, noReviewer, notStaff)
	}
	// The mailing is audited under the staff member who did it.
	if len(staffDecisions) != 1 || staffDecisions[0].Reviewer != "dave" || staffDecisions[0].Update != PaperSentUpdate {
		t.Fatalf("audited decisions %+v", staffDecisions)
	}
	if waiting.Status != DiscAwaitingPaper {
		t.Fatalf("state before mailing %+v", waiting)
	}
	task := sent.of(mailer.StaffReminder)
	if len(task) != 1 || !task[0].To.Staff || !strings.HasSuffix(task[0].Key, "paper-task") {
		t.Fatalf("staff task %+v", task)
	}
	if len(r.links) != 0 || len(sent.of(mailer.DisclosureReady)) != 0 {
		t.Fatal("paper delivery sends no link")
	}
	if len(r.delivered) != 1 || r.delivered[0].StaffID != "dave" || r.delivered[0].Method != DeliveryPaper {
		t.Fatalf("delivery %+v", r.delivered)
	}
	if s := discState(t, env); s.PaperSent == nil || s.PaperSent.Reference != "RR123456789JP" {
		t.Fatalf("state %+v", s)
	}
}

func TestDisclosureRefusedWhileAwaitingPaper(t *testing.T) {
	env, sent := newEnv(t)
	r := &discRecorder{}
	discMocks(env, r, discCase{verified: true, verifyAfter: time.Hour})
	pdUpdate(env, 24*time.Hour, RefuseUpdate, DisclosureRefusal{Ground: 2, Reviewer: "carol"}, nil)
	runDisclosure(env, discInput(DeliveryPaper))
	if res := discResult(t, env); res.Status != DiscRefused {
		t.Fatalf("result %+v", res)
	}
	if len(r.delivered) != 0 || len(sent.of(mailer.DisclosureRefused)) != 1 {
		t.Fatal("refused before mailing: no delivery, one refusal notice")
	}
}

func TestDisclosureIdentityNotVerifiedIsClosed(t *testing.T) {
	env, sent := newEnv(t)
	r := &discRecorder{}
	discMocks(env, r, discCase{verified: false, verifyAfter: 10 * time.Minute})
	runDisclosure(env, discInput(""))
	res := discResult(t, env)
	if res.Status != DiscClosed || res.Reason != "identity not verified" {
		t.Fatalf("result %+v", res)
	}
	if len(r.compiled) != 0 || len(r.signed) != 0 {
		t.Fatal("nothing is compiled for an unverified requester")
	}
	// The requester hears only that the request was closed: nothing about
	// whether any data is held.
	for _, n := range sent.list {
		if !n.To.Staff && n.Notice != mailer.DisclosureClosed {
			t.Fatalf("notice %s to an unverified requester", n.Notice)
		}
	}
	if len(sent.of(mailer.DisclosureClosed)) != 1 {
		t.Fatal("the requester is told the request was closed")
	}
	if got := strings.Join(r.rowStates(), ","); got != "verifying_identity,closed" {
		t.Fatalf("row states %s", got)
	}
}

func TestDisclosureInputChecked(t *testing.T) {
	for name, in := range map[string]DisclosureInput{
		"no email":          {RequestID: "dr_2"},
		"unknown delivery":  {RequestID: "dr_2", Email: "a@example.jp", Delivery: "fax"},
		"paper, no address": {RequestID: "dr_2", Email: "a@example.jp", Delivery: DeliveryPaper},
	} {
		t.Run(name, func(t *testing.T) {
			env, _ := newEnv(t)
			env.ExecuteWorkflow(Disclosure, in)
			if err := env.GetWorkflowError(); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}

// discUpdate sends an Update at a time and keeps its outcome: the
// validator's rejection or the handler's error.
func discUpdate(env *testsuite.TestWorkflowEnvironment, after time.Duration, name string, arg any, out *error) {
	env.RegisterDelayedCallback(func() {
		env.UpdateWorkflow(name, fmt.Sprint(name, "-", after), &testsuite.TestUpdateCallback{
			OnReject:   func(err error) { *out = err },
			OnAccept:   func() {},
			OnComplete: func(_ any, err error) { *out = err },
		}, arg)
	}, after)
}

// TestDisclosureStaffCheckBeforeElectronicDelivery (issue 17): a compiled
// package is neither signed nor sent until an active staff member approves
// it; a decision by someone who is not active staff, or about another
// digest, is refused; a rejection keeps the case waiting (reminded and
// escalated) until a later approval; every accepted decision is audited
// with its reviewer.
func TestDisclosureStaffCheckBeforeElectronicDelivery(t *testing.T) {
	env, sent := newEnv(t)
	r := &discRecorder{}
	discMocks(env, r, discCase{verified: true, verifyAfter: time.Hour, noApprove: true})
	start := env.Now()
	digest := strings.Repeat("a", 64)
	var waiting, rejected DisclosureState
	var notStaff, otherDigest, noReason, rejectErr, approveErr error
	discQueryAt(env, 2*time.Hour, &waiting)
	discUpdate(env, 3*time.Hour, ApproveDisclosureUpdate, PackageDecision{Reviewer: "nobody", Decision: "approve"}, &notStaff)
	discUpdate(env, 4*time.Hour, ApproveDisclosureUpdate, PackageDecision{Reviewer: "alice", Decision: "approve", SHA256: strings.Repeat("b", 64)}, &otherDigest)
	discUpdate(env, 5*time.Hour, ApproveDisclosureUpdate, PackageDecision{Reviewer: "alice", Decision: "reject"}, &noReason)
	discUpdate(env, 6*time.Hour, ApproveDisclosureUpdate, PackageDecision{Reviewer: "alice", Decision: "reject", Reason: "a record of another person"}, &rejectErr)
	discQueryAt(env, 7*time.Hour, &rejected)
	discUpdate(env, 3*24*time.Hour, ApproveDisclosureUpdate, PackageDecision{Reviewer: "carol", Decision: "approve", SHA256: digest}, &approveErr)
	runDisclosure(env, discInput(""))
	if res := discResult(t, env); res.Status != DiscDelivered {
		t.Fatalf("result %+v", res)
	}
	if waiting.Status != DiscAwaitingApproval || waiting.PackageSHA256 != digest || waiting.PackageID != "" {
		t.Fatalf("state before the check %+v", waiting)
	}
	if rejected.Status != DiscPackageRejected || len(rejected.Decisions) != 1 {
		t.Fatalf("state after the rejection %+v", rejected)
	}
	for name, err := range map[string]error{"not active staff": notStaff, "other digest": otherDigest, "reject without reason": noReason} {
		if err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if rejectErr != nil || approveErr != nil {
		t.Fatalf("reject %v, approve %v", rejectErr, approveErr)
	}
	// Signed and sent only after the approval.
	if len(r.signed) != 1 || len(r.links) != 1 || r.links[0].ExpiresAt.Sub(start) != 10*24*time.Hour {
		t.Fatalf("signed %+v, links %+v", r.signed, r.links)
	}
	if len(staffDecisions) != 2 || staffDecisions[0].Decision != "reject" || staffDecisions[0].Reviewer != "alice" ||
		staffDecisions[1].Decision != "approve" || staffDecisions[1].Reviewer != "carol" || staffDecisions[1].Update != ApproveDisclosureUpdate {
		t.Fatalf("audited decisions %+v", staffDecisions)
	}
	// The check's notice, its reminder after a day and escalation after two.
	var keys []string
	for _, n := range append(sent.of(mailer.StaffReminder), sent.of(mailer.StaffEscalation)...) {
		if !strings.Contains(n.Key, "|disclosure-") {
			keys = append(keys, fmt.Sprintf("%s@%s", n.Key[strings.LastIndexByte(n.Key, '|')+1:], n.At.Sub(start)))
		}
	}
	if got := strings.Join(keys, ","); got != "package-check@1h0m0s,awaiting_approval-reminder-1@25h0m0s,awaiting_approval-escalation@49h0m0s" {
		t.Fatalf("staff notices %s", got)
	}
}

// A package waiting for the staff check can still be refused: nothing is
// signed or sent.
func TestDisclosureRefusedAtStaffCheck(t *testing.T) {
	env, _ := newEnv(t)
	r := &discRecorder{}
	discMocks(env, r, discCase{verified: true, verifyAfter: time.Hour, noApprove: true})
	pdUpdate(env, 2*time.Hour, RefuseUpdate, DisclosureRefusal{Ground: 1, Reviewer: "carol", Explanation: "第三者の権利利益を害するおそれ"}, nil)
	runDisclosure(env, discInput(""))
	if res := discResult(t, env); res.Status != DiscRefused {
		t.Fatalf("result %+v", res)
	}
	if len(r.compiled) != 1 || len(r.signed) != 0 || len(r.links) != 0 || len(r.delivered) != 0 {
		t.Fatalf("compiled %d signed %d links %d delivered %d", len(r.compiled), len(r.signed), len(r.links), len(r.delivered))
	}
}
