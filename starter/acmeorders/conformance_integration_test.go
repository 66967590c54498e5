//go:build integration

package acmeorders

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/converter"

	"certdesk/internal/status"
	"certdesk/internal/store"
	"certdesk/internal/testenv"
	"certdesk/starter/acme"
	"certdesk/workflows"
)

// issueJSFeatures are the features tools/acme-client/issue.js reports (and
// "eabRequired", from a second run without EAB), as the conformance table
// of starter/acme's TestConformance names them, with what the
// workflow-backed server must show: "pass", or "none" (not offered: the
// signing path returns one chain, so no alternate links).
var issueJSFeatures = []struct{ key, name, want string }{
	{"directory", "directory", "pass"},
	{"newNonce", "newNonce", "pass"},
	{"newAccount", "newAccount with EAB", "pass"},
	{"eabRequired", "newAccount without EAB refused", "pass"},
	{"newOrder", "newOrder", "pass"},
	{"dns-01", "dns-01", "pass"},
	{"finalize", "finalize", "pass"},
	{"download", "download (PEM chain)", "pass"},
	{"alternates", "alternate chains (Link rel=\"alternate\")", "none"},
	{"keyChange", "key rollover", "pass"},
	{"deactivate", "account deactivation", "pass"},
	{"revokeByAccountKey", "revocation by account key", "pass"},
	{"revokeByCertKey", "revocation by certificate key", "pass"},
	{"renewalInfo", "ARI renewalInfo", "pass"},
	{"replaces", "newOrder replaces", "pass"},
	{"profiles", "profiles (meta.profiles, newOrder profile)", "pass"},
}

// TestNodeACMEClientOnWorkflows runs tools/acme-client/issue.js (npm
// acme-client 5.4.0, pinned by its package-lock.json) against the
// workflow-backed ACME server — what `make run` serves, here two starters'
// listeners behind one address — on the real stack: EAB account, an order
// for two names in the DNSSEC-signed zone whose _acme-challenge TXT
// records the script writes by RFC 2136 (nsupdate, TSIG) to the local
// authoritative server, finalize, download, ARI renewalInfo, a renewal
// with "replaces", the profile server-dv, key rollover, revocation by the
// account key and by the certificate key, and account deactivation; then
// once more without EAB, which must be refused. Each order must be an
// Application workflow carrying the ACME marker, issued, validated by
// acme-dns-01, its certificate with SCTs from both CT logs, revoked through
// the revocation workflow. The feature outcomes are logged as the
// workflow-backed column of the README's conformance table (and written to
// $ACME_CONFORMANCE_OUT when set).
func TestNodeACMEClientOnWorkflows(t *testing.T) {
	for _, bin := range []string{"node", "nsupdate"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Fatalf("%s is not installed (scripts/deps.sh installs it)", bin)
		}
	}
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(root, "tools", "acme-client", "issue.js")
	if _, err := os.Stat(filepath.Join(root, "tools", "acme-client", "node_modules", "acme-client")); err != nil {
		t.Fatalf("acme-client is not installed (%v): run `npm ci --prefix tools/acme-client`", err)
	}
	s := newStack(t)
	ctx := context.Background()
	bundle := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(bundle, s.rootPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	cred, err := s.st.CreateEABCredential(ctx, "rs_acmewf", []string{"server-dv"}, "cust-node", nil)
	if err != nil {
		t.Fatal(err)
	}
	name := testenv.DNSName(t, s.dns.Zones.Signed)
	names := []string{name, "www." + name}
	dnsArgs := []string{"--dns-server", s.dns.AuthAddr, "--tsig", s.dns.TSIG.NsupdateKey(), "--resolver", s.dns.ResolverAddr}

	node := func(timeout time.Duration, args ...string) ([]byte, string, error) {
		cctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		cmd := exec.CommandContext(cctx, "node", append([]string{script, "--directory", s.dirURL}, args...)...)
		cmd.Env = append(os.Environ(), "NODE_EXTRA_CA_CERTS="+bundle)
		var stderr limitedBuffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		return out, stderr.String(), err
	}
	args := append([]string{"--eab-kid", cred.KID, "--eab-hmac", base64.RawURLEncoding.EncodeToString(cred.HMACKey)}, dnsArgs...)
	args = append(args, "--profile", "server-dv", "--renew", "--rollover", "--revoke", "--reason", "4", "--revoke-with-cert-key", "--deactivate")
	out, stderr, err := node(6*time.Minute, append(args, names...)...)
	t.Logf("issue.js (%v):\n%s", err, stderr)
	var res struct {
		Account      string
		Certificates []struct {
			Serial, CertID, PEM, RetryAfter, Replaces string
			SuggestedWindow                           struct{ Start, End time.Time }
		}
		Revoked  []string
		Features map[string]string
	}
	if jerr := json.Unmarshal(out, &res); jerr != nil || len(res.Features) == 0 {
		s.dump(t)
		t.Fatalf("issue.js printed %q: %v", out, jerr)
	}

	// Without EAB: newAccount is refused with externalAccountRequired.
	noEAB, _, _ := node(time.Minute, append(dnsArgs, "no-eab."+name)...)
	var r2 struct{ Features map[string]string }
	_ = json.Unmarshal(noEAB, &r2)
	if got := r2.Features["newAccount"]; strings.HasPrefix(got, "fail") && strings.Contains(strings.ToLower(got), "external") {
		res.Features["eabRequired"] = "pass"
	} else {
		res.Features["eabRequired"] = fmt.Sprintf("fail: newAccount without EAB: %q", got)
	}

	// The table column, then the verdicts.
	var tbl strings.Builder
	tbl.WriteString("| Feature | CertDesk on workflows |\n|---|---|\n")
	mark := map[string]string{"pass": "passed", "fail": "**failed**", "none": "not offered", "": "untested"}
	seen := map[string]bool{}
	for _, f := range issueJSFeatures {
		o := res.Features[f.key]
		seen[f.key] = true
		v, _, _ := strings.Cut(o, ":")
		fmt.Fprintf(&tbl, "| %s | %s |\n", f.name, mark[v])
		if v != f.want {
			t.Errorf("%s: %q, want %s", f.name, o, f.want)
		}
	}
	var extra []string
	for k := range res.Features {
		if !seen[k] {
			extra = append(extra, k)
		}
	}
	sort.Strings(extra)
	if len(extra) > 0 {
		t.Errorf("issue.js reported features this test does not know: %v", extra)
	}
	t.Logf("ACME conformance, workflow-backed server:\n%s", tbl.String())
	if p := os.Getenv("ACME_CONFORMANCE_OUT"); p != "" {
		if err := os.WriteFile(p, []byte(tbl.String()), 0o644); err != nil {
			t.Error(err)
		}
	}
	if len(res.Certificates) != 2 || len(res.Revoked) != 2 {
		s.dump(t)
		t.Fatalf("issue.js: %d certificates, %d revoked, want 2 and 2", len(res.Certificates), len(res.Revoked))
	}

	// Both listeners served the client: no state is per process.
	if a, b := s.hits[0].Load(), s.hits[1].Load(); a < 5 || b < 5 {
		t.Errorf("connections per listener %d and %d: the client did not alternate", a, b)
	}

	gctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	var serials []string
	for i, c := range res.Certificates {
		blk, _ := pem.Decode([]byte(c.PEM))
		if blk == nil {
			t.Fatalf("certificate %d: no PEM", i)
		}
		leaf, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		sort.Strings(leaf.DNSNames)
		if strings.Join(leaf.DNSNames, " ") != name+" www."+name {
			t.Fatalf("certificate %d for %v", i, leaf.DNSNames)
		}
		if n := embeddedSCTs(t, leaf); n < 2 {
			t.Fatalf("certificate %d: %d embedded SCTs, want ≥ 2 (one per CT log)", i, n)
		}
		serial := leaf.SerialNumber.Text(16)
		serials = append(serials, serial)
		if c.CertID != acme.CertID(leaf) || c.Serial != serial {
			t.Fatalf("certificate %d: the script's certID %s / serial %s, ours %s / %s", i, c.CertID, c.Serial, acme.CertID(leaf), serial)
		}
		// ARI: the default window of a certificate nobody moved.
		ws, we := acme.DefaultRenewalWindow(leaf)
		if !c.SuggestedWindow.Start.Equal(ws.Truncate(time.Second)) || !c.SuggestedWindow.End.Equal(we.Truncate(time.Second)) || c.RetryAfter != "21600" {
			t.Fatalf("certificate %d: renewalInfo %+v %+v, want %v–%v, Retry-After 21600", i, c.SuggestedWindow, c.RetryAfter, ws, we)
		}

		// The order is an Application workflow marked ACME, issued.
		order, err := s.st.ACMEOrderBySerial(ctx, serial)
		if err != nil {
			t.Fatal(err)
		}
		appID := ApplicationID(order.ID)
		wid := workflows.ApplicationWorkflowID(appID)
		desc, err := s.tc.DescribeWorkflowExecution(ctx, wid, "")
		if err != nil {
			t.Fatal(err)
		}
		var summary string
		if md := desc.GetExecutionConfig().GetUserMetadata(); md != nil {
			_ = converter.GetDefaultDataConverter().FromPayload(md.GetSummary(), &summary)
		}
		if !strings.HasPrefix(summary, Marker) || !strings.Contains(summary, order.ID) {
			t.Fatalf("certificate %d: workflow summary %q, want the ACME marker and order %s", i, summary, order.ID)
		}
		if _, ok := desc.GetWorkflowExecutionInfo().GetMemo().GetFields()["acme"]; !ok {
			t.Fatalf("certificate %d: no acme memo on %s", i, wid)
		}
		var ar workflows.ApplicationResult
		if err := s.tc.GetWorkflow(gctx, wid, "").Get(gctx, &ar); err != nil || ar.Status != status.AppIssued || !strings.EqualFold(store.NormalizeSerial(ar.CertificateSerial), serial) {
			t.Fatalf("certificate %d: application %s: %+v %v, want issued %s", i, appID, ar, err, serial)
		}
		var methods []string
		if err := s.st.DB().SelectContext(ctx, &methods, `SELECT method FROM domain_validations WHERE application_id = $1 AND result = 'valid'`, appID); err != nil ||
			len(methods) != 2 || methods[0] != "acme-dns-01" || methods[1] != "acme-dns-01" {
			t.Fatalf("certificate %d: domain validations %v %v, want two acme-dns-01", i, methods, err)
		}
		if i == 1 && order.Replaces != serials[0] {
			t.Fatalf("the renewal's order replaces %q, want %s", order.Replaces, serials[0])
		}

		// Revoked (by the account key, then by the certificate key) through
		// the revocation workflow.
		var rev workflows.RevocationResult
		if err := s.tc.GetWorkflow(gctx, workflows.RevocationWorkflowID(order.CertSerial), "").Get(gctx, &rev); err != nil || rev.Status != workflows.RevRevoked {
			t.Fatalf("certificate %d: revocation %+v %v", i, rev, err)
		}
		if cert, err := s.st.GetCertificate(ctx, order.CertSerial); err != nil || cert.Status != "revoked" {
			t.Fatalf("certificate %d: %q %v, want revoked", i, cert.Status, err)
		}
	}
	if res.Certificates[1].Replaces != res.Certificates[0].CertID {
		t.Fatalf("renewal replaces %q, want %s", res.Certificates[1].Replaces, res.Certificates[0].CertID)
	}
	if n, err := s.st.CountACMEReplaced(ctx, serials[:1]); err != nil || n != 1 {
		t.Fatalf("CountACMEReplaced %d %v, want 1", n, err)
	}
}

// limitedBuffer keeps the first 64 KiB written to it.
type limitedBuffer struct{ b []byte }

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if room := 64<<10 - len(l.b); room > 0 {
		if len(p) > room {
			l.b = append(l.b, p[:room]...)
		} else {
			l.b = append(l.b, p...)
		}
	}
	return len(p), nil
}

func (l *limitedBuffer) String() string { return string(l.b) }
