package workflows

import (
	"time"

	"go.temporal.io/sdk/workflow"

	"certdesk/activities"
)

// CRLScheduleID is the Temporal Schedule that runs PublishCRLs.
const CRLScheduleID = "crl-refresh"

// auditCheckpointChange versions the signed audit checkpoint at the end of
// PublishCRLs (runs recorded before it complete without one).
const auditCheckpointChange = "audit-checkpoint"

// PublishResult counts what a refresh did.
type PublishResult struct {
	Shards     int
	OCSP       int
	Responders int // delegated OCSP responders renewed
}

// PublishCRLs renews delegated OCSP responders close to expiry, republishes
// every CRL shard of every issuer and refreshes every OCSP answer past half
// its validity, then signs a checkpoint of the audit chain head
// (SignAuditCheckpoint). A Temporal Schedule runs it at
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
	// Last, so a chain that fails the check cannot hold up CRLs and OCSP:
	// the refusal fails this run, which alerts. The first run on a long
	// chain reads all of it, without heartbeats: no heartbeat timeout.
	if workflow.GetVersion(ctx, auditCheckpointChange, workflow.DefaultVersion, 1) >= 1 {
		cctx := workflow.WithHeartbeatTimeout(ctx, 0)
		if err := workflow.ExecuteActivity(cctx, sa.SignAuditCheckpoint).Get(ctx, nil); err != nil {
			return res, err
		}
	}
	return res, nil
}
