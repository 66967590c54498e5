package pki

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"certdesk/internal/pki/goodkey"
	"certdesk/internal/pki/problem"
)

// TestCheckCSRDebianWeakKey: a CSR whose RSA key is on the Debian weak-key
// list (here a list in Debian's format made from a fresh key, as the real
// lists cannot be had on this machine) is refused by every RSA profile,
// and the same CSR passes without the list.
func TestCheckCSRDebianWeakKey(t *testing.T) {
	ctx := context.Background()
	// Fresh, not cached: listing it must not affect other tests.
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	csr := makeCSR(t, key)
	requests := map[string]Request{
		"server-dv":   {Profile: ProfileServerDV, CSR: csr, Domains: []string{"example.com"}},
		"client-sign": {Profile: ProfileClientSign, CSR: csr, Email: "taro@example.jp", Subject: Subject{CommonName: "Taro Yamada", Surname: "Yamada"}},
	}
	for name, r := range requests {
		if _, err := CheckCSR(ctx, &r, nil); err != nil {
			t.Fatalf("%s without the list: %v", name, err)
		}
	}

	dir := t.TempDir()
	list := "# Debian openssl-blacklist format\n" + goodkey.WeakKeyEntry(key.N) + "\n"
	if err := os.WriteFile(filepath.Join(dir, "blacklist.RSA-2048"), []byte(list), 0o644); err != nil {
		t.Fatal(err)
	}
	weak, err := goodkey.LoadWeakKeys(dir)
	if err != nil {
		t.Fatal(err)
	}
	goodkey.SetDefaultWeakKeys(weak)
	t.Cleanup(func() { goodkey.SetDefaultWeakKeys(nil) })

	for name, r := range requests {
		_, err := CheckCSR(ctx, &r, nil)
		if !errors.Is(err, ErrDebianWeakKey) || !problem.IsRefusal(err) {
			t.Fatalf("%s: got %v, want %v", name, err, ErrDebianWeakKey)
		}
		if !strings.Contains(err.Error(), "BR §6.1.1.3") || !strings.Contains(err.Error(), "CVE-2008-0166") {
			t.Errorf("%s: message %q names neither the BR nor the CVE", name, err)
		}
	}
	// Other RSA keys still pass with the list loaded.
	other := Request{Profile: ProfileServerDV, CSR: makeCSR(t, rsaKey(t, 2048)), Domains: []string{"example.com"}}
	if _, err := CheckCSR(ctx, &other, nil); err != nil {
		t.Errorf("unlisted key refused: %v", err)
	}
}
