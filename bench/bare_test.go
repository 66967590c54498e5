package main

import (
	"context"
	"testing"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/testsuite"
)

// TestBareWorkflowRunsTheMix: the bare reference runs exactly one activity
// per "a" and one local activity per "l" of the mix, nothing more.
func TestBareWorkflowRunsTheMix(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	env.RegisterActivity(NoopActivity)
	var acts, locals int
	env.SetOnActivityStartedListener(func(*activity.Info, context.Context, converter.EncodedValues) { acts++ })
	env.SetOnLocalActivityStartedListener(func(*activity.Info, context.Context, []any) { locals++ })
	env.ExecuteWorkflow(BareWorkflow, []string{"l", "a", "l", "l", "a"})
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	if acts != 2 || locals != 3 {
		t.Fatalf("%d activities and %d local activities, want 2 and 3", acts, locals)
	}
}
