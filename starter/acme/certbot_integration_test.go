//go:build integration

package acme

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"certdesk/internal/dcv"
	"certdesk/internal/store"
)

// testOrders is an Orders backend for tests: real http-01 validation
// through internal/dcv (against a static server for the webroot), a
// throwaway CA for signing, revocations recorded in memory.
type testOrders struct {
	v      *dcv.Validator
	caKey  *ecdsa.PrivateKey
	caCert *x509.Certificate

	mu      sync.Mutex
	revoked map[string]int // serial hex → reason
}

func newTestOrders(t *testing.T, webrootAddr string) *testOrders {
	t.Helper()
	_, port, _ := net.SplitHostPort(webrootAddr)
	p, _ := strconv.Atoi(port)
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ACME test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, k.Public(), k)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(der)
	return &testOrders{
		v: &dcv.Validator{HTTPPort: p, DevNetworks: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
			// Every name of the test resolves to the webroot server.
			Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
				return (&net.Dialer{}).DialContext(ctx, network, webrootAddr)
			}},
		caKey: k, caCert: ca, revoked: map[string]int{},
	}
}

func (b *testOrders) Allow(_ context.Context, _ store.ACMEAccount, _ string, ids []store.ACMEIdentifier) error {
	for _, id := range ids {
		if strings.HasSuffix(id.Value, ".invalid") {
			return &Error{Status: http.StatusBadRequest, Type: "rejectedIdentifier", Detail: id.Value + " is not allowed"}
		}
	}
	return nil
}

func (b *testOrders) Validate(ctx context.Context, _ store.ACMEAccount, _ Challenge, method, domain, keyAuth string) error {
	return b.v.ValidateACME(ctx, method, domain, keyAuth)
}

func (b *testOrders) Issue(_ context.Context, _ store.ACMEAccount, o store.ACMEOrder, csr *x509.CertificateRequest) (string, *x509.Certificate, error) {
	serial, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	tmpl := &x509.Certificate{SerialNumber: serial, DNSNames: csr.DNSNames,
		NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, b.caCert, csr.PublicKey, b.caKey)
	if err != nil {
		return "", nil, err
	}
	leaf, _ := x509.ParseCertificate(der)
	chain := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})) +
		string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: b.caCert.Raw}))
	return chain, leaf, nil
}

func (b *testOrders) Revoke(_ context.Context, _ store.ACMEOrder, cert *x509.Certificate, reason int, _ bool) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := cert.SerialNumber.Text(16)
	if _, ok := b.revoked[s]; ok {
		return &Error{Status: http.StatusBadRequest, Type: "alreadyRevoked", Detail: "certificate is already revoked"}
	}
	b.revoked[s] = reason
	return nil
}

func (b *testOrders) reason(serialHex string) (int, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	r, ok := b.revoked[serialHex]
	return r, ok
}

// TestCertbot issues and revokes a certificate with Debian's certbot:
// EAB newAccount, newOrder, http-01 by --webroot (served by a static
// server our backend validates against), finalize, download, revoke.
func TestCertbot(t *testing.T) {
	if _, err := exec.LookPath("certbot"); err != nil {
		t.Fatal("certbot is not installed (scripts/deps.sh installs it)")
	}
	e := newEnv(t)
	webroot := t.TempDir()
	static := httptest.NewServer(http.FileServer(http.Dir(webroot)))
	defer static.Close()
	be := newTestOrders(t, static.Listener.Addr().String())
	// The ACME server of newEnv has no backend; this one does.
	srv := httptest.NewTLSServer(New(Deps{Store: e.st, Orders: be}))
	defer srv.Close()

	tmp := t.TempDir()
	bundle := filepath.Join(tmp, "ca.pem")
	if err := os.WriteFile(bundle, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	cred := e.eab(t)
	dir := srv.URL + "/acme/directory"
	common := []string{"--server", dir, "--config-dir", filepath.Join(tmp, "cfg"), "--work-dir", filepath.Join(tmp, "work"),
		"--logs-dir", filepath.Join(tmp, "logs"), "--non-interactive"}
	run := func(args ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "certbot", append(args, common...)...)
		cmd.Env = append(os.Environ(), "REQUESTS_CA_BUNDLE="+bundle)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("certbot %s: %v\n%s", args[0], err, out)
		}
		return string(out)
	}
	const name = "www.example.test"
	run("certonly", "--eab-kid", cred.KID, "--eab-hmac-key", b64(cred.HMACKey),
		"--webroot", "-w", webroot, "-d", name, "--agree-tos", "-m", "ops@example.test",
		"--key-type", "ecdsa", "--cert-name", "t1")

	certPath := filepath.Join(tmp, "cfg", "live", "t1", "cert.pem")
	raw, err := os.ReadFile(certPath)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(raw)
	if blk == nil {
		t.Fatal("certbot saved no certificate")
	}
	cert, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if len(cert.DNSNames) != 1 || cert.DNSNames[0] != name || cert.CheckSignatureFrom(be.caCert) != nil {
		t.Fatalf("certificate %v, not for %s from the test CA", cert.DNSNames, name)
	}
	chain, _ := os.ReadFile(filepath.Join(tmp, "cfg", "live", "t1", "chain.pem"))
	if cb, _ := pem.Decode(chain); cb == nil || string(cb.Bytes) != string(be.caCert.Raw) {
		t.Fatal("chain.pem is not the test CA")
	}
	// The account is bound to the reseller that made the EAB credential.
	if c, _ := e.st.GetEABCredential(bg, cred.KID); c.UsedAt == nil || c.AccountID == "" {
		t.Fatalf("EAB credential not spent: %+v", c)
	}

	// Revocation by the account key with a reason BR §7.2.2 allows.
	run("revoke", "--cert-path", certPath, "--reason", "superseded", "--no-delete-after-revoke")
	if r, ok := be.reason(cert.SerialNumber.Text(16)); !ok || r != 4 {
		t.Fatalf("revocation recorded %v %d, want superseded (4)", ok, r)
	}
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }
