package testenv

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"certdesk/internal/testenv/dnsstack"
)

// DNSStack is the local DNS the tests run against: a signed "jp." registry,
// a customer Knot DNS with the test zones (Zones.Signed, .Bogus, .Unsigned;
// Zones.ServFail is a lame delegation) taking TSIG-signed RFC 2136 updates
// at AuthAddr, and the validating Unbound at ResolverAddr, the CA's
// resolver. SetRecords and DeleteRecords change a zone and return once the
// resolver sees the change.
type DNSStack = dnsstack.Stack

var (
	sharedDNSOnce sync.Once
	sharedDNS     *DNSStack
	sharedDNSErr  error
	dnsNames      atomic.Int64
)

// DNS returns the DNS stack shared by all tests of this binary, started on
// first use. Tests sharing it keep to names of their own (DNSName) and never
// change a zone apex. Without knotd or unbound the test fails, saying what
// to install, or is skipped where they cannot be installed (no apt-get or
// not root).
func DNS(t testing.TB) *DNSStack {
	t.Helper()
	if missing := dnsstack.Missing(); len(missing) > 0 {
		if _, err := exec.LookPath("apt-get"); err == nil && os.Geteuid() == 0 {
			t.Fatalf("testenv: %s not installed: run `%s`", strings.Join(missing, ", "), dnsstack.InstallHint)
		}
		t.Skipf("testenv: %s not installed and not installable here (needs root and apt-get: %s)", strings.Join(missing, ", "), dnsstack.InstallHint)
	}
	sharedDNSOnce.Do(func() {
		dir, err := os.MkdirTemp("", "certdesk-dns-")
		if err != nil {
			sharedDNSErr = err
			return
		}
		sharedDNS, sharedDNSErr = dnsstack.Start(context.Background(), dnsstack.Config{Dir: dir, StartTimeout: 3 * time.Minute})
		if sharedDNSErr != nil {
			return
		}
		atExit(func() {
			sharedDNS.Stop()
			_ = os.RemoveAll(dir)
		})
	})
	if sharedDNSErr != nil {
		t.Fatalf("testenv: DNS stack: %v", sharedDNSErr)
	}
	return sharedDNS
}

// DNSName returns a name under zone that no other test of this binary uses,
// derived from the test's name, e.g. "t3-testcaaissue.certdesk-signed.jp".
func DNSName(t testing.TB, zone string) string {
	t.Helper()
	var b strings.Builder
	for _, r := range strings.ToLower(t.Name()) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		case b.Len() > 0 && !strings.HasSuffix(b.String(), "-"):
			b.WriteByte('-')
		}
	}
	label := strings.Trim(b.String(), "-")
	if len(label) > 40 {
		label = strings.Trim(label[:40], "-")
	}
	return fmt.Sprintf("t%d-%s.%s", dnsNames.Add(1), label, strings.TrimSuffix(zone, "."))
}

// DNSHijack starts a second resolver for the test, stopped when it ends,
// that answers name/rrtype with rdata (zone-file syntax) instead of what the
// zone holds and resolves everything else through s: a hijacked network
// perspective. Use a name in the unsigned zone; a forged answer for a signed
// name carries no AD bit, which validating clients may notice.
func DNSHijack(t testing.TB, s *DNSStack, name, rrtype string, rdata ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	r, err := s.Hijack(ctx, filepath.Join(t.TempDir(), "hijack"), name, rrtype, rdata...)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	t.Cleanup(r.Stop)
	return r.Addr
}
