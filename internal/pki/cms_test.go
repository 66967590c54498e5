package pki

import (
	"encoding/pem"
	"path/filepath"
	"strings"
	"testing"
)

func TestSignDetachedOpenSSL(t *testing.T) {
	ca := getFileCA(t)
	checkDocumentSigner(t, ca, t.TempDir())
}

// checkDocumentSigner signs a package and has openssl verify it with only
// the root as trust anchor, then shows that a changed package fails.
func checkDocumentSigner(t *testing.T, ca *CA, dir string) {
	t.Helper()
	ds := ca.DocumentSigner()
	if ds == nil {
		t.Fatal("no document signer")
	}
	if bad := lintErrors(t, ds.Certificate().Raw); len(bad) > 0 {
		t.Errorf("document-signing cert zlint: %v", bad)
	}
	pkg := []byte(`{"subject":"開示請求","records":[{"kind":"application","id":"A-1"}]}` + "\n")
	sig, err := ds.SignDetached(pkg)
	if err != nil {
		t.Fatal(err)
	}
	pkgFile := writeFile(t, dir, "package.json", pkg)
	sigFile := writeFile(t, dir, "package.json.p7s", sig)
	pemFile := writeFile(t, dir, "package.json.p7s.pem", pem.EncodeToMemory(&pem.Block{Type: "CMS", Bytes: sig}))
	root := filepath.Join(ca.Dir(), "root.pem")

	out := openssl(t, dir, "cms", "-verify", "-binary", "-inform", "DER", "-in", sigFile, "-content", pkgFile, "-CAfile", root, "-out", filepath.Join(dir, "out"))
	if !strings.Contains(out, "Verification successful") {
		t.Errorf("openssl cms -verify: %s", out)
	}
	out = openssl(t, dir, "cms", "-verify", "-binary", "-inform", "PEM", "-in", pemFile, "-content", pkgFile, "-CAfile", root, "-out", filepath.Join(dir, "out"))
	if !strings.Contains(out, "Verification successful") {
		t.Errorf("openssl cms -verify (PEM): %s", out)
	}
	// Details: SHA-256, detached, certificates included.
	out = openssl(t, dir, "cms", "-cmsout", "-print", "-inform", "DER", "-in", sigFile)
	for _, w := range []string{"sha256", "eContent: <ABSENT>", ds.Certificate().Subject.CommonName} {
		if !strings.Contains(out, w) {
			t.Errorf("CMS structure lacks %q", w)
		}
	}
	// A changed package must not verify.
	tampered := writeFile(t, dir, "tampered.json", append([]byte(" "), pkg...))
	if out, err := opensslErr(dir, "cms", "-verify", "-binary", "-inform", "DER", "-in", sigFile, "-content", tampered, "-CAfile", root, "-out", filepath.Join(dir, "out")); err == nil {
		t.Errorf("tampered package verified: %s", out)
	}
}
