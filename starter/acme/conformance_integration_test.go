//go:build integration

package acme

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"certdesk/internal/testenv"
)

// conformanceFeatures are the RFC 8555 / RFC 9773 / ACME profiles features
// the conformance test records, in table order, with where they are
// specified. The keys are what tools/acme-client/issue.js reports.
var conformanceFeatures = []struct{ key, name, spec string }{
	{"directory", "directory", "RFC 8555 §7.1.1"},
	{"newNonce", "newNonce", "RFC 8555 §7.2"},
	{"newAccount", "newAccount with EAB", "RFC 8555 §7.3, §7.3.4"},
	{"eabRequired", "newAccount without EAB refused", "RFC 8555 §7.3.4"},
	{"newOrder", "newOrder", "RFC 8555 §7.4"},
	{"http-01", "http-01", "RFC 8555 §8.3"},
	{"dns-01", "dns-01", "RFC 8555 §8.4"},
	{"finalize", "finalize", "RFC 8555 §7.4"},
	{"download", "download (PEM chain)", "RFC 8555 §7.4.2"},
	{"alternates", "alternate chains (Link rel=\"alternate\")", "RFC 8555 §7.4.2"},
	{"keyChange", "key rollover", "RFC 8555 §7.3.5"},
	{"deactivate", "account deactivation", "RFC 8555 §7.3.6"},
	{"revokeByAccountKey", "revocation by account key", "RFC 8555 §7.6"},
	{"revokeByCertKey", "revocation by certificate key", "RFC 8555 §7.6"},
	{"renewalInfo", "ARI renewalInfo", "RFC 9773 §4"},
	{"replaces", "newOrder replaces", "RFC 9773 §5"},
	{"profiles", "profiles (meta.profiles, newOrder profile)", "draft-ietf-acme-profiles"},
}

// conformanceWant is what each server is expected to show, per feature:
// "pass", or "none" (not offered, which RFC 8555 allows): CertDesk's
// backends return one chain, so it sends no alternate links. A server
// doing better or worse than this fails the test, so the README table's
// Pebble and library-server columns (make them from the table this test
// logs) stay true; its workflows column comes from starter/acmeorders'
// TestConformanceOnWorkflows.
var conformanceWant = map[string]map[string]string{
	"Pebble":   {},
	"CertDesk": {"alternates": "none"},
}

// conformance collects outcomes: server → feature → client → outcome
// ("pass", "fail: …", "none: …").
type conformance map[string]map[string]map[string]string

func (c conformance) saw(server, client, feature, outcome string) {
	if c[server] == nil {
		c[server] = map[string]map[string]string{}
	}
	if c[server][feature] == nil {
		c[server][feature] = map[string]string{}
	}
	c[server][feature][client] = outcome
}

// verdict folds the clients' outcomes: a failure wins, then a pass.
func (c conformance) verdict(server, feature string) (string, string) {
	by := c[server][feature]
	if len(by) == 0 {
		return "untested", ""
	}
	clients := make([]string, 0, len(by))
	for k := range by {
		clients = append(clients, k)
	}
	sort.Strings(clients)
	v, why := "none", ""
	for _, cl := range clients {
		o := by[cl]
		switch {
		case strings.HasPrefix(o, "fail"):
			return "fail", cl + ": " + o
		case o == "pass":
			v = "pass"
		default:
			why = cl + ": " + o
		}
	}
	return v, why
}

// table is the Markdown conformance table.
func (c conformance) table(servers []string) string {
	var b strings.Builder
	b.WriteString("| Feature | Specification | " + strings.Join(servers, " | ") + " | Clients |\n|---|---|")
	b.WriteString(strings.Repeat("---|", len(servers)) + "---|\n")
	mark := map[string]string{"pass": "passed", "fail": "**failed**", "none": "not offered", "untested": "untested"}
	for _, f := range conformanceFeatures {
		cl := map[string]bool{}
		row := "| " + f.name + " | " + f.spec + " |"
		for _, s := range servers {
			v, _ := c.verdict(s, f.key)
			row += " " + mark[v] + " |"
			for k := range c[s][f.key] {
				cl[k] = true
			}
		}
		names := make([]string, 0, len(cl))
		for k := range cl {
			names = append(names, k)
		}
		sort.Strings(names)
		b.WriteString(row + " " + strings.Join(names, ", ") + " |\n")
	}
	return b.String()
}

// acmeTarget is one ACME server under test and what a client needs for it.
type acmeTarget struct {
	name    string
	dir     string
	bundle  string // PEM file trusting the server's TLS certificate
	eab     func(t *testing.T) (kid, hmac string)
	webroot string // served on the port the server's http-01 validation uses
	profile string
	// name returns a DNS name for an order (under the DNS stack's zones,
	// with an A record to 127.0.0.1 where the server resolves it).
	newName func(t *testing.T) string
}

// TestConformance runs the same clients — Debian's certbot (http-01 by
// --webroot, revocation by the account key and by the certificate key,
// unregister) and tools/acme-client/issue.js (npm acme-client 5.4.0: dns-01
// over RFC 2136, alternate chains, ARI renewalInfo, renewal with replaces,
// profiles, key rollover, revocation both ways, deactivation) — against
// Pebble v2.10.3 (its test configuration, EAB required, real http-01 and
// dns-01 validation through the local DNS stack) and against CertDesk's
// ACME server (this package, with the test backend validating for real),
// and records per feature whether each server passed. The table is logged
// and written to $ACME_CONFORMANCE_OUT when set.
func TestConformance(t *testing.T) {
	for _, bin := range []string{"certbot", "node", "nsupdate"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Fatalf("%s is not installed (scripts/deps.sh installs it)", bin)
		}
	}
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "tools", "acme-client", "node_modules", "acme-client")); err != nil {
		t.Fatalf("acme-client is not installed (%v): run `npm ci --prefix tools/acme-client`", err)
	}
	dns := testenv.DNS(t)
	res := conformance{}
	targets := []func(t *testing.T) acmeTarget{
		func(t *testing.T) acmeTarget { return pebbleTarget(t, root, dns) },
		func(t *testing.T) acmeTarget { return certdeskTarget(t, dns) },
	}
	servers := []string{"Pebble", "CertDesk"}
	for i, mk := range targets {
		t.Run(servers[i], func(t *testing.T) {
			tg := mk(t)
			runCertbot(t, tg, res)
			runIssueJS(t, root, tg, dns, res)
			runIssueJSWithoutEAB(t, root, tg, dns, res)
		})
	}
	tbl := res.table(servers)
	t.Logf("ACME conformance:\n%s", tbl)
	if out := os.Getenv("ACME_CONFORMANCE_OUT"); out != "" {
		if err := os.WriteFile(out, []byte(tbl), 0o644); err != nil {
			t.Error(err)
		}
	}
	for _, s := range servers {
		for _, f := range conformanceFeatures {
			want := conformanceWant[s][f.key]
			if want == "" {
				want = "pass"
			}
			if got, why := res.verdict(s, f.key); got != want {
				t.Errorf("%s %s: %s, want %s (%s)", s, f.name, got, want, why)
			}
		}
	}
}

// certdeskTarget is this package's server with the test backend: http-01
// fetched from the webroot's static server, dns-01 through the DNS stack's
// validating resolver.
func certdeskTarget(t *testing.T, dns *testenv.DNSStack) acmeTarget {
	e := newEnv(t)
	webroot := t.TempDir()
	static := httptest.NewServer(http.FileServer(http.Dir(webroot)))
	t.Cleanup(static.Close)
	be := newTestOrders(t, static.Listener.Addr().String())
	be.v.Resolver = dns.ResolverAddr
	srv := httptest.NewTLSServer(New(Deps{Store: e.st, Orders: be}))
	t.Cleanup(srv.Close)
	bundle := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(bundle, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	return acmeTarget{
		name: "CertDesk", dir: srv.URL + "/acme/directory", bundle: bundle, webroot: webroot, profile: "server-dv",
		eab: func(t *testing.T) (string, string) {
			c := e.eab(t) // single use: one per account
			return c.KID, b64(c.HMACKey)
		},
		newName: func(t *testing.T) string { return testenv.DNSName(t, dns.Zones.Signed) },
	}
}

// pebbleBin is the Pebble binary: $PEBBLE_BIN, default bin/pebble (make
// tools builds it from tools/pebble).
func pebbleBin(t *testing.T, root string) string {
	bin := os.Getenv("PEBBLE_BIN")
	if bin == "" {
		bin = filepath.Join(root, "bin", "pebble")
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("Pebble is not built (%v): run `make tools` or set PEBBLE_BIN", err)
	}
	return bin
}

// pebbleTarget starts Pebble with its test configuration (tools/pebble/
// pebble-config.json: the repository's test/config/pebble-config.json with
// the EAB keys of pebble-config-external-account-bindings.json) on free
// ports, a TLS certificate of the test's own, http-01 validation against
// the webroot's static server and -dnsserver the DNS stack's resolver.
// PEBBLE_VA_NOSLEEP and PEBBLE_WFE_NONCEREJECT=0 keep it fast and free of
// its deliberate random badNonce errors; PEBBLE_ALTERNATE_ROOTS=1 gives
// every certificate an alternate chain; PEBBLE_AUTHZREUSE=0 makes each
// order validate again.
func pebbleTarget(t *testing.T, root string, dns *testenv.DNSStack) acmeTarget {
	bin := pebbleBin(t, root)
	dir := t.TempDir()
	webroot := t.TempDir()
	static := httptest.NewServer(http.FileServer(http.Dir(webroot)))
	t.Cleanup(static.Close)
	_, webPort, _ := net.SplitHostPort(static.Listener.Addr().String())

	// The listener's certificate.
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "pebble test listener"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalECPrivateKey(key)
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	_ = os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	_ = os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600)

	raw, err := os.ReadFile(filepath.Join(root, "tools", "pebble", "pebble-config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]map[string]any
	if err := json.Unmarshal(raw, &cfg); err != nil {
		t.Fatal(err)
	}
	pc := cfg["pebble"]
	addr, mgmt := freeAddr(t), freeAddr(t)
	pc["listenAddress"], pc["managementListenAddress"] = addr, mgmt
	pc["certificate"], pc["privateKey"] = certFile, keyFile
	pc["httpPort"], _ = strconv.Atoi(webPort)
	pc["tlsPort"] = 0
	macs, _ := pc["externalAccountMACKeys"].(map[string]any)
	kid := "kid-1"
	hmac, _ := macs[kid].(string)
	if hmac == "" {
		t.Fatal("tools/pebble/pebble-config.json has no externalAccountMACKeys kid-1")
	}
	b, _ := json.Marshal(cfg)
	cfgFile := filepath.Join(dir, "pebble-config.json")
	if err := os.WriteFile(cfgFile, b, 0o600); err != nil {
		t.Fatal(err)
	}

	var out limitedBuffer
	cmd := exec.Command(bin, "-config", cfgFile, "-dnsserver", dns.ResolverAddr)
	cmd.Env = append(os.Environ(), "PEBBLE_VA_NOSLEEP=1", "PEBBLE_WFE_NONCEREJECT=0", "PEBBLE_ALTERNATE_ROOTS=1", "PEBBLE_AUTHZREUSE=0")
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("pebble:\n%s", out.String())
		}
	})
	pool := x509.NewCertPool()
	leaf, _ := x509.ParseCertificate(der)
	pool.AddCert(leaf)
	hc := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	directory := "https://" + addr + "/dir"
	for deadline := time.Now().Add(30 * time.Second); ; {
		resp, err := hc.Get(directory)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("pebble did not answer at %s: %v\n%s", directory, err, out.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	return acmeTarget{
		name: "Pebble", dir: directory, bundle: certFile, webroot: webroot, profile: "shortlived",
		eab: func(*testing.T) (string, string) { return kid, hmac },
		newName: func(t *testing.T) string {
			n := testenv.DNSName(t, dns.Zones.Signed)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if err := dns.SetRecords(ctx, n, "A", "127.0.0.1"); err != nil {
				t.Fatal(err)
			}
			return n
		},
	}
}

func freeAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// runCertbot issues a certificate with certbot (EAB, --webroot http-01),
// revokes it with the account key, issues a second one and revokes it with
// its own key, then deactivates the account (unregister).
func runCertbot(t *testing.T, tg acmeTarget, res conformance) {
	tmp := t.TempDir()
	common := []string{"--server", tg.dir, "--config-dir", filepath.Join(tmp, "cfg"), "--work-dir", filepath.Join(tmp, "work"),
		"--logs-dir", filepath.Join(tmp, "logs"), "--non-interactive"}
	run := func(args ...string) error {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "certbot", append(args, common...)...)
		cmd.Env = append(os.Environ(), "REQUESTS_CA_BUNDLE="+tg.bundle)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Logf("certbot %s against %s: %v\n%s", args[0], tg.name, err, out)
			return fmt.Errorf("certbot %s: %v", args[0], err)
		}
		return nil
	}
	saw := func(err error, features ...string) bool {
		o := "pass"
		if err != nil {
			o = "fail: " + err.Error()
		}
		for _, f := range features {
			res.saw(tg.name, "certbot", f, o)
		}
		return err == nil
	}
	kid, hmac := tg.eab(t)
	issue := func(certName string, account ...string) error {
		args := append([]string{"certonly"}, account...)
		args = append(args, "--webroot", "-w", tg.webroot, "-d", tg.newName(t), "--key-type", "ecdsa", "--cert-name", certName)
		if err := run(args...); err != nil {
			return err
		}
		// A PEM chain: the leaf and its issuer.
		raw, err := os.ReadFile(filepath.Join(tmp, "cfg", "live", certName, "fullchain.pem"))
		if err != nil {
			return err
		}
		n := 0
		for blk, rest := pem.Decode(raw); blk != nil; blk, rest = pem.Decode(rest) {
			if _, err := x509.ParseCertificate(blk.Bytes); err != nil {
				return err
			}
			n++
		}
		if n < 2 {
			return fmt.Errorf("fullchain.pem holds %d certificates", n)
		}
		return nil
	}
	flow := []string{"directory", "newNonce", "newAccount", "newOrder", "http-01", "finalize", "download"}
	if !saw(issue("c1", "--eab-kid", kid, "--eab-hmac-key", hmac, "--agree-tos", "-m", "ops@example.test"), flow...) {
		return
	}
	live := func(name, file string) string { return filepath.Join(tmp, "cfg", "live", name, file) }
	saw(run("revoke", "--cert-path", live("c1", "cert.pem"), "--reason", "superseded", "--no-delete-after-revoke"), "revokeByAccountKey")
	if saw(issue("c2"), flow[3:]...) {
		// With --key-path certbot signs the request with the certificate's key.
		saw(run("revoke", "--cert-path", live("c2", "cert.pem"), "--key-path", live("c2", "privkey.pem"),
			"--reason", "superseded", "--no-delete-after-revoke"), "revokeByCertKey")
	}
	saw(run("unregister"), "deactivate")
}

// runIssueJS runs tools/acme-client/issue.js with every feature on and
// records what it reports.
func runIssueJS(t *testing.T, root string, tg acmeTarget, dns *testenv.DNSStack, res conformance) {
	kid, hmac := tg.eab(t)
	name := tg.newName(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	args := []string{filepath.Join(root, "tools", "acme-client", "issue.js"), "--directory", tg.dir, "--eab-kid", kid, "--eab-hmac", hmac,
		"--dns-server", dns.AuthAddr, "--tsig", dns.TSIG.NsupdateKey(), "--resolver", dns.ResolverAddr, "--profile", tg.profile,
		"--renew", "--rollover", "--revoke", "--reason", "4", "--revoke-with-cert-key", "--deactivate", name}
	cmd := exec.CommandContext(ctx, "node", args...)
	cmd.Env = append(os.Environ(), "NODE_EXTRA_CA_CERTS="+tg.bundle)
	var stderr limitedBuffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	t.Logf("issue.js against %s (%v):\n%s", tg.name, err, stderr.String())
	var r struct{ Features map[string]string }
	if jerr := json.Unmarshal(out, &r); jerr != nil || len(r.Features) == 0 {
		res.saw(tg.name, "acme-client", "directory", fmt.Sprintf("fail: issue.js printed no result (%v, %v)", err, jerr))
		return
	}
	for f, o := range r.Features {
		res.saw(tg.name, "acme-client", f, o)
	}
}

// runIssueJSWithoutEAB runs issue.js with no EAB credentials: both servers
// require EAB, so newAccount must fail with externalAccountRequired.
func runIssueJSWithoutEAB(t *testing.T, root string, tg acmeTarget, dns *testenv.DNSStack, res conformance) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", filepath.Join(root, "tools", "acme-client", "issue.js"), "--directory", tg.dir,
		"--dns-server", dns.AuthAddr, "--tsig", dns.TSIG.NsupdateKey(), "no-eab.example.test")
	cmd.Env = append(os.Environ(), "NODE_EXTRA_CA_CERTS="+tg.bundle)
	out, _ := cmd.Output()
	var r struct{ Features map[string]string }
	_ = json.Unmarshal(out, &r)
	got := r.Features["newAccount"]
	t.Logf("issue.js without EAB against %s: newAccount %s", tg.name, got)
	switch {
	case strings.HasPrefix(got, "fail") && strings.Contains(strings.ToLower(got), "external"):
		res.saw(tg.name, "acme-client", "eabRequired", "pass")
	default:
		res.saw(tg.name, "acme-client", "eabRequired", fmt.Sprintf("fail: newAccount without EAB: %q", got))
	}
}
