//go:build integration

package workflows

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/client"

	"certdesk/activities"
	"certdesk/internal/product"
	"certdesk/internal/status"
	"certdesk/internal/store"
	"certdesk/internal/testenv"
)

var codeRE = regexp.MustCompile(`\b([0-9]{6}|[A-Z2-7]{26})\b`)

func rsaCSR(t *testing.T) string {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "ignored"}}, key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))
}

func update(t *testing.T, tc client.Client, workflowID, name string, arg any, out any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	h, err := tc.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
		WorkflowID: workflowID, UpdateName: name, Args: []any{arg}, WaitForStage: client.WorkflowUpdateStageCompleted,
	})
	if err != nil {
		t.Fatalf("update %s on %s: %v", name, workflowID, err)
	}
	if err := h.Get(ctx, out); err != nil {
		t.Fatalf("update %s on %s: %v", name, workflowID, err)
	}
}

// TestClientSignLifecycleOnStack: a client-sign application goes from start
// to an issued certificate that openssl verify accepts, with the code read
// from MailDev and both staff Updates sent through the Temporal client; then
// a revocation puts the serial in the CRL shard named in the certificate and
// the OCSP answer says revoked.
func TestClientSignLifecycleOnStack(t *testing.T) {
	s := newStack(t, nil)
	ctx := context.Background()
	suffix := strconv.FormatInt(time.Now().UnixNano(), 36)
	appID := "app_it_" + suffix
	email := "taro-" + suffix + "@example.jp"
	if err := s.store.CreateReseller(ctx, store.Reseller{ID: "rs_it", Name: "IT Reseller", APIKeyHash: strings.Repeat("ab", 32), APIKeyPrefix: "cd_it", ContactEmail: "reseller-" + suffix + "@example.jp"}); err != nil {
		t.Fatal(err)
	}
	in := ApplicationInput{
		ApplicationID: appID, ResellerID: "rs_it", Product: product.ClientSign, CSRPEM: rsaCSR(t), ValidityDays: 365,
		Subscriber: activities.SubscriberData{Organization: "株式会社サンプル商事", Name: "山田 太郎", Email: email,
			Phone: "+81-3-0000-0000", Address: "東京都千代田区1-1", Country: "JP"},
		Attestation: activities.Attestation{TermsVersion: "2026-01", Truthful: true, AttestedAt: time.Now()},
	}
	run, err := s.tc.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: ApplicationWorkflowID(appID), TaskQueue: TaskQueue}, Application, in)
	if err != nil {
		t.Fatal(err)
	}

	st := waitStatus(t, s.tc, ApplicationWorkflowID(appID), func(a ApplicationState) bool { return a.Status != status.AppReceived })
	if st.Status != status.AppVerifyingIdentity {
		var r ApplicationResult
		_ = run.Get(ctx, &r)
		t.Fatalf("application went to %s (%s), result %+v", st.Status, st.Reason, r)
	}
	// The one-time code arrives by email; submit it.
	msgs := s.mail.WaitFor(t, email, 2, 60*time.Second) // application received + code
	code := ""
	for _, m := range msgs {
		if strings.Contains(m.Subject, "認証コード") || strings.Contains(strings.ToLower(m.Subject), "code") {
			code = codeRE.FindString(m.Text)
		}
	}
	if code == "" {
		t.Fatalf("no code in %d messages: %v", len(msgs), subjects(msgs))
	}
	verWF := VerificationWorkflowID("ver-" + appID)
	waitStatus(t, s.tc, verWF, func(v VerificationState) bool { return v.Status == VerAwaitingCode })
	var cr CodeResult
	update(t, s.tc, verWF, SubmitCodeUpdate, codeSubmission(t, s.store, "ver-"+appID, code), &cr)
	if !cr.Accepted {
		t.Fatalf("code refused: %+v", cr)
	}
	waitStatus(t, s.tc, verWF, func(v VerificationState) bool { return v.Status == VerAwaitingStaff })
	// A decision by someone who is not an active staff member is refused
	// (issue 17): unknown, or disabled.
	carolTok, _ := store.GenerateStaffToken()
	if err := s.store.CreateStaff(ctx, "carol", "Carol", carolTok); err != nil {
		t.Fatal(err)
	}
	if err := s.store.DisableStaff(ctx, "carol", time.Now()); err != nil {
		t.Fatal(err)
	}
	for _, who := range []string{"mallory", "carol"} {
		uctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		h, err := s.tc.UpdateWorkflow(uctx, client.UpdateWorkflowOptions{WorkflowID: verWF, UpdateName: ConfirmIdentityUpdate,
			Args:         []any{IdentityDecision{Decision: "confirm", Reviewer: who, Evidence: "forged"}},
			WaitForStage: client.WorkflowUpdateStageCompleted})
		if err == nil {
			var ignored VerificationState
			err = h.Get(uctx, &ignored)
		}
		cancel()
		if err == nil || !strings.Contains(err.Error(), "staff member") {
			t.Fatalf("confirm-identity by %s: %v, want refused", who, err)
		}
	}
	var vs VerificationState
	update(t, s.tc, verWF, ConfirmIdentityUpdate, IdentityDecision{Decision: "confirm", Reviewer: "bob", Evidence: "passport scan #12"}, &vs)

	waitStatus(t, s.tc, ApplicationWorkflowID(appID), func(a ApplicationState) bool { return a.Status == status.AppAwaitingReview })
	var as ApplicationState
	update(t, s.tc, ApplicationWorkflowID(appID), ReviewUpdate, ReviewDecision{Decision: "approve", Reviewer: "alice"}, &as)
	// Both decisions are audited under their reviewers.
	events, err := s.store.ListAudit(ctx, 0, 10000)
	if err != nil {
		t.Fatal(err)
	}
	audited := map[string]bool{}
	for _, e := range events {
		if e.Action == "staff.decided" {
			audited[e.Actor+" "+e.ObjectRef] = true
		}
	}
	if !audited["staff:bob case:"+verWF] || !audited["staff:alice case:"+ApplicationWorkflowID(appID)] || audited["staff:carol case:"+verWF] {
		t.Fatalf("staff decisions audited: %v", audited)
	}

	var res ApplicationResult
	gctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	if err := run.Get(gctx, &res); err != nil {
		t.Fatal(err)
	}
	if res.Status != status.AppIssued {
		t.Fatalf("result %+v", res)
	}

	// openssl verify accepts the certificate against the CA.
	c, err := s.store.GetCertificate(ctx, res.CertificateSerial)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(c.DER)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	issuer, _ := s.sign.CA.Issuer(c.Issuer)
	leaf := writeFile(t, dir, "leaf.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.DER}))
	rootF := writeFile(t, dir, "root.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.sign.CA.Root.Raw}))
	issF := writeFile(t, dir, "issuing.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: issuer.Certificate().Raw}))
	chain, _ := s.sign.CA.ChainPEM(c.Issuer)
	chainF := writeFile(t, dir, "chain.pem", chain)
	if out, err := openssl(t, "verify", "-purpose", "smimesign", "-CAfile", rootF, "-untrusted", issF, leaf); err != nil || !strings.Contains(out, "OK") {
		t.Fatalf("openssl verify: %v\n%s", err, out)
	}
	if got := cert.Subject.CommonName; got != "山田 太郎" {
		t.Fatalf("subject CN %q", got)
	}
	// Subscriber and reseller both got the certificate.
	s.mail.WaitFor(t, in.Subscriber.Email, 3, 30*time.Second)

	// Revoke through the revocation workflow: the key holder proved
	// possession (the starter's key-proof route), so the key is blocked; a
	// reseller's claim alone would revoke this certificate only.
	rrun, err := s.tc.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: RevocationWorkflowID(c.Serial), TaskQueue: TaskQueue}, Revocation,
		RevocationInput{Serial: c.Serial, Reason: "keyCompromise", Requester: Requester{Kind: RequesterSubscriber, ID: "key-proof:csr"}})
	if err != nil {
		t.Fatal(err)
	}
	var rr RevocationResult
	if err := rrun.Get(gctx, &rr); err != nil || rr.Status != RevRevoked {
		t.Fatalf("revocation: %+v %v", rr, err)
	}

	// The CRL shard named in the certificate lists the serial, with the reason.
	if len(cert.CRLDistributionPoints) != 1 {
		t.Fatalf("CRL DPs %v", cert.CRLDistributionPoints)
	}
	var crlIssuer string
	var shard int
	if _, err := fmt.Sscanf(cert.CRLDistributionPoints[0][strings.Index(cert.CRLDistributionPoints[0], "/repository/crl/")+len("/repository/crl/"):], "%s", &crlIssuer); err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(strings.TrimSuffix(crlIssuer, ".crl"), "/")
	crlIssuer = parts[0]
	shard, _ = strconv.Atoi(parts[1])
	crl, err := s.store.LatestCRL(ctx, crlIssuer, shard)
	if err != nil {
		t.Fatal(err)
	}
	crlF := writeFile(t, dir, "shard.crl", crl.DER)
	out, err := openssl(t, "crl", "-inform", "DER", "-in", crlF, "-CAfile", chainF, "-noout", "-text")
	if err != nil || !strings.Contains(out, "verify OK") {
		t.Fatalf("openssl crl: %v\n%s", err, out)
	}
	if !strings.Contains(strings.ToUpper(out), strings.ToUpper(c.Serial)) || !strings.Contains(out, "Key Compromise") {
		t.Fatalf("CRL does not list %s as key compromise:\n%s", c.Serial, out)
	}

	// The stored OCSP answer says revoked, and openssl verifies its signature.
	resp, err := s.store.GetOCSP(ctx, c.Serial)
	if err != nil {
		t.Fatal(err)
	}
	respF := writeFile(t, dir, "ocsp.der", resp.DER)
	out, err = openssl(t, "ocsp", "-respin", respF, "-issuer", issF, "-cert", leaf, "-CAfile", chainF, "-no_nonce")
	if err != nil || !strings.Contains(out, "Response verify OK") || !strings.Contains(out, ": revoked") {
		t.Fatalf("openssl ocsp: %v\n%s", err, out)
	}

	recordHistory(t, s.tc, ApplicationWorkflowID(appID), "application-client-sign")
	recordHistory(t, s.tc, verWF, "verification-code-and-staff")
	recordHistory(t, s.tc, RevocationWorkflowID(c.Serial), "revocation-key-compromise")

	// The key is blocked: a new application with it would be refused.
	blocked, ok, err := s.store.IsKeyBlocked(ctx, c.SPKISHA256)
	if err != nil || !ok {
		t.Fatalf("key not blocked: %+v %v", blocked, err)
	}
}

func subjects(ms []testenv.Email) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.Subject)
	}
	return out
}
