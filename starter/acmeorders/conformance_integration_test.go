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
	"slices"
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

// conformanceFeatures are the rows of the README's ACME conformance table
// (starter/acme's TestConformance names them the same), with what the
// workflow-backed server must show: "pass", or "none" (not offered: the
// signing path returns one chain, so no alternate links). The keys are
// what tools/acme-client/issue.js reports, "eabRequired" from a run without
// EAB and "http-01" from certbot.
var conformanceFeatures = []struct{ key, name, want string }{
	{"directory", "directory", "pass"},
	{"newNonce", "newNonce", "pass"},
	{"newAccount", "newAccount with EAB", "pass"},
	{"eabRequired", "newAccount without EAB refused", "pass"},
	{"newOrder", "newOrder", "pass"},
	{"http-01", "http-01", "pass"},
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

// outcomes are feature → client → "pass", "fail: …" or "none: …".
type outcomes map[string]map[string]string

func (o outcomes) saw(client, feature, outcome string) {
	if o[feature] == nil {
		o[feature] = map[string]string{}
	}
	o[feature][client] = outcome
}

// verdict folds the clients' outcomes of a feature: a failure wins, then a
// pass; "" when no client exercised it.
func (o outcomes) verdict(feature string) (v, clients string) {
	var names []string
	for cl := range o[feature] {
		names = append(names, cl)
	}
	sort.Strings(names)
	for _, cl := range names {
		got, _, _ := strings.Cut(o[feature][cl], ":")
		switch {
		case got == "fail" || v == "fail":
			v = "fail"
		case got == "pass" || v == "pass":
			v = "pass"
		default:
			v = "none"
		}
	}
	return v, strings.Join(names, ", ")
}

// TestConformanceOnWorkflows runs the clients of starter/acme's
// TestConformance against the workflow-backed ACME server — what `make
// run` serves, here two starters' listeners behind one address — on the
// real stack (Temporal, PostgreSQL, the DNS stack, two CT logs):
//
//   - tools/acme-client/issue.js (npm acme-client 5.4.0, pinned by its
//     package-lock.json): EAB account, an order for two names in the
//     DNSSEC-signed zone whose _acme-challenge TXT records the script
//     writes by RFC 2136 (nsupdate, TSIG) to the local authoritative
//     server, finalize, download, ARI renewalInfo, a renewal with
//     "replaces", the profile server-dv, key rollover, revocation by the
//     account key and by the certificate key, account deactivation; and
//     once more without EAB, which must be refused;
//   - Debian's certbot: EAB account, http-01 by --webroot, revocation by
//     the account key, a second certificate revoked with its own key
//     (--key-path), unregister.
//
// Every certificate must come from an Application workflow carrying the
// ACME marker, issued, validated by the challenge's method, with SCTs from
// both CT logs, and be revoked through the revocation workflow. The feature
// outcomes are the "CertDesk on workflows" column of the README's
// conformance table (logged, and written to $ACME_CONFORMANCE_OUT when set).
func TestConformanceOnWorkflows(t *testing.T) {
	for _, bin := range []string{"node", "nsupdate", "certbot"} {
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
	eab := func() (string, string) {
		t.Helper()
		cred, err := s.st.CreateEABCredential(ctx, "rs_acmewf", []string{"server-dv"}, "cust-conformance", nil)
		if err != nil {
			t.Fatal(err)
		}
		return cred.KID, base64.RawURLEncoding.EncodeToString(cred.HMACKey)
	}
	res := outcomes{}
	gctx, cancel := context.WithTimeout(ctx, 8*time.Minute)
	defer cancel()

	// issue.js.
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
	kid, hmac := eab()
	args := append([]string{"--eab-kid", kid, "--eab-hmac", hmac}, dnsArgs...)
	args = append(args, "--profile", "server-dv", "--renew", "--rollover", "--revoke", "--reason", "4", "--revoke-with-cert-key", "--deactivate")
	out, stderr, err := node(6*time.Minute, append(args, names...)...)
	t.Logf("issue.js (%v):\n%s", err, stderr)
	var js struct {
		Account      string
		Certificates []struct {
			Serial, CertID, PEM, RetryAfter, Replaces string
			SuggestedWindow                           struct{ Start, End time.Time }
		}
		Revoked  []string
		Features map[string]string
	}
	if jerr := json.Unmarshal(out, &js); jerr != nil || len(js.Features) == 0 {
		s.dump(t)
		t.Fatalf("issue.js printed %q: %v", out, jerr)
	}
	for f, o := range js.Features {
		res.saw("acme-client", f, o)
	}
	// Without EAB: newAccount is refused with externalAccountRequired.
	noEAB, _, _ := node(time.Minute, append(dnsArgs, "no-eab."+name)...)
	var r2 struct{ Features map[string]string }
	_ = json.Unmarshal(noEAB, &r2)
	if got := r2.Features["newAccount"]; strings.HasPrefix(got, "fail") && strings.Contains(strings.ToLower(got), "external") {
		res.saw("acme-client", "eabRequired", "pass")
	} else {
		res.saw("acme-client", "eabRequired", fmt.Sprintf("fail: newAccount without EAB: %q", got))
	}

	// certbot.
	tmp := t.TempDir()
	common := []string{"--server", s.dirURL, "--config-dir", filepath.Join(tmp, "cfg"), "--work-dir", filepath.Join(tmp, "work"),
		"--logs-dir", filepath.Join(tmp, "logs"), "--non-interactive"}
	certbot := func(features []string, args ...string) bool {
		cctx, cancel := context.WithTimeout(ctx, 4*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(cctx, "certbot", append(args, common...)...)
		cmd.Env = append(os.Environ(), "REQUESTS_CA_BUNDLE="+bundle)
		o := "pass"
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Logf("certbot %s: %v\n%s", args[0], err, out)
			o = fmt.Sprintf("fail: certbot %s: %v", args[0], err)
		}
		for _, f := range features {
			res.saw("certbot", f, o)
		}
		return o == "pass"
	}
	live := func(certName, file string) string { return filepath.Join(tmp, "cfg", "live", certName, file) }
	var certbotLeaves []*x509.Certificate
	issue := func(certName string, account ...string) bool {
		n := testenv.DNSName(t, s.dns.Zones.Signed)
		if err := s.dns.SetRecords(ctx, n, "A", "127.0.0.1"); err != nil {
			t.Fatal(err)
		}
		flow := []string{"directory", "newNonce", "newAccount", "newOrder", "http-01", "finalize", "download"}
		if len(account) == 0 {
			flow = flow[3:]
		}
		args := append(append([]string{"certonly"}, account...), "--webroot", "-w", s.webroot, "-d", n, "--key-type", "ecdsa", "--cert-name", certName)
		if !certbot(flow, args...) {
			return false
		}
		raw, _ := os.ReadFile(live(certName, "fullchain.pem"))
		var chain []*x509.Certificate
		for blk, rest := pem.Decode(raw); blk != nil; blk, rest = pem.Decode(rest) {
			if c, err := x509.ParseCertificate(blk.Bytes); err == nil {
				chain = append(chain, c)
			}
		}
		if len(chain) < 2 || chain[0].CheckSignatureFrom(chain[1]) != nil {
			t.Errorf("certbot %s: fullchain.pem holds %d certificates, not the leaf and its issuer", certName, len(chain))
			res.saw("certbot", "download", "fail: fullchain.pem is not the leaf and its issuer")
			return false
		}
		certbotLeaves = append(certbotLeaves, chain[0])
		return true
	}
	kid, hmac = eab()
	if issue("c1", "--eab-kid", kid, "--eab-hmac-key", hmac, "--agree-tos", "-m", "ops@reseller.example") {
		certbot([]string{"revokeByAccountKey"}, "revoke", "--cert-path", live("c1", "cert.pem"), "--reason", "superseded", "--no-delete-after-revoke")
		if issue("c2") {
			certbot([]string{"revokeByCertKey"}, "revoke", "--cert-path", live("c2", "cert.pem"), "--key-path", live("c2", "privkey.pem"),
				"--reason", "superseded", "--no-delete-after-revoke")
		}
		certbot([]string{"deactivate"}, "unregister")
	}

	// The column, then the verdicts.
	var tbl strings.Builder
	tbl.WriteString("| Feature | CertDesk on workflows | Clients |\n|---|---|---|\n")
	mark := map[string]string{"pass": "passed", "fail": "**failed**", "none": "not offered", "": "untested"}
	known := map[string]bool{}
	for _, f := range conformanceFeatures {
		known[f.key] = true
		v, clients := res.verdict(f.key)
		fmt.Fprintf(&tbl, "| %s | %s | %s |\n", f.name, mark[v], clients)
		if v != f.want {
			t.Errorf("%s: %s (%v), want %s", f.name, mark[v], res[f.key], mark[f.want])
		}
	}
	for k := range res {
		if !known[k] {
			t.Errorf("a client reported feature %q this test does not know", k)
		}
	}
	t.Logf("ACME conformance, workflow-backed server:\n%s", tbl.String())
	if p := os.Getenv("ACME_CONFORMANCE_OUT"); p != "" {
		if err := os.WriteFile(p, []byte(tbl.String()), 0o644); err != nil {
			t.Error(err)
		}
	}
	if t.Failed() {
		s.dump(t)
	}

	// Both listeners served the clients: no state is per process.
	if a, b := s.hits[0].Load(), s.hits[1].Load(); a < 5 || b < 5 {
		t.Errorf("connections per listener %d and %d: the clients did not alternate", a, b)
	}

	// issue.js's certificates: the renewal replaces the first; ARI gives
	// the default window.
	if len(js.Certificates) != 2 || len(js.Revoked) != 2 {
		t.Fatalf("issue.js: %d certificates, %d revoked, want 2 and 2", len(js.Certificates), len(js.Revoked))
	}
	var serials []string
	for i, c := range js.Certificates {
		blk, _ := pem.Decode([]byte(c.PEM))
		if blk == nil {
			t.Fatalf("issue.js certificate %d: no PEM", i)
		}
		leaf, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		sort.Strings(leaf.DNSNames)
		if strings.Join(leaf.DNSNames, " ") != name+" www."+name {
			t.Fatalf("issue.js certificate %d for %v", i, leaf.DNSNames)
		}
		serial := leaf.SerialNumber.Text(16)
		serials = append(serials, serial)
		if c.CertID != acme.CertID(leaf) || c.Serial != serial {
			t.Fatalf("issue.js certificate %d: the script's certID %s / serial %s, ours %s / %s", i, c.CertID, c.Serial, acme.CertID(leaf), serial)
		}
		ws, we := acme.DefaultRenewalWindow(leaf)
		if !c.SuggestedWindow.Start.Equal(ws.Truncate(time.Second)) || !c.SuggestedWindow.End.Equal(we.Truncate(time.Second)) || c.RetryAfter != "21600" {
			t.Fatalf("issue.js certificate %d: renewalInfo %+v Retry-After %q, want %v–%v, 21600", i, c.SuggestedWindow, c.RetryAfter, ws, we)
		}
		order := s.checkIssuedAndRevoked(gctx, t, leaf, "acme-dns-01", 2)
		if i == 1 && order.Replaces != serials[0] {
			t.Fatalf("the renewal's order replaces %q, want %s", order.Replaces, serials[0])
		}
	}
	if js.Certificates[1].Replaces != js.Certificates[0].CertID {
		t.Fatalf("renewal replaces %q, want %s", js.Certificates[1].Replaces, js.Certificates[0].CertID)
	}
	if n, err := s.st.CountACMEReplaced(ctx, serials[:1]); err != nil || n != 1 {
		t.Fatalf("CountACMEReplaced %d %v, want 1", n, err)
	}
	// certbot's.
	if len(certbotLeaves) != 2 {
		t.Fatalf("certbot issued %d certificates, want 2", len(certbotLeaves))
	}
	for _, leaf := range certbotLeaves {
		s.checkIssuedAndRevoked(gctx, t, leaf, "acme-http-01", 1)
	}
}

// checkIssuedAndRevoked checks that leaf carries SCTs from both CT logs and
// came from an Application workflow with the ACME marker that issued it
// after nValid validations by method, and that the revocation workflow
// revoked it. It returns the ACME order.
func (s *stack) checkIssuedAndRevoked(ctx context.Context, t *testing.T, leaf *x509.Certificate, method string, nValid int) store.ACMEOrder {
	t.Helper()
	serial := leaf.SerialNumber.Text(16)
	if n := embeddedSCTs(t, leaf); n < 2 {
		t.Fatalf("%s: %d embedded SCTs, want ≥ 2 (one per CT log)", serial, n)
	}
	order, err := s.st.ACMEOrderBySerial(ctx, serial)
	if err != nil {
		t.Fatalf("%s: %v", serial, err)
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
		t.Fatalf("%s: workflow summary %q, want the ACME marker and order %s", serial, summary, order.ID)
	}
	if _, ok := desc.GetWorkflowExecutionInfo().GetMemo().GetFields()["acme"]; !ok {
		t.Fatalf("%s: no acme memo on %s", serial, wid)
	}
	var ar workflows.ApplicationResult
	if err := s.tc.GetWorkflow(ctx, wid, "").Get(ctx, &ar); err != nil || ar.Status != status.AppIssued || !strings.EqualFold(store.NormalizeSerial(ar.CertificateSerial), serial) {
		t.Fatalf("%s: application %s: %+v %v, want issued", serial, appID, ar, err)
	}
	var methods []string
	if err := s.st.DB().SelectContext(ctx, &methods, `SELECT method FROM domain_validations WHERE application_id = $1 AND result = 'valid'`, appID); err != nil ||
		len(methods) != nValid || slices.ContainsFunc(methods, func(m string) bool { return m != method }) {
		t.Fatalf("%s: domain validations %v %v, want %d %s", serial, methods, err, nValid, method)
	}
	var rev workflows.RevocationResult
	if err := s.tc.GetWorkflow(ctx, workflows.RevocationWorkflowID(order.CertSerial), "").Get(ctx, &rev); err != nil || rev.Status != workflows.RevRevoked {
		t.Fatalf("%s: revocation %+v %v", serial, rev, err)
	}
	if c, err := s.st.GetCertificate(ctx, order.CertSerial); err != nil || c.Status != "revoked" {
		t.Fatalf("%s: %q %v, want revoked", serial, c.Status, err)
	}
	return order
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
