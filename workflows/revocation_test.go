package workflows

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"certdesk/activities"
	"certdesk/internal/mailer"
)

func TestRevocationPolicyTable(t *testing.T) {
	day := 24 * time.Hour
	for _, tc := range []struct {
		reason, kind, ground string
		code                 int
		deadline             time.Duration
	}{
		{"keyCompromise", RequesterStaff, "", 1, day},
		{"keyCompromise", RequesterSubscriber, "", 1, day},
		{"unspecified", RequesterReseller, "", 0, day},          // subscriber request through its reseller
		{"affiliationChanged", RequesterReseller, "", 3, day},   // subscriber request
		{"superseded", RequesterReseller, "", 4, day},           // subscriber request
		{"cessationOfOperation", RequesterReseller, "", 5, day}, // subscriber request
		{"privilegeWithdrawn", RequesterStaff, GroundUnauthorizedRequest, 9, day},
		{"superseded", RequesterStaff, GroundValidationFailed, 4, day},
		{"affiliationChanged", RequesterStaff, "", 3, 5 * day},   // inaccurate information
		{"superseded", RequesterSystem, "", 4, 5 * day},          // a correction
		{"cessationOfOperation", RequesterStaff, "", 5, 5 * day}, // end of service
		{"privilegeWithdrawn", RequesterStaff, "", 9, 5 * day},   // breach of the CP/CPS
	} {
		code, d, err := RevocationPolicy(tc.reason, tc.kind, tc.ground)
		if err != nil || code != tc.code || d != tc.deadline {
			t.Errorf("%s by %s (%s): code %d deadline %s err %v; want %d %s", tc.reason, tc.kind, tc.ground, code, d, err, tc.code, tc.deadline)
		}
	}
	for _, bad := range []string{"certificateHold", "cACompromise", "removeFromCRL", ""} {
		if _, _, err := RevocationPolicy(bad, RequesterStaff, ""); err == nil {
			t.Errorf("reason %q accepted", bad)
		}
	}
}

type revRecorder struct {
	mu        sync.Mutex
	revoked   []activities.RevokeInput
	published []activities.ShardRef
	ocsp      []string
	blocked   []string
	hold      time.Duration // how long the database revoke takes
}

func revMocks(env *testsuite.TestWorkflowEnvironment, r *revRecorder, target activities.RevocationTarget, siblings []string) {
	var a *activities.Activities
	var sa *activities.SigningActivities
	env.OnActivity(a.AuthorizeRevocation, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.AuthorizeRevocationInput) (activities.RevocationTarget, error) {
			if in.RequesterKind == RequesterReseller && in.RequesterID != target.ResellerID {
				return activities.RevocationTarget{}, temporal.NewNonRetryableApplicationError("certificate not found", activities.ErrTypeNotFound, nil)
			}
			t := target
			t.Serial = in.Serial
			return t, nil
		}).Maybe()
	env.OnActivity(a.RevokeCertificate, mock.Anything, mock.Anything).After(r.hold).Return(
		func(_ context.Context, in activities.RevokeInput) (activities.RevokeResult, error) {
			r.mu.Lock()
			defer r.mu.Unlock()
			r.revoked = append(r.revoked, in)
			return activities.RevokeResult{RevokedAt: env.Now()}, nil
		}).Maybe()
	env.OnActivity(a.BlockKey, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.BlockKeyInput) ([]string, error) {
			r.mu.Lock()
			defer r.mu.Unlock()
			r.blocked = append(r.blocked, in.SPKISHA256)
			if in.Serial != "1a2b" {
				return nil, nil // the siblings' own cascades find nothing new
			}
			return siblings, nil
		}).Maybe()
	env.OnActivity(sa.PublishCRLs, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.PublishCRLsInput) error {
			r.mu.Lock()
			defer r.mu.Unlock()
			r.published = append(r.published, in.Shards...)
			return nil
		}).Maybe()
	env.OnActivity(sa.SignOCSP, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.SignOCSPInput) error {
			r.mu.Lock()
			defer r.mu.Unlock()
			r.ocsp = append(r.ocsp, in.Serials...)
			return nil
		}).Maybe()
}

var testTarget = activities.RevocationTarget{Issuer: "tls-1", Shard: 3, ResellerID: "rs_a", SubscriberID: "sub_1", SPKISHA256: "aa"}

func revResult(t *testing.T, env *testsuite.TestWorkflowEnvironment) RevocationResult {
	t.Helper()
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	var r RevocationResult
	if err := env.GetWorkflowResult(&r); err != nil {
		t.Fatal(err)
	}
	return r
}

func TestRevocationByReseller(t *testing.T) {
	env, sent := newEnv(t)
	var rec revRecorder
	revMocks(env, &rec, testTarget, nil)
	env.ExecuteWorkflow(Revocation, RevocationInput{Serial: "1A2B", Reason: "superseded", Requester: Requester{Kind: RequesterReseller, ID: "rs_a"}})
	r := revResult(t, env)
	if r.Status != RevRevoked {
		t.Fatalf("result %+v", r)
	}
	if len(rec.revoked) != 1 || rec.revoked[0].ReasonCode != 4 || rec.revoked[0].Serial != "1a2b" {
		t.Fatalf("revoked %+v", rec.revoked)
	}
	if d := rec.revoked[0].Deadline.Sub(rec.revoked[0].RequestedAt); d != 24*time.Hour {
		t.Fatalf("deadline %s after the request, want 24h", d)
	}
	if len(rec.published) != 1 || rec.published[0] != (activities.ShardRef{Issuer: "tls-1", Shard: 3}) || len(rec.ocsp) != 1 {
		t.Fatalf("published %+v ocsp %v", rec.published, rec.ocsp)
	}
	acc := sent.of(mailer.RevocationAccepted)
	if len(acc) != 1 || acc[0].To.ResellerID != "rs_a" {
		t.Fatalf("first report %+v", acc)
	}
	if done := sent.of(mailer.RevocationDone); len(done) != 2 {
		t.Fatalf("%d done notices, want subscriber and reseller", len(done))
	}
	if len(rec.blocked) != 0 {
		t.Fatal("superseded must not block the key")
	}
}

func TestRevocationByOtherResellerRefused(t *testing.T) {
	env, sent := newEnv(t)
	var rec revRecorder
	revMocks(env, &rec, testTarget, nil)
	env.ExecuteWorkflow(Revocation, RevocationInput{Serial: "1a2b", Reason: "unspecified", Requester: Requester{Kind: RequesterReseller, ID: "rs_other"}})
	r := revResult(t, env)
	if r.Status != RevRefused || len(rec.revoked) != 0 || len(sent.list) != 0 {
		t.Fatalf("result %+v revoked %v notices %v", r, rec.revoked, sent.list)
	}
}

func TestRevocationUnknownReasonFailsAtOnce(t *testing.T) {
	env, _ := newEnv(t)
	var rec revRecorder
	revMocks(env, &rec, testTarget, nil)
	env.ExecuteWorkflow(Revocation, RevocationInput{Serial: "1a2b", Reason: "certificateHold", Requester: Requester{Kind: RequesterStaff, ID: "alice"}})
	if err := env.GetWorkflowError(); err == nil {
		t.Fatal("certificateHold accepted")
	}
	if len(rec.revoked) != 0 {
		t.Fatal("revoked anyway")
	}
}

func TestRevocationKeyCompromiseCascades(t *testing.T) {
	env, _ := newEnv(t)
	var rec revRecorder
	revMocks(env, &rec, testTarget, []string{"3c", "4d"})
	env.ExecuteWorkflow(Revocation, RevocationInput{Serial: "1a2b", Reason: "keyCompromise", Requester: Requester{Kind: RequesterSubscriber}})
	r := revResult(t, env)
	if r.Status != RevRevoked || len(rec.blocked) == 0 || rec.blocked[0] != "aa" {
		t.Fatalf("result %+v blocked %v", r, rec.blocked)
	}
	// The children run as their own revocation workflows.
	got := map[string]activities.RevokeInput{}
	for _, in := range rec.revoked {
		got[in.Serial] = in
	}
	if len(got) != 3 || got["3c"].ReasonCode != 1 || got["4d"].RequestedByKind != RequesterSystem || got["3c"].WorkflowID != "revocation/3c" {
		t.Fatalf("revoked %+v", rec.revoked)
	}
}

func TestRevocationSecondRequestJoins(t *testing.T) {
	env, sent := newEnv(t)
	// Hold the revocation for an hour so the second request arrives while it runs.
	rec := revRecorder{hold: time.Hour}
	revMocks(env, &rec, testTarget, nil)
	env.RegisterDelayedCallback(func() {
		env.SignalWorkflow(RequestSignal, RevocationInput{Serial: "1a2b", Reason: "unspecified", Requester: Requester{Kind: RequesterStaff, ID: "alice"}})
	}, time.Minute)
	env.ExecuteWorkflow(Revocation, RevocationInput{Serial: "1a2b", Reason: "keyCompromise", Requester: Requester{Kind: RequesterReseller, ID: "rs_a"}})
	revResult(t, env)
	acc := sent.of(mailer.RevocationAccepted)
	if len(acc) != 2 || !acc[1].To.Staff {
		t.Fatalf("first reports %+v", acc)
	}
}

func TestRevocationSignalWithStartReportsOnce(t *testing.T) {
	env, sent := newEnv(t)
	rec := revRecorder{hold: time.Hour}
	revMocks(env, &rec, testTarget, nil)
	in := RevocationInput{Serial: "1a2b", Reason: "superseded", Requester: Requester{Kind: RequesterReseller, ID: "rs_a"},
		RequestedAt: testStart.Add(-time.Minute)}
	// The starter's signal-with-start: the same request arrives as a signal too.
	env.RegisterDelayedCallback(func() { env.SignalWorkflow(RequestSignal, in) }, 0)
	env.ExecuteWorkflow(Revocation, in)
	revResult(t, env)
	if acc := sent.of(mailer.RevocationAccepted); len(acc) != 1 {
		t.Fatalf("%d first reports for one request", len(acc))
	}
}

func TestRevocationAlreadyRevokedStaysRevoked(t *testing.T) {
	env, _ := newEnv(t)
	var rec revRecorder
	tg := testTarget
	tg.AlreadyRevoked, tg.RevokedAt = true, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	revMocks(env, &rec, tg, nil)
	env.ExecuteWorkflow(Revocation, RevocationInput{Serial: "1a2b", Reason: "unspecified", Requester: Requester{Kind: RequesterStaff, ID: "alice"}})
	r := revResult(t, env)
	if r.Status != RevRevoked || !r.RevokedAt.Equal(tg.RevokedAt) || len(rec.revoked) != 0 {
		t.Fatalf("result %+v revoked %v", r, rec.revoked)
	}
}

func TestRevocationEscalatesWhenStuck(t *testing.T) {
	env, sent := newEnv(t)
	// The database write is stuck for 23 hours: reminder at 12 h, escalation at 19.2 h.
	rec := revRecorder{hold: 23 * time.Hour}
	revMocks(env, &rec, testTarget, nil)
	start := env.Now()
	env.ExecuteWorkflow(Revocation, RevocationInput{Serial: "1a2b", Reason: "keyCompromise", Requester: Requester{Kind: RequesterStaff, ID: "alice"}})
	revResult(t, env)
	rem, esc := sent.of(mailer.StaffReminder), sent.of(mailer.StaffEscalation)
	if len(rem) != 1 || len(esc) != 1 {
		t.Fatalf("reminders %d escalations %d", len(rem), len(esc))
	}
	if d := rem[0].At.Sub(start); d != 12*time.Hour {
		t.Fatalf("reminder at %s", d)
	}
	if d := esc[0].At.Sub(start); d != 24*time.Hour*8/10 {
		t.Fatalf("escalation at %s", d)
	}
}
