//go:build integration

package workflows

import (
	"context"
	"encoding/pem"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"

	"certdesk/activities"
	"certdesk/internal/config"
	"certdesk/internal/mpic"
	"certdesk/internal/pii"
	"certdesk/internal/pki"
	"certdesk/internal/store"
	"certdesk/internal/testenv"
)

// stack is CertDesk on real services for one test: a fresh database, the
// shared Temporal dev server and MailDev, a development CA in a temp dir,
// and both workers running in-process. Tests using it must not run in
// parallel: the signing queue name is fixed.
type stack struct {
	cfg   *config.Config
	tc    client.Client
	mail  *testenv.MailDev
	store *store.Store
	acts  *activities.Activities
	sign  *activities.SigningActivities
	caDir string
	// ct are the stack's own CT logs, trusting its root.
	ct *testenv.CTLogs
	// signer is the running signing worker (restartSigner replaces it).
	signMu sync.Mutex
	signer worker.Worker
	log    *slog.Logger
	cta    *activities.CTActivities
}

// restartSigner stops the signing worker and starts a new one with its own
// SigningActivities, as a new signer process after a crash would; opts may
// carry interceptors.
func (s *stack) restartSigner(t testing.TB, opts worker.Options) {
	s.signMu.Lock()
	defer s.signMu.Unlock()
	if s.signer != nil {
		s.signer.Stop()
	}
	sign, closeKeys, err := activities.NewSigning(context.Background(), s.cfg, s.store, s.log)
	if err != nil {
		t.Error(err)
		return
	}
	t.Cleanup(closeKeys)
	sw := worker.New(s.tc, SigningTaskQueue, opts)
	sw.RegisterActivity(sign)
	if err := sw.Start(); err != nil {
		t.Error(err)
		return
	}
	s.signer, s.sign = sw, sign
}

func newStack(t testing.TB, extra map[string]string) *stack {
	t.Helper()
	pool, dbURL := testenv.NewDatabase(t)
	mail := testenv.SharedMailDev(t)
	tc := testenv.TemporalClient(t, client.Options{})
	k1, _ := pii.GenerateKey()
	bk, _ := pii.GenerateKey()
	caDir := t.TempDir()
	env := map[string]string{
		"DATABASE_URL":             dbURL,
		"CERTDESK_SMTP_HOST":       mail.SMTPHost(),
		"CERTDESK_SMTP_PORT":       strconv.Itoa(mail.SMTPPort),
		"CERTDESK_SMTP_TLS":        "none",
		"CERTDESK_PII_KEYS":        "k1:" + k1,
		"CERTDESK_BLIND_INDEX_KEY": bk,
		"CERTDESK_CA_DIR":          caDir,
		"CERTDESK_CA_PASSPHRASE":   "test-passphrase",
		"CERTDESK_STAFF_EMAIL":     "staff-" + strconv.FormatInt(time.Now().UnixNano(), 36) + "@certdesk.test",
	}
	env["CERTDESK_PERSPECTIVES"] = mpic.Format(testPerspectives)
	// The CA's resolver is the validating Unbound of the real DNS stack:
	// names outside its zones have no CAA (NXDOMAIN under the signed jp.).
	env["CERTDESK_DCV_RESOLVER"] = testenv.DNS(t).ResolverAddr
	root, _ := testenv.RepoRoot()
	env["CERTDESK_REGISTRY_FILE"] = filepath.Join(root, "dev", "registry.json")
	// The local logs are Static CT API logs: Apple's RFC 6962-log rule
	// cannot be met here (README, Certificate Transparency).
	env["CERTDESK_CT_POLICY"] = "chrome,apple-static"
	for k, v := range extra {
		env[k] = v
	}
	cfg, err := config.LoadFrom(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if os.Getenv("WFLOG") != "" {
		log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	st, bidx, err := activities.OpenStore(cfg, pool)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	ks := &pki.FileKeyStore{Dir: caDir, Passphrase: []byte(cfg.CAPassphrase), Iterations: 1000}
	ca, err := pki.Bootstrap(ctx, pki.BootstrapConfig{
		Dir: caDir, Keys: ks, Organization: "CertDesk Test CA", Country: "JP",
		URLs:   pki.URLs{Base: cfg.PublicBaseURL},
		Policy: pki.CAPolicy{OID: []int{1, 3, 6, 1, 4, 1, 32473, 1, 1}, CPSURI: cfg.PublicBaseURL + "/repository/cps"},
	})
	if err != nil {
		t.Fatal(err)
	}
	// Two TesseraCT logs of this stack's own, trusting its new root.
	nLogs := 2
	if v := extra["TEST_CT_LOGS"]; v != "" {
		nLogs, _ = strconv.Atoi(v)
	}
	logs := testenv.NewCTLogs(t, nLogs, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Root.Raw}))
	if v, ok := extra["CERTDESK_CT_LOG_LIST"]; ok {
		cfg.CTLogList = v // "" : a stack without CT
	} else {
		cfg.CTLogList = logs.ListPath
	}
	acts, err := activities.New(cfg, pool, st, bidx, log)
	if err != nil {
		t.Fatal(err)
	}
	sign, closeKeys, err := activities.NewSigning(ctx, cfg, st, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(closeKeys)
	cta, err := activities.NewCT(cfg, st, log)
	if err != nil {
		t.Fatal(err)
	}

	w := worker.New(tc, TaskQueue, worker.Options{DeadlockDetectionTimeout: 30 * time.Second})
	Register(w)
	w.RegisterActivity(acts)
	if cta != nil {
		w.RegisterActivity(cta)
	}
	sw := worker.New(tc, SigningTaskQueue, worker.Options{})
	sw.RegisterActivity(sign)
	workers := []worker.Worker{w}
	// The remote perspectives, each with its own validator; extra's
	// "TEST_RESOLVER_<name>" gives one its own resolver (a hijack).
	pws, err := NewPerspectiveWorkers(tc, cfg, func(name string) string { return extra["TEST_RESOLVER_"+name] }, worker.Options{})
	if err != nil {
		t.Fatal(err)
	}
	workers = append(workers, pws...)
	for _, wk := range workers {
		if err := wk.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(wk.Stop)
	}
	// The reviewers the tests' decisions name are active staff members
	// (the decision Updates check them, issue 17).
	for _, id := range []string{"alice", "bob", "staff_a"} {
		tok, err := store.GenerateStaffToken()
		if err != nil {
			t.Fatal(err)
		}
		if err := st.CreateStaff(ctx, id, id, tok); err != nil {
			t.Fatal(err)
		}
	}
	if err := sw.Start(); err != nil {
		t.Fatal(err)
	}
	s := &stack{cfg: cfg, tc: tc, mail: mail, store: st, acts: acts, sign: sign, caDir: caDir, ct: logs, signer: sw, log: log, cta: cta}
	t.Cleanup(func() {
		s.signMu.Lock()
		defer s.signMu.Unlock()
		s.signer.Stop()
	})
	return s
}

// writeFile writes b under dir and returns the path.
func writeFile(t testing.TB, dir, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// openssl runs the real openssl binary and returns its combined output.
func openssl(t *testing.T, args ...string) (string, error) {
	t.Helper()
	out, err := exec.Command("openssl", args...).CombinedOutput()
	return string(out), err
}

// waitStatus polls a workflow's status query until pred holds.
func waitStatus[T any](t *testing.T, tc client.Client, workflowID string, pred func(T) bool) T {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	var v T
	for time.Now().Before(deadline) {
		resp, err := tc.QueryWorkflow(context.Background(), workflowID, "", StatusQuery)
		if err == nil && resp.Get(&v) == nil && pred(v) {
			return v
		}
		time.Sleep(100 * time.Millisecond)
	}
	var pending []string
	if d, err := tc.DescribeWorkflowExecution(context.Background(), workflowID, ""); err == nil {
		for _, pa := range d.PendingActivities {
			pending = append(pending, pa.ActivityType.GetName()+": "+pa.LastFailure.GetMessage())
		}
	}
	t.Fatalf("%s: status never matched; last %+v; pending activities %v", workflowID, v, pending)
	return v
}
