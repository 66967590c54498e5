package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"go.temporal.io/sdk/client"

	"certdesk/internal/config"
	"certdesk/internal/store"
	"certdesk/starter/acme"
	"certdesk/starter/acmeorders"
)

// acmeServer is the ACME server (RFC 8555) on its own HTTPS listener,
// CERTDESK_ACME_ADDR, backed by the Application workflows
// (starter/acmeorders). Every piece of its state is in PostgreSQL and
// Temporal, so several starters can serve one address. Nil when no
// listener certificate is configured.
func acmeServer(cfg *config.Config, st *store.Store, tc client.Client, log *slog.Logger) (*http.Server, error) {
	if cfg.ACMETLSCert == "" && cfg.ACMETLSKey == "" {
		log.Info("ACME listener off: set CERTDESK_ACME_TLS_CERT and CERTDESK_ACME_TLS_KEY (make run: worker listener-cert)")
		return nil, nil
	}
	if cfg.ACMETLSCert == "" || cfg.ACMETLSKey == "" {
		return nil, errors.New("config: set both CERTDESK_ACME_TLS_CERT and CERTDESK_ACME_TLS_KEY, or neither")
	}
	pair, err := tls.LoadX509KeyPair(cfg.ACMETLSCert, cfg.ACMETLSKey)
	if err != nil {
		return nil, fmt.Errorf("ACME listener certificate: %w", err)
	}
	h := acme.New(acme.Deps{Store: st, Orders: &acmeorders.Backend{Temporal: tc, Store: st}})
	return &http.Server{
		Addr:              cfg.ACMEAddr,
		Handler:           h,
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12},
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
	}, nil
}

// serveACME runs srv until ctx ends; errors go to errc.
func serveACME(ctx context.Context, srv *http.Server, errc chan<- error, log *slog.Logger) {
	if srv == nil {
		return
	}
	go func() {
		if err := srv.ListenAndServeTLS("", ""); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errc <- fmt.Errorf("ACME listener on %s: %w", srv.Addr, err)
		}
	}()
	log.Info("ACME server listening", "directory", "https://"+srv.Addr+"/acme/directory")
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
	}()
}
