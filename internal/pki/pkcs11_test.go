package pki

import (
	"context"
	"crypto/ecdsa"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

const softHSMModule = "/usr/lib/softhsm/libsofthsm2.so"

var (
	softHSMOnce sync.Once
	softHSMCfg  PKCS11Config
	softHSMSkip string // SoftHSM2 cannot be had here: skip, saying why
	softHSMErr  string // SoftHSM2 is here but does not work: fail
)

// softHSM makes one SoftHSM2 token for the whole test binary: the PKCS#11
// module reads SOFTHSM2_CONF once, when it is first initialised. `make test`
// installs SoftHSM2 when it can (scripts/deps.sh), so the tests skip only
// where it is not installed; a token that cannot be made is a failure.
func softHSM(t *testing.T) PKCS11Config {
	t.Helper()
	if os.Getenv("CERTDESK_SKIP_PKCS11") == "1" {
		t.Skip("CERTDESK_SKIP_PKCS11=1")
	}
	softHSMOnce.Do(func() {
		const install = ": `make test` installs it when run as root with apt-get (scripts/deps.sh); else run `apt-get install softhsm2`"
		if _, err := os.Stat(softHSMModule); err != nil {
			softHSMSkip = "SoftHSM2 is not installed (" + softHSMModule + " missing), so the PKCS#11 key store is not tested" + install
			return
		}
		util, err := exec.LookPath("softhsm2-util")
		if err != nil {
			softHSMSkip = "softhsm2-util is not installed, so the PKCS#11 key store is not tested" + install
			return
		}
		dir := filepath.Join(testRoot, "softhsm")
		tokens := filepath.Join(dir, "tokens")
		if err := os.MkdirAll(tokens, 0o700); err != nil {
			softHSMErr = err.Error()
			return
		}
		conf := filepath.Join(dir, "softhsm2.conf")
		if err := os.WriteFile(conf, []byte("directories.tokendir = "+tokens+"\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n"), 0o600); err != nil {
			softHSMErr = err.Error()
			return
		}
		// Set for this process (the module is loaded in-process) and for
		// softhsm2-util.
		os.Setenv("SOFTHSM2_CONF", conf)
		softHSMCfg = PKCS11Config{Module: softHSMModule, TokenLabel: "certdesk-test", PIN: "5678"}
		out, err := exec.Command(util, "--init-token", "--free", "--label", softHSMCfg.TokenLabel, "--so-pin", "1234", "--pin", softHSMCfg.PIN).CombinedOutput()
		if err != nil {
			softHSMErr = "softhsm2-util --init-token: " + err.Error() + ": " + string(out)
		}
	})
	if softHSMSkip != "" {
		t.Skip(softHSMSkip)
	}
	if softHSMErr != "" {
		t.Fatal(softHSMErr)
	}
	return softHSMCfg
}

func TestPKCS11(t *testing.T) {
	cfg := softHSM(t)
	ctx := context.Background()
	store, err := OpenPKCS11(cfg)
	if err != nil {
		t.Fatal(err)
	}

	dir := filepath.Join(t.TempDir(), "hsm-ca")
	ca, err := Bootstrap(ctx, BootstrapConfig{
		Dir: dir, Keys: store, Organization: "CertDesk HSM Test KK", Country: "JP", URLs: testURLs, Policy: testPolicy,
		Issuers: []IssuerSpec{
			{ID: "tls-h", Purpose: PurposeTLSServer, KeyAlgorithm: ECDSAP384, CRLShards: 2},
			{ID: "client-h", Purpose: PurposeClientSign, KeyAlgorithm: ECDSAP256, CRLShards: 2},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	// No key material on disk: only certificates and the manifest.
	files, _ := os.ReadDir(dir)
	for _, f := range files {
		if strings.Contains(f.Name(), "key") {
			t.Errorf("key file %s written in PKCS#11 mode", f.Name())
		}
	}
	// The signers are the token's, not software keys.
	tls, _ := ca.Issuer("tls-h")
	if _, soft := tls.signer.(*ecdsa.PrivateKey); soft {
		t.Fatal("issuer key is a software key")
	}
	checkCAFiles(t, ca)

	// Same issuance path and checks as with file keys.
	checkIssued(t, ca, t.TempDir(), issueAll(t, ca))
	checkDocumentSigner(t, ca, t.TempDir())

	// CRL and OCSP with token keys.
	c := issueDV(t, tls, 1)[0]
	der, err := tls.CRL(ctx, &CRLRequest{Shard: c.Shard, Number: big.NewInt(1), ThisUpdate: now(),
		Entries: []CRLEntry{{Serial: c.Cert.SerialNumber, RevokedAt: now(), Reason: ReasonKeyCompromise}}})
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	out := openssl(t, tmp, "crl", "-inform", "DER", "-in", writeFile(t, tmp, "s.crl", der), "-CAfile", filepath.Join(dir, "tls-h-chain.pem"), "-noout")
	if !strings.Contains(out, "verify OK") {
		t.Errorf("openssl crl: %s", out)
	}
	resp, _ := ca.Responder("tls-h")
	s, err := resp.Sign(CertStatus{Serial: c.Cert.SerialNumber, Revoked: true, RevokedAt: now(), Reason: ReasonKeyCompromise}, now())
	if err != nil {
		t.Fatal(err)
	}
	leaf := writeFile(t, tmp, "leaf.pem", pemCert(c.DER))
	out = openssl(t, tmp, "ocsp", "-respin", writeFile(t, tmp, "r.der", s.DER), "-issuer", filepath.Join(dir, "tls-h.pem"), "-cert", leaf,
		"-no_nonce", "-CAfile", filepath.Join(dir, "root.pem"), "-verify_other", filepath.Join(dir, "tls-h.pem"))
	if !strings.Contains(out, "Response verify OK") || !strings.Contains(out, "Reason: keyCompromise") {
		t.Errorf("openssl ocsp: %s", out)
	}

	// A signing worker restarting: load from the directory and the token.
	loaded, err := LoadCA(ctx, dir, store, LoadOptions{RootKey: true})
	if err != nil {
		t.Fatal(err)
	}
	checkIssued(t, loaded, t.TempDir(), issueAll(t, loaded))
	// Keys are never replaced.
	if _, err := store.Generate(ctx, "tls-h", ECDSAP256); err == nil {
		t.Error("token key overwritten")
	}
	// The token gives the issuer's key back as a crypto.Signer.
	signer, err := store.Load(ctx, "tls-h")
	if err != nil {
		t.Fatal(err)
	}
	if !publicKeysEqual(signer.Public(), tls.Certificate().PublicKey) {
		t.Error("the token returned another key")
	}

	// A wrong PIN is refused once the module is no longer logged in (a
	// PKCS#11 login is per process and token), and the error does not
	// echo the PIN.
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}
	bad := cfg
	bad.PIN = "0000"
	s2, err := OpenPKCS11(bad)
	if err == nil {
		s2.Close()
		t.Fatal("wrong PIN accepted")
	}
	if strings.Contains(err.Error(), bad.PIN) || !strings.Contains(err.Error(), "PIN") {
		t.Errorf("wrong-PIN error: %v", err)
	}
}
