package pki

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"

	"certdesk/internal/pki/goodkey"
)

// KeyAlgorithm names a CA key type.
type KeyAlgorithm string

// CA key algorithms. Roots use ECDSAP384 or RSA3072/RSA4096; issuing CAs
// may also use ECDSAP256 or RSA2048; OCSP responders always use ECDSAP256
// (fast signing, see DESIGN performance notes).
const (
	ECDSAP256 KeyAlgorithm = "ecdsa-p256"
	ECDSAP384 KeyAlgorithm = "ecdsa-p384"
	RSA2048   KeyAlgorithm = "rsa-2048"
	RSA3072   KeyAlgorithm = "rsa-3072"
	RSA4096   KeyAlgorithm = "rsa-4096"
)

func (a KeyAlgorithm) rsaBits() int {
	switch a {
	case RSA2048:
		return 2048
	case RSA3072:
		return 3072
	case RSA4096:
		return 4096
	}
	return 0
}

func (a KeyAlgorithm) curve() elliptic.Curve {
	switch a {
	case ECDSAP256:
		return elliptic.P256()
	case ECDSAP384:
		return elliptic.P384()
	}
	return nil
}

func (a KeyAlgorithm) valid() bool { return a.rsaBits() != 0 || a.curve() != nil }

// generateSoftwareKey makes a key in memory (file key store, throwaway lint
// keys).
func generateSoftwareKey(a KeyAlgorithm) (crypto.Signer, error) {
	if c := a.curve(); c != nil {
		return ecdsa.GenerateKey(c, rand.Reader)
	}
	if b := a.rsaBits(); b != 0 {
		return rsa.GenerateKey(rand.Reader, b)
	}
	return nil, fmt.Errorf("unknown key algorithm %q; use one of ecdsa-p256, ecdsa-p384, rsa-2048, rsa-3072, rsa-4096", a)
}

// KeyStore creates and loads CA private keys by label. The signing code
// path only ever sees the crypto.Signer, so a file key and a PKCS#11 key
// are used identically.
type KeyStore interface {
	// Generate creates a new key pair under label. It refuses to replace an
	// existing key, because losing a CA key cannot be undone.
	Generate(ctx context.Context, label string, alg KeyAlgorithm) (crypto.Signer, error)
	// Load returns the key stored under label.
	Load(ctx context.Context, label string) (crypto.Signer, error)
}

// labelPattern keeps labels usable as file names and PKCS#11 labels.
var labelPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,62}$`)

func checkLabel(label string) error {
	if !labelPattern.MatchString(label) {
		return fmt.Errorf("key label %q: use 1-63 characters a-z 0-9 . _ -", label)
	}
	return nil
}

// FileKeyStore keeps each key as an encrypted PKCS#8 PEM file
// Dir/<label>.key.pem (mode 0600), for development and small deployments.
type FileKeyStore struct {
	Dir        string
	Passphrase []byte
	// Iterations is the PBKDF2 count for new files; 0 means
	// DefaultPBKDF2Iterations. Tests lower it.
	Iterations int
}

// KeyPath returns the file that holds label.
func (s *FileKeyStore) KeyPath(label string) string {
	return filepath.Join(s.Dir, label+".key.pem")
}

// Generate implements KeyStore.
func (s *FileKeyStore) Generate(_ context.Context, label string, alg KeyAlgorithm) (crypto.Signer, error) {
	if err := checkLabel(label); err != nil {
		return nil, err
	}
	key, err := generateSoftwareKey(alg)
	if err != nil {
		return nil, err
	}
	data, err := MarshalEncryptedPKCS8PEM(key, s.Passphrase, s.Iterations)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(s.Dir, 0o700); err != nil {
		return nil, err
	}
	// O_EXCL: never overwrite a CA key.
	f, err := os.OpenFile(s.KeyPath(label), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("key %q already exists at %s; choose another label or move the old key away", label, s.KeyPath(label))
	}
	if err != nil {
		return nil, err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return nil, err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return nil, err
	}
	return key, f.Close()
}

// Load implements KeyStore.
func (s *FileKeyStore) Load(_ context.Context, label string) (crypto.Signer, error) {
	if err := checkLabel(label); err != nil {
		return nil, err
	}
	data, err := os.ReadFile(s.KeyPath(label))
	if err != nil {
		return nil, fmt.Errorf("reading CA key %q: %w", label, err)
	}
	k, err := ParseEncryptedPKCS8PEM(data, s.Passphrase)
	if err != nil {
		return nil, fmt.Errorf("CA key %q (%s): %w", label, s.KeyPath(label), err)
	}
	return k, nil
}

// SPKISHA256 returns the SHA-256 of the DER SubjectPublicKeyInfo of pub, the
// key identifier used by BlockedKeys and key-compromise revocation.
func SPKISHA256(pub crypto.PublicKey) ([32]byte, error) { return goodkey.SPKISHA256(pub) }

// publicKeyAlgorithm describes a public key as a KeyAlgorithm.
func publicKeyAlgorithm(pub crypto.PublicKey) (KeyAlgorithm, error) {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256():
			return ECDSAP256, nil
		case elliptic.P384():
			return ECDSAP384, nil
		}
	case *rsa.PublicKey:
		switch k.N.BitLen() {
		case 2048:
			return RSA2048, nil
		case 3072:
			return RSA3072, nil
		case 4096:
			return RSA4096, nil
		}
	}
	return "", fmt.Errorf("unsupported CA key %T", pub)
}
