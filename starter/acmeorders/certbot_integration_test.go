//go:build integration

package acmeorders

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"encoding/binary"
	"encoding/pem"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/worker"
	"google.golang.org/protobuf/encoding/protojson"

	"certdesk/activities"
	"certdesk/internal/config"
	"certdesk/internal/mpic"
	"certdesk/internal/pii"
	"certdesk/internal/pki"
	"certdesk/internal/status"
	"certdesk/internal/store"
	"certdesk/internal/testenv"
	"certdesk/workflows"
)

// stack is CertDesk on real services: a fresh database, the shared
// Temporal dev server, MailDev and DNS stack, a development CA, two CT logs
// trusting its root, the workflow, signing and perspective workers
// in-process, and the ACME server on this package's backend.
type stack struct {
	st      *store.Store
	tc      client.Client
	webroot string
	dns     *testenv.DNSStack
	// dirURL is the ACME directory behind one address served by two
	// starters' ACME listeners (NewServer); rootPEM is the CA root their
	// listener certificate chains to.
	dirURL  string
	rootPEM []byte
	// hits counts the connections each listener took.
	hits [2]atomic.Int64
}

func newStack(t *testing.T) *stack {
	t.Helper()
	pool, dbURL := testenv.NewDatabase(t)
	mail := testenv.SharedMailDev(t)
	tc := testenv.TemporalClient(t, client.Options{})
	dnsStack := testenv.DNS(t)
	webroot := t.TempDir()
	web := httptest.NewServer(http.FileServer(http.Dir(webroot)))
	t.Cleanup(web.Close)
	_, webPort, _ := net.SplitHostPort(web.Listener.Addr().String())
	k1, _ := pii.GenerateKey()
	bk, _ := pii.GenerateKey()
	caDir := t.TempDir()
	root, _ := testenv.RepoRoot()
	env := map[string]string{
		"DATABASE_URL":              dbURL,
		"CERTDESK_SMTP_HOST":        mail.SMTPHost(),
		"CERTDESK_SMTP_PORT":        strconv.Itoa(mail.SMTPPort),
		"CERTDESK_SMTP_TLS":         "none",
		"CERTDESK_PII_KEYS":         "k1:" + k1,
		"CERTDESK_BLIND_INDEX_KEY":  bk,
		"CERTDESK_CA_DIR":           caDir,
		"CERTDESK_CA_PASSPHRASE":    "test-passphrase",
		"CERTDESK_STAFF_EMAIL":      "staff-acme@certdesk.test",
		"CERTDESK_PERSPECTIVES":     mpic.Format(mpic.Development),
		"CERTDESK_DCV_RESOLVER":     dnsStack.ResolverAddr,
		"CERTDESK_DCV_HTTP_PORT":    webPort,
		"CERTDESK_DCV_DEV_NETWORKS": "127.0.0.0/8,::1/128",
		"CERTDESK_REGISTRY_FILE":    filepath.Join(root, "dev", "registry.json"),
		"CERTDESK_CT_POLICY":        "chrome,apple-static",
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
	logs := testenv.NewCTLogs(t, 2, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Root.Raw}))
	cfg.CTLogList = logs.ListPath
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
	if err != nil || cta == nil {
		t.Fatalf("CT activities: %v", err)
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
	key, prefix, _ := store.GenerateAPIKey()
	if err := st.CreateReseller(ctx, store.Reseller{ID: "rs_acmewf", Name: "ACME reseller", ContactEmail: "ops@reseller.example",
		APIKeyHash: store.HashAPIKey(key), APIKeyPrefix: prefix}); err != nil {
		t.Fatal(err)
	}
	s := &stack{st: st, tc: tc, webroot: webroot, dns: dnsStack,
		rootPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Root.Raw})}
	s.listen(t, cfg, ca)
	return s
}

// listen starts two ACME listeners as two starters would (NewServer, a
// listener certificate for 127.0.0.1 from the stack's TLS issuing CA) and
// one address in front that hands each new connection to the next
// listener in turn. Keep-alives are off, so every request is a new
// connection: consecutive requests reach different processes.
func (s *stack) listen(t *testing.T, cfg *config.Config, ca *pki.CA) {
	t.Helper()
	iss, err := ca.IssuerFor("server-dv")
	if err != nil {
		t.Fatal(err)
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, err := iss.LoopbackServerCertificate([]string{"127.0.0.1", "localhost"}, key.Public(), pki.Day)
	if err != nil {
		t.Fatal(err)
	}
	chain, _ := ca.ChainPEM(iss.ID())
	dir := t.TempDir()
	p8, _ := x509.MarshalPKCS8PrivateKey(key)
	cfg.ACMETLSCert, cfg.ACMETLSKey = filepath.Join(dir, "acme.pem"), filepath.Join(dir, "acme-key.pem")
	if err := os.WriteFile(cfg.ACMETLSCert, append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), chain...), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfg.ACMETLSKey, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: p8}), 0o600); err != nil {
		t.Fatal(err)
	}
	var backends [2]string
	for i := range backends {
		srv, err := NewServer(cfg, s.st, s.tc)
		if err != nil || srv == nil {
			t.Fatalf("NewServer: %v", err)
		}
		srv.SetKeepAlivesEnabled(false)
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		backends[i] = ln.Addr().String()
		go func() { _ = srv.ServeTLS(ln, "", "") }()
		t.Cleanup(func() { _ = srv.Close() })
	}
	front, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = front.Close() })
	go func() {
		for n := 0; ; n++ {
			c, err := front.Accept()
			if err != nil {
				return
			}
			s.hits[n%2].Add(1)
			go func(c net.Conn, to string) {
				defer c.Close()
				b, err := net.Dial("tcp", to)
				if err != nil {
					return
				}
				defer b.Close()
				go func() { _, _ = io.Copy(b, c) }()
				_, _ = io.Copy(c, b)
			}(c, backends[n%2])
		}
	}()
	s.dirURL = "https://" + front.Addr().String() + "/acme/directory"
}

// dump logs the state of every application workflow, for a failure.
func (s *stack) dump(t *testing.T) {
	ctx := context.Background()
	rows, err := s.st.DB().QueryContext(ctx, `SELECT id, status, status_reason FROM applications`)
	if err != nil {
		t.Log(err)
		return
	}
	defer rows.Close()
	for rows.Next() {
		var id, st, reason string
		_ = rows.Scan(&id, &st, &reason)
		t.Logf("application %s: %s %s", id, st, reason)
		v, err := s.tc.QueryWorkflow(ctx, workflows.ApplicationWorkflowID(id), "", workflows.StatusQuery)
		if err != nil {
			t.Logf("  query: %v", err)
			continue
		}
		var state workflows.ApplicationState
		_ = v.Get(&state)
		t.Logf("  state: %s %s ACME %+v", state.Status, state.Reason, state.ACME)
		if d, err := s.tc.DescribeWorkflowExecution(ctx, workflows.ApplicationWorkflowID(id), ""); err == nil {
			for _, pa := range d.GetPendingActivities() {
				t.Logf("  pending %s attempt %d: %v", pa.GetActivityType().GetName(), pa.GetAttempt(), pa.GetLastFailure().GetMessage())
			}
		}
		it := s.tc.GetWorkflowHistory(ctx, workflows.ApplicationWorkflowID(id), "", false, 0)
		for it.HasNext() {
			ev, err := it.Next()
			if err != nil {
				break
			}
			name := ""
			if a := ev.GetActivityTaskScheduledEventAttributes(); a != nil {
				name = a.GetActivityType().GetName()
			}
			if m := ev.GetMarkerRecordedEventAttributes(); m != nil {
				name = m.GetMarkerName()
			}
			t.Logf("  %s %s %s", ev.GetEventTime().AsTime().Format("15:04:05.000"), ev.GetEventType(), name)
		}
	}
}

// recordHistory writes the finished ACME application's history to
// workflows/testdata/histories when RECORD_HISTORIES is set (make
// record-histories), for the workflows replay test.
func recordHistory(t *testing.T, tc client.Client, workflowID, name string) {
	t.Helper()
	if os.Getenv("RECORD_HISTORIES") == "" {
		return
	}
	iter := tc.GetWorkflowHistory(context.Background(), workflowID, "", false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	var h historypb.History
	for iter.HasNext() {
		e, err := iter.Next()
		if err != nil {
			t.Fatal(err)
		}
		h.Events = append(h.Events, e)
	}
	b, err := protojson.MarshalOptions{Indent: " "}.Marshal(&h)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join("..", "..", "workflows", "testdata", "histories", name+".json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// sctOID is the embedded SCT list extension (RFC 6962 §3.3).
var sctOID = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 11129, 2, 4, 2}

// embeddedSCTs counts the SCTs in a certificate's SCT list extension.
func embeddedSCTs(t *testing.T, c *x509.Certificate) int {
	t.Helper()
	for _, e := range c.Extensions {
		if !e.Id.Equal(sctOID) {
			continue
		}
		var list []byte
		if _, err := asn1.Unmarshal(e.Value, &list); err != nil || len(list) < 2 {
			t.Fatalf("SCT list extension: %v", err)
		}
		body := list[2:]
		if int(binary.BigEndian.Uint16(list)) != len(body) {
			t.Fatal("SCT list length mismatch")
		}
		n := 0
		for len(body) >= 2 {
			l := int(binary.BigEndian.Uint16(body))
			if len(body) < 2+l {
				t.Fatal("truncated SCT")
			}
			body = body[2+l:]
			n++
		}
		return n
	}
	return 0
}

// TestCertbotOnWorkflows: Debian's certbot orders a DV certificate for a
// name in the DNSSEC-signed test zone from the workflow-backed ACME server
// (http-01 by --webroot). The order is an Application workflow marked ACME,
// validated by ValidateDomain and the remote perspectives, the certificate
// carries SCTs from both CT logs, and revocation runs the revocation
// workflow.
func TestCertbotOnWorkflows(t *testing.T) {
	if _, err := exec.LookPath("certbot"); err != nil {
		t.Fatal("certbot is not installed (scripts/deps.sh installs it)")
	}
	s := newStack(t)
	ctx := context.Background()
	name := testenv.DNSName(t, s.dns.Zones.Signed)
	if err := s.dns.SetRecords(ctx, name, "A", "127.0.0.1"); err != nil {
		t.Fatal(err)
	}
	cred, err := s.st.CreateEABCredential(ctx, "rs_acmewf", []string{"server-dv"}, "cust-1", nil)
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	bundle := filepath.Join(tmp, "ca.pem")
	if err := os.WriteFile(bundle, s.rootPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	common := []string{"--server", s.dirURL, "--config-dir", filepath.Join(tmp, "cfg"),
		"--work-dir", filepath.Join(tmp, "work"), "--logs-dir", filepath.Join(tmp, "logs"), "--non-interactive"}
	run := func(args ...string) string {
		t.Helper()
		cctx, cancel := context.WithTimeout(ctx, 4*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(cctx, "certbot", append(args, common...)...)
		cmd.Env = append(os.Environ(), "REQUESTS_CA_BUNDLE="+bundle)
		out, err := cmd.CombinedOutput()
		if err != nil {
			logTail, _ := os.ReadFile(filepath.Join(tmp, "logs", "letsencrypt.log"))
			if len(logTail) > 6000 {
				logTail = logTail[len(logTail)-6000:]
			}
			s.dump(t)
			t.Fatalf("certbot %s: %v\n%s\n--- certbot log (tail) ---\n%s", args[0], err, out, logTail)
		}
		return string(out)
	}
	run("certonly", "--eab-kid", cred.KID, "--eab-hmac-key", base64.RawURLEncoding.EncodeToString(cred.HMACKey),
		"--webroot", "-w", s.webroot, "-d", name, "--agree-tos", "-m", "subscriber@reseller.example",
		"--key-type", "ecdsa", "--cert-name", "wf")

	certPath := filepath.Join(tmp, "cfg", "live", "wf", "cert.pem")
	raw, err := os.ReadFile(certPath)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(raw)
	if blk == nil {
		t.Fatal("certbot saved no certificate")
	}
	cert, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if len(cert.DNSNames) != 1 || cert.DNSNames[0] != name {
		t.Fatalf("certificate for %v, want %s", cert.DNSNames, name)
	}
	if n := embeddedSCTs(t, cert); n < 2 {
		t.Fatalf("%d embedded SCTs, want ≥ 2 (one per CT log)", n)
	}
	chain, _ := os.ReadFile(filepath.Join(tmp, "cfg", "live", "wf", "chain.pem"))
	if cb, _ := pem.Decode(chain); cb == nil {
		t.Fatal("chain.pem is empty")
	} else if issuer, err := x509.ParseCertificate(cb.Bytes); err != nil || cert.CheckSignatureFrom(issuer) != nil {
		t.Fatalf("chain.pem does not hold the issuing CA: %v", err)
	}

	// Both listeners served the client: no state is per process.
	if a, b := s.hits[0].Load(), s.hits[1].Load(); a < 3 || b < 3 {
		t.Fatalf("connections per listener %d and %d: the client did not alternate", a, b)
	}

	// The order is one Application workflow, marked ACME, issued.
	serial := cert.SerialNumber.Text(16)
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
		t.Fatalf("workflow summary %q, want the ACME marker and order %s", summary, order.ID)
	}
	if _, ok := desc.GetWorkflowExecutionInfo().GetMemo().GetFields()["acme"]; !ok {
		t.Fatal("no acme memo on the application workflow")
	}
	var res workflows.ApplicationResult
	if err := s.tc.GetWorkflow(ctx, wid, "").Get(ctx, &res); err != nil || res.Status != status.AppIssued || !strings.EqualFold(store.NormalizeSerial(res.CertificateSerial), serial) {
		t.Fatalf("application %s: %+v %v, want issued %s", appID, res, err, serial)
	}
	recordHistory(t, s.tc, wid, "application-acme-http-01")
	app, err := s.st.GetApplication(ctx, appID)
	if err != nil || app.ACMEOrderID != order.ID || len(app.CSR) == 0 || app.Status != status.AppIssued {
		t.Fatalf("application row %+v %v", app, err)
	}
	var method string
	if err := s.st.DB().QueryRowContext(ctx, `SELECT method FROM domain_validations WHERE application_id = $1 AND result = 'valid'`, appID).Scan(&method); err != nil || method != "acme-http-01" {
		t.Fatalf("domain validation %q %v, want a valid acme-http-01", method, err)
	}
	var rounds int
	if err := s.st.DB().QueryRowContext(ctx, `SELECT count(*) FROM corroborations WHERE application_id = $1 AND check_type = 'dcv'`, appID).Scan(&rounds); err != nil || rounds == 0 {
		t.Fatalf("no multi-perspective corroboration of the challenge (%d, %v)", rounds, err)
	}

	// Revocation by the account key goes through the revocation workflow.
	run("revoke", "--cert-path", certPath, "--reason", "superseded", "--no-delete-after-revoke")
	var rev workflows.RevocationResult
	gctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if err := s.tc.GetWorkflow(gctx, workflows.RevocationWorkflowID(order.CertSerial), "").Get(gctx, &rev); err != nil || rev.Status != workflows.RevRevoked {
		t.Fatalf("revocation: %+v %v", rev, err)
	}
	c, err := s.st.GetCertificate(ctx, order.CertSerial)
	if err != nil || c.Status != "revoked" {
		t.Fatalf("certificate %s: %+v %v", order.CertSerial, c.Status, err)
	}

	// keyCompromise signed by the certificate key proves possession: the
	// revocation workflow blocks the key.
	run("certonly", "--webroot", "-w", s.webroot, "-d", name, "--key-type", "ecdsa", "--cert-name", "wf2")
	cert2Path := filepath.Join(tmp, "cfg", "live", "wf2", "cert.pem")
	raw2, _ := os.ReadFile(cert2Path)
	blk2, _ := pem.Decode(raw2)
	if blk2 == nil {
		t.Fatal("no second certificate")
	}
	cert2, _ := x509.ParseCertificate(blk2.Bytes)
	run("revoke", "--cert-path", cert2Path, "--key-path", filepath.Join(tmp, "cfg", "live", "wf2", "privkey.pem"),
		"--reason", "keycompromise", "--no-delete-after-revoke")
	serial2 := store.NormalizeSerial(cert2.SerialNumber.Text(16))
	if err := s.tc.GetWorkflow(gctx, workflows.RevocationWorkflowID(serial2), "").Get(gctx, &rev); err != nil || rev.Status != workflows.RevRevoked {
		t.Fatalf("key compromise revocation: %+v %v", rev, err)
	}
	spki := sha256.Sum256(cert2.RawSubjectPublicKeyInfo)
	if _, blocked, err := s.st.IsKeyBlocked(ctx, spki[:]); err != nil || !blocked {
		t.Fatalf("key of %s not blocked after a proven key compromise (%v)", serial2, err)
	}
}
