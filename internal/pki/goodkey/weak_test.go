package goodkey

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/hex"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"certdesk/internal/pki/problem"
)

// The real Debian lists cannot be had on this machine (bookworm has no
// openssl-blacklist package); these tests build lists in the same format
// from keys they make, and check the format against one entry made by the
// openssl CLI (testdata/weakkeys).

func genRSA(t *testing.T, bits int) *rsa.PublicKey {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		t.Fatal(err)
	}
	return &k.PublicKey
}

func writeList(t *testing.T, path string, lines ...string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	body := "# After these initial comments, each line must consist of the lower-case key\n#\n" + strings.Join(lines, "\n") + "\n"
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestWeakKeyEntryMatchesOpenSSL checks the hash against a list line made
// by `openssl rsa -noout -modulus | sha1sum | cut -c 21-` (testdata), so the
// format is not only consistent with itself.
func TestWeakKeyEntryMatchesOpenSSL(t *testing.T) {
	pem, err := os.ReadFile("testdata/listed-2048.pub")
	if err != nil {
		t.Fatal(err)
	}
	k := parseRSA(t, string(pem))
	w, err := LoadWeakKeys("testdata/weakkeys")
	if err != nil {
		t.Fatal(err)
	}
	if got := WeakKeyEntry(k.N); got != "a9e531011e37ce77aff7" {
		t.Fatalf("entry %s, openssl made a9e531011e37ce77aff7", got)
	}
	if !w.Known(k) {
		t.Fatal("key listed by openssl's hash not found")
	}
	err = (Policy{AllowRSA: true, WeakKeys: w}).CheckStatic(k)
	if !errors.Is(err, ErrDebianWeakKey) || !strings.Contains(err.Error(), "BR §6.1.1.3") || !problem.IsRefusal(err) {
		t.Fatalf("listed key: %v", err)
	}
	if problem.CodeOf(err) != "rsa-debian-weak" {
		t.Fatalf("code %q", problem.CodeOf(err))
	}
}

func TestLoadWeakKeysLayouts(t *testing.T) {
	k2048, other, k3072 := genRSA(t, 2048), genRSA(t, 2048), genRSA(t, 3072)
	dir := t.TempDir()
	// Debian's flat layout and the per-architecture one, side by side; the
	// 2048-bit key also appears in the 4096 list, where it must not count.
	writeList(t, filepath.Join(dir, "blacklist.RSA-2048"), "0000000000000000beef", WeakKeyEntry(k2048.N))
	writeList(t, filepath.Join(dir, "le64", "blocklist-3072.db"), strings.ToUpper(WeakKeyEntry(k3072.N)))
	writeList(t, filepath.Join(dir, "be32", "blocklist-4096.db"), WeakKeyEntry(other.N))
	writeList(t, filepath.Join(dir, "README.md"), "not a list")
	w, err := LoadWeakKeys(dir)
	if err != nil {
		t.Fatal(err)
	}
	if n, sum := w.Len(); n != 4 || sum != "2048:2 3072:1 4096:1" {
		t.Errorf("Len = %d %q", n, sum)
	}
	if !w.Known(k2048) || !w.Known(k3072) {
		t.Error("listed key not found")
	}
	if w.Known(other) {
		t.Error("2048-bit key matched through the 4096-bit list")
	}
	pol := Policy{AllowRSA: true, WeakKeys: w}
	if err := pol.CheckStatic(k3072); !errors.Is(err, ErrDebianWeakKey) {
		t.Errorf("3072 listed: %v", err)
	}
	if err := pol.CheckStatic(other); err != nil {
		t.Errorf("unlisted key refused: %v", err)
	}
	// Without the list the same key passes: the refusal comes from the list.
	if err := (Policy{AllowRSA: true, WeakKeys: &WeakKeys{}}).CheckStatic(k2048); err != nil {
		t.Errorf("empty list: %v", err)
	}
}

func TestLoadWeakKeysErrors(t *testing.T) {
	empty := t.TempDir()
	writeList(t, filepath.Join(empty, "notes.txt"), WeakKeyEntry(genRSA(t, 2048).N))
	if _, err := LoadWeakKeys(empty); err == nil || !strings.Contains(err.Error(), "no file named") {
		t.Errorf("dir without lists: %v", err)
	}
	if _, err := LoadWeakKeys(filepath.Join(empty, "missing")); err == nil {
		t.Error("missing dir accepted")
	}
	bad := t.TempDir()
	writeList(t, filepath.Join(bad, "blacklist.RSA-2048"), "0123456789abcdef0123", "xyz")
	if _, err := LoadWeakKeys(bad); err == nil || !strings.Contains(err.Error(), "blacklist.RSA-2048:4") {
		t.Errorf("malformed line: %v", err)
	}
}

func TestDefaultWeakKeys(t *testing.T) {
	k := genRSA(t, 2048)
	w := &WeakKeys{}
	if err := w.Read(strings.NewReader(WeakKeyEntry(k.N)+"\n"), 2048, "inline"); err != nil {
		t.Fatal(err)
	}
	SetDefaultWeakKeys(w)
	t.Cleanup(func() { SetDefaultWeakKeys(nil) })
	// A policy without its own set uses the process-wide one.
	if err := (Policy{AllowRSA: true}).CheckStatic(k); !errors.Is(err, ErrDebianWeakKey) {
		t.Errorf("process-wide list ignored: %v", err)
	}
}

// BenchmarkWeakKnown measures one lookup in a list the size of Debian's
// (about 100,000 entries per key size).
func BenchmarkWeakKnown(b *testing.B) {
	k, _ := rsa.GenerateKey(rand.Reader, 2048)
	w := &WeakKeys{}
	var sb strings.Builder
	for range 100000 {
		var s weakSuffix
		_, _ = rand.Read(s[:])
		sb.WriteString(hex.EncodeToString(s[:]))
		sb.WriteByte('\n')
	}
	if err := w.Read(strings.NewReader(sb.String()), 2048, "bench"); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for range b.N {
		if w.Known(&k.PublicKey) {
			b.Fatal("random list hit")
		}
	}
}

// TestWeakKeysFromEnv runs this test binary again with WeakKeysDirEnv set,
// since the process-wide set is read once per process: a good directory
// makes the listed key refused, a broken one makes every RSA check fail
// with a retryable error instead of passing unchecked.
func TestWeakKeysFromEnv(t *testing.T) {
	if mode := os.Getenv("GOODKEY_ENV_CHILD"); mode != "" {
		pem, err := os.ReadFile("testdata/listed-2048.pub")
		if err != nil {
			t.Fatal(err)
		}
		err = (Policy{AllowRSA: true}).CheckStatic(parseRSA(t, string(pem)))
		switch mode {
		case "good":
			if !errors.Is(err, ErrDebianWeakKey) {
				t.Fatalf("listed key: %v", err)
			}
		case "broken":
			if err == nil || problem.IsRefusal(err) || !strings.Contains(err.Error(), WeakKeysDirEnv) {
				t.Fatalf("broken list dir: %v", err)
			}
		}
		return
	}
	for mode, dir := range map[string]string{"good": "testdata/weakkeys", "broken": t.TempDir()} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestWeakKeysFromEnv$", "-test.count=1")
		cmd.Env = append(os.Environ(), "GOODKEY_ENV_CHILD="+mode, WeakKeysDirEnv+"="+dir)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("%s: %v\n%s", mode, err, out)
		}
	}
}
