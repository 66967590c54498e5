package workflows

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"certdesk/activities"
)

// fakeCerts pages through n serials as the RevokeBatch activity would.
type fakeCerts struct {
	n        int
	revoked  map[string]bool
	crlCalls int
	ocsp     int
	counted  int
	// ranges are the (After, Through] ranges SignRevokedOCSP was given.
	ranges [][2]string
	// ACME: how many of the n are ACME certificates; renewed is what
	// CountRenewed answers. events is the order of the ARI activities and
	// the first revocation.
	acme, renewed int
	windowSets    int
	counts        int
	events        []string
	// mu guards the fields the mocks write: the test environment runs
	// concurrent activities (the pipelined OCSP pages) in goroutines.
	mu sync.Mutex
}

func (f *fakeCerts) serial(i int) string { return fmt.Sprintf("%08x", i+1) }

func (f *fakeCerts) mocks(env *testsuite.TestWorkflowEnvironment) {
	var a *activities.Activities
	var sa *activities.SigningActivities
	env.OnActivity(a.CountCertificates, mock.Anything, mock.Anything).Return(
		func(context.Context, activities.Selector) (activities.CountResult, error) {
			f.counted++
			return activities.CountResult{Count: int64(f.n), Sample: []string{f.serial(0)}}, nil
		}).Maybe()
	env.OnActivity(a.RevokeBatch, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.RevokeBatchInput) (activities.RevokeBatchResult, error) {
			f.mu.Lock()
			defer f.mu.Unlock()
			start := 0
			if in.After != "" {
				fmt.Sscanf(in.After, "%x", &start)
			}
			if len(f.events) == 0 || f.events[len(f.events)-1] != "revoke" {
				f.events = append(f.events, "revoke")
			}
			var res activities.RevokeBatchResult
			for i := start; i < f.n && res.Count < in.Limit; i++ {
				f.revoked[f.serial(i)] = true
				res.Count++
				res.Last = f.serial(i)
			}
			if res.Count > 0 {
				res.Shards = []activities.ShardRef{{Issuer: "tls-1", Shard: start % 4}}
			}
			return res, nil
		}).Maybe()
	env.OnActivity(a.SetRenewalWindows, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.RenewalWindowsInput) (activities.RenewalWindowsResult, error) {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.windowSets++
			f.events = append(f.events, "windows")
			return activities.RenewalWindowsResult{Selected: int64(f.n - len(f.revoked)), Windows: int64(f.acme)}, nil
		}).Maybe()
	env.OnActivity(a.CountRenewed, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.RenewalWindowsInput) (int64, error) {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.counts++
			if len(f.events) == 0 || f.events[len(f.events)-1] != "count" {
				f.events = append(f.events, "count")
			}
			return int64(f.renewed), nil
		}).Maybe()
	env.OnActivity(sa.PublishCRLs, mock.Anything, mock.Anything).Return(
		func(context.Context, activities.PublishCRLsInput) error {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.crlCalls++
			return nil
		}).Maybe()
	env.OnActivity(sa.RefreshOCSP, mock.Anything, mock.Anything).Return(
		func(context.Context, activities.RefreshOCSPInput) (int, error) {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.ocsp++
			return 0, nil
		}).Maybe()
	env.OnActivity(sa.SignRevokedOCSP, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.SignRevokedOCSPInput) (int, error) {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.ranges = append(f.ranges, [2]string{in.After, in.Through})
			return 0, nil
		}).Maybe()
}

// checkRanges: the OCSP ranges cover every revoked serial once.
func (f *fakeCerts) checkRanges(t *testing.T, batch int) {
	t.Helper()
	sort.Slice(f.ranges, func(i, j int) bool { return f.ranges[i][0] < f.ranges[j][0] }) // they run concurrently
	want := ""
	for i, r := range f.ranges {
		if r[0] != want {
			t.Fatalf("OCSP range %d starts after %q, want %q (ranges %v)", i, r[0], want, f.ranges)
		}
		want = r[1]
	}
	if n := (f.n + batch - 1) / batch; len(f.ranges) != n || want != f.serial(f.n-1) {
		t.Fatalf("%d OCSP ranges ending at %q, want %d ending at %q", len(f.ranges), want, n, f.serial(f.n-1))
	}
}

func massInput(dry bool, batch int) MassRevocationInput {
	return MassRevocationInput{Incident: "inc-1", Selector: activities.Selector{Issuer: "tls-1"}, Reason: "cessationOfOperation",
		DryRun: &dry, BatchSize: batch, CRLEvery: 3}
}

func TestMassRevocationDryRunChangesNothing(t *testing.T) {
	env, _ := newEnv(t)
	f := &fakeCerts{n: 1234, revoked: map[string]bool{}}
	f.mocks(env)
	in := massInput(true, 100)
	in.DryRun = nil // the default is a dry run
	env.ExecuteWorkflow(MassRevocation, in)
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	var p MassProgress
	_ = env.GetWorkflowResult(&p)
	if p.Status != MassDryRun || p.Matched != 1234 || len(p.Sample) != 1 || len(f.revoked) != 0 || f.crlCalls != 0 {
		t.Fatalf("progress %+v revoked %d crl %d", p, len(f.revoked), f.crlCalls)
	}
}

func TestMassRevocationRevokesInBatches(t *testing.T) {
	env, _ := newEnv(t)
	f := &fakeCerts{n: 1000, revoked: map[string]bool{}}
	f.mocks(env)
	env.ExecuteWorkflow(MassRevocation, massInput(false, 100))
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	var p MassProgress
	_ = env.GetWorkflowResult(&p)
	if p.Status != MassDone || p.Revoked != 1000 || p.Batches != 10 || len(f.revoked) != 1000 {
		t.Fatalf("progress %+v revoked %d", p, len(f.revoked))
	}
	// CRLs after batches 3, 6, 9 and once at the end; the OCSP answers of
	// each page signed right behind it, never a RefreshOCSP of everything.
	if f.crlCalls != 4 || p.CRLs != 4 || f.ocsp != 0 {
		t.Fatalf("crl calls %d (progress %d), ocsp refreshes %d", f.crlCalls, p.CRLs, f.ocsp)
	}
	f.checkRanges(t, 100)
	if !p.Pipelined || p.OCSPCursor != p.Cursor || len(p.Pending) != 0 {
		t.Fatalf("progress %+v", p)
	}
	if f.counted != 0 {
		t.Fatal("a real run does not count first")
	}
}

func TestMassRevocationContinuesAsNew(t *testing.T) {
	env, _ := newEnv(t)
	f := &fakeCerts{n: 150 * 10, revoked: map[string]bool{}}
	f.mocks(env)
	env.ExecuteWorkflow(MassRevocation, massInput(false, 10))
	err := env.GetWorkflowError()
	var can *workflow.ContinueAsNewError
	if !errors.As(err, &can) {
		t.Fatalf("want continue-as-new after %d batches, got %v", batchesPerRun, err)
	}
	if len(f.revoked) != batchesPerRun*10 {
		t.Fatalf("revoked %d in the first run", len(f.revoked))
	}
	// Every OCSP range started was waited for before continuing as new.
	if len(f.ranges) != batchesPerRun {
		t.Fatalf("%d OCSP ranges signed before continue-as-new, want %d", len(f.ranges), batchesPerRun)
	}
}

// TestMassRevocationContinuesFromOlderRun: a run of the older sequential
// version continued as new into this code signs the OCSP answers of the
// pages it revoked with one RefreshOCSP at the end, as it would have.
func TestMassRevocationContinuesFromOlderRun(t *testing.T) {
	env, _ := newEnv(t)
	f := &fakeCerts{n: 1000, revoked: map[string]bool{}}
	f.mocks(env)
	in := massInput(false, 100)
	in.Progress = &MassProgress{Status: MassRevoking, Cursor: f.serial(399), Revoked: 400, Batches: 4, CRLs: 1, Runs: 1,
		Pending: []activities.ShardRef{{Issuer: "tls-1", Shard: 3}}}
	env.ExecuteWorkflow(MassRevocation, in)
	var p MassProgress
	if err := env.GetWorkflowResult(&p); err != nil {
		t.Fatal(err)
	}
	if p.Status != MassDone || p.Revoked != 1000 || p.Batches != 10 || len(f.revoked) != 600 || f.ocsp != 1 || p.LegacyOCSP {
		t.Fatalf("progress %+v, revoked %d, OCSP refreshes %d", p, len(f.revoked), f.ocsp)
	}
	if len(f.ranges) != 6 || f.crlCalls != 3 { // CRLs after batches 6 and 9 and at the end
		t.Fatalf("%d OCSP ranges, %d CRL publications", len(f.ranges), f.crlCalls)
	}
}

func TestMassRevocationRefusesHoldAndEmptySelector(t *testing.T) {
	for _, in := range []MassRevocationInput{
		{Incident: "x", Selector: activities.Selector{Issuer: "tls-1"}, Reason: "certificateHold"},
		{Reason: "superseded", Selector: activities.Selector{Issuer: "tls-1"}},
	} {
		env, _ := newEnv(t)
		env.ExecuteWorkflow(MassRevocation, in)
		if env.GetWorkflowError() == nil {
			t.Fatalf("accepted %+v", in)
		}
	}
}

func TestMassRevocationSendsNoticesInPages(t *testing.T) {
	env, _ := newEnv(t)
	f := &fakeCerts{n: 250, revoked: map[string]bool{}}
	f.mocks(env)
	var a *activities.Activities
	pages := 0
	env.OnActivity(a.NotifyRevoked, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.NotifyRevokedInput) (activities.NotifyRevokedResult, error) {
			if pages == 3 {
				return activities.NotifyRevokedResult{}, nil
			}
			pages++
			return activities.NotifyRevokedResult{Count: 100, Last: fmt.Sprint(pages)}, nil
		})
	in := massInput(false, 100)
	in.Notify = true
	env.ExecuteWorkflow(MassRevocation, in)
	var p MassProgress
	if err := env.GetWorkflowResult(&p); err != nil {
		t.Fatal(err)
	}
	if p.Status != MassDone || p.Notified != 300 || p.NoticeCursor != "3" {
		t.Fatalf("progress %+v", p)
	}
}

// TestMassRevocationMovesRenewalWindowsFirst: with dry run off, the ARI
// windows of the selected certificates move to now before the first
// revocation; during the renewal grace the progress query says so and
// counts the renewals, and the final progress has the count after the
// revocation.
func TestMassRevocationMovesRenewalWindowsFirst(t *testing.T) {
	env, _ := newEnv(t)
	f := &fakeCerts{n: 1000, acme: 40, renewed: 3, revoked: map[string]bool{}}
	f.mocks(env)
	in := massInput(false, 100)
	in.RenewalGraceSeconds = 3600
	var during MassProgress
	var revokedDuring int
	env.RegisterDelayedCallback(func() {
		v, err := env.QueryWorkflow(ProgressQuery)
		if err != nil {
			t.Error(err)
			return
		}
		_ = v.Get(&during)
		f.mu.Lock()
		revokedDuring = len(f.revoked)
		f.renewed = 25 // more clients renew during the grace
		f.mu.Unlock()
	}, 30*time.Minute)
	env.ExecuteWorkflow(MassRevocation, in)
	var p MassProgress
	if err := env.GetWorkflowResult(&p); err != nil {
		t.Fatal(err)
	}
	if during.Status != MassRenewalGrace || during.RenewalWindows != 40 || during.Renewed != 3 || revokedDuring != 0 || !during.ARI ||
		!during.RenewalGraceUntil.Equal(testStart.Add(time.Hour)) {
		t.Fatalf("progress during the grace %+v (%d revoked)", during, revokedDuring)
	}
	if p.Status != MassDone || p.Revoked != 1000 || p.RenewalWindows != 40 || p.Renewed != 25 || !p.ARI {
		t.Fatalf("progress %+v", p)
	}
	// Windows, counts every 5 minutes through the hour, the revocation,
	// one count after it.
	if want := []string{"windows", "count", "revoke", "count"}; fmt.Sprint(f.events) != fmt.Sprint(want) || f.windowSets != 1 || f.counts != 14 {
		t.Fatalf("events %v, %d window sets, %d counts; want %v, 1, 14", f.events, f.windowSets, f.counts, want)
	}
}

// TestMassRevocationRenewalWindowsWithoutGrace: without a grace the windows
// still move before the first revocation; with no ACME certificate among
// the selected nothing is counted; a dry run never moves them.
func TestMassRevocationRenewalWindowsWithoutGrace(t *testing.T) {
	for _, tc := range []struct {
		name   string
		acme   int
		dry    bool
		events string
	}{
		{"acme", 5, false, "[windows revoke count]"},
		{"no acme", 0, false, "[windows revoke]"},
		{"dry run", 5, true, "[]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env, _ := newEnv(t)
			f := &fakeCerts{n: 300, acme: tc.acme, renewed: 2, revoked: map[string]bool{}}
			f.mocks(env)
			env.ExecuteWorkflow(MassRevocation, massInput(tc.dry, 100))
			var p MassProgress
			if err := env.GetWorkflowResult(&p); err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(f.events) != tc.events {
				t.Fatalf("events %v, want %s", f.events, tc.events)
			}
			if want := int64(min(tc.acme, 2)); !tc.dry && (p.RenewalWindows != int64(tc.acme) || p.Renewed != want || !p.ARI) {
				t.Fatalf("progress %+v", p)
			}
			if tc.dry && (p.ARI || p.RenewalWindows != 0) {
				t.Fatalf("dry run progress %+v", p)
			}
		})
	}
}

// TestMassRevocationRefusesLongGrace: the grace cannot outlast the BR
// revocation deadlines.
func TestMassRevocationRefusesLongGrace(t *testing.T) {
	env, _ := newEnv(t)
	f := &fakeCerts{n: 10, revoked: map[string]bool{}}
	f.mocks(env)
	in := massInput(false, 100)
	in.RenewalGraceSeconds = int(MaxRenewalGrace.Seconds()) + 1
	env.ExecuteWorkflow(MassRevocation, in)
	if env.GetWorkflowError() == nil || f.windowSets != 0 || len(f.revoked) != 0 {
		t.Fatalf("accepted a grace of %ds", in.RenewalGraceSeconds)
	}
}
