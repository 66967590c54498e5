package pki

import (
	"context"
	"crypto"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestEncryptedPKCS8WithOpenSSL(t *testing.T) {
	dir := t.TempDir()
	pass := "s3cret pass"
	for _, c := range []struct {
		name string
		key  crypto.Signer
	}{{"p256", ecKey(t, elliptic.P256())}, {"rsa2048", rsaKey(t, 2048)}} {
		name, k := c.name, c.key
		data, err := MarshalEncryptedPKCS8PEM(k, []byte(pass), testPBKDF2Iterations)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(data), "BEGIN ENCRYPTED PRIVATE KEY") {
			t.Fatalf("not an encrypted PKCS#8 PEM: %s", data)
		}
		f := writeFile(t, dir, name+".key.pem", data)

		// openssl reads it with the passphrase and derives the same public key.
		out := openssl(t, dir, "pkey", "-in", f, "-passin", "pass:"+pass, "-pubout")
		spki, _ := x509.MarshalPKIXPublicKey(k.Public())
		if want := string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: spki})); out != want {
			t.Errorf("%s: openssl public key differs:\n%s\nwant\n%s", name, out, want)
		}
		// openssl shows the scheme we claim.
		out = openssl(t, dir, "asn1parse", "-in", f)
		for _, w := range []string{"PBES2", "PBKDF2", "hmacWithSHA256", "aes-256-cbc"} {
			if !strings.Contains(out, w) {
				t.Errorf("%s: asn1parse lacks %s", name, w)
			}
		}
		// And refuses a wrong passphrase, as do we.
		if out, err := opensslErr(dir, "pkey", "-in", f, "-passin", "pass:wrong", "-noout"); err == nil {
			t.Errorf("openssl accepted a wrong passphrase: %s", out)
		}
		if _, err := ParseEncryptedPKCS8PEM(data, []byte("wrong")); err == nil {
			t.Error("wrong passphrase accepted")
		}
		got, err := ParseEncryptedPKCS8PEM(data, []byte(pass))
		if err != nil {
			t.Fatal(err)
		}
		if !publicKeysEqual(got.Public(), k.Public()) {
			t.Error("round trip changed the key")
		}
	}

	// Keys encrypted by openssl (operators importing keys) are read too.
	for name, args := range map[string][]string{
		"genpkey-aes256": {"genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384", "-aes-256-cbc", "-pass", "pass:" + pass},
	} {
		f := filepath.Join(dir, name+".pem")
		openssl(t, dir, append(args, "-out", f)...)
		data, _ := os.ReadFile(f)
		if _, err := ParseEncryptedPKCS8PEM(data, []byte(pass)); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	plain := filepath.Join(dir, "plain.pem")
	openssl(t, dir, "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", plain)
	conv := filepath.Join(dir, "aes128-sha512.pem")
	openssl(t, dir, "pkcs8", "-topk8", "-in", plain, "-v2", "aes-128-cbc", "-v2prf", "hmacWithSHA512", "-passout", "pass:"+pass, "-out", conv)
	data, _ := os.ReadFile(conv)
	if _, err := ParseEncryptedPKCS8PEM(data, []byte(pass)); err != nil {
		t.Errorf("aes-128/hmacWithSHA512: %v", err)
	}
	// Unencrypted CA keys are refused with a hint.
	data, _ = os.ReadFile(plain)
	if _, err := ParseEncryptedPKCS8PEM(data, []byte(pass)); err == nil || !strings.Contains(err.Error(), "encrypted") {
		t.Errorf("plain key: %v", err)
	}
	if _, err := MarshalEncryptedPKCS8PEM(ecKey(t, elliptic.P256()), nil, 0); err == nil {
		t.Error("empty passphrase accepted")
	}
}

func TestFileKeyStore(t *testing.T) {
	ks := &FileKeyStore{Dir: t.TempDir(), Passphrase: []byte("pw"), Iterations: testPBKDF2Iterations}
	ctx := context.Background()
	k, err := ks.Generate(ctx, "issuer-a", ECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ks.Generate(ctx, "issuer-a", ECDSAP256); err == nil {
		t.Error("existing key overwritten")
	}
	st, _ := os.Stat(ks.KeyPath("issuer-a"))
	if st.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %v", st.Mode())
	}
	got, err := ks.Load(ctx, "issuer-a")
	if err != nil || !publicKeysEqual(got.Public(), k.Public()) {
		t.Fatalf("load: %v", err)
	}
	if _, err := ks.Load(ctx, "../etc/passwd"); err == nil {
		t.Error("path traversal label accepted")
	}
	wrong := &FileKeyStore{Dir: ks.Dir, Passphrase: []byte("nope")}
	if _, err := wrong.Load(ctx, "issuer-a"); err == nil {
		t.Error("wrong passphrase accepted")
	}
}
