package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"

	"certdesk/activities"
	"certdesk/internal/config"
	"certdesk/internal/pki"
	"certdesk/internal/store"
	"certdesk/workflows"
)

// keyStore opens where the CA keys live: a PKCS#11 token when a module is
// configured, encrypted PKCS#8 files in the CA directory otherwise.
func keyStore(cfg *config.Config) (pki.KeyStore, func(), error) {
	if cfg.PKCS11Module != "" {
		ks, err := pki.OpenPKCS11(pki.PKCS11Config{Module: cfg.PKCS11Module, TokenLabel: cfg.PKCS11Token, PIN: cfg.PKCS11PIN})
		if err != nil {
			return nil, nil, fmt.Errorf("PKCS#11 token %q: %w", cfg.PKCS11Token, err)
		}
		return ks, func() { _ = ks.Close() }, nil
	}
	if cfg.CAPassphrase == "" {
		return nil, nil, errors.New("config: CERTDESK_CA_PASSPHRASE is not set (the signer needs it to open the CA key files, or set CERTDESK_PKCS11_MODULE)")
	}
	return &pki.FileKeyStore{Dir: cfg.CADir, Passphrase: []byte(cfg.CAPassphrase)}, func() {}, nil
}

// newSigningWorker loads the CA and serves the signing queue. Only this
// process opens the CA keys.
func newSigningWorker(ctx context.Context, tc client.Client, cfg *config.Config, st *store.Store, log *slog.Logger) (worker.Worker, func(), error) {
	ks, closeKeys, err := keyStore(cfg)
	if err != nil {
		return nil, nil, err
	}
	ca, err := pki.LoadCA(ctx, cfg.CADir, ks, pki.LoadOptions{Blocked: activities.BlockedKeys(st)})
	if err != nil {
		closeKeys()
		return nil, nil, fmt.Errorf("load CA from %s: %w", cfg.CADir, err)
	}
	w := worker.New(tc, workflows.SigningTaskQueue, worker.Options{})
	w.RegisterActivity(&activities.SigningActivities{CA: ca, Store: st, Log: log})
	return w, closeKeys, nil
}
