// Command worker runs CertDesk's Temporal workers.
//
//	worker                 storage, email and validation work on "certdesk"
//	worker -role signer    signing work on "certdesk-signing" (holds the CA keys)
//	worker -role all       both, for development
//	worker -role perspective -name NAME -rir RIR
//	                       a remote network perspective on
//	                       "certdesk-perspective-NAME" (BR §3.2.2.9): no
//	                       database, no keys, its own resolver
//	worker bootstrap-ca    create the development or production CA (key ceremony)
//	worker listener-cert -cert F -key F [-hosts 127.0.0.1,localhost]
//	                       a TLS certificate for a loopback development listener
//	                       (the starter's ACME listener under make run) from the TLS issuing CA
//	worker verify-audit    walk the audit hash chain; name the first broken row
//	worker rotate-keys     re-encrypt personal data under the newest key
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"go.temporal.io/sdk/worker"

	"certdesk/activities"
	"certdesk/internal/config"
	"certdesk/internal/db"
	"certdesk/internal/logging"
	"certdesk/internal/sdkmetrics"
	"certdesk/internal/temporalclient"
	"certdesk/workflows"
)

func main() {
	var err error
	cmd := ""
	if len(os.Args) > 1 {
		cmd = os.Args[1]
	}
	switch cmd {
	case "bootstrap-ca":
		err = bootstrapCA(os.Args[2:])
	case "listener-cert":
		err = listenerCert(os.Args[2:])
	case "verify-audit", "rotate-keys":
		var cfg *config.Config
		if cfg, err = config.Load(); err == nil {
			if cmd == "verify-audit" {
				err = verifyAudit(context.Background(), cfg, os.Stdout)
			} else {
				err = rotateKeys(context.Background(), cfg, os.Stdout)
			}
		}
	default:
		err = run(os.Args[1:])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "worker:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flagSet("worker")
	role := fs.String("role", "worker", "worker, signer, all or perspective")
	name := fs.String("name", "", "perspective: its name (task queue certdesk-perspective-NAME)")
	rir := fs.String("rir", "", "perspective: the Regional Internet Registry of its network (ARIN, RIPE, APNIC, LACNIC, AFRINIC)")
	metricsAddr := fs.String("metrics-addr", "127.0.0.1:9464", "where to serve /metrics (Temporal SDK worker metrics) and /healthz; empty: off")
	if err := fs.Parse(args); err != nil {
		return err
	}
	switch *role {
	case "worker", "signer", "all":
	case "perspective":
		return runPerspective(*name, *rir, *metricsAddr)
	default:
		return fmt.Errorf("-role %q: must be worker, signer, all or perspective", *role)
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
	st, bidx, err := activities.OpenStore(cfg, pool)
	if err != nil {
		return err
	}
	sdk := sdkmetrics.New("certdesk_")
	tc, err := temporalclient.NewWithMetrics(cfg, log, sdk.Handler())
	if err != nil {
		return err
	}
	defer tc.Close()
	if *metricsAddr != "" {
		stopMetrics, err := serveMetrics(*metricsAddr, sdk, log)
		if err != nil {
			return err
		}
		defer stopMetrics()
	}

	var workers []worker.Worker
	if *role == "worker" || *role == "all" {
		acts, err := activities.New(cfg, pool, st, bidx, log)
		if err != nil {
			return err
		}
		cta, err := activities.NewCT(cfg, st, log)
		if err != nil {
			return err
		}
		w := worker.New(tc, workflows.TaskQueue, temporalclient.WorkerOptions())
		registerMain(w, acts, cta)
		workers = append(workers, w)
	}
	if *role == "signer" || *role == "all" {
		w, closeKeys, err := newSigningWorker(ctx, tc, cfg, st, log)
		if err != nil {
			return err
		}
		defer closeKeys()
		workers = append(workers, w)
	}
	for _, w := range workers {
		if err := w.Start(); err != nil {
			return fmt.Errorf("start worker: %w", err)
		}
		defer w.Stop()
	}
	if *role == "worker" || *role == "all" {
		// The schedule is best effort at start-up: Temporal may still be
		// coming up; the next start tries again.
		if err := ensureCRLSchedule(ctx, tc, cfg, log); err != nil {
			log.Warn("CRL schedule not created", "error", err)
		}
	}
	log.Info("worker started", "role", *role, "temporal", cfg.TemporalAddress, "namespace", cfg.TemporalNamespace)
	<-ctx.Done()
	log.Info("worker stopping")
	return nil
}

// registerMain registers every workflow and the storage/email activities.
func registerMain(w worker.Registry, a *activities.Activities, cta *activities.CTActivities) {
	workflows.Register(w)
	w.RegisterActivity(a)
	if cta != nil {
		w.RegisterActivity(cta)
	}
}

// runPerspective runs one remote network perspective: a worker on its own
// task queue that repeats domain validation through this process's resolver
// and returns its determination. In a real deployment it runs in another
// region against the same Temporal cluster.
func runPerspective(name, rir, metricsAddr string) error {
	if _, ok := workflows.PerspectiveName(workflows.PerspectiveTaskQueue(name)); !ok || name == "" {
		return fmt.Errorf("-role perspective needs -name NAME and -rir RIR")
	}
	cfg, err := config.LoadPerspective()
	if err != nil {
		return err
	}
	p, err := activities.NewPerspective(cfg, name, rir)
	if err != nil {
		return err
	}
	log := logging.New("perspective-"+name, cfg.LogLevel)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	sdk := sdkmetrics.New("certdesk_")
	tc, err := temporalclient.NewWithMetrics(cfg, log, sdk.Handler())
	if err != nil {
		return err
	}
	defer tc.Close()
	if metricsAddr != "" {
		stopMetrics, err := serveMetrics(metricsAddr, sdk, log)
		if err != nil {
			return err
		}
		defer stopMetrics()
	}
	w := worker.New(tc, workflows.PerspectiveTaskQueue(name), temporalclient.WorkerOptions())
	workflows.RegisterPerspective(w, p)
	if err := w.Start(); err != nil {
		return fmt.Errorf("start perspective worker: %w", err)
	}
	defer w.Stop()
	log.Info("perspective started", "name", name, "rir", rir, "resolver", cfg.DCVResolver, "temporal", cfg.TemporalAddress)
	<-ctx.Done()
	return nil
}
