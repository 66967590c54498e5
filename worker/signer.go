package main

import (
	"context"
	"log/slog"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"

	"certdesk/activities"
	"certdesk/internal/config"
	"certdesk/internal/db"
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
	opts := temporalclient.WorkerOptions()
	// Signing is CPU-bound (two cores do not sign faster with more in
	// flight), and IssueCertificate holds one pooled connection for its
	// advisory lock while it needs another for its reads and writes: with
	// as many issuances in flight as the pool has connections, every one
	// waited for a second connection and none finished (seen in bench
	// scenario 1). Bounding in-flight signing work below half the pool keeps
	// connections free.
	opts.MaxConcurrentActivityExecutionSize = SigningConcurrency
	w := worker.New(tc, workflows.SigningTaskQueue, opts)
	w.RegisterActivity(sa)
	return w, closeKeys, nil
}

// SigningConcurrency is how many signing-queue activities one signing worker
// runs at once: below half of the database pool.
const SigningConcurrency = db.MaxOpenConns/2 - 2
