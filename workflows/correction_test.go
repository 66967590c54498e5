package workflows

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"certdesk/activities"
	"certdesk/internal/mailer"
	"certdesk/internal/product"
	"certdesk/internal/status"
)

// corrRecorder records what a correction did through its activities and
// children.
type corrRecorder struct {
	mu          sync.Mutex
	checked     int
	csrChecked  []activities.CheckCSRInput
	recorded    []activities.RecordCorrectionInput
	applied     []activities.ApplyCorrectionInput
	updates     []activities.CorrectionUpdate
	previous    int
	revocations []RevocationInput
	revIDs      []string
	apps        []ApplicationInput
	appIDs      []string
}

func (r *corrRecorder) statuses() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, u := range r.updates {
		if u.Status != "" {
			out = append(out, u.Status)
		}
	}
	return out
}

func corrInput(changes map[string]string) CorrectionInput {
	return CorrectionInput{CorrectionID: "cor_1", Serial: "1A2B", ResellerID: "rs_a", Changes: changes, Reason: "社名変更"}
}

func contactPlan() activities.CorrectionPlan {
	return activities.CorrectionPlan{
		Serial: "1a2b", Product: product.ServerOV, SubscriberID: "sub_app_1", ApplicationID: "app_1", Organization: "Example K.K.",
		Changes:        map[string]string{activities.FieldContactPhone: "+81-3-1111-2222", activities.FieldContactEmail: "new@example.jp"},
		ChangedFields:  []string{activities.FieldContactEmail, activities.FieldContactPhone},
		Classification: activities.CorrectionContact, EmailChanged: true,
	}
}

func printedPlan(prod string) activities.CorrectionPlan {
	p := activities.CorrectionPlan{
		Serial: "1a2b", Product: prod, SubscriberID: "sub_app_1", ApplicationID: "app_1", Organization: "Example K.K.",
		Changes:       map[string]string{activities.FieldOrganization: "New Example K.K.", activities.FieldContactPhone: "+81-3-1111-2222"},
		ChangedFields: []string{activities.FieldContactPhone, activities.FieldOrganization}, PrintedFields: []string{activities.FieldOrganization},
		Classification: activities.CorrectionPrinted, ReviewRequired: prod != product.ServerDV,
		Reissue: &activities.ReissueData{Product: prod, CSRPEM: "-----BEGIN CERTIFICATE REQUEST-----\nMIIB\n-----END CERTIFICATE REQUEST-----\n",
			Domains: []string{"www.example.jp"}, ValidityDays: 90, TermsVersion: "2026-01",
			Subscriber: activities.SubscriberData{Organization: "New Example K.K.", Name: "山田 太郎", Email: "taro@example.jp",
				Phone: "+81-3-1111-2222", Country: "JP", Locality: "Chiyoda-ku", Province: "Tokyo"}},
	}
	if prod == product.ServerDV {
		p.Changes = map[string]string{activities.FieldDomains: "www.example.jp,example.jp"}
		p.ChangedFields, p.PrintedFields = []string{activities.FieldDomains}, []string{activities.FieldDomains}
		p.Reissue.Domains = []string{"www.example.jp", "example.jp"}
	}
	return p
}

// corrCase configures the mocks of one correction test.
type corrCase struct {
	plan     activities.CorrectionPlan
	checkErr error // from CheckCorrection
	csrErr   error // from the pre-flight CheckCSR
	rev      RevocationResult
	app      ApplicationResult // the new application's outcome (default: still validating)
	// appNeverRecorded: linking the new application keeps failing.
	appNeverRecorded bool
	applyAfter       time.Duration // ApplyCorrection takes this long
}

// corrMocks installs the correction's activities and its children.
func corrMocks(env *testsuite.TestWorkflowEnvironment, r *corrRecorder, c corrCase) {
	plan, checkErr, rev := c.plan, c.checkErr, c.rev
	if c.app.Status == "" {
		c.app.Status = status.AppValidating
	}
	var a *activities.Activities
	env.OnActivity(a.CheckCorrection, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.CheckCorrectionInput) (activities.CorrectionPlan, error) {
			r.mu.Lock()
			defer r.mu.Unlock()
			r.checked++
			return plan, checkErr
		}).Maybe()
	env.OnActivity(a.CheckCSR, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.CheckCSRInput) (activities.CheckCSRResult, error) {
			r.mu.Lock()
			defer r.mu.Unlock()
			r.csrChecked = append(r.csrChecked, in)
			return activities.CheckCSRResult{SPKISHA256: "ab"}, c.csrErr
		}).Maybe()
	env.OnActivity(a.RecordCorrection, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.RecordCorrectionInput) error {
			r.mu.Lock()
			defer r.mu.Unlock()
			r.recorded = append(r.recorded, in)
			return nil
		}).Maybe()
	env.OnActivity(a.ApplyCorrection, mock.Anything, mock.Anything).After(c.applyAfter).Return(
		func(_ context.Context, in activities.ApplyCorrectionInput) error {
			r.mu.Lock()
			defer r.mu.Unlock()
			r.applied = append(r.applied, in)
			return nil
		}).Maybe()
	env.OnActivity(a.UpdateCorrection, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.CorrectionUpdate) error {
			if c.appNeverRecorded && in.NewApplicationID != "" {
				return errors.New("application " + in.NewApplicationID + " is not recorded yet")
			}
			r.mu.Lock()
			defer r.mu.Unlock()
			r.updates = append(r.updates, in)
			return nil
		}).Maybe()
	env.OnActivity(a.NotifyPreviousContact, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.PreviousContactInput) (activities.NotifyResult, error) {
			r.mu.Lock()
			defer r.mu.Unlock()
			r.previous++
			return activities.NotifyResult{}, nil
		}).Maybe()
	env.OnWorkflow(Revocation, mock.Anything, mock.Anything).Return(
		func(ctx workflow.Context, in RevocationInput) (RevocationResult, error) {
			r.mu.Lock()
			defer r.mu.Unlock()
			r.revocations = append(r.revocations, in)
			r.revIDs = append(r.revIDs, workflow.GetInfo(ctx).WorkflowExecution.ID)
			return rev, nil
		}).Maybe()
	env.OnWorkflow(Application, mock.Anything, mock.Anything).Return(
		func(ctx workflow.Context, in ApplicationInput) (ApplicationResult, error) {
			r.mu.Lock()
			defer r.mu.Unlock()
			r.apps = append(r.apps, in)
			r.appIDs = append(r.appIDs, workflow.GetInfo(ctx).WorkflowExecution.ID)
			return c.app, nil
		}).Maybe()
}

var pdUpdateSeq atomic.Int64

// pdUpdate sends an Update after a delay; a rejection lands in rejected.
func pdUpdate(env *testsuite.TestWorkflowEnvironment, after time.Duration, name string, arg any, rejected *error) {
	env.RegisterDelayedCallback(func() {
		env.UpdateWorkflow(name, fmt.Sprint(name, "-", after, "-", pdUpdateSeq.Add(1)), &testsuite.TestUpdateCallback{
			OnReject: func(err error) {
				if rejected != nil {
					*rejected = err
				}
			},
			OnAccept:   func() {},
			OnComplete: func(any, error) {},
		}, arg)
	}, after)
}

func corrResult(t *testing.T, env *testsuite.TestWorkflowEnvironment) CorrectionResult {
	t.Helper()
	if !env.IsWorkflowCompleted() {
		t.Fatal("workflow did not complete")
	}
	if err := env.GetWorkflowError(); err != nil {
		t.Fatalf("workflow error: %v", err)
	}
	var r CorrectionResult
	if err := env.GetWorkflowResult(&r); err != nil {
		t.Fatal(err)
	}
	return r
}

func corrState(t *testing.T, env *testsuite.TestWorkflowEnvironment) CorrectionState {
	t.Helper()
	v, err := env.QueryWorkflow(StatusQuery)
	if err != nil {
		t.Fatal(err)
	}
	var s CorrectionState
	if err := v.Get(&s); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestCorrectionContactFieldsApplied(t *testing.T) {
	env, sent := newEnv(t)
	r := &corrRecorder{}
	corrMocks(env, r, corrCase{plan: contactPlan()})
	env.SetStartWorkflowOptions(client.StartWorkflowOptions{ID: CorrectionWorkflowID("cor_1")})
	env.ExecuteWorkflow(Correction, corrInput(map[string]string{"phone": "+81-3-1111-2222", "email": "new@example.jp"}))
	res := corrResult(t, env)
	if res.Status != CorrApplied {
		t.Fatalf("result %+v", res)
	}
	if len(r.recorded) != 1 || r.recorded[0].Classification != activities.CorrectionContact || r.recorded[0].WorkflowID != CorrectionWorkflowID("cor_1") {
		t.Fatalf("recorded %+v", r.recorded)
	}
	if len(r.applied) != 1 || r.applied[0].SubscriberID != "sub_app_1" || len(r.applied[0].Changes) != 2 {
		t.Fatalf("applied %+v", r.applied)
	}
	if got := strings.Join(r.statuses(), ","); got != CorrApplied {
		t.Fatalf("statuses %s", got)
	}
	ca := sent.of(mailer.CorrectionApplied)
	if len(ca) != 1 || ca[0].To.SubscriberID != "sub_app_1" {
		t.Fatalf("correction_applied %+v", ca)
	}
	d := noticeData[mailer.CorrectionAppliedData](ca[0].Data)
	if strings.Join(d.ChangedFields, ",") != "contact_email,contact_phone" || d.Serial != "1a2b" || d.AppliedAt.IsZero() {
		t.Fatalf("notice data %+v", d)
	}
	if r.previous != 1 {
		t.Fatalf("previous contact told %d times, want once (the address changed)", r.previous)
	}
	if len(r.revocations) != 0 || len(r.apps) != 0 || len(r.csrChecked) != 0 {
		t.Fatal("a contact-only correction must not revoke or re-apply")
	}
	if s := corrState(t, env); s.Status != CorrApplied || s.Classification != activities.CorrectionContact {
		t.Fatalf("state %+v", s)
	}
}

func TestCorrectionByOtherResellerRefusedWithNothingWritten(t *testing.T) {
	for _, errType := range []string{activities.ErrTypeNotFound, activities.ErrTypeInvalid} {
		t.Run(errType, func(t *testing.T) {
			env, sent := newEnv(t)
			r := &corrRecorder{}
			corrMocks(env, r, corrCase{checkErr: activitiesError(errType, "certificate 1a2b not found")})
			env.SetStartWorkflowOptions(client.StartWorkflowOptions{ID: CorrectionWorkflowID("cor_1")})
			env.ExecuteWorkflow(Correction, corrInput(map[string]string{"organization": "Other K.K."}))
			res := corrResult(t, env)
			if res.Status != CorrRefused || !strings.Contains(res.Reason, "not found") {
				t.Fatalf("result %+v", res)
			}
			if r.checked != 1 || len(r.recorded) != 0 || len(r.applied) != 0 || len(r.updates) != 0 || len(r.revocations) != 0 {
				t.Fatalf("a refused correction wrote something: %+v", r)
			}
			if len(sent.list) != 0 {
				t.Fatalf("a refused correction sent %d notices", len(sent.list))
			}
		})
	}
}

func TestCorrectionPrintedFieldOnOVReviewedRevokedAndReapplied(t *testing.T) {
	env, sent := newEnv(t)
	r := &corrRecorder{}
	revokedAt := env.Now().Add(25 * time.Hour)
	corrMocks(env, r, corrCase{plan: printedPlan(product.ServerOV), rev: RevocationResult{Status: RevRevoked, RevokedAt: revokedAt}})
	var queried CorrectionState
	env.RegisterDelayedCallback(func() {
		v, _ := env.QueryWorkflow(StatusQuery)
		_ = v.Get(&queried)
	}, 12*time.Hour)
	pdUpdate(env, 24*time.Hour, ReviewUpdate, ReviewDecision{Decision: "approve", Reviewer: "alice"}, nil)
	env.SetStartWorkflowOptions(client.StartWorkflowOptions{ID: CorrectionWorkflowID("cor_1")})
	env.ExecuteWorkflow(Correction, corrInput(map[string]string{"organization": "New Example K.K.", "phone": "+81-3-1111-2222"}))
	res := corrResult(t, env)
	if res.Status != CorrCompleted || res.NewApplicationID != "cor_1-reissue" || !res.RevokedAt.Equal(revokedAt) {
		t.Fatalf("result %+v", res)
	}
	if queried.Status != CorrAwaitingReview || !queried.ReviewRequired || strings.Join(queried.PrintedFields, ",") != "organization_name" {
		t.Fatalf("state while waiting %+v", queried)
	}
	// Pre-flight CSR check with the corrected subject, before anything is written.
	if len(r.csrChecked) != 1 || r.csrChecked[0].Subject.Organization != "New Example K.K." {
		t.Fatalf("CSR check %+v", r.csrChecked)
	}
	// Revocation: superseded, by the managing reseller, as a child on revocation/<serial>.
	if len(r.revocations) != 1 || r.revIDs[0] != RevocationWorkflowID("1a2b") {
		t.Fatalf("revocations %+v %v", r.revocations, r.revIDs)
	}
	rv := r.revocations[0]
	if rv.Reason != "superseded" || rv.Requester != (Requester{Kind: RequesterReseller, ID: "rs_a"}) || rv.Serial != "1a2b" {
		t.Fatalf("revocation input %+v", rv)
	}
	// New application: prefilled with the corrected data and the old CSR.
	if len(r.apps) != 1 || r.appIDs[0] != ApplicationWorkflowID("cor_1-reissue") {
		t.Fatalf("applications %+v %v", r.apps, r.appIDs)
	}
	ap := r.apps[0]
	if ap.ApplicationID != "cor_1-reissue" || ap.ResellerID != "rs_a" || ap.Product != product.ServerOV ||
		ap.Subscriber.Organization != "New Example K.K." || ap.Subscriber.Locality != "Chiyoda-ku" ||
		!strings.Contains(ap.CSRPEM, "CERTIFICATE REQUEST") || !ap.Attestation.Truthful || ap.Attestation.TermsVersion != "2026-01" {
		t.Fatalf("application input %+v", ap)
	}
	// Both linked to the correction; statuses in order.
	var linkedRev, linkedApp bool
	for _, u := range r.updates {
		linkedRev = linkedRev || u.RevocationSerial == "1a2b"
		linkedApp = linkedApp || u.NewApplicationID == "cor_1-reissue"
	}
	if !linkedRev || !linkedApp {
		t.Fatalf("links %+v", r.updates)
	}
	if got := strings.Join(r.statuses(), ","); got != "received,reissuing,completed" {
		t.Fatalf("statuses %s", got)
	}
	// The contact part is applied to the old record after the notice.
	if len(r.applied) != 1 || len(r.applied[0].Changes) != 1 || r.applied[0].Changes[activities.FieldContactPhone] == "" {
		t.Fatalf("applied %+v", r.applied)
	}
	re := sent.of(mailer.CorrectionReissue)
	if len(re) != 2 || re[0].To.SubscriberID != "sub_app_1" || re[1].To.ResellerID != "rs_a" {
		t.Fatalf("correction_reissue %+v", re)
	}
	d := noticeData[mailer.CorrectionReissueData](re[0].Data)
	if d.OldSerial != "1a2b" || d.NewApplicationID != "cor_1-reissue" || !d.RevokedAt.Equal(revokedAt) {
		t.Fatalf("notice data %+v", d)
	}
	s := corrState(t, env)
	if s.RevocationWorkflowID != RevocationWorkflowID("1a2b") || s.NewApplicationWorkflowID != ApplicationWorkflowID("cor_1-reissue") || s.Review == nil {
		t.Fatalf("final state %+v", s)
	}
}

func TestCorrectionPrintedFieldOnDVSkipsReview(t *testing.T) {
	env, _ := newEnv(t)
	r := &corrRecorder{}
	corrMocks(env, r, corrCase{plan: printedPlan(product.ServerDV), rev: RevocationResult{Status: RevRevoked, RevokedAt: env.Now()}})
	env.SetStartWorkflowOptions(client.StartWorkflowOptions{ID: CorrectionWorkflowID("cor_1")})
	env.ExecuteWorkflow(Correction, corrInput(map[string]string{"domains": "www.example.jp,example.jp"}))
	res := corrResult(t, env)
	if res.Status != CorrCompleted {
		t.Fatalf("result %+v", res)
	}
	if got := strings.Join(r.statuses(), ","); got != "reissuing,completed" {
		t.Fatalf("statuses %s (DV goes without review)", got)
	}
	if len(r.apps) != 1 || strings.Join(r.apps[0].Domains, ",") != "www.example.jp,example.jp" {
		t.Fatalf("application %+v", r.apps)
	}
	if len(r.applied) != 0 {
		t.Fatalf("nothing but printed fields: nothing to apply to the old record, got %+v", r.applied)
	}
}

func TestCorrectionRejectedByReviewRevokesNothing(t *testing.T) {
	env, _ := newEnv(t)
	r := &corrRecorder{}
	corrMocks(env, r, corrCase{plan: printedPlan(product.ClientSign), rev: RevocationResult{Status: RevRevoked}})
	pdUpdate(env, time.Hour, ReviewUpdate, ReviewDecision{Decision: "reject", Reviewer: "alice", Reason: "登記事項証明書と一致しない"}, nil)
	env.SetStartWorkflowOptions(client.StartWorkflowOptions{ID: CorrectionWorkflowID("cor_1")})
	env.ExecuteWorkflow(Correction, corrInput(map[string]string{"organization": "New Example K.K."}))
	res := corrResult(t, env)
	if res.Status != CorrRejected || res.Reason != "登記事項証明書と一致しない" {
		t.Fatalf("result %+v", res)
	}
	if len(r.revocations) != 0 || len(r.apps) != 0 || len(r.applied) != 0 {
		t.Fatal("a rejected correction must change nothing")
	}
	if got := strings.Join(r.statuses(), ","); got != "received,rejected" {
		t.Fatalf("statuses %s", got)
	}
}

func TestCorrectionReviewValidator(t *testing.T) {
	env, _ := newEnv(t)
	r := &corrRecorder{}
	corrMocks(env, r, corrCase{plan: printedPlan(product.ServerOV), rev: RevocationResult{Status: RevRevoked, RevokedAt: env.Now()}})
	var noReviewer, noReason, badDecision error
	pdUpdate(env, time.Hour, ReviewUpdate, ReviewDecision{Decision: "approve"}, &noReviewer)
	pdUpdate(env, 2*time.Hour, ReviewUpdate, ReviewDecision{Decision: "reject", Reviewer: "alice"}, &noReason)
	pdUpdate(env, 3*time.Hour, ReviewUpdate, ReviewDecision{Decision: "maybe", Reviewer: "alice"}, &badDecision)
	pdUpdate(env, 4*time.Hour, ReviewUpdate, ReviewDecision{Decision: "approve", Reviewer: "alice"}, nil)
	env.SetStartWorkflowOptions(client.StartWorkflowOptions{ID: CorrectionWorkflowID("cor_1")})
	env.ExecuteWorkflow(Correction, corrInput(map[string]string{"organization": "New Example K.K."}))
	if res := corrResult(t, env); res.Status != CorrCompleted {
		t.Fatalf("result %+v", res)
	}
	for name, err := range map[string]error{"no reviewer": noReviewer, "no reason": noReason, "bad decision": badDecision} {
		if err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestCorrectionReviewRefusedOnContactCorrection(t *testing.T) {
	env, _ := newEnv(t)
	r := &corrRecorder{}
	corrMocks(env, r, corrCase{plan: contactPlan(), applyAfter: time.Hour})
	var rejected error
	pdUpdate(env, 30*time.Minute, ReviewUpdate, ReviewDecision{Decision: "approve", Reviewer: "alice"}, &rejected)
	env.SetStartWorkflowOptions(client.StartWorkflowOptions{ID: CorrectionWorkflowID("cor_1")})
	env.ExecuteWorkflow(Correction, corrInput(map[string]string{"phone": "+81-3-1111-2222"}))
	corrResult(t, env)
	if rejected == nil || !strings.Contains(rejected.Error(), "not awaiting review") {
		t.Fatalf("review of a contact correction: %v", rejected)
	}
}

func TestCorrectionReminderAtThreeDaysEscalationAtFive(t *testing.T) {
	env, sent := newEnv(t)
	r := &corrRecorder{}
	corrMocks(env, r, corrCase{plan: printedPlan(product.ServerOV), rev: RevocationResult{Status: RevRevoked, RevokedAt: env.Now()}})
	start := env.Now()
	pdUpdate(env, 6*24*time.Hour, ReviewUpdate, ReviewDecision{Decision: "approve", Reviewer: "alice"}, nil)
	env.SetStartWorkflowOptions(client.StartWorkflowOptions{ID: CorrectionWorkflowID("cor_1")})
	env.ExecuteWorkflow(Correction, corrInput(map[string]string{"organization": "New Example K.K."}))
	corrResult(t, env)
	rem, esc := sent.of(mailer.StaffReminder), sent.of(mailer.StaffEscalation)
	if len(rem) != 1 || len(esc) != 1 {
		t.Fatalf("reminders %d escalations %d", len(rem), len(esc))
	}
	if d := rem[0].At.Sub(start); d != 3*24*time.Hour {
		t.Fatalf("reminder after %s", d)
	}
	if d := esc[0].At.Sub(start); d != 5*24*time.Hour {
		t.Fatalf("escalation after %s", d)
	}
	if data := noticeData[mailer.StaffCaseData](esc[0].Data); data.CaseType != "correction" || data.CaseID != "cor_1" || !data.DueAt.Equal(start.Add(5*24*time.Hour)) {
		t.Fatalf("staff data %+v", data)
	}
}

func TestCorrectionRefusedWhenKeyCannotBeReused(t *testing.T) {
	env, _ := newEnv(t)
	r := &corrRecorder{}
	corrMocks(env, r, corrCase{plan: printedPlan(product.ServerDV), rev: RevocationResult{Status: RevRevoked},
		csrErr: activitiesError(activities.ErrTypeCSRRejected, "the key is blocked (BR 6.1.1.3)")})
	env.SetStartWorkflowOptions(client.StartWorkflowOptions{ID: CorrectionWorkflowID("cor_1")})
	env.ExecuteWorkflow(Correction, corrInput(map[string]string{"domains": "example.jp"}))
	res := corrResult(t, env)
	if res.Status != CorrRefused || !strings.Contains(res.Reason, "blocked") {
		t.Fatalf("result %+v", res)
	}
	if len(r.recorded) != 0 || len(r.revocations) != 0 {
		t.Fatal("nothing may be written or revoked when the new application would be refused")
	}
}

func TestCorrectionFailsWhenRevocationRefused(t *testing.T) {
	env, _ := newEnv(t)
	r := &corrRecorder{}
	corrMocks(env, r, corrCase{plan: printedPlan(product.ServerDV), rev: RevocationResult{Status: RevRefused, Refusal: "certificate 1a2b not found"}})
	env.SetStartWorkflowOptions(client.StartWorkflowOptions{ID: CorrectionWorkflowID("cor_1")})
	env.ExecuteWorkflow(Correction, corrInput(map[string]string{"domains": "example.jp"}))
	res := corrResult(t, env)
	if res.Status != CorrFailed || !strings.Contains(res.Reason, "revocation") {
		t.Fatalf("result %+v", res)
	}
	if len(r.apps) != 0 {
		t.Fatal("no new application without the revocation")
	}
	if st := r.statuses(); st[len(st)-1] != CorrFailed {
		t.Fatalf("statuses %v", st)
	}
}

func TestCorrectionFailsWhenNewApplicationNeverRecorded(t *testing.T) {
	env, _ := newEnv(t)
	r := &corrRecorder{}
	corrMocks(env, r, corrCase{plan: printedPlan(product.ServerDV), rev: RevocationResult{Status: RevRevoked, RevokedAt: env.Now()},
		appNeverRecorded: true, app: ApplicationResult{Status: status.AppRejected, Reason: "CSR refused"}})
	env.SetStartWorkflowOptions(client.StartWorkflowOptions{ID: CorrectionWorkflowID("cor_1")})
	env.ExecuteWorkflow(Correction, corrInput(map[string]string{"domains": "example.jp"}))
	res := corrResult(t, env)
	if res.Status != CorrFailed || !strings.Contains(res.Reason, "CSR refused") {
		t.Fatalf("result %+v", res)
	}
}

// activitiesError is a non-retryable activity error of errType, as the
// activities return for refusals.
func activitiesError(errType, msg string) error {
	return temporal.NewNonRetryableApplicationError(msg, errType, nil)
}

// noticeData returns a recorded notice's data, which arrives by value or,
// decoded from a payload, by pointer.
func noticeData[T any](d any) T {
	if p, ok := d.(*T); ok {
		return *p
	}
	return d.(T)
}
