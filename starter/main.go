// Command starter is CertDesk's front door: the reseller and public HTTP API,
// the CA repository (CRL, OCSP, CA certificates), health and metrics, and the
// operator subcommands.
//
//	starter            serve HTTP on CERTDESK_HTTP_ADDR
//	starter migrate    apply database migrations and exit
//	starter healthcheck  exit 0 when this host's starter answers /readyz with 200
//	starter config     print the configuration variables as a Markdown table
package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"certdesk/internal/config"
	"certdesk/internal/db"
	"certdesk/internal/logging"
	"certdesk/internal/temporalclient"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "starter:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	cmd := "serve"
	if len(args) > 0 {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "serve":
		return serve()
	case "migrate":
		return migrate()
	case "healthcheck":
		return healthcheck()
	case "config":
		fmt.Print(config.Markdown())
		return nil
	default:
		return fmt.Errorf("unknown command %q (serve, migrate, healthcheck, config)", cmd)
	}
}

func migrate() error {
	cfg, err := config.Load()
	if err != nil {
		return err
	}
	log := logging.New("starter", cfg.LogLevel)
	ctx := context.Background()
	pool, err := db.Open(ctx, cfg.DatabaseURL)
	if err != nil {
		return err
	}
	defer pool.Close()
	return db.Migrate(ctx, pool, log)
}

func serve() error {
	cfg, err := config.Load()
	if err != nil {
		return err
	}
	log := logging.New("starter", cfg.LogLevel)
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

	srv := &http.Server{
		Addr:              cfg.HTTPAddr,
		Handler:           newServer(cfg, pool, tc, log).routes(),
		ReadHeaderTimeout: 10 * time.Second,
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	log.Info("starter listening", "addr", cfg.HTTPAddr)
	select {
	case err := <-errc:
		if !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("listen on %s: %w", cfg.HTTPAddr, err)
		}
	case <-ctx.Done():
		shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
	}
	return nil
}

// healthcheck probes the local starter, for container health checks where no
// curl is installed.
func healthcheck() error {
	cfg, err := config.Load()
	if err != nil {
		return err
	}
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + cfg.HTTPAddr + "/readyz")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("readyz: %s", resp.Status)
	}
	return nil
}
