//go:build integration

package acme

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"certdesk/internal/testenv"
)

// TestNodeACMEClient runs tools/acme-client/issue.js — the npm package
// acme-client 5.4.0, pinned by its package-lock.json — against the server
// with the test backend validating dns-01 through the local DNS stack's
// validating resolver: EAB newAccount, an order for two names whose
// _acme-challenge TXT records the script writes with RFC 2136 (nsupdate,
// TSIG) to the authoritative server, finalize, download, ARI renewalInfo,
// a renewal with "replaces", and revocation. The certIDs the script
// computes (with @peculiar/x509) must equal ours.
func TestNodeACMEClient(t *testing.T) {
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
	dns := testenv.DNS(t)

	e := newEnv(t)
	be := newTestOrders(t, "127.0.0.1:9") // no http-01 here
	be.v.Resolver = dns.ResolverAddr
	srv := httptest.NewTLSServer(New(Deps{Store: e.st, Orders: be}))
	defer srv.Close()
	bundle := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(bundle, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	cred := e.eab(t)
	name := testenv.DNSName(t, dns.Zones.Signed)
	names := []string{name, "www." + name}

	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	args := append([]string{script, "--directory", srv.URL + "/acme/directory", "--eab-kid", cred.KID, "--eab-hmac", b64(cred.HMACKey),
		"--dns-server", dns.AuthAddr, "--tsig", dns.TSIG.NsupdateKey(), "--resolver", dns.ResolverAddr,
		"--renew", "--revoke", "--reason", "4"}, names...)
	cmd := exec.CommandContext(ctx, "node", args...)
	cmd.Env = append(os.Environ(), "NODE_EXTRA_CA_CERTS="+bundle)
	var stderr limitedBuffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("issue.js: %v\n%s", err, stderr.String())
	}
	t.Logf("issue.js:\n%s", stderr.String())
	var res struct {
		Account      string
		Certificates []struct {
			Serial, CertID, PEM, RetryAfter, Replaces string
			SuggestedWindow                           struct{ Start, End time.Time }
		}
		Revoked []string
	}
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("issue.js printed %q: %v", out, err)
	}
	if len(res.Certificates) != 2 || len(res.Revoked) != 2 {
		t.Fatalf("issue.js result %s", out)
	}
	for i, c := range res.Certificates {
		blk, _ := pem.Decode([]byte(c.PEM))
		if blk == nil {
			t.Fatalf("certificate %d: no PEM", i)
		}
		leaf, err := x509.ParseCertificate(blk.Bytes)
		if err != nil || leaf.CheckSignatureFrom(be.caCert) != nil || len(leaf.DNSNames) != 2 {
			t.Fatalf("certificate %d: %v %v", i, err, leaf.DNSNames)
		}
		if c.CertID != CertID(leaf) || c.Serial != leaf.SerialNumber.Text(16) {
			t.Fatalf("certificate %d: the script's certID %s / serial %s, ours %s / %s", i, c.CertID, c.Serial, CertID(leaf), leaf.SerialNumber.Text(16))
		}
		ws, we := DefaultRenewalWindow(leaf)
		if !c.SuggestedWindow.Start.Equal(ws.Truncate(time.Second)) || !c.SuggestedWindow.End.Equal(we.Truncate(time.Second)) || c.RetryAfter != "21600" {
			t.Fatalf("certificate %d: renewalInfo %+v, want %v–%v", i, c, ws, we)
		}
		if r, ok := be.reason(c.Serial); !ok || r != 4 {
			t.Fatalf("certificate %d: revocation %v %d, want superseded (4)", i, ok, r)
		}
	}
	// The renewal is recorded as replacing the first certificate.
	if res.Certificates[1].Replaces != res.Certificates[0].CertID {
		t.Fatalf("renewal replaces %q", res.Certificates[1].Replaces)
	}
	o, err := e.st.ACMEOrderBySerial(bg, res.Certificates[1].Serial)
	if err != nil || o.Replaces != res.Certificates[0].Serial {
		t.Fatalf("renewal order %+v (%v)", o, err)
	}
	if n, err := e.st.CountACMEReplaced(bg, []string{res.Certificates[0].Serial}); err != nil || n != 1 {
		t.Fatalf("CountACMEReplaced %d %v", n, err)
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
