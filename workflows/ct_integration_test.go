//go:build integration

package workflows

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/certificate-transparency-go/ctutil"
	ctx509 "github.com/google/certificate-transparency-go/x509"
	zx509 "github.com/zmap/zcrypto/x509"
	"github.com/zmap/zlint/v3"
	"github.com/zmap/zlint/v3/lint"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/worker"

	"certdesk/activities"
	"certdesk/internal/ct"
	"certdesk/internal/dcv"
	"certdesk/internal/product"
	"certdesk/internal/status"
	"certdesk/internal/store"
	"certdesk/internal/testenv"
)

// startDNSApplication starts a DV application for a fresh name of the
// signed test zone (CAA for CertDesk) and publishes its DNS token with an
// RFC 2136 update once the workflow shows it.
func startDNSApplication(t *testing.T, s *stack, reseller string) (appID string, run client.WorkflowRun) {
	t.Helper()
	d := testenv.DNS(t)
	ctx := context.Background()
	domain := testenv.DNSName(t, d.Zones.Signed)
	if err := d.SetRecords(ctx, domain, "CAA", `0 issue "certdesk.example"`); err != nil {
		t.Fatal(err)
	}
	appID = "app_" + strings.NewReplacer(".", "_", "-", "_").Replace(domain)
	run, err := s.tc.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: ApplicationWorkflowID(appID), TaskQueue: TaskQueue}, Application, ApplicationInput{
		ApplicationID: appID, ResellerID: reseller, Product: product.ServerDV, CSRPEM: ecCSR(t), Domains: []string{domain}, ValidityDays: 90,
		Subscriber:  activities.SubscriberData{Name: "CT Subscriber", Email: "ct@example.jp", Country: "JP"},
		Attestation: activities.Attestation{TermsVersion: "2026-01", Truthful: true}, DomainValidationMethod: dcv.MethodDNS,
	})
	if err != nil {
		t.Fatal(err)
	}
	st := waitStatus(t, s.tc, ApplicationWorkflowID(appID), func(a ApplicationState) bool { return len(a.DomainTokens) == 1 })
	if err := d.SetRecords(ctx, strings.TrimSuffix(dcv.DNSLabel(domain), "."), "TXT", `"`+st.DomainTokens[domain]+`"`); err != nil {
		t.Fatal(err)
	}
	return appID, run
}

func waitResult(t *testing.T, run client.WorkflowRun, timeout time.Duration) ApplicationResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var res ApplicationResult
	if err := run.Get(ctx, &res); err != nil {
		t.Fatal(err)
	}
	return res
}

// loggedCertificate checks, as a relying party would with tools nobody
// here wrote, that the application's one certificate is a final
// certificate with SCTs from at least two distinct logs of the stack, each
// verifying (certificate-transparency-go's ctutil.VerifySCT over the
// embedded form) and each log's tiles holding the precertificate; that the
// precertificate and the final certificate differ only in poison ↔ SCT
// list (certificate-transparency-go's RemoveCTPoison and RemoveSCTList); and that zlint and
// openssl see the SCTs.
func loggedCertificate(t *testing.T, s *stack, appID string, wantLogs int) store.Certificate {
	t.Helper()
	ctx := context.Background()
	var n int
	if err := s.store.DB().GetContext(ctx, &n, `SELECT count(*) FROM certificates WHERE application_id = $1`, appID); err != nil || n != 1 {
		t.Fatalf("%d certificates for %s (%v), want exactly 1", n, appID, err)
	}
	var serial string
	if err := s.store.DB().GetContext(ctx, &serial, `SELECT serial FROM issuances WHERE application_id = $1`, appID); err != nil {
		t.Fatal(err)
	}
	c, err := s.store.GetCertificate(ctx, serial)
	if err != nil {
		t.Fatal(err)
	}
	if c.CTState != store.CTFinal || c.ApplicationID != appID {
		t.Fatalf("certificate %s: CT state %q", c.Serial, c.CTState)
	}
	final, err := ctx509.ParseCertificate(c.DER)
	if err != nil {
		t.Fatal(err)
	}
	pre, err := ctx509.ParseCertificate(c.PrecertDER)
	if err != nil {
		t.Fatal(err)
	}
	if !pre.IsPrecertificate() || final.IsPrecertificate() || pre.SerialNumber.Cmp(final.SerialNumber) != 0 || pre.SerialNumber.Text(16) != serial {
		t.Fatalf("precertificate %x (poison %v) and final %x (poison %v), reserved %s", pre.SerialNumber, pre.IsPrecertificate(), final.SerialNumber, final.IsPrecertificate(), serial)
	}
	preTBS, err := ctx509.RemoveCTPoison(pre.RawTBSCertificate)
	if err != nil {
		t.Fatal(err)
	}
	finalTBS, err := ctx509.RemoveSCTList(final.RawTBSCertificate)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(preTBS, finalTBS) {
		t.Fatal("precertificate and final certificate TBS differ beyond poison and SCT list")
	}
	issuer, ok := s.sign.CA.Issuer(c.Issuer)
	if !ok {
		t.Fatalf("issuer %s", c.Issuer)
	}
	iss, _ := ctx509.ParseCertificate(issuer.Certificate().Raw)
	list, err := ct.LoadLogList(s.ct.ListPath)
	if err != nil {
		t.Fatal(err)
	}
	if len(final.SCTList.SCTList) < 2 {
		t.Fatalf("%d embedded SCTs", len(final.SCTList.SCTList))
	}
	seen := map[[32]byte]bool{}
	for _, ser := range final.SCTList.SCTList {
		sct, err := (ct.SCT{Raw: ser.Val}).Parse()
		if err != nil {
			t.Fatal(err)
		}
		l := list.ByID(sct.LogID.KeyID)
		if l == nil || seen[l.ID] {
			t.Fatalf("SCT from log %x: not a distinct log of the list", sct.LogID.KeyID[:8])
		}
		seen[l.ID] = true
		if err := ctutil.VerifySCT(l.PublicKey, []*ctx509.Certificate{final, iss}, sct, true); err != nil {
			t.Fatalf("SCT of %s does not verify: %v", l.Description, err)
		}
		// The log's own read API holds the precertificate's entry.
		idx, ok := ct.LeafIndex(ct.SCT{Raw: ser.Val})
		if !ok {
			t.Fatalf("SCT of %s has no leaf_index", l.Description)
		}
		var hl *testenv.CTLog
		for _, x := range s.ct.Logs {
			if x.ID == l.ID {
				hl = x
			}
		}
		bundle := waitEntryBundle(t, hl, idx)
		if !bytes.Contains(bundle, preTBS) {
			t.Fatalf("log %s entry %d does not hold the precertificate's TBS", l.Description, idx)
		}
	}
	if len(seen) < wantLogs {
		t.Fatalf("SCTs from %d logs, want %d", len(seen), wantLogs)
	}
	// zlint: no CT finding on the final certificate.
	zc, err := zx509.ParseCertificate(c.DER)
	if err != nil {
		t.Fatal(err)
	}
	for name, r := range zlint.LintCertificate(zc).Results {
		if strings.Contains(name, "_ct_") && r.Status != lint.Pass && r.Status != lint.NA && r.Status != lint.NE {
			t.Errorf("zlint %s: %s %s", name, r.Status, r.Details)
		}
	}
	cmd := exec.Command("openssl", "x509", "-noout", "-text")
	cmd.Stdin = bytes.NewReader(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.DER}))
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "CT Precertificate SCTs") {
		t.Fatalf("openssl x509 -text: %v\n%s", err, out)
	}
	sctCheck(t, s.ct.ListPath, c.DER, issuer.Certificate().Raw, len(final.SCTList.SCTList))
	return c
}

// sctCheck runs certificate-transparency-go's sctcheck (bin/sctcheck, make
// tools) on the chain: every embedded SCT must verify against the key the
// log list gives its log.
func sctCheck(t *testing.T, listPath string, leaf, issuer []byte, n int) {
	t.Helper()
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(root, "bin", "sctcheck")
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("%s is missing: run make tools", bin)
	}
	// sctcheck v1.3.2 finds logs only among an operator's "logs", not its
	// "tiled_logs" (loglist3.FindLogByKeyHash): give it a copy of the list
	// with the Static CT API logs listed there too, keys unchanged.
	raw, err := os.ReadFile(listPath)
	if err != nil {
		t.Fatal(err)
	}
	var ll map[string]any
	if err := json.Unmarshal(raw, &ll); err != nil {
		t.Fatal(err)
	}
	for _, op := range ll["operators"].([]any) {
		o := op.(map[string]any)
		logs, _ := o["logs"].([]any)
		tiled, _ := o["tiled_logs"].([]any)
		o["logs"] = append(logs, tiled...)
	}
	listPath = filepath.Join(t.TempDir(), "log_list_for_sctcheck.json")
	if b, err := json.Marshal(ll); err != nil || os.WriteFile(listPath, b, 0o644) != nil {
		t.Fatalf("log list for sctcheck: %v", err)
	}
	chain := filepath.Join(t.TempDir(), "chain.pem")
	pemChain := append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leaf}), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: issuer})...)
	if err := os.WriteFile(chain, pemChain, 0o644); err != nil {
		t.Fatal(err)
	}
	// The local logs serve the Static CT API, not RFC 6962 get-proof-by-hash:
	// inclusion is checked above from the tiles instead.
	out, err := exec.Command(bin, "-check_inclusion=false", "-log_list="+listPath, chain).CombinedOutput()
	want := fmt.Sprintf("Found %d embedded SCTs for %q, of which %d were validated", n, chain, n)
	if err != nil || !strings.Contains(string(out), want) {
		t.Fatalf("sctcheck: %v, want %q in:\n%s", err, want, out)
	}
}

// waitEntryBundle reads the data tile holding entry idx once the log's
// checkpoint covers it (TesseraCT integrates within a second or so).
func waitEntryBundle(t *testing.T, l *testenv.CTLog, idx uint64) []byte {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		b, err := l.EntryBundle(idx)
		if err == nil {
			return b
		}
		if time.Now().After(deadline) {
			t.Fatalf("log %s entry %d: %v", l.Name, idx, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestCTIssuanceOnStack: a DV certificate issued on the real stack is
// logged in both of its TesseraCT logs and carries their SCTs.
func TestCTIssuanceOnStack(t *testing.T) {
	fastRounds(t)
	s := newStack(t, nil)
	newReseller(t, s, "rs_ct")
	appID, run := startDNSApplication(t, s, "rs_ct")
	if res := waitResult(t, run, 3*time.Minute); res.Status != status.AppIssued {
		t.Fatalf("result %+v", res)
	}
	c := loggedCertificate(t, s, appID, 2)
	// The subscriber's email names each log and where its entry is.
	mails := s.mail.WaitFor(t, "ct@example.jp", 2, time.Minute)
	var issued *testenv.Email
	for i := range mails {
		if strings.Contains(mails[i].Text, c.Serial) {
			issued = &mails[i]
		}
	}
	if issued == nil {
		t.Fatal("no issued email")
	}
	for _, l := range s.ct.Logs {
		if !strings.Contains(issued.Text, l.MonitoringURL()+"/tile/data/") {
			t.Errorf("issued email does not link log %s:\n%s", l.Name, issued.Text)
		}
	}
}

// crashOnce fails the first successful run of one activity as a signer
// killed after its work but before reporting would, and replaces the
// signing worker.
type crashOnce struct {
	interceptor.WorkerInterceptorBase
	activity string
	crashed  atomic.Bool
	onCrash  func()
}

func (c *crashOnce) InterceptActivity(ctx context.Context, next interceptor.ActivityInboundInterceptor) interceptor.ActivityInboundInterceptor {
	i := &crashActivity{c: c}
	i.Next = next
	return i
}

type crashActivity struct {
	interceptor.ActivityInboundInterceptorBase
	c *crashOnce
}

func (a *crashActivity) ExecuteActivity(ctx context.Context, in *interceptor.ExecuteActivityInput) (any, error) {
	res, err := a.Next.ExecuteActivity(ctx, in)
	if err == nil && activity.GetInfo(ctx).ActivityType.Name == a.c.activity && a.c.crashed.CompareAndSwap(false, true) {
		go a.c.onCrash()
		return nil, errors.New("signer killed after signing, before reporting")
	}
	return res, err
}

// TestCTSignerKilledBetweenSteps: the signer dies right after signing the
// precertificate, and right after signing the final certificate, each time
// before Temporal hears of it; a new signer process resumes. Exactly one
// precertificate and one final certificate, same serial.
func TestCTSignerKilledBetweenSteps(t *testing.T) {
	fastRounds(t)
	for _, step := range []string{"IssuePrecertificate", "IssueFinalCertificate"} {
		t.Run(step, func(t *testing.T) {
			s := newStack(t, nil)
			newReseller(t, s, "rs_ctk")
			c := &crashOnce{activity: step}
			c.onCrash = func() { s.restartSigner(t, worker.Options{}) }
			s.restartSigner(t, worker.Options{Interceptors: []interceptor.WorkerInterceptor{c}})
			appID, run := startDNSApplication(t, s, "rs_ctk")
			if res := waitResult(t, run, 3*time.Minute); res.Status != status.AppIssued {
				t.Fatalf("result %+v", res)
			}
			if !c.crashed.Load() {
				t.Fatalf("%s never ran", step)
			}
			loggedCertificate(t, s, appID, 2)
			// One precertificate per log: a second serial would have been
			// submitted too.
			var scts int
			if err := s.store.DB().Get(&scts, `SELECT count(*) FROM certificate_scts`); err != nil || scts != 2 {
				t.Fatalf("%d SCT rows (%v), want 2", scts, err)
			}
			// Each signature audited once, retried or not (issue 17), with
			// the application's workflow as actor.
			var signed []string
			if err := s.store.DB().Select(&signed, `SELECT action || ' ' || actor FROM audit_events
				WHERE action IN ('precertificate.signed', 'certificate.signed') ORDER BY seq`); err != nil {
				t.Fatal(err)
			}
			want := "precertificate.signed workflow:" + ApplicationWorkflowID(appID) + ",certificate.signed workflow:" + ApplicationWorkflowID(appID)
			if strings.Join(signed, ",") != want {
				t.Fatalf("signing audit events %v, want %s", signed, want)
			}
		})
	}
}

// TestCTOneLogDown: with one of three logs down the certificate still
// issues, with SCTs from the other two.
func TestCTOneLogDown(t *testing.T) {
	fastRounds(t)
	s := newStack(t, map[string]string{"TEST_CT_LOGS": "3"})
	s.cta.Submitter.Timeout = 3 * time.Second
	newReseller(t, s, "rs_ct1")
	s.ct.Logs[0].Stop()
	appID, run := startDNSApplication(t, s, "rs_ct1")
	if res := waitResult(t, run, 3*time.Minute); res.Status != status.AppIssued {
		t.Fatalf("result %+v", res)
	}
	c := loggedCertificate(t, s, appID, 2)
	rows, err := s.store.ListSCTs(context.Background(), c.Serial)
	if err != nil || len(rows) != 2 {
		t.Fatalf("%d SCTs stored (%v), want 2", len(rows), err)
	}
	for _, r := range rows {
		if bytes.Equal(r.LogID, s.ct.Logs[0].ID[:]) {
			t.Fatal("an SCT from the stopped log")
		}
	}
}

// TestCTAllLogsDown: with every log down the application waits with only
// its precertificate, staff are told, and once the logs return it issues
// with SCTs: never without.
func TestCTAllLogsDown(t *testing.T) {
	fastRounds(t)
	oldE, oldR := CTEscalationAfter, ctRetryInterval
	CTEscalationAfter, ctRetryInterval = 2*time.Second, time.Second
	t.Cleanup(func() { CTEscalationAfter, ctRetryInterval = oldE, oldR })
	s := newStack(t, nil)
	s.cta.Submitter.Timeout = 2 * time.Second
	newReseller(t, s, "rs_ct0")
	for _, l := range s.ct.Logs {
		l.Stop()
	}
	appID, run := startDNSApplication(t, s, "rs_ct0")
	esc := s.mail.WaitFor(t, s.cfg.StaffEmail, 1, 3*time.Minute)
	if !strings.Contains(esc[0].Text, appID) {
		t.Fatalf("staff escalation does not name %s:\n%s", appID, esc[0].Text)
	}
	var state string
	if err := s.store.DB().Get(&state, `SELECT ct_state FROM certificates WHERE application_id = $1`, appID); err != nil || state != store.CTPrecert {
		t.Fatalf("certificate state %q (%v) while the logs are down, want precert", state, err)
	}
	if st := waitStatus(t, s.tc, ApplicationWorkflowID(appID), func(a ApplicationState) bool { return a.CertificateSerial != "" }); st.Status != status.AppIssuing {
		t.Fatalf("status %s while the logs are down", st.Status)
	}
	for _, l := range s.ct.Logs {
		if err := l.Start(); err != nil {
			t.Fatal(err)
		}
	}
	if res := waitResult(t, run, 5*time.Minute); res.Status != status.AppIssued {
		t.Fatalf("result %+v", res)
	}
	loggedCertificate(t, s, appID, 2)
}
