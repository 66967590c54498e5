//go:build integration

package activities

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"certdesk/internal/pki"
	"certdesk/internal/store"
	"certdesk/internal/testenv"
)

// TestIssueCertificateOncePerApplication: retried and concurrent calls for
// one application return the one certificate issued; nothing signs twice.
func TestIssueCertificateOncePerApplication(t *testing.T) {
	md := testenv.SharedMailDev(t)
	a := newActs(t, md)
	ctx := context.Background()
	sa := newTestSigning(t, a)

	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	csrDER, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
	csr := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: csrDER}))
	chk, err := a.CheckCSR(ctx, CheckCSRInput{Product: "server-dv", CSRPEM: csr, Domains: []string{"www.example.jp"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Store.CreateReseller(ctx, store.Reseller{ID: "rs_i", Name: "I", APIKeyHash: "00000000000000000000000000000000000000000000000000000000000000ef", APIKeyPrefix: "cdk_i"}); err != nil {
		t.Fatal(err)
	}
	rec, err := a.RecordApplication(ctx, RecordApplicationInput{ApplicationID: "app_once", ResellerID: "rs_i", WorkflowID: "application/app_once",
		Product: "server-dv", CSRPEM: csr, SPKISHA256: chk.SPKISHA256, Domains: []string{"www.example.jp"}, ValidityDays: 90,
		Subscriber: SubscriberData{Name: "n", Email: "once@example.jp", Country: "JP"}, Attestation: Attestation{TermsVersion: "v1", Truthful: true}, DueAt: time.Now().Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.SetApplicationStatus(ctx, ApplicationStatusInput{ApplicationID: "app_once", Status: "validating"}); err != nil {
		t.Fatal(err)
	}
	if err := a.SetApplicationStatus(ctx, ApplicationStatusInput{ApplicationID: "app_once", Status: "issuing"}); err != nil {
		t.Fatal(err)
	}
	seedEvidence(t, a, "app_once", []string{"www.example.jp"})
	in := IssueInput{ApplicationID: "app_once", ResellerID: "rs_i", SubscriberID: rec.SubscriberID, Product: "server-dv", CSRPEM: csr,
		Domains: []string{"www.example.jp"}, ValidityDays: 90}
	var wg sync.WaitGroup
	results := make([]IssueResult, 4)
	errs := make([]error, 4)
	for i := range results {
		wg.Add(1)
		go func() { defer wg.Done(); results[i], errs[i] = sa.IssueCertificate(ctx, in) }()
	}
	wg.Wait()
	retry, err := sa.IssueCertificate(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range results {
		if errs[i] != nil {
			t.Fatalf("call %d: %v", i, errs[i])
		}
		if r.Serial != retry.Serial || !bytes.Equal([]byte(r.CertificatePEM), []byte(retry.CertificatePEM)) {
			t.Fatalf("call %d returned another certificate: %s vs %s", i, r.Serial, retry.Serial)
		}
	}
	var n int
	if err := a.Store.DB().Get(&n, `SELECT count(*) FROM certificates WHERE application_id = 'app_once'`); err != nil || n != 1 {
		t.Fatalf("%d certificates for one application (err %v)", n, err)
	}
	var ocsp int
	if err := a.Store.DB().Get(&ocsp, `SELECT count(*) FROM ocsp_responses WHERE serial = $1 AND status = 'good'`, retry.Serial); err != nil || ocsp != 1 {
		t.Fatalf("first OCSP answer: %d (err %v)", ocsp, err)
	}
	// The signature is audited once (issue 17), however many calls.
	var audited []string
	if err := a.Store.DB().Select(&audited, `SELECT action FROM audit_events WHERE object_ref = $1 ORDER BY seq`,
		"certificate:"+retry.Serial); err != nil || len(audited) != 1 || audited[0] != AuditCertificateSigned {
		t.Fatalf("certificate audit events %v (err %v)", audited, err)
	}
	if err := a.Store.DB().Get(&n, `SELECT count(*) FROM audit_events WHERE action = 'ocsp.signed' AND object_ref = $1`,
		"ocsp:"+retry.Serial); err != nil || n != 1 {
		t.Fatalf("first OCSP answer audited %d times (err %v)", n, err)
	}
}

// TestIssueCertificateBurst: more issuances at once than the pool has
// connections all finish. Each holds a connection for its advisory lock and
// needs another for its reads and writes; unbounded, 20 of them held the
// whole pool and waited for each other until their deadlines.
func TestIssueCertificateBurst(t *testing.T) {
	md := testenv.SharedMailDev(t)
	a := newActs(t, md)
	ctx := context.Background()
	sa := newTestSigning(t, a)
	if err := a.Store.CreateReseller(ctx, store.Reseller{ID: "rs_b", Name: "B", APIKeyHash: "00000000000000000000000000000000000000000000000000000000000000eb", APIKeyPrefix: "cdk_b"}); err != nil {
		t.Fatal(err)
	}
	const n = 40
	ins := make([]IssueInput, n)
	for i := range ins {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		csrDER, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
		csr := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: csrDER}))
		id := fmt.Sprintf("app_burst_%02d", i)
		domains := []string{fmt.Sprintf("b%02d.example.jp", i)}
		chk, err := a.CheckCSR(ctx, CheckCSRInput{Product: "server-dv", CSRPEM: csr, Domains: domains})
		if err != nil {
			t.Fatal(err)
		}
		rec, err := a.RecordApplication(ctx, RecordApplicationInput{ApplicationID: id, ResellerID: "rs_b", WorkflowID: "application/" + id,
			Product: "server-dv", CSRPEM: csr, SPKISHA256: chk.SPKISHA256, Domains: domains, ValidityDays: 90,
			Subscriber: SubscriberData{Name: "n", Email: id + "@example.jp", Country: "JP"}, Attestation: Attestation{TermsVersion: "v1", Truthful: true}, DueAt: time.Now().Add(time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		for _, st := range []string{"validating", "issuing"} {
			if err := a.SetApplicationStatus(ctx, ApplicationStatusInput{ApplicationID: id, Status: st}); err != nil {
				t.Fatal(err)
			}
		}
		seedEvidence(t, a, id, domains)
		ins[i] = IssueInput{ApplicationID: id, ResellerID: "rs_b", SubscriberID: rec.SubscriberID, Product: "server-dv", CSRPEM: csr, Domains: domains, ValidityDays: 90}
	}
	// A deadlock shows as every call ending at this deadline.
	bctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range ins {
		wg.Add(1)
		go func() { defer wg.Done(); _, errs[i] = sa.IssueCertificate(bctx, ins[i]) }()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("issuance %d of %d: %v", i, n, err)
		}
	}
}

// newTestSigning bootstraps a throwaway CA (file keys in a temporary
// directory) and returns signing activities on a's store.
func newTestSigning(t *testing.T, a *Activities) *SigningActivities {
	t.Helper()
	dir := t.TempDir()
	ks := &pki.FileKeyStore{Dir: dir, Passphrase: []byte("pw"), Iterations: 1000}
	ca, err := pki.Bootstrap(context.Background(), pki.BootstrapConfig{Dir: dir, Keys: ks, Organization: "Test CA", Country: "JP",
		URLs: pki.URLs{Base: "http://127.0.0.1:8080"}, Policy: pki.CAPolicy{OID: []int{1, 3, 6, 1, 4, 1, 32473, 1, 1}, CPSURI: "http://127.0.0.1:8080/cps"}})
	if err != nil {
		t.Fatal(err)
	}
	return &SigningActivities{CA: ca, Store: a.Store, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
}

// seedEvidence records what the signer requires before it signs for
// domains: a valid domain validation, a permitting CAA check and both
// corroborated (as the application workflow's activities record them).
func seedEvidence(t *testing.T, a *Activities, appID string, domains []string) {
	t.Helper()
	ctx := context.Background()
	now := time.Now()
	for _, d := range domains {
		if _, err := a.Store.EnsureDomainValidation(ctx, store.DomainValidation{ApplicationID: appID, Domain: d, Method: "dns-txt", Token: "t"}); err != nil {
			t.Fatal(err)
		}
		if err := a.Store.SetDomainValidationResult(ctx, appID, d, "valid", "", now); err != nil {
			t.Fatal(err)
		}
		for _, check := range []string{"dcv", "caa"} {
			if err := a.Store.RecordCorroboration(ctx, store.Corroboration{ApplicationID: appID, Domain: d, Check: check, Round: 1,
				PrimaryOutcome: "valid", OK: true, Reason: "test", Determinations: []byte("[]"), Decision: []byte("{}"), DecidedAt: now}); err != nil {
				t.Fatal(err)
			}
		}
		if err := a.Store.RecordCAACheck(ctx, store.CAACheck{ApplicationID: appID, Name: d, CheckID: "1", Permitted: true, Rule: "no-caa",
			Reason: "test", Evidence: []byte("{}"), CheckedAt: now, IssueBy: now.Add(8 * time.Hour)}); err != nil {
			t.Fatal(err)
		}
	}
}
