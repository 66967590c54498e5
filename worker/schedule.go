package main

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"certdesk/internal/config"
	"certdesk/workflows"
)

// ensureCRLSchedule creates the Temporal Schedule that republishes CRLs,
// refreshes OCSP answers and signs an audit checkpoint (PublishCRLs), if it
// does not exist yet. Its interval is also the longest stretch of newest
// audit rows a cut could remove unnoticed.
func ensureCRLSchedule(ctx context.Context, tc client.Client, cfg *config.Config, log *slog.Logger) error {
	_, err := tc.ScheduleClient().Create(ctx, client.ScheduleOptions{
		ID:   workflows.CRLScheduleID,
		Spec: client.ScheduleSpec{Intervals: []client.ScheduleIntervalSpec{{Every: cfg.CRLRefresh}}},
		Action: &client.ScheduleWorkflowAction{
			ID:        workflows.CRLScheduleID,
			Workflow:  workflows.PublishCRLs,
			TaskQueue: workflows.TaskQueue,
		},
		Overlap:            0,
		CatchupWindow:      24 * time.Hour,
		TriggerImmediately: true,
	})
	if errors.Is(err, temporal.ErrScheduleAlreadyRunning) {
		return nil
	}
	if err == nil {
		log.Info("CRL schedule created", "every", cfg.CRLRefresh.String())
	}
	return err
}
