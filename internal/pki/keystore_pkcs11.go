package pki

import (
	"context"
	"crypto"
	"crypto/rand"
	"errors"
	"fmt"
	"os"

	"github.com/ThalesGroup/crypto11"
)

// PKCS11Config locates a token. The PIN comes from the caller's secret
// store; it is never logged.
type PKCS11Config struct {
	// Module is the path of the PKCS#11 library, for example
	// /usr/lib/softhsm/libsofthsm2.so.
	Module string
	// TokenLabel selects the token.
	TokenLabel string
	// PIN is the user PIN.
	PIN string
	// MaxSessions bounds concurrent signing sessions; 0 means crypto11's
	// default.
	MaxSessions int
}

// PKCS11KeyStore keeps CA keys inside a PKCS#11 token (an HSM in production,
// SoftHSM2 in tests). Keys are generated on the token, non-extractable; the
// signer returned is crypto11's, so signing happens on the token.
type PKCS11KeyStore struct {
	ctx *crypto11.Context
}

// OpenPKCS11 logs into the token. Close it when the worker stops.
func OpenPKCS11(cfg PKCS11Config) (*PKCS11KeyStore, error) {
	if _, err := os.Stat(cfg.Module); err != nil {
		return nil, fmt.Errorf("PKCS#11 module %s not usable (%v); install the vendor library (for SoftHSM2: apt-get install softhsm2) or fix the module path", cfg.Module, err)
	}
	if cfg.TokenLabel == "" {
		return nil, errors.New("PKCS#11 token label is empty; set it to the label given at token initialisation")
	}
	c, err := crypto11.Configure(&crypto11.Config{
		Path:        cfg.Module,
		TokenLabel:  cfg.TokenLabel,
		Pin:         cfg.PIN,
		MaxSessions: cfg.MaxSessions,
	})
	if err != nil {
		// crypto11's errors do not contain the PIN.
		return nil, fmt.Errorf("opening PKCS#11 token %q with %s: %w (check the token label, the PIN and SOFTHSM2_CONF for SoftHSM2)", cfg.TokenLabel, cfg.Module, err)
	}
	return &PKCS11KeyStore{ctx: c}, nil
}

// Close logs out and releases the module.
func (s *PKCS11KeyStore) Close() error { return s.ctx.Close() }

// Generate implements KeyStore. The key gets a random CKA_ID (crypto11 needs
// one to pair private and public objects) and CKA_LABEL = label.
func (s *PKCS11KeyStore) Generate(_ context.Context, label string, alg KeyAlgorithm) (crypto.Signer, error) {
	if err := checkLabel(label); err != nil {
		return nil, err
	}
	existing, err := s.ctx.FindKeyPairs(nil, []byte(label))
	if err != nil {
		return nil, fmt.Errorf("looking for key %q in token: %w", label, err)
	}
	if len(existing) > 0 {
		return nil, fmt.Errorf("token already holds a key labelled %q; choose another label (keys are never overwritten)", label)
	}
	id := make([]byte, 16)
	if _, err := rand.Read(id); err != nil {
		return nil, err
	}
	var k crypto.Signer
	switch {
	case alg.curve() != nil:
		k, err = s.ctx.GenerateECDSAKeyPairWithLabel(id, []byte(label), alg.curve())
	case alg.rsaBits() != 0:
		k, err = s.ctx.GenerateRSAKeyPairWithLabel(id, []byte(label), alg.rsaBits())
	default:
		return nil, fmt.Errorf("unknown key algorithm %q", alg)
	}
	if err != nil {
		return nil, fmt.Errorf("generating %s key %q on the token: %w", alg, label, err)
	}
	return k, nil
}

// Load implements KeyStore.
func (s *PKCS11KeyStore) Load(_ context.Context, label string) (crypto.Signer, error) {
	keys, err := s.ctx.FindKeyPairs(nil, []byte(label))
	if err != nil {
		return nil, fmt.Errorf("looking for key %q in token: %w", label, err)
	}
	switch len(keys) {
	case 0:
		return nil, fmt.Errorf("token holds no key pair labelled %q; run the bootstrap against this token or fix the label", label)
	case 1:
		return keys[0], nil
	default:
		return nil, fmt.Errorf("token holds %d key pairs labelled %q; remove the duplicates so the CA key is unambiguous", len(keys), label)
	}
}
