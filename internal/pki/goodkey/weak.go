package goodkey

// Debian weak keys (CVE-2008-0166, BR §6.1.1.3). From 2006-09 to 2008-05
// Debian's OpenSSL seeded its PRNG with little more than the process id, so
// for each key type, size and architecture only 32,767 keys could be made:
// every one of them has been enumerated and their private keys are public.
// Debian published the moduli as "blacklists" (packages openssl-blacklist
// and openssl-blacklist-extra, read by openssl-vulnkey(1)); later
// regenerations such as the openssl_blocklists of the CVE-2008-0166 project
// use the same format. Each line is the last 20 hex digits (80 bits) of
//
//	SHA-1("Modulus=" + upper-case hex of N + "\n")
//
// which is what `openssl rsa -noout -modulus | sha1sum | cut -c 21-40`
// prints. Boulder's goodkey checks the same hashes (flattened to JSON);
// this file reads the Debian files directly so an operator can point
// CertDesk at the lists as distributed.

import (
	"bufio"
	"crypto/rsa"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"certdesk/internal/pki/problem"
)

// ErrDebianWeakKey refuses an RSA key on the Debian weak-key lists.
var ErrDebianWeakKey = &problem.Kind{Code: "rsa-debian-weak", Title: "RSA key is a Debian weak key (CVE-2008-0166)"}

// WeakKeysDirEnv names the environment variable holding the directory of
// weak-key lists the process-wide set is loaded from (see DefaultWeakKeys).
const WeakKeysDirEnv = "CERTDESK_WEAK_KEYS_DIR"

// weakSuffix is the part of the hash the lists keep: the last 10 bytes.
type weakSuffix [10]byte

// WeakKeys is a set of Debian weak RSA moduli, by key size. It is read-only
// once loaded and safe for concurrent use. A lookup is one SHA-1 of the
// modulus and one map probe (a few µs), negligible next to the Fermat check.
type WeakKeys struct {
	bySize map[int]map[weakSuffix]struct{}
	files  []string
}

// listName matches the file names of the Debian packages
// (blacklist.RSA-2048) and of the openssl_blocklists regeneration
// (le64/blocklist-2048.db); the number is the modulus size in bits.
var listName = regexp.MustCompile(`^(?:blacklist\.RSA-|blocklist-)([0-9]{3,5})(?:\.db)?$`)

// LoadWeakKeys reads every list file under dir (subdirectories included,
// as the per-architecture layout le32/, le64/, be32/ has them). Files whose
// names are not list names (README, licences) are skipped; a directory with
// no list at all is an error, since it would silently check nothing.
func LoadWeakKeys(dir string) (*WeakKeys, error) {
	w := &WeakKeys{bySize: map[int]map[weakSuffix]struct{}{}}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		m := listName.FindStringSubmatch(d.Name())
		if d.IsDir() || m == nil {
			return nil
		}
		bits, _ := strconv.Atoi(m[1])
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := w.Read(f, bits, path); err != nil {
			return err
		}
		w.files = append(w.files, path)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("weak-key lists in %s: %w", dir, err)
	}
	if len(w.files) == 0 {
		return nil, fmt.Errorf("weak-key lists in %s: no file named blacklist.RSA-<bits> or blocklist-<bits>.db", dir)
	}
	return w, nil
}

// Read adds the entries of one list in the Debian format for moduli of
// bits bits; name is used in error messages. Lines starting with '#' and
// blank lines are ignored; any other line must be 20 hex digits.
func (w *WeakKeys) Read(r io.Reader, bits int, name string) error {
	if w.bySize == nil {
		w.bySize = map[int]map[weakSuffix]struct{}{}
	}
	set := w.bySize[bits]
	if set == nil {
		set = map[weakSuffix]struct{}{}
		w.bySize[bits] = set
	}
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		var s weakSuffix
		if len(line) != 2*len(s) {
			return fmt.Errorf("%s:%d: %q is not 20 hex digits", name, n, line)
		}
		if _, err := hex.Decode(s[:], []byte(line)); err != nil {
			return fmt.Errorf("%s:%d: %q is not 20 hex digits", name, n, line)
		}
		set[s] = struct{}{}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

// Known reports whether k's modulus is on the list for its size.
func (w *WeakKeys) Known(k *rsa.PublicKey) bool {
	if w == nil || k == nil || k.N == nil {
		return false
	}
	set := w.bySize[k.N.BitLen()]
	if set == nil {
		return false
	}
	_, ok := set[suffixOf(k.N)]
	return ok
}

// Len returns the number of entries and a summary by size, for the
// worker's start-up log ("2048:98301 4096:98301").
func (w *WeakKeys) Len() (int, string) {
	if w == nil {
		return 0, ""
	}
	sizes := make([]int, 0, len(w.bySize))
	total := 0
	for b, s := range w.bySize {
		sizes = append(sizes, b)
		total += len(s)
	}
	sort.Ints(sizes)
	var parts []string
	for _, b := range sizes {
		parts = append(parts, fmt.Sprintf("%d:%d", b, len(w.bySize[b])))
	}
	return total, strings.Join(parts, " ")
}

// WeakKeyEntry returns the list line for modulus n, exactly as Debian's
// tools make it; used to build lists of known-bad keys in tests and by
// operators adding keys they know to be weak.
func WeakKeyEntry(n *big.Int) string {
	s := suffixOf(n)
	return hex.EncodeToString(s[:])
}

func suffixOf(n *big.Int) weakSuffix {
	// big.Int's hex has no leading zeros, like OpenSSL's BN_print behind
	// `openssl rsa -modulus`.
	h := sha1.Sum([]byte("Modulus=" + strings.ToUpper(n.Text(16)) + "\n"))
	var s weakSuffix
	copy(s[:], h[len(h)-len(s):])
	return s
}

// The process-wide set: loaded once, on first use, from WeakKeysDirEnv, or
// set by SetDefaultWeakKeys. Profiles are built in several places with no
// configuration at hand, so the list rides with the process like the CA
// certificates do.
var (
	weakOverride atomic.Pointer[WeakKeys]
	weakFromEnv  = sync.OnceValues(func() (*WeakKeys, error) {
		dir := os.Getenv(WeakKeysDirEnv)
		if dir == "" {
			return nil, nil
		}
		return LoadWeakKeys(dir)
	})
)

// SetDefaultWeakKeys replaces the process-wide set (nil: back to the one
// from WeakKeysDirEnv). Tests and programs that load the lists themselves
// use it.
func SetDefaultWeakKeys(w *WeakKeys) { weakOverride.Store(w) }

// DefaultWeakKeys returns the process-wide set: the one given to
// SetDefaultWeakKeys, else the lists under $CERTDESK_WEAK_KEYS_DIR (nil when
// the variable is empty). A load error is returned on every call, so every
// key check fails (retryably) rather than passing unchecked.
func DefaultWeakKeys() (*WeakKeys, error) {
	if w := weakOverride.Load(); w != nil {
		return w, nil
	}
	return weakFromEnv()
}

// checkWeak refuses k when it is on w, or on the process-wide set when w is
// nil.
func checkWeak(k *rsa.PublicKey, w *WeakKeys) error {
	if w == nil {
		var err error
		if w, err = DefaultWeakKeys(); err != nil {
			return errors.Join(errors.New("the Debian weak-key lists cannot be loaded; fix "+WeakKeysDirEnv), err)
		}
	}
	if w.Known(k) {
		return problem.New(ErrDebianWeakKey, "RSA key is on the Debian weak-key list (CVE-2008-0166: OpenSSL on Debian and Ubuntu from 2006 to 2008 could make only 32,767 keys per size, and their private keys are published); BR §6.1.1.3 requires refusing it. Generate a new key pair with a current OpenSSL and submit a new CSR")
	}
	return nil
}
