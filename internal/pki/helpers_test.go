package pki

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// Shared fixtures. Key generation is the slow part on 2 cores, so every key
// is made once per test binary and reused.

var (
	testPolicy = CAPolicy{
		// 32473 is the documentation PEN of RFC 5612.
		OID:    asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 32473, 1, 1},
		CPSURI: "https://pki.example.jp/repository/cps",
	}
	testURLs       = URLs{Base: "http://pki.example.jp"}
	testPassphrase = []byte("correct horse battery staple")
)

const testPBKDF2Iterations = 2048 // the openssl default; speed over strength in tests

type keyCache struct {
	mu   sync.Mutex
	keys map[string]crypto.Signer
}

var cache = keyCache{keys: map[string]crypto.Signer{}}

func (c *keyCache) get(t testing.TB, name string, gen func() (crypto.Signer, error)) crypto.Signer {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if k, ok := c.keys[name]; ok {
		return k
	}
	k, err := gen()
	if err != nil {
		t.Fatalf("generating %s: %v", name, err)
	}
	c.keys[name] = k
	return k
}

func rsaKey(t testing.TB, bits int) crypto.Signer {
	return cache.get(t, fmt.Sprintf("rsa-%d", bits), func() (crypto.Signer, error) { return rsa.GenerateKey(rand.Reader, bits) })
}

func ecKey(t testing.TB, c elliptic.Curve) crypto.Signer {
	return cache.get(t, c.Params().Name, func() (crypto.Signer, error) { return ecdsa.GenerateKey(c, rand.Reader) })
}

// freshECKey is not cached: blocked-key tests must not poison other tests.
func freshECKey(t testing.TB) crypto.Signer {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func makeCSR(t testing.TB, key crypto.Signer) []byte {
	t.Helper()
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		// Deliberately misleading subject: it must never reach a certificate.
		Subject:  pkix.Name{CommonName: "csr-subject-must-be-ignored.example.org", Organization: []string{"Unverified Org"}},
		DNSNames: []string{"unvalidated.example.org"},
	}, key)
	if err != nil {
		t.Fatalf("CreateCertificateRequest: %v", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
}

// File CA, bootstrapped once.
var (
	fileCAOnce sync.Once
	fileCA     *CA
	fileCAErr  error
	testRoot   string // temp dir removed by TestMain
)

func TestMain(m *testing.M) {
	d, err := os.MkdirTemp("", "pki-test-")
	if err != nil {
		panic(err)
	}
	testRoot = d
	code := m.Run()
	os.RemoveAll(d)
	os.Exit(code)
}

func getFileCA(t testing.TB) *CA {
	t.Helper()
	fileCAOnce.Do(func() {
		dir := filepath.Join(testRoot, "file-ca")
		fileCA, fileCAErr = Bootstrap(context.Background(), BootstrapConfig{
			Dir:          dir,
			Keys:         &FileKeyStore{Dir: filepath.Join(dir, "keys"), Passphrase: testPassphrase, Iterations: testPBKDF2Iterations},
			Organization: "CertDesk Test CA KK",
			Country:      "JP",
			URLs:         testURLs,
			Policy:       testPolicy,
			Issuers: []IssuerSpec{
				{ID: "tls-1", CommonName: "CertDesk Test TLS CA 1", Purpose: PurposeTLSServer, KeyAlgorithm: ECDSAP256, CRLShards: 4},
				{ID: "client-1", CommonName: "CertDesk Test Client CA 1", Purpose: PurposeClientSign, KeyAlgorithm: ECDSAP384, CRLShards: 4},
			},
		})
	})
	if fileCAErr != nil {
		t.Fatalf("bootstrap: %v", fileCAErr)
	}
	return fileCA
}

// openssl runs the real openssl binary in dir and returns its combined
// output; it fails the test when openssl exits non-zero.
func openssl(t testing.TB, dir string, args ...string) string {
	t.Helper()
	out, err := opensslErr(dir, args...)
	if err != nil {
		t.Fatalf("openssl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func opensslErr(dir string, args ...string) (string, error) {
	cmd := exec.Command("openssl", args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func writeFile(t testing.TB, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

var serialMu sync.Mutex

func serial(t testing.TB) *big.Int {
	t.Helper()
	serialMu.Lock()
	defer serialMu.Unlock()
	s, err := NewSerial()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func now() time.Time { return time.Now().UTC().Truncate(time.Second) }
