//go:build integration

package pki

import (
	"context"
	"encoding/hex"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/certificate-transparency-go/ctutil"
	ctx509 "github.com/google/certificate-transparency-go/x509"

	"certdesk/internal/ct"
	"certdesk/internal/testenv"
)

// TestIssuePrecertFinalOnRealLogs: the precertificate tls-1 signs is
// accepted by two running TesseraCT logs trusting the test root, the SCTs
// they return are embedded by IssueFinal, verify over the final
// certificate and show in openssl.
func TestIssuePrecertFinalOnRealLogs(t *testing.T) {
	ca := getFileCA(t)
	iss, _ := ca.Issuer("tls-1")
	logs := testenv.NewCTLogs(t, 2, pemCert(ca.Root.Raw))
	list, err := ct.LoadLogList(logs.ListPath)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	req := ctRequest(t)
	// Up to 180 days two SCTs satisfy Chrome and Apple; the two logs
	// suffice.
	req.Validity = 90 * Day
	pre, err := iss.IssuePrecert(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	// The harness logs are Static CT API logs only, hence the -static rules.
	policy, err := ct.ParsePolicy("chrome-static,apple-static")
	if err != nil {
		t.Fatal(err)
	}
	cands, err := policy.Candidates(list, pre.Cert.NotBefore, pre.Cert.NotAfter, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	need := policy.Required(pre.Cert.NotBefore, pre.Cert.NotAfter)
	if len(cands) < need {
		t.Fatalf("%d candidate logs, %d needed", len(cands), need)
	}
	chain := [][]byte{pre.DER, iss.Certificate().Raw}
	sub := &ct.Submitter{Timeout: 2 * time.Minute}
	scts := make([]ct.SCT, need)
	errs := make([]error, need)
	var wg sync.WaitGroup
	for i, l := range cands[:need] {
		wg.Go(func() { scts[i], errs[i] = sub.Submit(ctx, l, chain) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	if err := policy.Satisfied(list, scts, pre.Cert.NotBefore, pre.Cert.NotAfter); err != nil {
		t.Fatal(err)
	}
	sctList, err := ct.EncodeSCTList(scts)
	if err != nil {
		t.Fatal(err)
	}
	// A request that drifted (other notAfter) gets no final certificate,
	// even with genuine SCTs.
	drift := *req
	drift.Validity = 30 * Day
	if got, err := iss.IssueFinal(ctx, &drift, pre.DER, sctList); !errors.Is(err, ErrPrecertMismatch) || got != nil {
		t.Fatalf("drifted request: %v", err)
	}
	final, err := iss.IssueFinal(ctx, req, pre.DER, sctList)
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckPrecertMatch(pre.Cert, final.Cert); err != nil {
		t.Fatal(err)
	}
	ctFinal, err := ctx509.ParseCertificate(final.DER)
	if ctx509.IsFatal(err) {
		t.Fatal(err)
	}
	ctIssuer, _ := ctx509.ParseCertificate(iss.Certificate().Raw)
	for _, s := range scts {
		p, _ := s.Parse()
		if err := ctutil.VerifySCT(list.ByID(s.LogID).PublicKey, []*ctx509.Certificate{ctFinal, ctIssuer}, p, true); err != nil {
			t.Errorf("embedded SCT of %s: %v", list.ByID(s.LogID).Description, err)
		}
	}
	dir := t.TempDir()
	text := openssl(t, dir, "x509", "-inform", "DER", "-in", writeFile(t, dir, "final.der", final.DER), "-noout", "-text")
	if !strings.Contains(text, "CT Precertificate SCTs") {
		t.Fatalf("openssl does not show the SCTs:\n%s", text)
	}
	for _, s := range scts {
		if id := strings.ToUpper(hex.EncodeToString(s.LogID[:8])); !strings.Contains(strings.ReplaceAll(text, ":", ""), id) {
			t.Errorf("openssl output lacks log ID %s", id)
		}
	}
	if errs := lintErrors(t, final.DER); len(errs) > 0 {
		t.Errorf("zlint errors on the final certificate: %v", errs)
	}
	if r := lintResults(t, final.DER); r["n_ct_sct_policy_count_unsatisfied"] != "" {
		t.Errorf("final certificate: n_ct_sct_policy_count_unsatisfied = %s", r["n_ct_sct_policy_count_unsatisfied"])
	}
}
