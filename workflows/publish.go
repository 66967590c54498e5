package workflows

import (
	"time"

	"go.temporal.io/sdk/workflow"

	"certdesk/activities"
)

// CRLScheduleID is the Temporal Schedule that runs PublishCRLs.
const CRLScheduleID = "crl-refresh"

// PublishResult counts what a refresh did.
type PublishResult struct {
	Shards     int
	OCSP       int
	Responders int // delegated OCSP responders renewed
}

// PublishCRLs renews delegated OCSP responders close to expiry, republishes
// every CRL shard of every issuer and refreshes every OCSP answer past half
// its validity. A Temporal Schedule runs it at
// least daily (O14: a CRL at least every 4 days, nextUpdate ≤ 10 days; OCSP
// answers refreshed at half their validity).
func PublishCRLs(ctx workflow.Context) (PublishResult, error) {
	ctx = workflow.WithActivityOptions(ctx, signingActivityOptions())
	ctx = workflow.WithStartToCloseTimeout(ctx, 30*time.Minute)
	ctx = workflow.WithHeartbeatTimeout(ctx, 2*time.Minute)
	var sa *activities.SigningActivities
	var res PublishResult
	if err := workflow.ExecuteActivity(ctx, sa.RenewOCSPResponders).Get(ctx, &res.Responders); err != nil {
		return res, err
	}
	if err := workflow.ExecuteActivity(ctx, sa.PublishAllCRLs).Get(ctx, &res.Shards); err != nil {
		return res, err
	}
	if err := workflow.ExecuteActivity(ctx, sa.RefreshOCSP, activities.RefreshOCSPInput{}).Get(ctx, &res.OCSP); err != nil {
		return res, err
	}
	return res, nil
}
