// Package stack brings CertDesk up on real services for the benchmarks
// (bench) and the chaos harness (chaos).
package stack

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jmoiron/sqlx"
	_ "github.com/lib/pq"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/testsuite"

	"certdesk/activities"
	"certdesk/internal/cases"
	"certdesk/internal/config"
	"certdesk/internal/db"
	"certdesk/internal/mpic"
	"certdesk/internal/pki"
	"certdesk/internal/store"
	"certdesk/internal/temporalclient"
	"certdesk/internal/testenv"
	"certdesk/internal/testenv/dnsstack"
)

// Stack is CertDesk on real services for the benchmarks and the chaos
// harness: a fresh database on the machine's PostgreSQL (or AdminURL), a
// development CA, MailDev, Temporal (dev server or the standalone server on
// PostgreSQL), loopback DNS and HTTP servers for domain validation, and the
// real worker and starter binaries as child processes.
type Stack struct {
	// CTLogs are the stack's Certificate Transparency logs.
	CTLogs          *testenv.CTLogs
	Root, Work, Bin string
	// AppBin holds worker and starter (BENCH_BIN, default Bin).
	AppBin        string
	Mode          string // dev or postgres
	AdminURL      string
	DBName, DBURL string
	Env           map[string]string
	Cfg           *config.Config
	Pool          *sqlx.DB
	Store         *store.Store
	Mail          *testenv.MailDev
	TC            client.Client
	TemporalAddr  string
	StarterURL    string
	ResellerID    string
	ResellerKey   string
	CA            *pki.CA
	Keys          pki.KeyStore

	dev      *testsuite.DevServer
	tpg      *Proc
	tpgEnv   []string
	procs    []*Proc
	cleanups []func()
	Worker   *Proc
	Starter  *Proc
	// SMTP is the proxy in front of MailDev (Options.SMTPProxy).
	SMTP *TCPProxy
	// DCVZone is the DNSSEC-signed zone every name under which resolves to
	// the stack's file-method server; DV names go under it.
	DCVZone string
	// DNS is the stack's DNS servers (RFC 2136 updates with its TSIG key).
	DNS *dnsstack.Stack
	// ACMEDirectory is the starter's ACME directory URL on its own HTTPS
	// listener (a free loopback port), whose certificate chains to the
	// development root at ACMERootPEM.
	ACMEDirectory, ACMERootPEM string
}

// TCPProxy forwards a loopback port to a target; Down refuses and cuts
// connections until Up.
type TCPProxy struct {
	Port   int
	target string
	mu     sync.Mutex
	ln     net.Listener
	conns  map[net.Conn]bool
}

func newTCPProxy(target string) (*TCPProxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &TCPProxy{Port: ln.Addr().(*net.TCPAddr).Port, target: target, conns: map[net.Conn]bool{}}
	p.serve(ln)
	return p, nil
}

func (p *TCPProxy) serve(ln net.Listener) {
	p.ln = ln
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go p.pipe(c)
		}
	}()
}

func (p *TCPProxy) track(c net.Conn, on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if on {
		p.conns[c] = true
	} else {
		delete(p.conns, c)
	}
}

func (p *TCPProxy) pipe(c net.Conn) {
	t, err := net.Dial("tcp", p.target)
	if err != nil {
		c.Close()
		return
	}
	p.track(c, true)
	p.track(t, true)
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(t, c); done <- struct{}{} }()
	go func() { _, _ = io.Copy(c, t); done <- struct{}{} }()
	<-done
	c.Close()
	t.Close()
	p.track(c, false)
	p.track(t, false)
}

// Down closes the listener (connections are refused) and cuts every open
// connection.
func (p *TCPProxy) Down() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		c.Close()
	}
}

// Up listens again on the same port.
func (p *TCPProxy) Up() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		return nil
	}
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p.Port))
	if err != nil {
		return err
	}
	p.serve(ln)
	return nil
}

// Close stops the proxy.
func (p *TCPProxy) Close() { p.Down() }

// Options tune New.
type Options struct {
	Mode         string // dev or postgres
	Work         string // directory for logs and the CA
	TemporalPort int    // postgres mode: frontend port (others follow it)
	Label        string // prefix of database names
	// AdminURL is the PostgreSQL server CertDesk's and Temporal's databases
	// live on (default: CERTDESK_TEST_DATABASE_URL or 127.0.0.1:5432).
	AdminURL string
	// Extra environment for the worker and the starter.
	Extra map[string]string
	// SMTPProxy puts a TCP proxy between CertDesk and MailDev, so a harness
	// can take "the mail server" down (SMTPDown) without MailDev losing the
	// messages it holds in memory.
	SMTPProxy bool
}

func Logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "[%s] %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

func RandHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func RandKey() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.StdEncoding.EncodeToString(b)
}

// New brings everything up; Close takes it down.
func New(ctx context.Context, o Options) (s *Stack, err error) {
	root, err := testenv.RepoRoot()
	if err != nil {
		return nil, err
	}
	s = &Stack{Root: root, Work: o.Work, Bin: filepath.Join(root, "bin"), Mode: o.Mode, AdminURL: o.AdminURL}
	s.AppBin = s.Bin
	if b := os.Getenv("BENCH_BIN"); b != "" {
		s.AppBin = b
	}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	if s.AdminURL == "" {
		s.AdminURL = testenv.AdminURL()
	}
	for _, b := range []string{filepath.Join(s.AppBin, "worker"), filepath.Join(s.AppBin, "starter"), filepath.Join(s.Bin, "temporal")} {
		if _, err := os.Stat(b); err != nil {
			return s, fmt.Errorf("%s is missing: run `make tools build`", b)
		}
	}
	if err := os.MkdirAll(filepath.Join(s.Work, "logs"), 0o755); err != nil {
		return s, err
	}

	// PostgreSQL: CertDesk's database.
	s.DBName = o.Label + "_" + RandHex(4)
	admin, err := sqlx.Open("postgres", s.AdminURL)
	if err != nil {
		return s, err
	}
	defer admin.Close()
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+s.DBName); err != nil {
		return s, fmt.Errorf("create database (is PostgreSQL running at %s?): %w", s.AdminURL, err)
	}
	s.cleanups = append(s.cleanups, func() { dropDB(s.AdminURL, s.DBName) })
	s.DBURL = withDB(s.AdminURL, s.DBName)

	// MailDev.
	if s.Mail, err = testenv.StartMailDev(); err != nil {
		return s, err
	}
	s.cleanups = append(s.cleanups, s.Mail.Stop)

	// Domain validation on loopback.
	smtpPort := s.Mail.SMTPPort
	if o.SMTPProxy {
		if s.SMTP, err = newTCPProxy(fmt.Sprintf("127.0.0.1:%d", s.Mail.SMTPPort)); err != nil {
			return s, err
		}
		s.cleanups = append(s.cleanups, s.SMTP.Close)
		smtpPort = s.SMTP.Port
	}
	httpPort, stopDCV, err := startDCV()
	if err != nil {
		return s, err
	}
	s.cleanups = append(s.cleanups, stopDCV)
	// The CA's resolver: the real DNS stack (Knot DNS, validating Unbound),
	// with every name under DCVZone pointing at loopback.
	ds, err := dnsstack.Start(ctx, dnsstack.Config{Dir: filepath.Join(s.Work, "dns"), StartTimeout: 3 * time.Minute})
	if err != nil {
		return s, err
	}
	s.cleanups = append(s.cleanups, ds.Stop)
	s.DNS = ds
	s.DCVZone = "dcv." + ds.Zones.Signed
	if err := ds.SetRecords(ctx, "*."+s.DCVZone, "A", "127.0.0.1"); err != nil {
		return s, err
	}
	dnsAddr := ds.ResolverAddr

	// Temporal.
	if err := s.startTemporal(ctx, o); err != nil {
		return s, err
	}

	httpPort2, _ := testenv.FreePort()
	codecKey := RandKey()
	s.Env = map[string]string{
		"DATABASE_URL":              s.DBURL,
		"CERTDESK_PII_KEYS":         "k1:" + RandKey(),
		"CERTDESK_BLIND_INDEX_KEY":  RandKey(),
		"CERTDESK_CODEC_KEY":        codecKey,
		"CERTDESK_STAFF_TOKEN":      RandHex(16),
		"CERTDESK_CA_DIR":           filepath.Join(s.Work, "ca"),
		"CERTDESK_CA_PASSPHRASE":    RandHex(12),
		"CERTDESK_TEMPORAL_ADDRESS": s.TemporalAddr,
		"CERTDESK_SMTP_HOST":        s.Mail.SMTPHost(),
		"CERTDESK_SMTP_PORT":        strconv.Itoa(smtpPort),
		"CERTDESK_SMTP_TLS":         "none",
		"CERTDESK_HTTP_ADDR":        "127.0.0.1:" + strconv.Itoa(httpPort2),
		"CERTDESK_PUBLIC_BASE_URL":  "http://127.0.0.1:" + strconv.Itoa(httpPort2),
		"CERTDESK_DCV_HTTP_PORT":    strconv.Itoa(httpPort),
		"CERTDESK_DCV_DEV_NETWORKS": "127.0.0.0/8,::1/128",
		"CERTDESK_PERSPECTIVES":     mpic.Format(mpic.Development),
		"CERTDESK_DCV_RESOLVER":     dnsAddr,
		"CERTDESK_REGISTRY_FILE":    filepath.Join(s.Root, "dev", "registry.json"),
		"CERTDESK_STAFF_EMAIL":      "staff@bench.certdesk.jp",
		"CERTDESK_LOG_LEVEL":        "warn",
		"CERTDESK_BULK_RATE":        "1000",
	}
	for k, v := range o.Extra {
		s.Env[k] = v
	}
	s.StarterURL = s.Env["CERTDESK_PUBLIC_BASE_URL"]
	if s.Cfg, err = config.LoadFrom(func(k string) (string, bool) { v, ok := s.Env[k]; return v, ok }); err != nil {
		return s, err
	}

	// Migrations and the CA, with the real binaries.
	if out, err := s.run(ctx, "starter", "migrate"); err != nil {
		return s, fmt.Errorf("starter migrate: %v: %s", err, out)
	}
	if out, err := s.run(ctx, "worker", "bootstrap-ca", "-org", "CertDesk Bench CA"); err != nil {
		return s, fmt.Errorf("worker bootstrap-ca: %v: %s", err, out)
	}
	// The ACME listener (HTTPS on a free port, as make run: a certificate
	// from the development CA by worker listener-cert); scenarios that do
	// not use it only see one more listener.
	acmePort, err := testenv.FreePort()
	if err != nil {
		return s, err
	}
	acmeCert, acmeKey := filepath.Join(s.Work, "acme-tls.pem"), filepath.Join(s.Work, "acme-tls-key.pem")
	if out, err := s.run(ctx, "worker", "listener-cert", "-cert", acmeCert, "-key", acmeKey, "-hosts", "127.0.0.1,localhost"); err != nil {
		return s, fmt.Errorf("worker listener-cert: %v: %s", err, out)
	}
	s.Env["CERTDESK_ACME_ADDR"] = "127.0.0.1:" + strconv.Itoa(acmePort)
	s.Env["CERTDESK_ACME_TLS_CERT"], s.Env["CERTDESK_ACME_TLS_KEY"] = acmeCert, acmeKey
	s.ACMEDirectory = "https://" + s.Env["CERTDESK_ACME_ADDR"] + "/acme/directory"
	s.ACMERootPEM = filepath.Join(s.Cfg.CADir, "root.pem")
	if s.Pool, err = db.Open(ctx, s.DBURL); err != nil {
		return s, err
	}
	if s.Store, _, err = activities.OpenStore(s.Cfg, s.Pool); err != nil {
		return s, err
	}
	s.Keys = &pki.FileKeyStore{Dir: s.Cfg.CADir, Passphrase: []byte(s.Cfg.CAPassphrase)}
	if s.CA, err = pki.LoadCA(ctx, s.Cfg.CADir, s.Keys, pki.LoadOptions{}); err != nil {
		return s, err
	}
	// Certificate Transparency: three TesseraCT logs trusting the new root
	// (TLS issuance needs them); the processes started below read the list.
	// Three, not two: the default TLS validity (199 days) is over Chrome's
	// 180 days, for which its policy wants three SCTs from distinct logs.
	logs, err := testenv.StartCTLogs(testenv.CTLogsConfig{Dir: filepath.Join(s.Work, "ct"), N: 3,
		RootsPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.CA.Root.Raw})})
	if err != nil {
		return s, fmt.Errorf("CT logs: %w", err)
	}
	s.cleanups = append(s.cleanups, logs.Stop)
	s.CTLogs = logs
	s.Env["CERTDESK_CT_LOG_LIST"] = logs.ListPath
	s.Env["CERTDESK_CT_POLICY"] = "chrome,apple-static"
	if s.Cfg, err = config.LoadFrom(func(k string) (string, bool) { v, ok := s.Env[k]; return v, ok }); err != nil {
		return s, err
	}

	// A reseller and its API key, through the operator command.
	s.ResellerID = "rs_bench"
	out, err := s.run(ctx, "starter", "reseller", "add", "-id", s.ResellerID, "-name", "Bench Reseller", "-contact-email", "reseller@bench.certdesk.jp")
	if err != nil {
		return s, fmt.Errorf("starter reseller add: %v: %s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	s.ResellerKey = strings.TrimSpace(lines[len(lines)-1])

	// The staff members the chaos and bench decisions name: a decision's
	// reviewer must be an active staff member (CheckStaff). Their tokens
	// are not needed (the Update goes straight to Temporal).
	for _, id := range []string{"chaos-reviewer", "chaos-staff"} {
		if out, err := s.run(ctx, "starter", "staff", "add", "-id", id, "-name", id); err != nil && !strings.Contains(string(out)+err.Error(), "exists") {
			return s, fmt.Errorf("starter staff add %s: %v: %s", id, err, out)
		}
	}

	// Temporal client with the payload codec.
	copts, err := temporalclient.WithCodec(client.Options{HostPort: s.TemporalAddr, Namespace: "default", Logger: QuietLogger{}}, codecKey)
	if err != nil {
		return s, err
	}
	if s.TC, err = client.Dial(copts); err != nil {
		return s, err
	}

	if err := s.StartWorker(); err != nil {
		return s, err
	}
	if err := s.StartPerspectives(); err != nil {
		return s, err
	}
	if err := s.StartStarter(ctx); err != nil {
		return s, err
	}
	return s, nil
}

func (s *Stack) startTemporal(ctx context.Context, o Options) error {
	switch s.Mode {
	case "dev":
		var args []string
		for _, a := range cases.SearchAttributeTypes {
			args = append(args, "--search-attribute", a.Name+"="+a.Type)
		}
		args = append(args, "--sqlite-pragma", "journal_mode=wal", "--sqlite-pragma", "synchronous=normal")
		// Eager activities: a workflow task completion hands its activity
		// straight back to the worker, saving a matching round trip.
		args = append(args, "--dynamic-config-value", "system.enableActivityEagerExecution=true")
		// One partition per task queue: on one machine with a few pollers,
		// four partitions leave tasks unmatched (written to the database and
		// read back) while pollers wait on another partition.
		args = append(args, "--dynamic-config-value", "matching.numTaskqueueReadPartitions=1",
			"--dynamic-config-value", "matching.numTaskqueueWritePartitions=1")
		srv, err := testsuite.StartDevServer(ctx, testsuite.DevServerOptions{
			ExistingPath:  filepath.Join(s.Bin, "temporal"),
			ClientOptions: &client.Options{Namespace: "default", Logger: QuietLogger{}},
			LogLevel:      "error",
			ExtraArgs:     args,
		})
		if err != nil {
			return fmt.Errorf("Temporal dev server: %w", err)
		}
		s.dev = srv
		s.TemporalAddr = srv.FrontendHostPort()
		s.cleanups = append(s.cleanups, func() { _ = srv.Stop() })
		return nil
	case "postgres":
		for _, b := range []string{"temporal-server", "temporal-sql-tool"} {
			if _, err := os.Stat(filepath.Join(s.Bin, b)); err != nil {
				return fmt.Errorf("bin/%s is missing: run `make temporal-server`", b)
			}
		}
		port := o.TemporalPort
		if port == 0 {
			port = 27233
		}
		for _, p := range []int{port, port + 1, port + 2, port + 6, port + 10, port - 300, port - 299, port - 298, port - 294, port + 767} {
			if !portFree(p) {
				return fmt.Errorf("port %d (Temporal on PostgreSQL, base %d) is in use; choose another base", p, port)
			}
		}
		u, _ := url.Parse(s.AdminURL)
		host, pgPort := u.Hostname(), u.Port()
		if pgPort == "" {
			pgPort = "5432"
		}
		user := "postgres"
		if u.User != nil && u.User.Username() != "" {
			user = u.User.Username()
		}
		// Named by port: a second stack on another port (a bench run beside a
		// chaos run) must not drop this one's databases.
		tdb := fmt.Sprintf("%s_temporal_%d", o.Label, port)
		s.tpgEnv = append(os.Environ(), "TEMPORAL_PORT="+strconv.Itoa(port), "TPG_PG_HOST="+host, "TPG_PG_PORT="+pgPort,
			"TPG_PG_USER="+user, "TPG_DB="+tdb, "TPG_VIS_DB="+tdb+"_visibility", "TPG_LOG_LEVEL=error")
		script := filepath.Join(s.Root, "scripts", "temporal-postgres.sh")
		for _, step := range []string{"drop", "setup"} {
			cmd := exec.CommandContext(ctx, "bash", script, step)
			cmd.Env = s.tpgEnv
			if out, err := cmd.CombinedOutput(); err != nil {
				return fmt.Errorf("temporal-postgres.sh %s: %v: %s", step, err, out)
			}
		}
		s.cleanups = append(s.cleanups, func() {
			cmd := exec.Command("bash", script, "drop")
			cmd.Env = s.tpgEnv
			_ = cmd.Run()
		})
		if err := s.StartTemporalPG(); err != nil {
			return err
		}
		s.TemporalAddr = "127.0.0.1:" + strconv.Itoa(port)
		cmd := exec.CommandContext(ctx, "bash", script, "register")
		cmd.Env = s.tpgEnv
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("temporal-postgres.sh register: %v: %s", err, out)
		}
		return nil
	}
	return fmt.Errorf("CERTDESK_BENCH_TEMPORAL=%q: use dev or postgres", s.Mode)
}

// StartTemporalPG (re)starts the standalone server (postgres mode).
func (s *Stack) StartTemporalPG() error {
	p, err := s.startProc("temporal", s.tpgEnv, "bash", filepath.Join(s.Root, "scripts", "temporal-postgres.sh"), "start")
	if err != nil {
		return err
	}
	s.tpg = p
	return nil
}

// TemporalProc is the standalone server's process (postgres mode).
func (s *Stack) TemporalProc() *Proc { return s.tpg }

// WaitTemporal waits until the frontend answers.
func (s *Stack) WaitTemporal(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		cmd := exec.Command(filepath.Join(s.Bin, "temporal"), "operator", "cluster", "health", "--address", s.TemporalAddr)
		if cmd.Run() == nil {
			return nil
		}
		time.Sleep(500 * time.Millisecond)
	}
	return fmt.Errorf("Temporal at %s did not come back within %s", s.TemporalAddr, timeout)
}

func (s *Stack) envList() []string {
	env := os.Environ()
	for k, v := range s.Env {
		env = append(env, k+"="+v)
	}
	return env
}

func (s *Stack) run(ctx context.Context, bin string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, filepath.Join(s.AppBin, bin), args...)
	cmd.Env = s.envList()
	return cmd.CombinedOutput()
}

// ACMEEAB makes single-use EAB credentials for one ACME account of the
// stack's reseller (product server-dv) with the operator command, which
// prints kid=… and hmac=… on its last two lines.
func (s *Stack) ACMEEAB(ctx context.Context) (kid, hmac string, err error) {
	out, err := s.run(ctx, "starter", "reseller", "eab", "--id", s.ResellerID, "--product", "server-dv")
	if err != nil {
		return "", "", fmt.Errorf("starter reseller eab: %v: %s", err, out)
	}
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), "kid="); ok {
			kid = v
		} else if v, ok := strings.CutPrefix(strings.TrimSpace(l), "hmac="); ok {
			hmac = v
		}
	}
	if kid == "" || hmac == "" {
		return "", "", fmt.Errorf("starter reseller eab printed no kid=/hmac=: %s", out)
	}
	return kid, hmac, nil
}

// StartWorker starts bin/worker -role all, without its metrics listener (the
// default port would clash with a worker of make run on the same machine).
func (s *Stack) StartWorker() error {
	p, err := s.startProc("worker", s.envList(), filepath.Join(s.AppBin, "worker"), "-role", "all", "-metrics-addr=")
	s.Worker = p
	return err
}

// StartPerspectives starts one bin/worker -role perspective per remote
// perspective of CERTDESK_PERSPECTIVES (mpic.Development), each a process of
// its own as in a real deployment.
func (s *Stack) StartPerspectives() error {
	for _, p := range mpic.Development {
		if _, err := s.startProc("perspective-"+p.Name, s.envList(), filepath.Join(s.AppBin, "worker"),
			"-role", "perspective", "-name", p.Name, "-rir", p.RIR, "-metrics-addr="); err != nil {
			return err
		}
	}
	return nil
}

// StartStarter starts bin/starter and waits for /readyz.
func (s *Stack) StartStarter(ctx context.Context) error {
	p, err := s.startProc("starter", s.envList(), filepath.Join(s.AppBin, "starter"))
	if err != nil {
		return err
	}
	s.Starter = p
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(s.StarterURL + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("starter /readyz did not answer 200 within 90s; see %s", p.LogPath)
}

// Proc is a child process in its own process group, logging to a file.
type Proc struct {
	Name, LogPath string
	Cmd           *exec.Cmd
	done          chan struct{}
}

func (s *Stack) startProc(name string, env []string, bin string, args ...string) (*Proc, error) {
	logPath := filepath.Join(s.Work, "logs", name+".log")
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &Proc{Name: name, LogPath: logPath, Cmd: cmd, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); f.Close(); close(p.done) }()
	s.procs = append(s.procs, p)
	return p, nil
}

// Kill sends sig to the process group and waits for the process to exit.
func (p *Proc) Kill(sig syscall.Signal, wait time.Duration) {
	if p == nil || p.Cmd.Process == nil {
		return
	}
	_ = syscall.Kill(-p.Cmd.Process.Pid, sig)
	select {
	case <-p.done:
	case <-time.After(wait):
		_ = syscall.Kill(-p.Cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	}
}

// Exited reports whether the process has ended.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Close stops the processes and removes the databases.
func (s *Stack) Close() {
	if s.TC != nil {
		s.TC.Close()
	}
	for i := len(s.procs) - 1; i >= 0; i-- {
		s.procs[i].Kill(syscall.SIGTERM, 10*time.Second)
	}
	if s.Pool != nil {
		s.Pool.Close()
	}
	for i := len(s.cleanups) - 1; i >= 0; i-- {
		s.cleanups[i]()
	}
}

func dropDB(adminURL, name string) {
	admin, err := sqlx.Open("postgres", adminURL)
	if err != nil {
		return
	}
	defer admin.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, _ = admin.ExecContext(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
}

func withDB(base, name string) string {
	u, err := url.Parse(base)
	if err != nil {
		panic(err)
	}
	u.Path = "/" + name
	return u.String()
}

func portFree(p int) bool {
	l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
	if err != nil {
		return false
	}
	l.Close()
	return true
}

// startDCV starts the applicants' side of the file method on loopback: an
// HTTP server answering every /.well-known/pki-validation/<token>.txt with
// <token> (404 for names starting with "hold": the chaos harness withdraws
// those applications while they wait).
func startDCV() (httpPort int, stop func(), err error) {
	hl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, nil, err
	}
	hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.Host, "hold") || !strings.HasPrefix(r.URL.Path, "/.well-known/pki-validation/") || !strings.HasSuffix(r.URL.Path, ".txt") {
			http.NotFound(w, r)
			return
		}
		io.WriteString(w, strings.TrimSuffix(path.Base(r.URL.Path), ".txt"))
	}), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = hs.Serve(hl) }()
	return hl.Addr().(*net.TCPAddr).Port, func() { _ = hs.Close() }, nil
}

// tailLog returns the last lines of a log file, for error messages.
func TailLog(p string, n int) string {
	f, err := os.Open(p)
	if err != nil {
		return ""
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > n {
			lines = lines[1:]
		}
	}
	return strings.Join(lines, "\n")
}

// QuietLogger drops SDK chatter.
type QuietLogger struct{}

func (QuietLogger) Debug(string, ...interface{}) {}
func (QuietLogger) Info(string, ...interface{})  {}
func (QuietLogger) Warn(string, ...interface{})  {}
func (QuietLogger) Error(string, ...interface{}) {}
