// Command chaos runs mixed cases against CertDesk on real services while
// injecting faults, then checks invariants from PostgreSQL and MailDev
// (make chaos, make chaos-short).
//
// The stack: a private PostgreSQL cluster under .run/chaos/pg (started from
// the machine's PostgreSQL binaries as the postgres user; the machine's
// server at 5432 is never touched), holding CertDesk's database and
// Temporal's; the standalone Temporal server on it (scripts/temporal-postgres.sh);
// MailDev; loopback DNS and HTTP for domain validation; bin/worker -role all
// and bin/starter as child processes.
//
// Cases, through the starter API as a reseller would send them:
//
//	dv        a DV application that must end issued
//	revoke    a DV application, then a revocation (keyCompromise) once issued
//	withdraw  a DV application whose domain never validates, withdrawn while it waits
//
// Faults (full run): the worker is killed with SIGKILL every few seconds and
// restarted; Temporal is killed and restarted once; PostgreSQL is restarted
// once (immediate shutdown); the mail server is unreachable for two minutes
// (a proxy in front of MailDev refuses and cuts SMTP connections: MailDev
// keeps messages in memory, so killing it would lose what it already
// received). -short: 50 cases, each fault once (mail down 30 s).
//
// Invariants: every case reaches its end state; one certificate per issued
// application and none for a withdrawn one; every revoked certificate is
// revoked in PostgreSQL, listed in its CRL shard and answered "revoked" by
// OCSP; no workflow failed; every email_log row is sent and its Message-ID
// is in MailDev; every issued subscriber got the certificate notice; the
// audit chain verifies.
package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/big"
	mrand "math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"go.temporal.io/api/workflowservice/v1"
	"golang.org/x/crypto/ocsp"

	"certdesk/bench/stack"
	"certdesk/internal/testenv"
	"certdesk/workflows"
)

type kase struct {
	i      int
	kind   string // dv, revoke, withdraw
	domain string
	email  string
	id     string
	wid    string
	serial string
	status string
	note   string
	done   bool
}

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
	stack.Logf("stack up: Temporal %s, starter %s, MailDev %s", s.TemporalAddr, s.StarterURL, s.Mail.APIURL())

	// The cases.
	ks := make([]*kase, *cases)
	tag := stack.RandHex(3)
	for i := range ks {
		k := &kase{i: i, kind: "dv"}
		switch {
		case i%10 == 9:
			k.kind = "withdraw"
		case i%5 == 1:
			k.kind = "revoke"
		}
		prefix := "c"
		if k.kind == "withdraw" {
			prefix = "hold"
		}
		k.domain = fmt.Sprintf("%s%04d-%s.chaos.certdesk.jp", prefix, i, tag)
		k.email = fmt.Sprintf("sub%04d-%s@chaos.certdesk.jp", i, tag)
		ks[i] = k
	}
	api := &apiClient{s: s, hc: &http.Client{Timeout: 20 * time.Second}}

	// Faults run beside the cases.
	faults := &faultLog{}
	submitWindow := 4 * time.Minute
	mailDown, settle := 2*time.Minute, 15*time.Minute
	if *short {
		submitWindow, mailDown, settle = 40*time.Second, 30*time.Second, 6*time.Minute
	}
	fctx, stopFaults := context.WithCancel(ctx)
	var fwg sync.WaitGroup
	fwg.Add(1)
	go func() {
		defer fwg.Done()
		injectFaults(fctx, s, pg, faults, *short, mailDown)
	}()

	// Submit at a steady pace over the window, each case on its own goroutine.
	var wg sync.WaitGroup
	gap := submitWindow / time.Duration(len(ks))
	deadline := time.Now().Add(submitWindow + settle)
	for _, k := range ks {
		wg.Add(1)
		go func(k *kase) {
			defer wg.Done()
			runCase(ctx, api, k, deadline)
		}(k)
		time.Sleep(gap)
	}
	stack.Logf("%d cases submitted; waiting for them (deadline %s)", len(ks), deadline.Format("15:04:05"))
	wg.Wait()
	stopFaults()
	fwg.Wait()
	// Whatever the faults left behind must be back.
	if s.Worker.Exited() {
		_ = s.StartWorker()
	}
	stack.Logf("cases finished; waiting for the outbox to drain")
	drained := waitEmails(ctx, s, 3*time.Minute)

	msgs, err := s.Mail.Messages(ctx)
	if err != nil {
		return fmt.Errorf("MailDev: %w", err)
	}
	report := check(ctx, s, ks, drained, msgs)
	printReport(os.Stdout, ks, faults, report, time.Since(started))
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
	if os.Getuid() == 0 {
		return exec.Command("runuser", append([]string{"-u", "postgres", "--", name}, args...)...)
	}
	return exec.Command(name, args...)
}

func startPrivatePG(dir string, port int) (*privatePG, error) {
	bin := "/usr/lib/postgresql/15/bin"
	if m, _ := filepath.Glob("/usr/lib/postgresql/*/bin"); len(m) > 0 {
		bin = m[len(m)-1]
	}
	p := &privatePG{dir: dir, bin: bin, port: port}
	if _, err := os.Stat(filepath.Join(dir, "PG_VERSION")); err != nil {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, err
		}
		if os.Getuid() == 0 {
			for d := dir; d != filepath.Dir(filepath.Dir(dir)); d = filepath.Dir(d) {
				_ = exec.Command("chown", "postgres", d).Run()
			}
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
// Faults.

func sleepCtx(ctx context.Context, d time.Duration) bool {
	select {
	case <-ctx.Done():
		return false
	case <-time.After(d):
		return true
	}
}

func injectFaults(ctx context.Context, s *stack.Stack, pg *privatePG, f *faultLog, short bool, mailDown time.Duration) {
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
		plan[0].at, plan[1].at, plan[2].at = 15*time.Second, 30*time.Second, 40*time.Second
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
			wait = 8 * time.Second
		}
		if !sleepCtx(ctx, wait) {
			return
		}
		f.add("worker", "worker killed (SIGKILL)")
		s.Worker.Kill(syscall.SIGKILL, 5*time.Second)
		time.Sleep(time.Second)
		if err := s.StartWorker(); err != nil {
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

type appStatus struct {
	ID                string `json:"id"`
	WorkflowID        string `json:"workflow_id"`
	Status            string `json:"status"`
	CertificateSerial string `json:"certificate_serial"`
}

func newCSR() string {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, k)
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))
}

func runCase(ctx context.Context, a *apiClient, k *kase, deadline time.Time) {
	fail := func(format string, args ...any) { k.note = fmt.Sprintf(format, args...) }
	code, b, err := a.do(ctx, http.MethodPost, "/v1/applications", map[string]any{
		"product": "server-dv", "csr": newCSR(), "domains": []string{k.domain},
		"subscriber":  map[string]any{"name": "Chaos Taro", "email": k.email, "country": "JP"},
		"attestation": map[string]any{"terms_version": "2026-01", "truthful": true},
	}, "chaos-app-"+k.domain, deadline)
	if err != nil || code != http.StatusAccepted {
		fail("submit: %d %v %s", code, err, firstLine(string(b)))
		return
	}
	var st appStatus
	_ = json.Unmarshal(b, &st)
	k.id, k.wid = st.ID, st.WorkflowID

	poll := func(pred func(appStatus) bool) bool {
		for time.Now().Before(deadline) {
			code, b, err := a.do(ctx, http.MethodGet, "/v1/applications/"+k.id, nil, "", deadline)
			if err == nil && code == 200 {
				var s appStatus
				if json.Unmarshal(b, &s) == nil {
					k.status, k.serial = s.Status, s.CertificateSerial
					if pred(s) {
						return true
					}
				}
			}
			if !sleepCtx(ctx, 2*time.Second) {
				return false
			}
		}
		return false
	}
	terminal := func(s appStatus) bool {
		switch s.Status {
		case workflows.AppIssued, workflows.AppRejected, workflows.AppFailed, workflows.AppWithdrawn, workflows.AppExpired:
			return true
		}
		return false
	}
	switch k.kind {
	case "withdraw":
		if !poll(func(s appStatus) bool { return s.Status == workflows.AppValidating || terminal(s) }) {
			fail("never reached %s (last %q)", workflows.AppValidating, k.status)
			return
		}
		code, b, err := a.do(ctx, http.MethodPost, "/v1/applications/"+k.id+"/withdraw", map[string]any{"reason": "chaos"}, "chaos-wd-"+k.domain, deadline)
		if err != nil || (code != 202 && code != 200 && code != 409) {
			fail("withdraw: %d %v %s", code, err, firstLine(string(b)))
			return
		}
		if !poll(terminal) {
			fail("withdrawn application never closed (last %q)", k.status)
			return
		}
	default:
		if !poll(terminal) {
			fail("never closed (last %q)", k.status)
			return
		}
	}
	if k.kind == "revoke" && k.status == workflows.AppIssued {
		code, b, err := a.do(ctx, http.MethodPost, "/v1/certificates/"+k.serial+"/revocation", map[string]any{"reason": "keyCompromise", "comment": "chaos"}, "chaos-rv-"+k.domain, deadline)
		if err != nil || code >= 300 {
			fail("revocation: %d %v %s", code, err, firstLine(string(b)))
			return
		}
		var rv struct {
			WorkflowID string `json:"workflow_id"`
		}
		_ = json.Unmarshal(b, &rv)
		// Wait for the revocation workflow to finish.
		for time.Now().Before(deadline) {
			var out any
			err := a.s.TC.GetWorkflow(ctx, rv.WorkflowID, "").Get(ctx, &out)
			if err == nil {
				break
			}
			if !sleepCtx(ctx, 2*time.Second) {
				break
			}
		}
	}
	k.done = true
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}

// ---------------------------------------------------------------------------
// Invariants.

type invariant struct {
	name   string
	ok     bool
	detail string
}

type report struct{ inv []invariant }

func (r *report) add(name string, ok bool, format string, args ...any) {
	r.inv = append(r.inv, invariant{name, ok, fmt.Sprintf(format, args...)})
}

func (r *report) failed() bool {
	for _, i := range r.inv {
		if !i.ok {
			return true
		}
	}
	return false
}

func waitEmails(ctx context.Context, s *stack.Stack, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		var n int
		if err := s.Pool.GetContext(ctx, &n, `SELECT count(*) FROM email_log WHERE status <> 'sent'`); err == nil && n == 0 {
			return true
		}
		if !sleepCtx(ctx, 3*time.Second) {
			break
		}
	}
	return false
}

func check(ctx context.Context, s *stack.Stack, ks []*kase, drained bool, msgs []testenv.Email) *report {
	r := &report{}
	// 1. End states.
	var bad []string
	for _, k := range ks {
		want := workflows.AppIssued
		if k.kind == "withdraw" {
			want = workflows.AppWithdrawn
		}
		if !k.done || k.status != want {
			bad = append(bad, fmt.Sprintf("#%d %s: %q %s", k.i, k.kind, k.status, k.note))
		}
	}
	r.add("every case reached its end state", len(bad) == 0, "%d of %d wrong%s", len(bad), len(ks), listSome(bad))

	// 2. One certificate per issued application, none for withdrawn ones.
	var issuedNoCert, withdrawnCert []string
	for _, k := range ks {
		if k.id == "" {
			continue
		}
		var n int
		if err := s.Pool.GetContext(ctx, &n, `SELECT count(*) FROM certificates WHERE application_id = $1`, k.id); err != nil {
			issuedNoCert = append(issuedNoCert, k.id+": "+err.Error())
			continue
		}
		if k.status == workflows.AppIssued && n != 1 {
			issuedNoCert = append(issuedNoCert, fmt.Sprintf("%s: %d certificates", k.id, n))
		}
		if k.kind == "withdraw" && n != 0 {
			withdrawnCert = append(withdrawnCert, k.id)
		}
	}
	r.add("one certificate per issued application", len(issuedNoCert) == 0, "%d wrong%s", len(issuedNoCert), listSome(issuedNoCert))
	r.add("no certificate for a withdrawn application", len(withdrawnCert) == 0, "%d wrong%s", len(withdrawnCert), listSome(withdrawnCert))

	// 3. Revocations: PostgreSQL, CRL shard, OCSP.
	var revBad []string
	revoked := 0
	crls := map[string]map[string]bool{} // issuer/shard -> serials
	for _, k := range ks {
		if k.kind != "revoke" || k.serial == "" {
			continue
		}
		revoked++
		var row struct {
			Status string `db:"status"`
			Issuer string `db:"issuer"`
			Shard  int    `db:"crl_shard"`
		}
		if err := s.Pool.GetContext(ctx, &row, `SELECT status, issuer, crl_shard FROM certificates WHERE serial = $1`, k.serial); err != nil {
			revBad = append(revBad, k.serial+": "+err.Error())
			continue
		}
		if row.Status != "revoked" {
			revBad = append(revBad, k.serial+": status "+row.Status)
			continue
		}
		key := fmt.Sprintf("%s/%d", row.Issuer, row.Shard)
		if crls[key] == nil {
			crls[key] = map[string]bool{}
			c, err := s.Store.LatestCRL(ctx, row.Issuer, row.Shard)
			if err == nil {
				if rl, err := x509.ParseRevocationList(c.DER); err == nil {
					for _, e := range rl.RevokedCertificateEntries {
						crls[key][e.SerialNumber.Text(16)] = true
					}
				}
			}
		}
		sn, _ := new(big.Int).SetString(k.serial, 16)
		if sn == nil || !crls[key][sn.Text(16)] {
			revBad = append(revBad, k.serial+": not in CRL shard "+key)
			continue
		}
		if st, err := ocspStatus(s, row.Issuer, sn); err != nil || st != ocsp.Revoked {
			revBad = append(revBad, fmt.Sprintf("%s: OCSP status %d (%v)", k.serial, st, err))
		}
	}
	r.add("revoked: in PostgreSQL, in the CRL shard, OCSP revoked", len(revBad) == 0, "%d revoked, %d wrong%s", revoked, len(revBad), listSome(revBad))

	// 4. No failed or terminated workflow.
	var failedWF int64
	if resp, err := s.TC.CountWorkflow(ctx, &workflowservice.CountWorkflowExecutionsRequest{Namespace: "default",
		Query: `ExecutionStatus = "Failed" OR ExecutionStatus = "Terminated" OR ExecutionStatus = "TimedOut"`}); err == nil {
		failedWF = resp.GetCount()
		r.add("no workflow failed, terminated or timed out", failedWF == 0, "%d", failedWF)
	} else {
		r.add("no workflow failed, terminated or timed out", false, "count: %v", err)
	}

	// 5. Email: outbox drained, every sent Message-ID in MailDev, every
	// issued subscriber got mail.
	var unsent []struct {
		Key      string `db:"idempotency_key"`
		Notice   string `db:"notice"`
		Status   string `db:"status"`
		Attempts int    `db:"attempts"`
		Error    string `db:"last_error"`
	}
	_ = s.Pool.SelectContext(ctx, &unsent, `SELECT idempotency_key, notice, status, attempts, last_error FROM email_log WHERE status <> 'sent'`)
	var us []string
	for _, u := range unsent {
		us = append(us, fmt.Sprintf("%s %s %s attempts=%d %s", u.Key, u.Notice, u.Status, u.Attempts, firstLine(u.Error)))
	}
	r.add("email outbox drained (no pending or failed rows)", drained && len(unsent) == 0, "%d not sent%s", len(unsent), listSome(us))
	var ids []string
	_ = s.Pool.SelectContext(ctx, &ids, `SELECT message_id FROM email_log WHERE status = 'sent'`)
	inMail := map[string]int{}
	perRcpt := map[string]int{}
	for _, m := range msgs {
		if id, ok := m.Headers["message-id"].(string); ok {
			inMail[strings.Trim(id, "<>")]++
		}
		for _, t := range m.To {
			perRcpt[strings.ToLower(t.Address)]++
		}
	}
	var missing []string
	for _, id := range ids {
		if inMail[strings.Trim(id, "<>")] == 0 {
			missing = append(missing, id)
		}
	}
	r.add("every sent email_log row is in MailDev", len(missing) == 0, "%d sent rows, %d messages in MailDev, %d missing%s", len(ids), len(msgs), len(missing), listSome(missing))
	var noMail []string
	for _, k := range ks {
		if k.status == workflows.AppIssued && perRcpt[strings.ToLower(k.email)] < 2 {
			noMail = append(noMail, fmt.Sprintf("%s: %d", k.email, perRcpt[strings.ToLower(k.email)]))
		}
	}
	r.add("every issued subscriber got the received and issued notices", len(noMail) == 0, "%d short%s", len(noMail), listSome(noMail))
	recorded := map[string]bool{}
	for _, id := range ids {
		recorded[strings.Trim(id, "<>")] = true
	}
	extra := 0
	for id, n := range inMail {
		if !recorded[id] {
			extra += n
		} else {
			extra += n - 1
		}
	}
	r.add("duplicate deliveries: messages in MailDev beyond one per sent email_log row (at-least-once: a send repeated after a crash before it was recorded)", true,
		"%d", extra)

	// 6. The audit chain.
	cmd := exec.CommandContext(ctx, filepath.Join(s.AppBin, "worker"), "verify-audit")
	cmd.Env = os.Environ()
	for k, v := range s.Env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	out, err := cmd.CombinedOutput()
	r.add("audit hash chain verifies", err == nil, "%s", firstLine(strings.TrimSpace(string(out))))
	return r
}

func listSome(xs []string) string {
	if len(xs) == 0 {
		return ""
	}
	if len(xs) > 5 {
		return ": " + strings.Join(xs[:5], "; ") + fmt.Sprintf("; … (%d more)", len(xs)-5)
	}
	return ": " + strings.Join(xs, "; ")
}

// ocspStatus asks the starter's OCSP endpoint, as a relying party would.
func ocspStatus(s *stack.Stack, issuerID string, serial *big.Int) (int, error) {
	iss, ok := s.CA.Issuer(issuerID)
	if !ok {
		return -1, fmt.Errorf("unknown issuer %s", issuerID)
	}
	der, err := ocsp.CreateRequest(&x509.Certificate{SerialNumber: serial}, iss.Certificate(), nil)
	if err != nil {
		return -1, err
	}
	resp, err := http.Get(s.StarterURL + "/ocsp/" + base64.StdEncoding.EncodeToString(der))
	if err != nil {
		return -1, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	r, err := ocsp.ParseResponse(b, iss.Certificate())
	if err != nil {
		return -1, err
	}
	return r.Status, nil
}

func printReport(w io.Writer, ks []*kase, f *faultLog, r *report, took time.Duration) {
	byKind := map[string]map[string]int{}
	for _, k := range ks {
		if byKind[k.kind] == nil {
			byKind[k.kind] = map[string]int{}
		}
		st := k.status
		if st == "" {
			st = "(none)"
		}
		byKind[k.kind][st]++
	}
	fmt.Fprintf(w, "\nchaos: %d cases in %s\n\ncases:\n", len(ks), took.Round(time.Second))
	for _, kind := range []string{"dv", "revoke", "withdraw"} {
		parts := []string{}
		for st, n := range byKind[kind] {
			parts = append(parts, st+"="+strconv.Itoa(n))
		}
		fmt.Fprintf(w, "  %-9s %s\n", kind, strings.Join(parts, " "))
	}
	fmt.Fprintf(w, "\nfaults: worker kills %d, Temporal restarts %d, PostgreSQL restarts %d, MailDev outages %d, harness errors %d\n",
		f.counts["worker"], f.counts["temporal"], f.counts["postgres"], f.counts["maildev"], f.counts["error"])
	for _, e := range f.events {
		if !strings.Contains(e, "worker killed") {
			fmt.Fprintf(w, "  %s\n", e)
		}
	}
	fmt.Fprintln(w, "\ninvariants:")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, i := range r.inv {
		res := "ok"
		if !i.ok {
			res = "VIOLATED"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", res, i.name, i.detail)
	}
	tw.Flush()
}
