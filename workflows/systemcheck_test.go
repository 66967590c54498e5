package workflows

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/mock"

	"certdesk/activities"
)

func TestSystemCheckRecordsThenEmails(t *testing.T) {
	env, _ := newEnv(t)
	var a *activities.Activities
	var order []string
	env.OnActivity(a.RecordSystemCheck, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.SystemCheckInput) error {
		order = append(order, "record:"+in.CheckID)
		return nil
	})
	env.OnActivity(a.SendSystemCheckEmail, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.SystemCheckInput) (string, error) {
		order = append(order, "email:"+in.CheckID)
		return "m1@certdesk", nil
	})
	env.ExecuteWorkflow(SystemCheck, SystemCheckInput{CheckID: "c1"})
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	var res SystemCheckResult
	if err := env.GetWorkflowResult(&res); err != nil {
		t.Fatal(err)
	}
	if res.MessageID != "m1@certdesk" || len(order) != 2 || order[0] != "record:c1" || order[1] != "email:c1" {
		t.Fatalf("result %+v order %v", res, order)
	}
}

func TestSystemCheckRequiresID(t *testing.T) {
	env, _ := newEnv(t)
	env.ExecuteWorkflow(SystemCheck, SystemCheckInput{})
	if err := env.GetWorkflowError(); err == nil {
		t.Fatal("want an error for a missing CheckID")
	}
}

func TestSystemCheckSurfacesEmailFailure(t *testing.T) {
	env, _ := newEnv(t)
	var a *activities.Activities
	env.OnActivity(a.RecordSystemCheck, mock.Anything, mock.Anything).Return(nil)
	env.OnActivity(a.SendSystemCheckEmail, mock.Anything, mock.Anything).Return("", nonRetryable("smtp refused"))
	env.ExecuteWorkflow(SystemCheck, SystemCheckInput{CheckID: "c2"})
	err := env.GetWorkflowError()
	if err == nil || !strings.Contains(err.Error(), "smtp refused") {
		t.Fatalf("want the email failure to fail the check, got %v", err)
	}
}
