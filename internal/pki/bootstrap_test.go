package pki

import (
	"context"
	"crypto/x509"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// checkCAFiles lints every CA certificate with the full zlint registry and
// has openssl verify the chain.
func checkCAFiles(t *testing.T, ca *CA) {
	t.Helper()
	dir := ca.Dir()
	root := filepath.Join(dir, "root.pem")
	if bad := lintErrors(t, ca.Root.Raw); len(bad) > 0 {
		t.Errorf("root zlint: %v", bad)
	}
	if w := lintWarnings(t, ca.Root.Raw); len(w) > 0 {
		t.Logf("root zlint warnings: %v", w)
	}
	out := openssl(t, dir, "verify", "-x509_strict", "-CAfile", root, root)
	if !strings.Contains(out, ": OK") {
		t.Errorf("root: %s", out)
	}
	for _, iss := range ca.Issuers() {
		c := iss.Certificate()
		if bad := lintErrors(t, c.Raw); len(bad) > 0 {
			t.Errorf("%s zlint: %v", iss.ID(), bad)
		}
		if w := lintWarnings(t, c.Raw); len(w) > 0 {
			t.Logf("%s zlint warnings: %v", iss.ID(), w)
		}
		if !c.IsCA || c.MaxPathLen != 0 || !c.MaxPathLenZero || c.CheckSignatureFrom(ca.Root) != nil {
			t.Errorf("%s: not a pathlen-0 CA under the root", iss.ID())
		}
		if len(c.CRLDistributionPoints) != 1 || c.CRLDistributionPoints[0] != testURLs.CRL("root", 0) {
			t.Errorf("%s: CRL DP %v", iss.ID(), c.CRLDistributionPoints)
		}
		out := openssl(t, dir, "verify", "-x509_strict", "-CAfile", root, filepath.Join(dir, iss.ID()+".pem"))
		if !strings.Contains(out, ": OK") {
			t.Errorf("%s: %s", iss.ID(), out)
		}
		r, ok := ca.Responder(iss.ID())
		if !ok {
			t.Fatalf("%s: no OCSP responder", iss.ID())
		}
		rf := writeFile(t, t.TempDir(), "responder.pem", pemCert(r.Certificate().Raw))
		out = openssl(t, dir, "verify", "-x509_strict", "-purpose", "ocsphelper", "-CAfile", root, "-untrusted", filepath.Join(dir, iss.ID()+".pem"), rf)
		if !strings.Contains(out, ": OK") {
			t.Errorf("%s responder: %s", iss.ID(), out)
		}
		if !slices.Equal(r.Certificate().ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageOCSPSigning}) {
			t.Errorf("%s responder EKU %v", iss.ID(), r.Certificate().ExtKeyUsage)
		}
	}
}

func TestBootstrapFileCA(t *testing.T) {
	ca := getFileCA(t)
	checkCAFiles(t, ca)
	if alg, _ := publicKeyAlgorithm(ca.Root.PublicKey); alg != ECDSAP384 {
		t.Errorf("root key %s", alg)
	}
	if ca.Root.SignatureAlgorithm != x509.ECDSAWithSHA384 {
		t.Errorf("root signature %v", ca.Root.SignatureAlgorithm)
	}
	// Keys are encrypted files only.
	entries, _ := os.ReadDir(filepath.Join(ca.Dir(), "keys"))
	for _, e := range entries {
		data, _ := os.ReadFile(filepath.Join(ca.Dir(), "keys", e.Name()))
		if !strings.Contains(string(data), "ENCRYPTED PRIVATE KEY") {
			t.Errorf("%s is not encrypted", e.Name())
		}
	}
	if len(entries) != 6 { // root, 2 issuers, 2 responders, document signer
		t.Errorf("%d key files", len(entries))
	}
	// A second bootstrap into the same directory is refused.
	_, err := Bootstrap(context.Background(), BootstrapConfig{Dir: ca.Dir(), Keys: &FileKeyStore{Dir: t.TempDir(), Passphrase: testPassphrase},
		Organization: "X", Country: "JP", URLs: testURLs, Policy: testPolicy})
	if err == nil || !strings.Contains(err.Error(), "already holds a CA") {
		t.Errorf("re-bootstrap: %v", err)
	}
	// The directory alone (plus the key store) is enough to load the CA.
	loaded, err := LoadCA(context.Background(), ca.Dir(), &FileKeyStore{Dir: filepath.Join(ca.Dir(), "keys"), Passphrase: testPassphrase}, LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(loaded.Issuers()) != 2 || loaded.DocumentSigner() == nil || loaded.RootIssuer != nil {
		t.Error("LoadCA incomplete or loaded the root key without being asked")
	}
	if _, err := LoadCA(context.Background(), ca.Dir(), &FileKeyStore{Dir: filepath.Join(ca.Dir(), "keys"), Passphrase: []byte("wrong")}, LoadOptions{}); err == nil {
		t.Error("wrong passphrase loaded the CA")
	}
}

func TestBootstrapRSARoot(t *testing.T) {
	if testing.Short() {
		t.Skip("RSA-3072 key generation")
	}
	dir := filepath.Join(t.TempDir(), "ca")
	ca, err := Bootstrap(context.Background(), BootstrapConfig{
		Dir: dir, Keys: &FileKeyStore{Dir: filepath.Join(dir, "keys"), Passphrase: testPassphrase, Iterations: testPBKDF2Iterations},
		Organization: "RSA Root Test KK", Country: "JP", URLs: testURLs, Policy: testPolicy,
		RootKeyAlgorithm: RSA3072,
		Issuers: []IssuerSpec{
			{ID: "tls-r", Purpose: PurposeTLSServer, KeyAlgorithm: ECDSAP384},
			{ID: "client-r", Purpose: PurposeClientSign, KeyAlgorithm: ECDSAP256},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	checkCAFiles(t, ca)
	if ca.Root.SignatureAlgorithm != x509.SHA256WithRSA {
		t.Errorf("root signature %v", ca.Root.SignatureAlgorithm)
	}
	checkIssued(t, ca, t.TempDir(), issueAll(t, ca))
	checkDocumentSigner(t, ca, t.TempDir())
}

func TestBootstrapRefusesBadConfig(t *testing.T) {
	base := BootstrapConfig{Dir: t.TempDir(), Keys: &FileKeyStore{Dir: t.TempDir(), Passphrase: testPassphrase}, Organization: "X", Country: "JP", URLs: testURLs, Policy: testPolicy}
	for name, mod := range map[string]func(*BootstrapConfig){
		"root P-256":    func(c *BootstrapConfig) { c.RootKeyAlgorithm = ECDSAP256 },
		"https base":    func(c *BootstrapConfig) { c.URLs = URLs{Base: "https://pki.example.jp"} },
		"no policy OID": func(c *BootstrapConfig) { c.Policy.OID = nil },
		"ftp CPS":       func(c *BootstrapConfig) { c.Policy.CPSURI = "ftp://x/cps" },
		"bad country":   func(c *BootstrapConfig) { c.Country = "Japan" },
		"bad purpose":   func(c *BootstrapConfig) { c.Issuers = []IssuerSpec{{ID: "x", Purpose: PurposeOCSPResponder}} },
		"dup issuer":    func(c *BootstrapConfig) { c.Issuers = []IssuerSpec{{ID: "root", Purpose: PurposeTLSServer}} },
	} {
		c := base
		c.Dir = filepath.Join(t.TempDir(), "ca")
		mod(&c)
		if _, err := Bootstrap(context.Background(), c); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
