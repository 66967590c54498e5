package workflows

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"certdesk/activities"
)

// pnPages serves pages from a fake population of n addresses.
type pnPages struct {
	mu      sync.Mutex
	n       int
	delay   time.Duration // each page takes this long
	calls   []activities.PolicyNoticePageInput
	records []activities.PolicyNoticeRecord
}

func (p *pnPages) mocks(env *testsuite.TestWorkflowEnvironment) {
	var a *activities.Activities
	env.OnActivity(a.SendPolicyNotice, mock.Anything, mock.Anything).After(p.delay).Return(
		func(_ context.Context, in activities.PolicyNoticePageInput) (activities.PolicyNoticePageResult, error) {
			p.mu.Lock()
			defer p.mu.Unlock()
			p.calls = append(p.calls, in)
			first := 0
			if in.After != "" {
				_, _ = fmt.Sscanf(in.After, "%x", &first)
			}
			count := min(in.Limit, p.n-first)
			if count <= 0 {
				return activities.PolicyNoticePageResult{}, nil
			}
			return activities.PolicyNoticePageResult{Count: count, Sent: count, Last: fmt.Sprintf("%08x", first+count)}, nil
		}).Maybe()
	env.OnActivity(a.RecordPolicyNotice, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.PolicyNoticeRecord) error {
			p.mu.Lock()
			defer p.mu.Unlock()
			p.records = append(p.records, in)
			return nil
		}).Maybe()
}

func pnInput(size int) PolicyNoticeInput {
	return PolicyNoticeInput{Version: "2026.2", EffectiveDate: "2026-12-01", URL: "https://certdesk.example/policy/2026.2", PageSize: size}
}

func TestPolicyNoticeSendsInPagesWithProgress(t *testing.T) {
	env, _ := newEnv(t)
	p := &pnPages{n: 25, delay: time.Minute}
	p.mocks(env)
	var mid PolicyNoticeProgress
	env.RegisterDelayedCallback(func() {
		v, err := env.QueryWorkflow(ProgressQuery)
		if err == nil {
			_ = v.Get(&mid)
		}
	}, 90*time.Second)
	env.SetStartWorkflowOptions(client.StartWorkflowOptions{ID: PolicyNoticeWorkflowID("2026.2")})
	env.ExecuteWorkflow(PolicyNotice, pnInput(10))
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	var res PolicyNoticeProgress
	if err := env.GetWorkflowResult(&res); err != nil {
		t.Fatal(err)
	}
	if res.Status != PolicyDone || res.Pages != 3 || res.Recipients != 25 || res.Sent != 25 || res.Runs != 1 {
		t.Fatalf("progress %+v", res)
	}
	if len(p.calls) != 4 || p.calls[0].After != "" || p.calls[1].After != "0000000a" || p.calls[2].After != "00000014" {
		t.Fatalf("pages %+v", p.calls)
	}
	c := p.calls[0]
	if c.WorkflowID != "policy-notice/2026.2" || c.Version != "2026.2" || c.Limit != 10 || c.ValidAt.IsZero() ||
		!c.EffectiveDate.Equal(time.Date(2026, 12, 1, 0, 0, 0, 0, time.FixedZone("JST", 9*3600))) {
		t.Fatalf("page input %+v", c)
	}
	for _, call := range p.calls {
		if !call.ValidAt.Equal(c.ValidAt) {
			t.Fatal("the population must be fixed at the start (ValidAt)")
		}
	}
	if len(p.records) != 2 || p.records[0].Event != "started" || p.records[1].Event != "done" || p.records[1].Sent != 25 {
		t.Fatalf("audit records %+v", p.records)
	}
	if mid.Version != "2026.2" || mid.Status != PolicySending || mid.Pages != 1 || mid.Recipients != 10 {
		t.Fatalf("progress query %+v", mid)
	}
}

func TestPolicyNoticeContinuesAsNewWithItsCursor(t *testing.T) {
	env, _ := newEnv(t)
	p := &pnPages{n: policyPagesPerRun*2 + 5}
	p.mocks(env)
	env.ExecuteWorkflow(PolicyNotice, pnInput(1))
	err := env.GetWorkflowError()
	var can *workflow.ContinueAsNewError
	if !errors.As(err, &can) {
		t.Fatalf("want continue-as-new after %d pages, got %v", policyPagesPerRun, err)
	}
	if len(p.calls) != policyPagesPerRun {
		t.Fatalf("%d pages in the first run", len(p.calls))
	}
	// The next run carries the progress and goes on from the cursor.
	var next PolicyNoticeInput
	if err := converter.GetDefaultDataConverter().FromPayloads(can.Input, &next); err != nil {
		t.Fatal(err)
	}
	if next.Progress == nil || next.Progress.Cursor != fmt.Sprintf("%08x", policyPagesPerRun) || next.Progress.Pages != policyPagesPerRun || next.Progress.Runs != 1 {
		t.Fatalf("carried progress %+v", next.Progress)
	}

	env2, _ := newEnv(t)
	p.calls = nil
	p.mocks(env2)
	env2.ExecuteWorkflow(PolicyNotice, next)
	err = env2.GetWorkflowError()
	if !errors.As(err, &can) {
		t.Fatalf("second run: %v", err)
	}
	if p.calls[0].After != fmt.Sprintf("%08x", policyPagesPerRun) {
		t.Fatalf("second run starts at %q", p.calls[0].After)
	}
	if len(p.records) != 1 {
		t.Fatalf("'started' audited %d times; once is right", len(p.records))
	}
}

func TestPolicyNoticeInputChecked(t *testing.T) {
	for name, in := range map[string]PolicyNoticeInput{
		"bad version": {Version: "2026 2", EffectiveDate: "2026-12-01", URL: "https://certdesk.example/p"},
		"bad date":    {Version: "2026.2", EffectiveDate: "1 Dec", URL: "https://certdesk.example/p"},
		"bad url":     {Version: "2026.2", EffectiveDate: "2026-12-01", URL: "ftp://certdesk.example/p"},
	} {
		t.Run(name, func(t *testing.T) {
			env, _ := newEnv(t)
			env.ExecuteWorkflow(PolicyNotice, in)
			if err := env.GetWorkflowError(); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}
