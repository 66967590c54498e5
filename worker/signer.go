package main

import (
	"context"
	"log/slog"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"

	"certdesk/activities"
	"certdesk/internal/config"
	"certdesk/internal/store"
	"certdesk/internal/temporalclient"
	"certdesk/workflows"
)

// newSigningWorker loads the CA and serves the signing queue. Only this
// process opens the CA keys.
func newSigningWorker(ctx context.Context, tc client.Client, cfg *config.Config, st *store.Store, log *slog.Logger) (worker.Worker, func(), error) {
	sa, closeKeys, err := activities.NewSigning(ctx, cfg, st, log)
	if err != nil {
		return nil, nil, err
	}
	w := worker.New(tc, workflows.SigningTaskQueue, temporalclient.WorkerOptions())
	w.RegisterActivity(sa)
	return w, closeKeys, nil
}
