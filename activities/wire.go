package activities

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/jmoiron/sqlx"

	"certdesk/internal/config"
	"certdesk/internal/dcv"
	"certdesk/internal/mailer"
	"certdesk/internal/pii"
	"certdesk/internal/pki"
	"certdesk/internal/registry"
	"certdesk/internal/store"
)

// OpenStore builds the repository with the personal-data keys from cfg.
func OpenStore(cfg *config.Config, pool *sqlx.DB) (*store.Store, *pii.BlindIndex, error) {
	ring, err := pii.ParseKeyRing(cfg.PIIKeys)
	if err != nil {
		return nil, nil, fmt.Errorf("config: CERTDESK_PII_KEYS: %w", err)
	}
	bidx, err := pii.ParseBlindIndexKey(cfg.BlindIndexKey)
	if err != nil {
		return nil, nil, fmt.Errorf("config: CERTDESK_BLIND_INDEX_KEY: %w", err)
	}
	return store.New(pool, ring, bidx), bidx, nil
}

// New wires the storage, email and validation activities from cfg. The
// worker and the integration tests build them the same way. pool is not
// used any more (every query goes through st); it stays for the callers.
func New(cfg *config.Config, _ *sqlx.DB, st *store.Store, bidx *pii.BlindIndex, log *slog.Logger) (*Activities, error) {
	sender, err := mailer.NewSender(mailer.FromConfig(cfg))
	if err != nil {
		return nil, fmt.Errorf("mailer: %w", err)
	}
	profiles, err := pki.NewProfileSet(pki.ProfileOptions{})
	if err != nil {
		return nil, err
	}
	validator := &dcv.Validator{HTTPPort: cfg.DCVHTTPPort, Resolver: cfg.DCVResolver, DevNetworks: cfg.DCVDevNetworks}
	if err := validator.Check(); err != nil {
		return nil, err
	}
	a := &Activities{
		Store: st, Outbox: mailer.NewOutbox(sender, st), Config: cfg, Log: log,
		DCV: validator, CAA: NewCAAChecker(cfg), Profiles: profiles, BlindIndex: bidx,
	}
	if cfg.RegistryFile != "" {
		reg, err := registry.LoadFile(cfg.RegistryFile)
		if err != nil {
			return nil, err
		}
		a.Registry = reg
	}
	return a, nil
}

// KeyStore opens where the CA keys live: a PKCS#11 token when a module is
// configured, encrypted PKCS#8 files in the CA directory otherwise.
func KeyStore(cfg *config.Config) (pki.KeyStore, func(), error) {
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

// NewSigning loads the CA from cfg for the signing activities. Only the
// signing worker calls it: it opens the CA keys.
func NewSigning(ctx context.Context, cfg *config.Config, st *store.Store, log *slog.Logger) (*SigningActivities, func(), error) {
	ks, closeKeys, err := KeyStore(cfg)
	if err != nil {
		return nil, nil, err
	}
	ca, err := pki.LoadCA(ctx, cfg.CADir, ks, pki.LoadOptions{Blocked: BlockedKeys(st)})
	if err != nil {
		closeKeys()
		return nil, nil, fmt.Errorf("load CA from %s: %w", cfg.CADir, err)
	}
	logs, err := LoadCTLogs(cfg.CTLogList, cfg.CTPolicy)
	if err != nil {
		closeKeys()
		return nil, nil, fmt.Errorf("CT log list: %w", err)
	}
	if logs == nil {
		log.Warn("no CT log list (CERTDESK_CT_LOG_LIST): TLS certificates will not be issued")
	}
	return &SigningActivities{CA: ca, Store: st, Log: log, Keys: ks, CT: logs}, closeKeys, nil
}
