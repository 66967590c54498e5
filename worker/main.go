// Command worker runs CertDesk's Temporal workers.
//
//	worker                 storage, email and validation work on "certdesk"
//	worker -role signer    signing work on "certdesk-signing" (holds the CA keys)
//	worker -role all       both, for development
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"

	"certdesk/activities"
	"certdesk/internal/config"
	"certdesk/internal/db"
	"certdesk/internal/logging"
	"certdesk/internal/temporalclient"
	"certdesk/workflows"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "worker:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("worker", flag.ContinueOnError)
	role := fs.String("role", "worker", "worker, signer or all")
	if err := fs.Parse(args); err != nil {
		return err
	}
	switch *role {
	case "worker", "signer", "all":
	default:
		return fmt.Errorf("-role %q: must be worker, signer or all", *role)
	}
	cfg, err := config.Load()
	if err != nil {
		return err
	}
	log := logging.New("worker-"+*role, cfg.LogLevel)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	pool, err := db.Open(ctx, cfg.DatabaseURL)
	if err != nil {
		return err
	}
	defer pool.Close()
	if err := db.Migrate(ctx, pool, log); err != nil {
		return err
	}
	tc, err := temporalclient.New(cfg, log)
	if err != nil {
		return err
	}
	defer tc.Close()

	var workers []worker.Worker
	if *role == "worker" || *role == "all" {
		w := worker.New(tc, workflows.TaskQueue, worker.Options{})
		registerMain(w, &activities.Activities{DB: pool, Config: cfg, Log: log})
		workers = append(workers, w)
	}
	if *role == "signer" || *role == "all" {
		w, err := newSigningWorker(ctx, tc, cfg, pool, log)
		if err != nil {
			return err
		}
		workers = append(workers, w)
	}
	for _, w := range workers {
		if err := w.Start(); err != nil {
			return fmt.Errorf("start worker: %w", err)
		}
		defer w.Stop()
	}
	log.Info("worker started", "role", *role, "temporal", cfg.TemporalAddress, "namespace", cfg.TemporalNamespace)
	<-ctx.Done()
	log.Info("worker stopping")
	return nil
}

// registerMain registers every workflow and the storage/email activities.
func registerMain(w worker.Registry, a *activities.Activities) {
	w.RegisterWorkflow(workflows.SystemCheck)
	w.RegisterActivity(a)
}

var errNoSigner = errors.New("signer role: not available in this build")

func newSigningWorker(ctx context.Context, tc client.Client, cfg *config.Config, pool any, log *slog.Logger) (worker.Worker, error) {
	return nil, errNoSigner
}
