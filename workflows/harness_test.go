package workflows

import (
	"context"
	"io"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/worker"

	"certdesk/activities"
	"certdesk/internal/mailer"
	"certdesk/internal/mpic"
)

// sentNotice is one Notify call seen by a test.
type sentNotice struct {
	At     time.Time
	To     activities.Recipient
	Notice mailer.Notice
	Key    string
	Data   any
}

// notices records Notify calls in a test environment.
type notices struct {
	mu   sync.Mutex
	list []sentNotice
	env  *testsuite.TestWorkflowEnvironment
}

func (n *notices) of(kind mailer.Notice) []sentNotice {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []sentNotice
	for _, s := range n.list {
		if s.Notice == kind {
			out = append(out, s)
		}
	}
	return out
}

// newEnv returns a workflow test environment with quiet logs and Notify
// recorded. start fixes the workflow clock.
// perspectiveOutcomes overrides what named remote perspectives answer in
// the current test (tests in this package do not run in parallel).
var perspectiveOutcomes map[string]string

// perspectiveCAAOutcomes does the same for the remote CAA checks.
var perspectiveCAAOutcomes map[string]string

// testStart is when every workflow test's mock clock starts.
var testStart = time.Now().UTC().Truncate(time.Hour)

// staffDecisions are the decisions the current test's workflows audited.
var staffDecisions []activities.StaffDecisionInput

// refusedStaff are the reviewers the mocked CheckStaff refuses.
var refusedStaff map[string]bool

func newEnv(t *testing.T) (*testsuite.TestWorkflowEnvironment, *notices) {
	t.Helper()
	var s testsuite.WorkflowTestSuite
	if os.Getenv("WFLOG") != "" {
	} else {
		s.SetLogger(log.NewStructuredLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	}
	env := s.NewTestWorkflowEnvironment()
	// The default 1 s deadlock detector misfires when the 2-core test machine
	// is saturated by parallel integration tests; real deadlocks still show.
	env.SetWorkerOptions(worker.Options{DeadlockDetectionTimeout: 30 * time.Second})
	// The mock clock starts at the real hour, never at a fixed date: the
	// test environment gives a retried local activity the deadline
	// "scheduled (mock clock) + ScheduleToClose" but runs it on the real
	// clock, so once the real date passed a fixed start + 30 days every retry
	// began past its deadline and was retried thousands of times.
	env.SetStartTime(testStart)
	// Remote perspectives answer through a registered function, not a mock:
	// the test environment allows no registration after the first mock.
	perspectiveOutcomes, caaAnswers = nil, nil
	env.RegisterActivityWithOptions(func(ctx context.Context, in activities.PerspectiveCheckInput) (mpic.Determination, error) {
		name, _ := PerspectiveName(activity.GetInfo(ctx).TaskQueue)
		if o, ok := perspectiveOutcomes[name]; ok {
			return mpic.Determination{Outcome: o, Detail: "a hijacked answer", At: time.Now()}, nil
		}
		return mpic.Determination{Outcome: activities.OutcomeValid, At: time.Now()}, nil
	}, activity.RegisterOptions{Name: activities.PerspectiveCheckDomainName})
	perspectiveCAAOutcomes = nil
	env.RegisterActivityWithOptions(func(ctx context.Context, in activities.CAARequest) (mpic.Determination, error) {
		name, _ := PerspectiveName(activity.GetInfo(ctx).TaskQueue)
		if o, ok := perspectiveCAAOutcomes[name]; ok {
			return mpic.Determination{Outcome: o, Detail: "another CAA answer", At: time.Now()}, nil
		}
		return mpic.Determination{Outcome: activities.OutcomePermit, At: time.Now()}, nil
	}, activity.RegisterOptions{Name: activities.PerspectiveCheckCAAName})
	n := &notices{env: env}
	var a *activities.Activities
	env.OnActivity(a.Notify, mock.Anything, mock.Anything).Return(
		func(ctx context.Context, in activities.NotifyInput) (activities.NotifyResult, error) {
			n.mu.Lock()
			defer n.mu.Unlock()
			n.list = append(n.list, sentNotice{At: env.Now(), To: in.Recipient, Notice: in.Message.Notice, Key: in.Message.IdempotencyKey, Data: in.Message.Data})
			return activities.NotifyResult{MessageID: "<m@test>"}, nil
		}).Maybe()
	// Every reviewer is an active staff member unless refusedStaff names it.
	refusedStaff = map[string]bool{"st_disabled": true, "nobody": true}
	env.OnActivity(a.CheckStaff, mock.Anything, mock.Anything).Return(func(_ context.Context, id string) error {
		if refusedStaff[id] {
			return temporal.NewNonRetryableApplicationError("reviewer "+id+" is not an active staff member", activities.ErrTypeStaffRefused, nil)
		}
		return nil
	}).Maybe()
	staffDecisions = nil
	env.OnActivity(a.AuditStaffDecision, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.StaffDecisionInput) error {
		staffDecisions = append(staffDecisions, in)
		return nil
	}).Maybe()
	return env, n
}
