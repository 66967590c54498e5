package pki

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"os"
)

// KeyStoreConfig selects where the CA keys live; it maps one-to-one onto
// the signing worker's configuration. Exactly one of Dir and PKCS11 is set.
type KeyStoreConfig struct {
	// Dir holds encrypted PKCS#8 files <label>.key.pem (development).
	Dir string
	// Passphrase decrypts the files; from the caller's secret store.
	Passphrase []byte
	// PKCS11 selects a token (HSM in production, SoftHSM2 in tests).
	PKCS11 *PKCS11Config
}

// OpenKeyStore opens the configured key store. Close the returned closer
// when the worker stops (a no-op for files).
func OpenKeyStore(cfg KeyStoreConfig) (KeyStore, func() error, error) {
	switch {
	case cfg.Dir != "" && cfg.PKCS11 != nil:
		return nil, nil, errors.New("configure either a key directory or a PKCS#11 token, not both")
	case cfg.PKCS11 != nil:
		s, err := OpenPKCS11(*cfg.PKCS11)
		if err != nil {
			return nil, nil, err
		}
		return s, s.Close, nil
	case cfg.Dir != "":
		if len(cfg.Passphrase) == 0 {
			return nil, nil, errors.New("the key directory needs a passphrase (keys are stored encrypted)")
		}
		return &FileKeyStore{Dir: cfg.Dir, Passphrase: cfg.Passphrase}, func() error { return nil }, nil
	}
	return nil, nil, errors.New("no key store configured: set a key directory or a PKCS#11 token")
}

// SignerConfig names one key: an encrypted PKCS#8 PEM file, or a key label
// in a PKCS#11 token. The returned crypto.Signer is used the same way in
// both cases.
type SignerConfig struct {
	// KeyFile is the path of an ENCRYPTED PRIVATE KEY PEM file.
	KeyFile    string
	Passphrase []byte
	// PKCS11 and KeyLabel select a key pair in a token.
	PKCS11   *PKCS11Config
	KeyLabel string
}

// OpenSigner returns the configured key as a crypto.Signer and a closer
// to call when done.
func OpenSigner(ctx context.Context, cfg SignerConfig) (crypto.Signer, func() error, error) {
	switch {
	case cfg.KeyFile != "" && cfg.PKCS11 != nil:
		return nil, nil, errors.New("configure either a key file or a PKCS#11 key, not both")
	case cfg.KeyFile != "":
		data, err := os.ReadFile(cfg.KeyFile)
		if err != nil {
			return nil, nil, err
		}
		k, err := ParseEncryptedPKCS8PEM(data, cfg.Passphrase)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", cfg.KeyFile, err)
		}
		return k, func() error { return nil }, nil
	case cfg.PKCS11 != nil:
		s, err := OpenPKCS11(*cfg.PKCS11)
		if err != nil {
			return nil, nil, err
		}
		k, err := s.Load(ctx, cfg.KeyLabel)
		if err != nil {
			s.Close()
			return nil, nil, err
		}
		return k, s.Close, nil
	}
	return nil, nil, errors.New("no key configured: set a key file or a PKCS#11 token and key label")
}
