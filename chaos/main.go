// Command chaos runs mixed cases against CertDesk on real services while
// injecting faults, then checks invariants from PostgreSQL and MailDev
// (make chaos, make chaos-short; the short run is part of make test).
//
// The stack: a private PostgreSQL cluster under .run/chaos/pg (started from
// the machine's PostgreSQL binaries as the postgres user; the machine's
// server at 5432 is never touched), holding CertDesk's database and
// Temporal's; the standalone Temporal server on it (scripts/temporal-postgres.sh);
// MailDev; loopback DNS and HTTP for domain validation; bin/worker -role all
// and bin/starter as child processes.
//
// Cases, through the starter API as a reseller or a data subject would send
// them, with staff decisions sent as Temporal Updates as staff send them
// from the UI or CLI (mix per 20 cases: 8 dv, 3 revoke, 2 withdraw, 3 ov,
// 2 client, 2 disclosure):
//
//	dv          a DV application that must end issued
//	revoke      a DV application, then a revocation (keyCompromise) once issued
//	withdraw    a DV application whose domain never validates, withdrawn while it waits
//	ov          a server-ov application: domain validation, the one-time code
//	            from MailDev (submit-code), the registry lookup (dev/registry.json),
//	            confirm-identity and review by staff; must end issued
//	client      a client-sign application (RSA key): code, confirm-identity,
//	            review; must end issued
//	disclosure  a data subject's disclosure request through the public API:
//	            code and confirm-identity, then delivery. Variants in turn: the
//	            subject of an earlier DV case with a request-documents /
//	            documents-received pause first; an address nothing is held
//	            about (signed "nothing held" answer); the subject of an
//	            earlier DV case (download link; the package is downloaded and
//	            must list that application); paper delivery (paper-sent by staff)
//
// Staff Updates carry a fixed UpdateID per (workflow, update), are retried
// while the worker, Temporal or PostgreSQL are down, and a retry the
// validator refuses because the decision is already in (the workflow moved
// on, or closed) is recognised from the workflow's state.
//
// Faults (full run): the worker is killed with SIGKILL every few seconds and
// restarted; Temporal is killed and restarted once; PostgreSQL is restarted
// once (immediate shutdown); the mail server is unreachable for two minutes
// (a proxy in front of MailDev refuses and cuts SMTP connections: MailDev
// keeps messages in memory, so killing it would lose what it already
// received). -short: 50 cases, each fault once (mail down 30 s).
//
// Invariants (exit status 1 if any is violated): every case reached its
// expected end state, both as the harness saw it and in PostgreSQL, and
// every identity verification passed; exactly one certificate per issued
// application and none for any other; every revoked certificate is revoked
// in PostgreSQL, listed in its CRL shard and answered "revoked" by OCSP; no
// workflow failed, was terminated or timed out, and none of the cases'
// workflows is still running; the email outbox drained; every email_log row
// (one per idempotency key = case + notice + recipient part) is sent, its
// Message-ID is the one derived from the key and is in MailDev; no message
// in MailDev lacks a row; each case has exactly the notices its kind
// expects (by key, and by distinct Message-ID per subscriber address and
// notice in MailDev); the audit chain verifies. Physical copies of a
// message beyond one (a send repeated after a kill between the SMTP
// server's 250 and the email_log update: same Message-ID, which receivers
// drop) are reported as a figure, not a violation.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"certdesk/bench/stack"
	"certdesk/internal/testenv"
)

type faultLog struct {
	mu     sync.Mutex
	events []string
	counts map[string]int
}

func (f *faultLog) add(kind, format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.counts == nil {
		f.counts = map[string]int{}
	}
	f.counts[kind]++
	f.events = append(f.events, time.Now().Format("15:04:05")+" "+fmt.Sprintf(format, args...))
	stack.Logf("fault: "+format, args...)
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "chaos:", err)
		os.Exit(1)
	}
}

func run() error {
	cases := flag.Int("cases", 500, "number of cases")
	short := flag.Bool("short", false, "50 cases, one fault of each kind")
	pgPort := flag.Int("pg-port", 55532, "port of the private PostgreSQL cluster")
	tport := flag.Int("temporal-port", 17233, "Temporal frontend port (membership ports are port-300..-294)")
	keep := flag.Bool("keep", false, "keep .run/chaos/work (logs) after the run")
	flag.Parse()
	if *short {
		*cases = 50
	}
	root, err := testenv.RepoRoot()
	if err != nil {
		return err
	}
	base := filepath.Join(root, ".run", "chaos")
	started := time.Now()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	pg, err := startPrivatePG(filepath.Join(base, "pg"), *pgPort)
	if err != nil {
		return err
	}
	defer pg.stop()
	stack.Logf("private PostgreSQL on 127.0.0.1:%d (%s)", *pgPort, pg.dir)

	work := filepath.Join(base, "work", time.Now().Format("20060102-150405"))
	s, err := stack.New(ctx, stack.Options{Mode: "postgres", Work: work, TemporalPort: *tport, Label: "certdesk_chaos",
		AdminURL: fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", *pgPort),
		Extra:    map[string]string{"CERTDESK_SMTP_TIMEOUT": "5s"}, SMTPProxy: true})
	if err != nil {
		return err
	}
	defer func() {
		s.Close()
		if !*keep {
			_ = os.RemoveAll(work)
		}
	}()
	// The worker is the harness's own child: the stack starts it with the
	// default metrics address (127.0.0.1:9464), which another process on a
	// shared machine (make run, a benchmark) may hold, and a worker that
	// cannot bind it exits at once. The chaos worker serves no metrics.
	s.Worker.Kill(syscall.SIGTERM, 10*time.Second)
	wk := &workerProc{bin: filepath.Join(s.AppBin, "worker"), env: envOf(s), logPath: filepath.Join(work, "logs", "worker.log")}
	if err := wk.start(); err != nil {
		return err
	}
	defer wk.kill(syscall.SIGTERM, 10*time.Second)
	if time.Sleep(3 * time.Second); wk.exited() {
		return fmt.Errorf("the worker exited at start:\n%s", stack.TailLog(wk.logPath, 20))
	}
	stack.Logf("stack up: Temporal %s, starter %s, MailDev %s", s.TemporalAddr, s.StarterURL, s.Mail.APIURL())

	// The cases.
	ks := makeCases(*cases, stack.RandHex(3), s.DCVZone)
	h := &harness{s: s, api: &apiClient{s: s, hc: &http.Client{Timeout: 20 * time.Second}},
		mail: newMailbox(s.Mail), stats: &staffStats{}}

	// Faults run beside the cases.
	faults := &faultLog{}
	submitWindow := 4 * time.Minute
	mailDown, settle := 2*time.Minute, 15*time.Minute
	if *short {
		submitWindow, mailDown, settle = 60*time.Second, 30*time.Second, 6*time.Minute
	}
	// The worker kills stop when the cases are done; the one-off faults
	// always all run (the checks wait for them), however fast the cases go.
	killCtx, stopFaults := context.WithCancel(ctx)
	var fwg sync.WaitGroup
	fwg.Add(1)
	go func() {
		defer fwg.Done()
		injectFaults(ctx, killCtx, s, wk, pg, faults, *short, mailDown)
	}()

	// Submit at a steady pace over the window, each case on its own goroutine.
	var wg sync.WaitGroup
	gap := submitWindow / time.Duration(len(ks))
	h.deadline = time.Now().Add(submitWindow + settle)
	for _, k := range ks {
		wg.Add(1)
		go func(k *kase) {
			defer wg.Done()
			h.runCase(ctx, k)
		}(k)
		time.Sleep(gap)
	}
	stack.Logf("%d cases submitted; waiting for them (deadline %s)", len(ks), h.deadline.Format("15:04:05"))
	wg.Wait()
	stopFaults()
	fwg.Wait()
	// Whatever the faults left behind must be back.
	if wk.exited() {
		if err := wk.start(); err != nil {
			return err
		}
	}
	stack.Logf("cases finished; waiting for the outbox to drain")
	drained := waitEmails(ctx, s, 3*time.Minute)

	msgs, err := s.Mail.Messages(ctx)
	if err != nil {
		return fmt.Errorf("MailDev: %w", err)
	}
	report := check(ctx, s, ks, drained, msgs)
	faults.mu.Lock()
	c := faults.counts
	report.add("every planned fault happened (worker killed, Temporal and PostgreSQL restarted, SMTP down and back), no harness error",
		c["worker"] >= 1 && c["temporal"] == 1 && c["postgres"] == 1 && c["maildev"] == 1 && c["maildev-up"] == 1 && c["error"] == 0,
		"worker %d, Temporal %d, PostgreSQL %d, SMTP down %d and back %d, errors %d",
		c["worker"], c["temporal"], c["postgres"], c["maildev"], c["maildev-up"], c["error"])
	faults.mu.Unlock()
	h.stats.mu.Lock()
	report.add("a repeated staff decision (new UpdateID) is refused by the validator or finds the case closed, never applied twice",
		h.stats.repeatAccepted.Load() == 0 && len(h.stats.repeatErrors) == 0, "%d refused, %d closed, %d applied twice%s",
		h.stats.repeatRefused.Load(), h.stats.repeatClosed.Load(), h.stats.repeatAccepted.Load(), listSome(h.stats.repeatErrors))
	h.stats.mu.Unlock()
	printReport(os.Stdout, ks, faults, h.stats, report, time.Since(started))
	if report.failed() {
		return errors.New("invariants violated")
	}
	return nil
}

// ---------------------------------------------------------------------------
// The private PostgreSQL cluster.

type privatePG struct {
	dir, bin string
	port     int
}

func asPostgres(name string, args ...string) *exec.Cmd {
	var cmd *exec.Cmd
	if os.Getuid() == 0 {
		cmd = exec.Command("runuser", append([]string{"-u", "postgres", "--", name}, args...)...)
	} else {
		cmd = exec.Command(name, args...)
	}
	cmd.Dir = "/" // the postgres user may not be allowed into the checkout
	return cmd
}

// clusterDir is where the private cluster lives: dir, unless the postgres
// user cannot reach it (a checkout under a root-only directory, as CI's
// temporary clone is); then a directory of its own under the system's
// temporary directory, one per port.
func clusterDir(dir string, port int) string {
	_ = os.MkdirAll(filepath.Dir(dir), 0o755)
	if os.Getuid() != 0 {
		return dir
	}
	// test -x fails unless every directory on the path can be entered.
	if exec.Command("runuser", "-u", "postgres", "--", "test", "-x", filepath.Dir(dir)).Run() == nil {
		return dir
	}
	return filepath.Join(os.TempDir(), fmt.Sprintf("certdesk-chaos-pg-%d", port))
}

func startPrivatePG(dir string, port int) (*privatePG, error) {
	bin := "/usr/lib/postgresql/15/bin"
	if m, _ := filepath.Glob("/usr/lib/postgresql/*/bin"); len(m) > 0 {
		bin = m[len(m)-1]
	}
	dir = clusterDir(dir, port)
	p := &privatePG{dir: dir, bin: bin, port: port}
	if _, err := os.Stat(filepath.Join(dir, "PG_VERSION")); err != nil {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, err
		}
		if os.Getuid() == 0 {
			_ = exec.Command("chown", "postgres", dir).Run()
		}
		if out, err := asPostgres(filepath.Join(bin, "initdb"), "-D", dir, "-U", "postgres", "--auth=trust").CombinedOutput(); err != nil {
			return nil, fmt.Errorf("initdb: %v: %s", err, out)
		}
	}
	return p, p.start()
}

func (p *privatePG) start() error {
	out, err := asPostgres(filepath.Join(p.bin, "pg_ctl"), "-D", p.dir, "-l", filepath.Join(p.dir, "server.log"), "-w",
		"-o", fmt.Sprintf("-p %d -k /tmp -c listen_addresses=127.0.0.1 -c max_connections=400 -c fsync=on", p.port), "start").CombinedOutput()
	if err != nil {
		return fmt.Errorf("pg_ctl start: %v: %s", err, out)
	}
	return nil
}

// restart is an immediate shutdown (like a crash: recovery on start).
func (p *privatePG) restart() error {
	out, err := asPostgres(filepath.Join(p.bin, "pg_ctl"), "-D", p.dir, "-m", "immediate", "-w", "stop").CombinedOutput()
	if err != nil {
		return fmt.Errorf("pg_ctl stop: %v: %s", err, out)
	}
	time.Sleep(2 * time.Second)
	return p.start()
}

func (p *privatePG) stop() {
	_ = asPostgres(filepath.Join(p.bin, "pg_ctl"), "-D", p.dir, "-m", "fast", "-w", "stop").Run()
}

// ---------------------------------------------------------------------------
// The worker process (bin/worker -role all), killed and restarted by the
// faults.

type workerProc struct {
	bin, logPath string
	env          []string
	mu           sync.Mutex
	cmd          *exec.Cmd
	done         chan struct{}
}

func envOf(s *stack.Stack) []string {
	env := os.Environ()
	for k, v := range s.Env {
		env = append(env, k+"="+v)
	}
	return env
}

func (w *workerProc) start() error {
	f, err := os.OpenFile(w.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command(w.bin, "-role", "all", "-metrics-addr=")
	cmd.Env = w.env
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		f.Close()
		return fmt.Errorf("start worker: %w", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); f.Close(); close(done) }()
	w.mu.Lock()
	w.cmd, w.done = cmd, done
	w.mu.Unlock()
	return nil
}

// kill sends sig to the worker's process group and waits for it to exit
// (SIGKILL after wait).
func (w *workerProc) kill(sig syscall.Signal, wait time.Duration) {
	w.mu.Lock()
	cmd, done := w.cmd, w.done
	w.mu.Unlock()
	if cmd == nil || cmd.Process == nil {
		return
	}
	_ = syscall.Kill(-cmd.Process.Pid, sig)
	select {
	case <-done:
	case <-time.After(wait):
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
	}
}

func (w *workerProc) exited() bool {
	w.mu.Lock()
	done := w.done
	w.mu.Unlock()
	if done == nil {
		return true
	}
	select {
	case <-done:
		return true
	default:
		return false
	}
}

// ---------------------------------------------------------------------------
// Faults.

func sleepCtx(ctx context.Context, d time.Duration) bool {
	select {
	case <-ctx.Done():
		return false
	case <-time.After(d):
		return true
	}
}

func injectFaults(ctx, killCtx context.Context, s *stack.Stack, wk *workerProc, pg *privatePG, f *faultLog, short bool, mailDown time.Duration) {
	var wg sync.WaitGroup
	defer wg.Wait()
	// One-off faults on their own schedule.
	type oneOff struct {
		at time.Duration
		do func()
	}
	t0 := time.Now()
	plan := []oneOff{
		{60 * time.Second, func() {
			f.add("temporal", "Temporal server killed (SIGKILL) and restarted")
			s.TemporalProc().Kill(syscall.SIGKILL, 5*time.Second)
			time.Sleep(2 * time.Second)
			if err := s.StartTemporalPG(); err != nil {
				f.add("error", "Temporal restart: %v", err)
			}
			if err := s.WaitTemporal(2 * time.Minute); err != nil {
				f.add("error", "%v", err)
			}
		}},
		{120 * time.Second, func() {
			f.add("postgres", "PostgreSQL restarted (immediate shutdown)")
			if err := pg.restart(); err != nil {
				f.add("error", "PostgreSQL restart: %v", err)
			}
		}},
		{150 * time.Second, func() {
			// The mail server goes away for CertDesk (connections refused,
			// open ones cut); MailDev itself keeps what it has received.
			f.add("maildev", "MailDev unreachable (SMTP refused) for %s", mailDown)
			s.SMTP.Down()
			time.Sleep(mailDown)
			if err := s.SMTP.Up(); err != nil {
				f.add("error", "SMTP back: %v", err)
			}
			f.add("maildev-up", "MailDev back")
		}},
	}
	if short {
		// While cases are in flight (submitted over 60 s).
		plan[0].at, plan[1].at, plan[2].at = 20*time.Second, 32*time.Second, 42*time.Second
	}
	for _, o := range plan {
		wg.Add(1)
		go func(o oneOff) {
			defer wg.Done()
			if sleepCtx(ctx, time.Until(t0.Add(o.at))) {
				o.do()
			}
		}(o)
	}
	// The worker, killed every few seconds (once in the short run).
	rng := mrand.New(mrand.NewPCG(uint64(time.Now().UnixNano()), 7))
	for n := 0; ; n++ {
		wait := time.Duration(3+rng.IntN(6)) * time.Second
		if short {
			wait = 10 * time.Second
		}
		if !sleepCtx(killCtx, wait) {
			return
		}
		f.add("worker", "worker killed (SIGKILL)")
		wk.kill(syscall.SIGKILL, 5*time.Second)
		time.Sleep(time.Second)
		if err := wk.start(); err != nil {
			f.add("error", "worker restart: %v", err)
		}
		if short {
			return
		}
	}
}

// ---------------------------------------------------------------------------
// The API client: every call retried (same Idempotency-Key) until it gets a
// definite answer, because the starter may answer 503 while Temporal or
// PostgreSQL are down.

type apiClient struct {
	s  *stack.Stack
	hc *http.Client
}

func (a *apiClient) do(ctx context.Context, method, path string, body any, idem string, deadline time.Time) (int, []byte, error) {
	var last error
	for time.Now().Before(deadline) {
		var rd io.Reader
		if body != nil {
			b, _ := json.Marshal(body)
			rd = bytes.NewReader(b)
		}
		req, _ := http.NewRequestWithContext(ctx, method, a.s.StarterURL+path, rd)
		req.Header.Set("Authorization", "Bearer "+a.s.ResellerKey)
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		if idem != "" {
			req.Header.Set("Idempotency-Key", idem)
		}
		resp, err := a.hc.Do(req)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode < 500 && resp.StatusCode != http.StatusTooManyRequests {
				return resp.StatusCode, b, nil
			}
			last = fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, firstLine(string(b)))
		} else {
			last = err
		}
		if !sleepCtx(ctx, time.Second) {
			break
		}
	}
	return 0, nil, fmt.Errorf("gave up: %v", last)
}
