package workflows

import (
	"context"
	"testing"

	"github.com/stretchr/testify/mock"

	"certdesk/activities"
)

// The audit checkpoint comes last, so a refusal cannot hold up CRLs or OCSP.
func TestPublishCRLsRenewsThenPublishesThenRefreshes(t *testing.T) {
	env, _ := newEnv(t)
	var sa *activities.SigningActivities
	var order []string
	env.OnActivity(sa.RenewOCSPResponders, mock.Anything).Return(func(context.Context) (int, error) { order = append(order, "renew"); return 1, nil })
	env.OnActivity(sa.PublishAllCRLs, mock.Anything).Return(func(context.Context) (int, error) { order = append(order, "crl"); return 32, nil })
	env.OnActivity(sa.RefreshOCSP, mock.Anything, mock.Anything).Return(func(context.Context, activities.RefreshOCSPInput) (int, error) {
		order = append(order, "ocsp")
		return 7, nil
	})
	env.OnActivity(sa.SignAuditCheckpoint, mock.Anything).Return(func(context.Context) (activities.AuditCheckpointResult, error) {
		order = append(order, "checkpoint")
		return activities.AuditCheckpointResult{Number: 1, Seq: 9, Count: 9, New: true}, nil
	})
	env.ExecuteWorkflow(PublishCRLs)
	var r PublishResult
	if err := env.GetWorkflowResult(&r); err != nil {
		t.Fatal(err)
	}
	if r != (PublishResult{Shards: 32, OCSP: 7, Responders: 1}) || len(order) != 4 || order[0] != "renew" || order[2] != "ocsp" || order[3] != "checkpoint" {
		t.Fatalf("result %+v order %v", r, order)
	}
}
