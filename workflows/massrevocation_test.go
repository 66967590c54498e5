package workflows

import (
	"context"
	"errors"
	"fmt"
	"testing"

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
			start := 0
			if in.After != "" {
				fmt.Sscanf(in.After, "%x", &start)
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
	env.OnActivity(sa.PublishCRLs, mock.Anything, mock.Anything).Return(
		func(context.Context, activities.PublishCRLsInput) error { f.crlCalls++; return nil }).Maybe()
	env.OnActivity(sa.RefreshOCSP, mock.Anything, mock.Anything).Return(
		func(context.Context, activities.RefreshOCSPInput) (int, error) { f.ocsp++; return 0, nil }).Maybe()
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
	// CRLs after batches 3, 6, 9 and once at the end.
	if f.crlCalls != 4 || p.CRLs != 4 || f.ocsp != 4 {
		t.Fatalf("crl calls %d (progress %d), ocsp %d", f.crlCalls, p.CRLs, f.ocsp)
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
