package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	xacme "golang.org/x/crypto/acme"

	"certdesk/bench/stack"
	"certdesk/internal/testenv"
)

// ---------------------------------------------------------------------------
// (6) ACME: the same client (golang.org/x/crypto/acme, one account per
// concurrent client, EAB) issues n certificates by dns-01 with conc clients
// against Pebble started here and against the stack's CertDesk ACME
// listener, in the same run. Each certificate: newOrder for a fresh name
// under the stack's DNSSEC-signed zone, the dns-01 TXT record by RFC 2136
// (waiting until the CA's resolver serves it), the challenge, WaitOrder,
// finalize with a new P-256 key, download. Both servers are polled as
// x/crypto/acme polls (Retry-After, at least 1 s); Pebble's retryAfter is
// set to CertDesk's 1 s, and its deliberate nonce rejections and
// validation sleeps are off.

// acmeTarget is one ACME server under test.
type acmeTarget struct {
	name      string
	directory string
	roots     *x509.CertPool
	// eab returns EAB credentials for one more account (kid, base64url key).
	eab func(ctx context.Context) (string, string, error)
	// check looks at each issued leaf (CertDesk: SCTs embedded).
	check func(leaf *x509.Certificate) error
}

type acmeRun struct {
	rate      float64
	lats, dns []time.Duration
	took      time.Duration
}

func benchACME(ctx context.Context, s *stack.Stack, n, conc int) ([]Row, error) {
	peb, stop, err := startPebble(ctx, s)
	if err != nil {
		return nil, fmt.Errorf("pebble: %w", err)
	}
	defer stop()
	rootPEM, err := os.ReadFile(s.ACMERootPEM)
	if err != nil {
		return nil, err
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(rootPEM)
	cd := acmeTarget{name: "CertDesk", directory: s.ACMEDirectory, roots: roots,
		eab: func(ctx context.Context) (string, string, error) { return s.ACMEEAB(ctx) },
		check: func(leaf *x509.Certificate) error {
			if !slices.ContainsFunc(leaf.Extensions, func(e pkix.Extension) bool { return e.Id.Equal(oidSCTList) }) {
				return fmt.Errorf("certificate %x for %v has no SCT list", leaf.SerialNumber, leaf.DNSNames)
			}
			return nil
		}}
	if err := waitDirectory(ctx, cd, 60*time.Second); err != nil {
		return nil, err
	}
	tag := stack.RandHex(3)
	var runs []acmeRun
	for _, t := range []acmeTarget{peb, cd} {
		stack.Logf("acme: %s: %d certificates, %d clients, dns-01", t.name, n, conc)
		r, err := runACME(ctx, s, t, fmt.Sprintf("%s-%s", strings.ToLower(t.name[:2]), tag), n, conc)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", t.name, err)
		}
		runs = append(runs, r)
	}
	p, c := runs[0], runs[1]
	note := func(r acmeRun, what string) string {
		return fmt.Sprintf("p50 %.2f s, p99 %.2f s per certificate (newOrder → certificate downloaded; of which the TXT update p50 %.2f s; polled as x/crypto/acme polls, Retry-After 1 s from both); %d in %.1f s; %s",
			pct(r.lats, 0.5).Seconds(), pct(r.lats, 0.99).Seconds(), pct(r.dns, 0.5).Seconds(), n, r.took.Seconds(), what)
	}
	fig := fmt.Sprintf("%d certificates by dns-01, %d x/crypto/acme clients (EAB)", n, conc)
	return []Row{
		{Scenario: "6 ACME", Figure: "Pebble v2.10.3: " + fig, Value: p.rate, Unit: "certificates/s", Mode: "Pebble",
			Note: note(p, "Pebble: in-memory state, one DNS TXT lookup, signs at once: no workflows, no MPIC, no CAA, no CT, no database")},
		{Scenario: "6 ACME", Figure: "CertDesk ACME listener: " + fig, Value: c.rate, Unit: "certificates/s",
			Ratio: fmt.Sprintf("%.2f× Pebble", c.rate/p.rate), Mode: s.Mode,
			Note: note(c, fmt.Sprintf("CertDesk: each order an Application workflow, dns-01 checked from the %d configured MPIC perspectives through the validating resolver, CAA, precertificate, SCTs from %d CT logs, lint, all in PostgreSQL", len(strings.Split(s.Env["CERTDESK_PERSPECTIVES"], ",")), len(s.CTLogs.Logs)))},
	}, nil
}

// oidSCTList is the embedded SCT list extension (RFC 6962 §3.3).
var oidSCTList = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 11129, 2, 4, 2}

// runACME registers conc accounts (not timed), then issues n certificates
// with them, each client one certificate at a time.
func runACME(ctx context.Context, s *stack.Stack, t acmeTarget, tag string, n, conc int) (acmeRun, error) {
	clients := make([]*xacme.Client, conc)
	for i := range clients {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return acmeRun{}, err
		}
		c := &xacme.Client{Key: key, DirectoryURL: t.directory, UserAgent: "certdesk-bench",
			HTTPClient: &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: t.roots}}}}
		kid, hmac, err := t.eab(ctx)
		if err != nil {
			return acmeRun{}, err
		}
		k, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(hmac, "="))
		if err != nil {
			return acmeRun{}, fmt.Errorf("EAB key: %w", err)
		}
		if _, err := c.Register(ctx, &xacme.Account{Contact: []string{"mailto:bench@bench.certdesk.jp"},
			ExternalAccountBinding: &xacme.ExternalAccountBinding{KID: kid, Key: k}}, xacme.AcceptTOS); err != nil {
			return acmeRun{}, fmt.Errorf("register: %w", err)
		}
		clients[i] = c
	}
	lats := make([]time.Duration, n)
	dnsT := make([]time.Duration, n)
	var next atomic.Int64
	var first error
	var once sync.Once
	var wg sync.WaitGroup
	start := time.Now()
	for _, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				t0 := time.Now()
				d, err := issueACME(ctx, s, c, t, fmt.Sprintf("acme%04d-%s.%s", i, tag, s.DCVZone))
				if err != nil {
					once.Do(func() { first = err })
					next.Store(int64(n))
					return
				}
				lats[i], dnsT[i] = time.Since(t0), d
			}
		}()
	}
	wg.Wait()
	took := time.Since(start)
	if first != nil {
		return acmeRun{}, first
	}
	slices.Sort(lats)
	slices.Sort(dnsT)
	return acmeRun{rate: float64(n) / took.Seconds(), lats: lats, dns: dnsT, took: took}, nil
}

// issueACME obtains one certificate for name by dns-01 and returns how long
// the TXT update took.
func issueACME(ctx context.Context, s *stack.Stack, c *xacme.Client, t acmeTarget, name string) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	o, err := c.AuthorizeOrder(ctx, xacme.DomainIDs(name))
	if err != nil {
		return 0, fmt.Errorf("newOrder %s: %w", name, err)
	}
	if len(o.AuthzURLs) != 1 {
		return 0, fmt.Errorf("order %s has %d authorizations", o.URI, len(o.AuthzURLs))
	}
	az, err := c.GetAuthorization(ctx, o.AuthzURLs[0])
	if err != nil {
		return 0, err
	}
	i := slices.IndexFunc(az.Challenges, func(ch *xacme.Challenge) bool { return ch.Type == "dns-01" })
	if i < 0 {
		return 0, fmt.Errorf("authorization for %s offers no dns-01", name)
	}
	v, err := c.DNS01ChallengeRecord(az.Challenges[i].Token)
	if err != nil {
		return 0, err
	}
	t0 := time.Now()
	if err := s.DNS.SetRecords(ctx, "_acme-challenge."+name, "TXT", `"`+v+`"`); err != nil {
		return 0, err
	}
	dnsTook := time.Since(t0)
	if _, err := c.Accept(ctx, az.Challenges[i]); err != nil {
		return 0, fmt.Errorf("challenge %s: %w", name, err)
	}
	if o, err = c.WaitOrder(ctx, o.URI); err != nil {
		return 0, fmt.Errorf("order %s: %w", name, err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return 0, err
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{DNSNames: []string{name}}, key)
	if err != nil {
		return 0, err
	}
	// CreateCertFromOrder, not CreateOrderCert: Pebble's finalize answer
	// has no Location, so the order URL must come from the client.
	ders, _, err := c.CreateCertFromOrder(ctx, o, csr, true)
	if err != nil {
		return 0, fmt.Errorf("finalize %s: %w", name, err)
	}
	leaf, err := x509.ParseCertificate(ders[0])
	if err != nil {
		return 0, err
	}
	if !slices.Equal(leaf.DNSNames, []string{name}) {
		return 0, fmt.Errorf("certificate for %v, ordered %s", leaf.DNSNames, name)
	}
	if t.check != nil {
		if err := t.check(leaf); err != nil {
			return 0, err
		}
	}
	return dnsTook, nil
}

func waitDirectory(ctx context.Context, t acmeTarget, timeout time.Duration) error {
	hc := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: t.roots}}}
	var last error
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, t.directory, nil)
		resp, err := hc.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
			err = fmt.Errorf("%s", resp.Status)
		}
		last = err
		if ctx.Err() != nil {
			return ctx.Err()
		}
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("%s directory %s did not answer within %s: %v", t.name, t.directory, timeout, last)
}

// startPebble starts bin/pebble (v2.10.3) with tools/pebble/pebble-config.json
// on free ports, a listener certificate of its own, -dnsserver the stack's
// validating resolver, retryAfter 1 s for authorizations and orders (as
// CertDesk), and PEBBLE_VA_NOSLEEP=1, PEBBLE_WFE_NONCEREJECT=0 and
// PEBBLE_AUTHZREUSE=0 (every order validates again), as the conformance
// tests run it.
func startPebble(ctx context.Context, s *stack.Stack) (acmeTarget, func(), error) {
	bin := filepath.Join(s.Bin, "pebble")
	if b := os.Getenv("PEBBLE_BIN"); b != "" {
		bin = b
	}
	if _, err := os.Stat(bin); err != nil {
		return acmeTarget{}, nil, fmt.Errorf("%s is missing: run `make tools` or set PEBBLE_BIN", bin)
	}
	dir := filepath.Join(s.Work, "pebble")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return acmeTarget{}, nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return acmeTarget{}, nil, err
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "pebble bench listener"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return acmeTarget{}, nil, err
	}
	kder, _ := x509.MarshalECPrivateKey(key)
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		return acmeTarget{}, nil, err
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		return acmeTarget{}, nil, err
	}
	raw, err := os.ReadFile(filepath.Join(s.Root, "tools", "pebble", "pebble-config.json"))
	if err != nil {
		return acmeTarget{}, nil, err
	}
	var cfg map[string]map[string]any
	if err := json.Unmarshal(raw, &cfg); err != nil {
		return acmeTarget{}, nil, err
	}
	pc := cfg["pebble"]
	var ports [3]int
	for i := range ports {
		if ports[i], err = testenv.FreePort(); err != nil {
			return acmeTarget{}, nil, err
		}
	}
	addr := "127.0.0.1:" + strconv.Itoa(ports[0])
	pc["listenAddress"], pc["managementListenAddress"] = addr, "127.0.0.1:"+strconv.Itoa(ports[1])
	pc["certificate"], pc["privateKey"] = certFile, keyFile
	pc["httpPort"], pc["tlsPort"] = ports[2], 0
	pc["retryAfter"] = map[string]int{"authz": 1, "order": 1}
	macs, _ := pc["externalAccountMACKeys"].(map[string]any)
	hmac, _ := macs["kid-1"].(string)
	if hmac == "" {
		return acmeTarget{}, nil, fmt.Errorf("tools/pebble/pebble-config.json has no externalAccountMACKeys kid-1")
	}
	b, _ := json.Marshal(cfg)
	cfgFile := filepath.Join(dir, "pebble-config.json")
	if err := os.WriteFile(cfgFile, b, 0o600); err != nil {
		return acmeTarget{}, nil, err
	}
	logPath := filepath.Join(s.Work, "logs", "pebble.log")
	lf, err := os.Create(logPath)
	if err != nil {
		return acmeTarget{}, nil, err
	}
	cmd := exec.Command(bin, "-config", cfgFile, "-dnsserver", s.DNS.ResolverAddr)
	cmd.Env = append(os.Environ(), "PEBBLE_VA_NOSLEEP=1", "PEBBLE_WFE_NONCEREJECT=0", "PEBBLE_AUTHZREUSE=0")
	cmd.Stdout, cmd.Stderr = lf, lf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		lf.Close()
		return acmeTarget{}, nil, err
	}
	stop := func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		lf.Close()
	}
	pool := x509.NewCertPool()
	leaf, _ := x509.ParseCertificate(der)
	pool.AddCert(leaf)
	t := acmeTarget{name: "Pebble", directory: "https://" + addr + "/dir", roots: pool,
		eab: func(context.Context) (string, string, error) { return "kid-1", hmac, nil }}
	if err := waitDirectory(ctx, t, 30*time.Second); err != nil {
		stop()
		tail, _ := os.ReadFile(logPath)
		return acmeTarget{}, nil, fmt.Errorf("%w: %s", err, bytes.TrimSpace(tail))
	}
	return t, stop, nil
}
