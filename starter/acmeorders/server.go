package acmeorders

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"time"

	"go.temporal.io/sdk/client"

	"certdesk/internal/config"
	"certdesk/internal/store"
	"certdesk/starter/acme"
)

// NewServer is the ACME server (RFC 8555) on its own HTTPS listener,
// cfg.ACMEAddr, with the certificate of cfg.ACMETLSCert/ACMETLSKey, backed
// by the Application workflows. Every piece of its state is in PostgreSQL
// and Temporal, so several starters can serve one address. Nil, nil when
// no listener certificate is configured (the listener is off).
func NewServer(cfg *config.Config, st *store.Store, tc client.Client) (*http.Server, error) {
	if cfg.ACMETLSCert == "" && cfg.ACMETLSKey == "" {
		return nil, nil
	}
	if cfg.ACMETLSCert == "" || cfg.ACMETLSKey == "" {
		return nil, errors.New("config: set both CERTDESK_ACME_TLS_CERT and CERTDESK_ACME_TLS_KEY, or neither")
	}
	pair, err := tls.LoadX509KeyPair(cfg.ACMETLSCert, cfg.ACMETLSKey)
	if err != nil {
		return nil, fmt.Errorf("ACME listener certificate: %w", err)
	}
	return &http.Server{
		Addr:              cfg.ACMEAddr,
		Handler:           acme.New(acme.Deps{Store: st, Orders: &Backend{Temporal: tc, Store: st}}),
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12},
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
	}, nil
}
