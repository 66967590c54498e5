//go:build integration

package httpapi

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"

	"certdesk/activities"
	"certdesk/internal/config"
	"certdesk/internal/mpic"
	"certdesk/internal/pii"
	"certdesk/internal/pki"
	"certdesk/internal/status"
	"certdesk/internal/store"
	"certdesk/internal/temporalclient"
	"certdesk/internal/testenv"
	"certdesk/workflows"
)

// stack is CertDesk on real services for one test: a fresh PostgreSQL
// database, the Temporal dev server of this test binary, MailDev, a
// development CA in a temp dir, both workers in-process, and the starter
// on a loopback port that is also the CA's public base URL (so the CRL,
// OCSP and CA URLs printed in certificates reach it). Tests using a stack
// must not run in parallel: the task queue names are fixed.
type stack struct {
	t          *testing.T
	cfg        *config.Config
	pool       *sqlx.DB
	st         *store.Store
	tc         client.Client // with the payload codec
	mail       *testenv.MailDev
	srv        *Server
	url        string
	codecKey   string
	staffToken string
	frontend   string
}

func newStack(t *testing.T) *stack {
	t.Helper()
	pool, dbURL := testenv.NewDatabase(t)
	mail := testenv.SharedMailDev(t)
	dev := testenv.Temporal(t)

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + l.Addr().String()
	k1, _ := pii.GenerateKey()
	bk, _ := pii.GenerateKey()
	ck := make([]byte, 32)
	_, _ = rand.Read(ck)
	codecKey := "c1:" + base64.StdEncoding.EncodeToString(ck)
	caDir := t.TempDir()
	root, _ := testenv.RepoRoot()
	env := map[string]string{
		"DATABASE_URL":             dbURL,
		"CERTDESK_SMTP_HOST":       mail.SMTPHost(),
		"CERTDESK_SMTP_PORT":       strconv.Itoa(mail.SMTPPort),
		"CERTDESK_SMTP_TLS":        "none",
		"CERTDESK_PII_KEYS":        "k1:" + k1,
		"CERTDESK_BLIND_INDEX_KEY": bk,
		"CERTDESK_CA_DIR":          caDir,
		"CERTDESK_CA_PASSPHRASE":   "test-passphrase",
		"CERTDESK_PUBLIC_BASE_URL": base,
		"CERTDESK_TEMPORAL_UI_URL": "http://127.0.0.1:8233",
		"CERTDESK_STAFF_EMAIL":     "staff-" + strconv.FormatInt(time.Now().UnixNano(), 36) + "@certdesk.test",
		"CERTDESK_REGISTRY_FILE":   filepath.Join(root, "dev", "registry.json"),
		"CERTDESK_CODEC_KEY":       codecKey,
		"CERTDESK_STAFF_TOKEN":     "staff-" + randomID(16),
		"CERTDESK_DCV_RESOLVER":    testenv.DNS(t).ResolverAddr,
		"CERTDESK_PERSPECTIVES":    mpic.Format(mpic.Development),
		"CERTDESK_CT_POLICY":       "chrome,apple-static",
	}
	cfg, err := config.LoadFrom(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if os.Getenv("STARTERLOG") != "" {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	st, bidx, err := activities.OpenStore(cfg, pool)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	ks := &pki.FileKeyStore{Dir: caDir, Passphrase: []byte(cfg.CAPassphrase), Iterations: 1000}
	ca, err := pki.Bootstrap(ctx, pki.BootstrapConfig{
		Dir: caDir, Keys: ks, Organization: "CertDesk Test CA", Country: "JP",
		URLs:   pki.URLs{Base: base},
		Policy: pki.CAPolicy{OID: []int{1, 3, 6, 1, 4, 1, 32473, 1, 1}, CPSURI: base + "/repository/cps"},
	})
	if err != nil {
		t.Fatal(err)
	}
	// Two TesseraCT logs of this stack's own, trusting its new root.
	cfg.CTLogList = testenv.NewCTLogs(t, 2, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Root.Raw})).ListPath

	opts, err := temporalclient.WithCodec(client.Options{}, codecKey)
	if err != nil {
		t.Fatal(err)
	}
	tc := testenv.TemporalClient(t, opts)

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
	w := worker.New(tc, workflows.TaskQueue, worker.Options{DeadlockDetectionTimeout: 30 * time.Second})
	workflows.Register(w)
	w.RegisterActivity(acts)
	w.RegisterActivity(cta)
	sw := worker.New(tc, workflows.SigningTaskQueue, worker.Options{})
	sw.RegisterActivity(sign)
	pws, err := workflows.NewPerspectiveWorkers(tc, cfg, nil, worker.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, wk := range append([]worker.Worker{w, sw}, pws...) {
		if err := wk.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(wk.Stop)
	}

	cdc, err := temporalclient.Codec(codecKey)
	if err != nil {
		t.Fatal(err)
	}
	limits := DefaultLimits()
	limits.ResellerRate, limits.ResellerBurst = 1000, 1000
	limits.PublicRate, limits.PublicBurst = 1000, 1000
	limits.CodeRate, limits.CodeBurst = 1000, 1000
	s := mustServer(t, Deps{Config: ConfigFrom(cfg), DB: pool, Store: st, Temporal: tc, Codec: cdc, Log: log, Limits: limits})
	ts := httptest.NewUnstartedServer(s.Handler())
	ts.Listener.Close()
	ts.Listener = l
	ts.Start()
	t.Cleanup(ts.Close)
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
	return &stack{t: t, cfg: cfg, pool: pool, st: st, tc: tc, mail: mail, srv: s, url: base,
		codecKey: codecKey, staffToken: cfg.StaffToken, frontend: dev.FrontendHostPort()}
}

// addReseller creates a reseller with a fresh API key the way `starter
// reseller add` does (the command itself is tested in package main) and
// returns the id and the key.
func (s *stack) addReseller(name string) (id, key string) {
	s.t.Helper()
	key, prefix, err := store.GenerateAPIKey()
	if err != nil {
		s.t.Fatal(err)
	}
	id = "rs_" + randomID(8)
	if err := s.st.CreateReseller(context.Background(), store.Reseller{ID: id, Name: name, APIKeyHash: store.HashAPIKey(key),
		APIKeyPrefix: prefix, ContactEmail: strings.ToLower(name) + "@reseller.test"}); err != nil {
		s.t.Fatal(err)
	}
	return id, key
}

// call sends a request and returns the status, headers and body.
type reply struct {
	code int
	hdr  http.Header
	body []byte
}

func (r reply) json(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("body %q: %v", r.body, err)
	}
}

// problemType is the "type" of a problem+json body, or "".
func (r reply) problemType() string {
	if r.hdr.Get("Content-Type") != "application/problem+json" {
		return ""
	}
	var p struct {
		Type string `json:"type"`
	}
	_ = json.Unmarshal(r.body, &p)
	return p.Type
}

var noRedirect = &http.Client{
	Timeout:       30 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

func (s *stack) do(method, path, key string, body any, hdr map[string]string) reply {
	s.t.Helper()
	return doURL(s.t, method, s.url+path, key, body, hdr)
}

func doURL(t *testing.T, method, url, key string, body any, hdr map[string]string) reply {
	t.Helper()
	var rd io.Reader
	ctype := ""
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	case string:
		rd = strings.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(j)
		ctype = "application/json"
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	for k, v := range hdr {
		if v == "" {
			req.Header.Del(k)
		} else {
			req.Header.Set(k, v)
		}
	}
	resp, err := noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return reply{resp.StatusCode, resp.Header, b}
}

// newCSR makes an RSA-2048 key and a SHA-256 CSR for it.
func newCSR(t *testing.T) (*rsa.PrivateKey, string) {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return k, csrFor(t, k, "applicant")
}

func csrFor(t *testing.T, k crypto.Signer, cn string) string {
	t.Helper()
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: cn}}, k)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))
}

// person is a test subscriber with unique, greppable personal data.
type person struct {
	Name, Email, Phone, Address, Organization string
}

func newPerson() person {
	tag := randomID(4)
	n, _ := rand.Int(rand.Reader, big.NewInt(10000))
	return person{
		Name:         "Yamada Taro" + tag,
		Email:        "taro-" + tag + "@example.jp",
		Phone:        fmt.Sprintf("+81 3 5555 %04d", n),
		Address:      "1-2-3 Chiyoda " + tag + ", Tokyo",
		Organization: "Example KK " + tag,
	}
}

func (p person) application(csr string) map[string]any {
	return map[string]any{
		"product": "client-sign",
		"csr":     csr,
		"subscriber": map[string]any{
			"organization": p.Organization, "name": p.Name, "email": p.Email,
			"phone": p.Phone, "address": p.Address, "country": "JP",
		},
		"attestation":   map[string]any{"terms_version": "2026-04", "truthful": true},
		"validity_days": 365,
	}
}

// waitApp polls GET /v1/applications/{id} until pred holds.
func (s *stack) waitApp(key, id string, pred func(applicationResponse) bool) applicationResponse {
	s.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	var last applicationResponse
	var lastReply reply
	for time.Now().Before(deadline) {
		lastReply = s.do("GET", "/v1/applications/"+id, key, nil, nil)
		if lastReply.code == 200 {
			last = applicationResponse{}
			lastReply.json(s.t, &last)
			if pred(last) {
				return last
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	s.t.Fatalf("application %s: never matched; last %d %s", id, lastReply.code, lastReply.body)
	return last
}

var codeRE = regexp.MustCompile(`Verification code: ([0-9]{6}|[A-Z2-7]{26})\b`)

// codeFor reads the newest one-time code mailed to addr.
func (s *stack) codeFor(addr string) string {
	s.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		msgs, _ := s.mail.MessagesTo(context.Background(), addr)
		for i := len(msgs) - 1; i >= 0; i-- {
			if m := codeRE.FindStringSubmatch(msgs[i].Text); m != nil {
				return m[1]
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	s.t.Fatalf("no verification code mailed to %s", addr)
	return ""
}

// confirmIdentity sends the staff confirm-identity Update (Go client, with
// the codec).
func (s *stack) confirmIdentity(verID string) {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	deadline := time.Now().Add(30 * time.Second)
	for {
		h, err := s.tc.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
			WorkflowID: workflows.VerificationWorkflowID(verID), UpdateName: workflows.ConfirmIdentityUpdate,
			Args:         []any{workflows.IdentityDecision{Decision: "confirm", Reviewer: "bob", Evidence: "registry extract 2026-001"}},
			WaitForStage: client.WorkflowUpdateStageCompleted,
		})
		if err == nil {
			err = h.Get(ctx, nil)
		}
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("confirm-identity: %v", err)
		}
		time.Sleep(200 * time.Millisecond) // the verification may not wait for staff yet
	}
}

// approveDisclosure sends the staff approve-disclosure Update (the check of
// the compiled package before it is sent), retrying until the request
// waits for it.
func (s *stack) approveDisclosure(requestID string) {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	deadline := time.Now().Add(60 * time.Second)
	for {
		h, err := s.tc.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
			WorkflowID: workflows.DisclosureWorkflowID(requestID), UpdateName: workflows.ApproveDisclosureUpdate,
			Args:         []any{workflows.PackageDecision{Decision: "approve", Reviewer: "bob"}},
			WaitForStage: client.WorkflowUpdateStageCompleted,
		})
		if err == nil {
			err = h.Get(ctx, nil)
		}
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("approve-disclosure: %v", err)
		}
		time.Sleep(200 * time.Millisecond) // the package may not be compiled yet
	}
}

// temporalCLI runs bin/temporal against the test dev server.
func (s *stack) temporalCLI(args ...string) (string, error) {
	s.t.Helper()
	bin, err := testenv.TemporalBinary()
	if err != nil {
		s.t.Fatal(err)
	}
	args = append(args, "--address", s.frontend, "--namespace", "default")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := execCommand(ctx, bin, args...)
	return out, err
}

// issue takes a client-sign application from submission to an issued
// certificate through the API (codes by HTTP from MailDev; staff
// decisions as Updates: confirm-identity from Go, review from the
// `temporal` CLI through the codec endpoint) and returns the application
// id and the certificate.
func (s *stack) issue(key string, p person, csr string) (string, *x509.Certificate) {
	t := s.t
	t.Helper()
	r := s.do("POST", "/v1/applications", key, p.application(csr), nil)
	if r.code != 202 {
		t.Fatalf("apply: %d %s", r.code, r.body)
	}
	var app applicationResponse
	r.json(t, &app)
	app = s.waitApp(key, app.ID, func(a applicationResponse) bool {
		return a.Status == status.AppVerifyingIdentity && a.VerificationID != ""
	})
	code := s.codeFor(p.Email)
	r = s.do("POST", "/v1/verifications/"+app.VerificationID+"/code", "", map[string]string{"code": code}, nil)
	if r.code != 200 {
		t.Fatalf("code: %d %s", r.code, r.body)
	}
	s.confirmIdentity(app.VerificationID)
	s.waitApp(key, app.ID, func(a applicationResponse) bool { return a.Status == status.AppAwaitingReview })
	out, err := s.temporalCLI("workflow", "update", "execute", "--workflow-id", workflows.ApplicationWorkflowID(app.ID),
		"--name", "review", "--input", `{"decision":"approve","reviewer":"alice"}`,
		"--codec-endpoint", s.url+"/codec", "--codec-auth", "Bearer "+s.staffToken)
	if err != nil {
		t.Fatalf("temporal workflow update execute: %v\n%s", err, out)
	}
	app = s.waitApp(key, app.ID, func(a applicationResponse) bool {
		return a.Status == status.AppIssued && a.CertificateSerial != ""
	})
	r = s.do("GET", "/v1/certificates/"+app.CertificateSerial, key, nil, nil)
	if r.code != 200 {
		t.Fatalf("get certificate: %d %s", r.code, r.body)
	}
	var c certificateResponse
	r.json(t, &c)
	b, _ := pem.Decode([]byte(c.PEM))
	if b == nil {
		t.Fatalf("no PEM in %s", r.body)
	}
	cert, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return app.ID, cert
}

// counts is the row count of every table a request could write, plus the
// number of workflow executions.
func (s *stack) counts() map[string]int {
	s.t.Helper()
	var tables []string
	if err := s.pool.Select(&tables, `SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'goose_db_version' ORDER BY 1`); err != nil {
		s.t.Fatal(err)
	}
	out := map[string]int{}
	for _, tb := range tables {
		var n int
		if err := s.pool.Get(&n, `SELECT count(*) FROM `+tb); err != nil {
			s.t.Fatal(err)
		}
		out[tb] = n
	}
	resp, err := s.tc.CountWorkflow(context.Background(), &workflowservice.CountWorkflowExecutionsRequest{Query: ""})
	if err != nil {
		s.t.Fatal(err)
	}
	out["temporal workflows"] = int(resp.GetCount())
	return out
}

func execCommand(ctx context.Context, bin string, args ...string) (string, error) {
	out, err := exec.CommandContext(ctx, bin, args...).CombinedOutput()
	return string(out), err
}
