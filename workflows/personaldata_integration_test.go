//go:build integration

package workflows

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/worker"

	"certdesk/activities"
	"certdesk/internal/cases"
	"certdesk/internal/config"
	"certdesk/internal/pii"
	"certdesk/internal/pki"
	"certdesk/internal/product"
	"certdesk/internal/store"
	"certdesk/internal/testenv"
)

// pdStack is the real stack for the personal-data workflows: a fresh
// database, the shared Temporal dev server and MailDev, a CA bootstrapped
// into a temp dir, the main worker on a queue of its own and the signing
// worker on SigningTaskQueue (fixed: these tests must not run in parallel
// with others that sign).
type pdStack struct {
	cfg    *config.Config
	pool   *sqlx.DB
	tc     client.Client
	mail   *testenv.MailDev
	store  *store.Store
	acts   *activities.Activities
	caDir  string
	queue  string
	suffix string
}

func newPDStack(t *testing.T) *pdStack {
	t.Helper()
	pool, dbURL := testenv.NewDatabase(t)
	mail := testenv.SharedMailDev(t)
	tc := testenv.TemporalClient(t, client.Options{})
	suffix := strconv.FormatInt(time.Now().UnixNano(), 36)
	caDir := t.TempDir()
	k1, bk := pdKey(t), pdKey(t)
	env := map[string]string{
		"DATABASE_URL":             dbURL,
		"CERTDESK_SMTP_HOST":       mail.SMTPHost(),
		"CERTDESK_SMTP_PORT":       strconv.Itoa(mail.SMTPPort),
		"CERTDESK_SMTP_TLS":        "none",
		"CERTDESK_PII_KEYS":        "k1:" + k1,
		"CERTDESK_BLIND_INDEX_KEY": bk,
		"CERTDESK_CA_DIR":          caDir,
		"CERTDESK_CA_PASSPHRASE":   "pd-test-passphrase",
		"CERTDESK_STAFF_EMAIL":     "staff-pd-" + suffix + "@certdesk.test",
		"CERTDESK_BULK_RATE":       "1000",
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
	ks := &pki.FileKeyStore{Dir: filepath.Join(caDir, "keys"), Passphrase: []byte(cfg.CAPassphrase), Iterations: 1000}
	ca, err := pki.Bootstrap(ctx, pki.BootstrapConfig{
		Dir: caDir, Keys: ks, Organization: "CertDesk PD Test CA", Country: "JP",
		URLs:   pki.URLs{Base: cfg.PublicBaseURL},
		Policy: pki.CAPolicy{OID: []int{1, 3, 6, 1, 4, 1, 32473, 1, 1}, CPSURI: cfg.PublicBaseURL + "/repository/cps"},
	})
	if err != nil {
		t.Fatal(err)
	}
	acts, err := activities.New(cfg, pool, st, bidx, log)
	if err != nil {
		t.Fatal(err)
	}
	queue := "pd-" + suffix
	w := worker.New(tc, queue, worker.Options{DeadlockDetectionTimeout: 30 * time.Second})
	Register(w)
	w.RegisterActivity(acts)
	sw := worker.New(tc, SigningTaskQueue, worker.Options{})
	sw.RegisterActivity(&activities.SigningActivities{CA: ca, Store: st, Log: log})
	for _, wk := range []worker.Worker{w, sw} {
		if err := wk.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(wk.Stop)
	}
	// The reviewers the tests' decisions name are active staff members.
	for _, id := range []string{"alice", "bob"} {
		tok, err := store.GenerateStaffToken()
		if err != nil {
			t.Fatal(err)
		}
		if err := st.CreateStaff(context.Background(), id, id, tok); err != nil {
			t.Fatal(err)
		}
	}
	return &pdStack{cfg: cfg, pool: pool, tc: tc, mail: mail, store: st, acts: acts, caDir: caDir, queue: queue, suffix: suffix}
}

func pdKey(t *testing.T) string {
	t.Helper()
	k, err := pii.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// reseller creates a reseller and returns its id.
func (s *pdStack) reseller(t *testing.T, name string) string {
	t.Helper()
	id := "rs_" + name + "_" + s.suffix
	sum := sha256.Sum256([]byte(id))
	if err := s.store.CreateReseller(context.Background(), store.Reseller{ID: id, Name: name, APIKeyHash: fmt.Sprintf("%x", sum),
		APIKeyPrefix: "cdk_" + name, ContactEmail: name + "-" + s.suffix + "@reseller.example"}); err != nil {
		t.Fatal(err)
	}
	return id
}

// certificate seeds a subscriber record, an application and a certificate
// the way the application workflow leaves them (one subscriber record per
// application) and returns the serial.
func (s *pdStack) certificate(t *testing.T, resellerID, appID, email string, notAfter time.Time) string {
	t.Helper()
	ctx := context.Background()
	subID := activities.SubscriberIDFor(appID)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(s.store.UpsertSubscriber(ctx, store.Subscriber{ID: subID, ResellerID: resellerID, Organization: "株式会社サンプル商事",
		Name: "山田 太郎", Email: email, Phone: "+81-3-0000-0000", Address: "東京都千代田区1-1", Country: "JP"}))
	spki := sha256.Sum256([]byte("key-" + appID))
	must(s.store.CreateApplication(ctx, store.Application{ID: appID, ResellerID: resellerID, SubscriberID: subID, Product: product.ServerDV,
		Domains: []string{"www.sample-" + s.suffix + ".example.jp"}, CSR: []byte("csr-" + appID), SPKISHA256: spki[:], ValidityDays: 90,
		AttestationTermsVersion: "2026-01", AttestationTruthful: true, AttestedAt: time.Now(), WorkflowID: ApplicationWorkflowID(appID)}))
	must(s.store.SetApplicationStatus(ctx, appID, store.AppIssuing, ""))
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	res, err := s.store.ReserveSerial(ctx, appID, n.Add(n, big.NewInt(1)).Text(16))
	must(err)
	notBefore := notAfter.Add(-90 * 24 * time.Hour)
	must(s.store.StoreCertificate(ctx, store.Certificate{Serial: res.Serial, Issuer: "tls-1", DER: []byte("der-" + appID),
		NotBefore: notBefore, NotAfter: notAfter, SPKISHA256: spki[:], ResellerID: resellerID, SubscriberID: subID,
		ApplicationID: appID, Product: product.ServerDV}))
	return res.Serial
}

// rowCounts counts the rows of every CertDesk table.
func (s *pdStack) rowCounts(t *testing.T) map[string]int {
	t.Helper()
	var tables []string
	if err := s.pool.Select(&tables, `SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'goose_db_version' ORDER BY 1`); err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, tb := range tables {
		var n int
		if err := s.pool.Get(&n, `SELECT count(*) FROM `+tb); err != nil {
			t.Fatal(err)
		}
		out[tb] = n
	}
	return out
}

func (s *pdStack) start(t *testing.T, id string, wf any, arg any) client.WorkflowRun {
	t.Helper()
	run, err := s.tc.ExecuteWorkflow(context.Background(), client.StartWorkflowOptions{ID: id, TaskQueue: s.queue}, wf, arg)
	if err != nil {
		t.Fatal(err)
	}
	return run
}

func pdResult[T any](t *testing.T, run client.WorkflowRun) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	var v T
	if err := run.Get(ctx, &v); err != nil {
		t.Fatalf("%s: %v", run.GetID(), err)
	}
	return v
}

var downloadRE = regexp.MustCompile(`/v1/disclosures/([A-Za-z0-9_-]{20,})`)

// verifyIdentity plays the requester (code from MailDev) and staff
// (confirm-identity through the Temporal client).
func (s *pdStack) verifyIdentity(t *testing.T, requestID, email string) {
	t.Helper()
	msgs := s.mail.WaitFor(t, email, 1, 30*time.Second)
	m := codeRE.FindStringSubmatch(msgs[0].Text)
	if m == nil {
		t.Fatalf("no code in %q", msgs[0].Text)
	}
	verWF := VerificationWorkflowID(DisclosureVerificationID(requestID))
	var cr CodeResult
	update(t, s.tc, verWF, SubmitCodeUpdate, codeSubmission(t, s.store, DisclosureVerificationID(requestID), m[1]), &cr)
	if !cr.Accepted {
		t.Fatalf("code refused: %+v", cr)
	}
	var vs VerificationState
	update(t, s.tc, verWF, ConfirmIdentityUpdate, IdentityDecision{Decision: "confirm", Reviewer: "bob", Evidence: "運転免許証の写し"}, &vs)
}

// approvePackage waits for the staff check of a disclosure's compiled
// package and approves it as "bob", returning the state checked.
func approvePackage(t *testing.T, tc client.Client, wfID string) DisclosureState {
	t.Helper()
	st := waitStatus(t, tc, wfID, func(st DisclosureState) bool { return st.Status == DiscAwaitingApproval })
	var after DisclosureState
	update(t, tc, wfID, ApproveDisclosureUpdate, PackageDecision{Decision: "approve", Reviewer: "bob", SHA256: st.PackageSHA256}, &after)
	return st
}

// TestDisclosureOnRealStack: a subscriber holding two certificates (two
// subscriber records, as two applications leave them) asks for disclosure;
// staff pause for documents and resume; after the code from MailDev and
// staff confirmation, the package fetched with the emailed token lists both
// certificates and the provision records, openssl accepts the CA's
// signature, and the link dies after its expiry or its third download.
func TestDisclosureOnRealStack(t *testing.T) {
	s := newPDStack(t)
	ctx := context.Background()
	rs := s.reseller(t, "pd")
	email := "taro-" + s.suffix + "@example.jp"
	serial1 := s.certificate(t, rs, "app_pd1_"+s.suffix, email, time.Now().Add(60*24*time.Hour))
	serial2 := s.certificate(t, rs, "app_pd2_"+s.suffix, strings.ToUpper(email), time.Now().Add(80*24*time.Hour))
	sub1, sub2 := activities.SubscriberIDFor("app_pd1_"+s.suffix), activities.SubscriberIDFor("app_pd2_"+s.suffix)
	for i, sub := range []string{sub1, sub2} {
		if err := s.store.RecordProvision(ctx, store.Provision{ID: fmt.Sprintf("seed/provision/%d", i), ProvidedAt: time.Now().Add(-time.Hour),
			RecipientKind: "reseller", RecipientRef: rs, PersonRef: sub, DataItems: []string{"name", "email", "certificate"},
			LegalBasis: "seed §4.1: managing reseller", ContextRef: "seed"}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.store.ReserveEmail(ctx, "application/app_pd1|review_issued", "review_issued", "subscriber:"+sub1); err != nil {
		t.Fatal(err)
	}
	if err := s.store.MarkEmailSent(ctx, "application/app_pd1|review_issued", "<m1@certdesk>"); err != nil {
		t.Fatal(err)
	}
	if err := s.store.RecordStaffAccess(ctx, store.StaffAccess{EventKey: "seed-access", StaffID: "alice", PersonRef: sub1,
		Purpose: "review application app_pd1", Channel: "temporal-ui codec decode"}); err != nil {
		t.Fatal(err)
	}

	reqID := "dr_" + s.suffix
	wfID := DisclosureWorkflowID(reqID)
	// Another person on the same address (issue 17): not disclosed.
	if err := s.store.UpsertSubscriber(ctx, store.Subscriber{ID: "sub_other_" + s.suffix, ResellerID: rs, Name: "山田 花子",
		Email: email, Phone: "+81-3-0000-0000"}); err != nil {
		t.Fatal(err)
	}
	run := s.start(t, wfID, Disclosure, DisclosureInput{RequestID: reqID, Name: "山田太郎", Email: email, Phone: "+81 3 0000 0000"})

	// Staff ask for documents: the clock stops, with the reason kept.
	waitStatus(t, s.tc, wfID, func(st DisclosureState) bool { return st.Status == DiscVerifyingIdentity })
	var paused DisclosureState
	update(t, s.tc, wfID, RequestDocumentsUpdate, DocumentsRequest{Reviewer: "bob", Reason: "本人確認書類の写しの提出を依頼"}, &paused)
	if paused.Status != DiscWaitingForRequester {
		t.Fatalf("after request-documents: %+v", paused)
	}
	req := pdWaitFor(t, func() (store.DisclosureRequest, bool) {
		r, err := s.store.GetDisclosureRequest(ctx, reqID)
		return r, err == nil && r.PausedAt != nil
	})
	if req.PausedReason != "本人確認書類の写しの提出を依頼" {
		t.Fatalf("pause reason %q", req.PausedReason)
	}
	dueBefore := req.DueAt
	time.Sleep(1500 * time.Millisecond)
	var resumed DisclosureState
	update(t, s.tc, wfID, DocumentsReceivedUpdate, DocumentsReceived{Reviewer: "bob", Note: "郵送で受領"}, &resumed)
	req = pdWaitFor(t, func() (store.DisclosureRequest, bool) {
		r, err := s.store.GetDisclosureRequest(ctx, reqID)
		return r, err == nil && r.PausedAt == nil
	})
	if !req.DueAt.After(dueBefore.Add(time.Second)) || resumed.PausedTotal < time.Second {
		t.Fatalf("due %s → %s, paused %s: the due time must move by the paused time", dueBefore, req.DueAt, resumed.PausedTotal)
	}

	s.verifyIdentity(t, reqID, email)
	checked := approvePackage(t, s.tc, wfID)
	if checked.Withheld[activities.ItemSubscribers] != 1 {
		t.Fatalf("withheld %v, want the other person's record", checked.Withheld)
	}
	res := pdResult[DisclosureResult](t, run)
	if res.Status != DiscDelivered || res.NothingHeld {
		t.Fatalf("result %+v", res)
	}
	recordHistory(t, s.tc, wfID, "disclosure-staff-checked") // disclosure-paused-delivered: before the staff check

	// The link from the email.
	msgs := s.mail.WaitFor(t, email, 2, 30*time.Second)
	var token string
	for _, m := range msgs {
		if mm := downloadRE.FindStringSubmatch(m.Text); mm != nil {
			token = mm[1]
		}
	}
	if token == "" {
		t.Fatal("no download link emailed")
	}
	pkg, err := s.store.ConsumeDisclosureDownload(ctx, token, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	var doc activities.DisclosurePackage
	if err := json.Unmarshal(pkg.JSON, &doc); err != nil {
		t.Fatal(err)
	}
	serials := map[string]bool{}
	for _, c := range doc.Certificates {
		serials[c.Serial] = true
	}
	if len(doc.Certificates) != 2 || !serials[serial1] || !serials[serial2] {
		t.Fatalf("certificates %+v", doc.Certificates)
	}
	if len(doc.Subscribers) != 2 || len(doc.Applications) != 2 {
		t.Fatalf("subscribers %d applications %d", len(doc.Subscribers), len(doc.Applications))
	}
	for _, sub := range doc.Subscribers {
		if sub.Name != "山田 太郎" {
			t.Fatalf("another person's record disclosed: %s", sub.ID)
		}
	}
	if bytes.Contains(pkg.JSON, []byte("花子")) || bytes.Contains(pkg.HTML, []byte("花子")) {
		t.Fatal("the package names the other person on the address")
	}
	if len(doc.ThirdPartyProvisions) != 2 || doc.ThirdPartyProvisions[0].RecipientRef != rs {
		t.Fatalf("provisions %+v", doc.ThirdPartyProvisions)
	}
	if len(doc.Emails) != 1 || doc.Emails[0].Notice != "review_issued" {
		t.Fatalf("emails %+v (this request's own code email must not be listed)", doc.Emails)
	}
	if len(doc.StaffAccess) != 1 || doc.StaffAccess[0].StaffID != "alice" {
		t.Fatalf("staff access %+v", doc.StaffAccess)
	}
	if !strings.Contains(string(pkg.HTML), serial1) || !strings.Contains(string(pkg.HTML), "第三者提供の記録") ||
		!strings.Contains(string(pkg.HTML), "Records of provision to third parties") {
		t.Fatal("HTML summary incomplete")
	}

	// openssl accepts the CA's detached signature over the JSON; a changed
	// package does not verify.
	dir := t.TempDir()
	root, _ := os.ReadFile(filepath.Join(s.caDir, "root.pem"))
	chain := writeFile(t, dir, "chain.pem", root)
	content := writeFile(t, dir, "package.json", pkg.JSON)
	sig := writeFile(t, dir, "sig.der", pkg.SignatureDER)
	out, err := openssl(t, "cms", "-verify", "-binary", "-inform", "DER", "-in", sig, "-content", content, "-CAfile", chain, "-purpose", "any", "-out", filepath.Join(dir, "out"))
	if err != nil || !strings.Contains(out, "Verification successful") {
		t.Fatalf("openssl cms -verify: %v\n%s", err, out)
	}
	bad := writeFile(t, dir, "tampered.json", append([]byte(" "), pkg.JSON...))
	if out, err := openssl(t, "cms", "-verify", "-binary", "-inform", "DER", "-in", sig, "-content", bad, "-CAfile", chain, "-purpose", "any", "-out", filepath.Join(dir, "out")); err == nil {
		t.Fatalf("a tampered package verified: %s", out)
	}

	// The link: dead after its expiry; three downloads in all.
	if _, err := s.store.ConsumeDisclosureDownload(ctx, token, time.Now().Add(DisclosureLinkValidity+time.Hour)); !errors.Is(err, store.ErrLinkUnavailable) {
		t.Fatalf("after expiry: %v", err)
	}
	for i := 2; i <= 3; i++ {
		if _, err := s.store.ConsumeDisclosureDownload(ctx, token, time.Now()); err != nil {
			t.Fatalf("download %d: %v", i, err)
		}
	}
	if _, err := s.store.ConsumeDisclosureDownload(ctx, token, time.Now()); !errors.Is(err, store.ErrLinkUnavailable) {
		t.Fatalf("4th download: %v", err)
	}

	// The disclosure is in the provision ledger, for each record disclosed.
	for _, sub := range []string{sub1, sub2} {
		provs, err := s.store.ListProvisionsByPerson(ctx, sub)
		if err != nil {
			t.Fatal(err)
		}
		last := provs[len(provs)-1]
		if len(provs) != 2 || last.RecipientKind != "requester" || !strings.Contains(last.LegalBasis, "Art. 33") || last.ContextRef != wfID {
			t.Fatalf("ledger of %s: %+v", sub, provs)
		}
	}
	final, err := s.store.GetDisclosureRequest(ctx, reqID)
	if err != nil || final.State != store.DisclosureDelivered || final.DeliveredAt == nil {
		t.Fatalf("request row %+v %v", final, err)
	}
	desc, err := s.tc.DescribeWorkflow(ctx, wfID, "")
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := desc.TypedSearchAttributes.GetKeyword(cases.CaseType); v != cases.TypeDisclosure {
		t.Fatalf("CaseType %q", v)
	}
	if v, _ := desc.TypedSearchAttributes.GetKeyword(cases.CaseStatus); v != DiscDelivered {
		t.Fatalf("CaseStatus %q", v)
	}
	if _, ok := desc.TypedSearchAttributes.GetTime(cases.DueAt); !ok {
		t.Fatal("DueAt not set")
	}
}

// TestDisclosureNothingHeldOnRealStack: an address CertDesk knows nothing
// about gets the same first email (the code) and, once verified, a signed
// "no data" answer whose attached signature openssl accepts.
func TestDisclosureNothingHeldOnRealStack(t *testing.T) {
	s := newPDStack(t)
	ctx := context.Background()
	email := "nobody-" + s.suffix + "@example.jp"
	reqID := "dr_none_" + s.suffix
	run := s.start(t, DisclosureWorkflowID(reqID), Disclosure, DisclosureInput{RequestID: reqID, Name: "佐藤 花子", Email: email})
	first := s.mail.WaitFor(t, email, 1, 30*time.Second)[0]
	if !codeRE.MatchString(first.Text) || strings.Contains(first.Text, "保有") {
		t.Fatalf("the first email must be the code and nothing else: %q", first.Subject)
	}
	s.verifyIdentity(t, reqID, email)
	approvePackage(t, s.tc, DisclosureWorkflowID(reqID))
	res := pdResult[DisclosureResult](t, run)
	if res.Status != DiscDelivered || !res.NothingHeld {
		t.Fatalf("result %+v", res)
	}
	msgs := s.mail.WaitFor(t, email, 2, 30*time.Second)
	var answer testenv.Email
	for _, m := range msgs {
		if len(m.Attachments) == 2 {
			answer = m
		}
	}
	if answer.ID == "" || !strings.Contains(answer.Text, "保有しておりません") {
		t.Fatalf("no signed 'nothing held' answer among %v", subjects(msgs))
	}
	dir := t.TempDir()
	var jsonFile, sigFile string
	for _, a := range answer.Attachments {
		b, err := s.mail.Attachment(ctx, answer.ID, a.Generated)
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasSuffix(a.FileName, ".p7s") {
			sigFile = writeFile(t, dir, "sig.der", b)
		} else {
			jsonFile = writeFile(t, dir, "package.json", b)
			var doc activities.DisclosurePackage
			if err := json.Unmarshal(b, &doc); err != nil || !doc.NothingHeld || doc.RequestID != reqID {
				t.Fatalf("statement %s: %v", b, err)
			}
		}
	}
	root, _ := os.ReadFile(filepath.Join(s.caDir, "root.pem"))
	chain := writeFile(t, dir, "chain.pem", root)
	out, err := openssl(t, "cms", "-verify", "-binary", "-inform", "DER", "-in", sigFile, "-content", jsonFile, "-CAfile", chain, "-purpose", "any", "-out", filepath.Join(dir, "out"))
	if err != nil || !strings.Contains(out, "Verification successful") {
		t.Fatalf("openssl cms -verify: %v\n%s", err, out)
	}
	if n := s.rowCounts(t)["third_party_provisions"]; n != 0 {
		t.Fatalf("nothing held, yet %d provision records", n)
	}
	row, err := s.store.GetDisclosureRequest(ctx, reqID)
	if err != nil || row.State != store.DisclosureDelivered || row.StateReason != "nothing held" {
		t.Fatalf("request row %+v %v", row, err)
	}
}

// TestCorrectionOnRealStack: a reseller that does not manage the
// certificate is refused and leaves no row behind; the managing reseller's
// contact correction is applied, audited and both addresses told; the
// classification reads the real records.
func TestCorrectionOnRealStack(t *testing.T) {
	s := newPDStack(t)
	ctx := context.Background()
	rs, other := s.reseller(t, "owner"), s.reseller(t, "other")
	email := "jiro-" + s.suffix + "@example.jp"
	appID := "app_cor_" + s.suffix
	serial := s.certificate(t, rs, appID, email, time.Now().Add(60*24*time.Hour))

	before := s.rowCounts(t)
	corID := "cor_other_" + s.suffix
	run := s.start(t, CorrectionWorkflowID(corID), Correction, CorrectionInput{CorrectionID: corID, Serial: serial, ResellerID: other,
		Changes: map[string]string{"email": "evil-" + s.suffix + "@example.jp"}, Reason: "take over"})
	res := pdResult[CorrectionResult](t, run)
	if res.Status != CorrRefused || !strings.Contains(res.Reason, "not found") {
		t.Fatalf("another reseller's correction: %+v", res)
	}
	after := s.rowCounts(t)
	for tb, n := range before {
		if after[tb] != n {
			t.Errorf("table %s: %d rows before, %d after a refused correction", tb, n, after[tb])
		}
	}
	if msgs, _ := s.mail.MessagesTo(ctx, "evil-"+s.suffix+"@example.jp"); len(msgs) != 0 {
		t.Fatal("a refused correction emailed someone")
	}

	// The managing reseller corrects the contact address and phone.
	newEmail := "jiro.new-" + s.suffix + "@example.jp"
	corID = "cor_owner_" + s.suffix
	run = s.start(t, CorrectionWorkflowID(corID), Correction, CorrectionInput{CorrectionID: corID, Serial: strings.ToUpper(serial), ResellerID: rs,
		Changes: map[string]string{"email": newEmail, "contact_phone": "+81-3-9999-0000"}, Reason: "担当者変更"})
	res = pdResult[CorrectionResult](t, run)
	if res.Status != CorrApplied {
		t.Fatalf("contact correction: %+v", res)
	}
	recordHistory(t, s.tc, CorrectionWorkflowID(corID), "correction-contact")
	sub, err := s.store.GetSubscriber(ctx, activities.SubscriberIDFor(appID))
	if err != nil || sub.Email != newEmail || sub.Phone != "+81-3-9999-0000" {
		t.Fatalf("subscriber after correction %+v %v", sub, err)
	}
	c, err := s.store.GetCorrection(ctx, corID)
	if err != nil || c.Status != store.CorrectionApplied || c.OldValues[activities.FieldContactEmail] != email || c.Classification != "contact" {
		t.Fatalf("correction row %+v %v", c, err)
	}
	for _, to := range []string{newEmail, email} {
		msgs := s.mail.WaitFor(t, to, 1, 30*time.Second)
		if !strings.Contains(msgs[len(msgs)-1].Text, "ご担当者メールアドレス") || strings.Contains(msgs[len(msgs)-1].Text, newEmail) {
			t.Fatalf("notice to %s must name the field, not the value", to)
		}
	}
	desc, err := s.tc.DescribeWorkflow(ctx, CorrectionWorkflowID(corID), "")
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := desc.TypedSearchAttributes.GetKeyword(cases.CertificateSerial); v != serial {
		t.Fatalf("CertificateSerial %q", v)
	}
	if v, _ := desc.TypedSearchAttributes.GetKeyword(cases.ResellerID); v != rs {
		t.Fatalf("ResellerID %q", v)
	}

	// Classification on the real records (the activity called directly):
	// for a DV certificate only the domains are printed.
	plan, err := s.acts.CheckCorrection(ctx, activities.CheckCorrectionInput{CorrectionID: "x", Serial: serial, ResellerID: rs,
		Changes: map[string]string{"organization": "株式会社新商号"}})
	if err != nil || plan.Classification != activities.CorrectionContact {
		t.Fatalf("organisation on DV: %+v %v", plan, err)
	}
	plan, err = s.acts.CheckCorrection(ctx, activities.CheckCorrectionInput{CorrectionID: "x", Serial: serial, ResellerID: rs,
		Changes: map[string]string{"domains": "WWW.New-" + s.suffix + ".example.jp."}})
	if err != nil || plan.Classification != activities.CorrectionPrinted || plan.ReviewRequired || plan.Reissue == nil ||
		plan.Reissue.Domains[0] != "www.new-"+s.suffix+".example.jp" || !strings.Contains(plan.Reissue.CSRPEM, "CERTIFICATE REQUEST") ||
		plan.Reissue.Subscriber.Email != newEmail {
		t.Fatalf("domains on DV: %+v %v", plan, err)
	}
	if _, err := s.acts.CheckCorrection(ctx, activities.CheckCorrectionInput{CorrectionID: "x", Serial: serial, ResellerID: rs,
		Changes: map[string]string{"locality": "千代田区"}}); err == nil || !strings.Contains(err.Error(), "not held") {
		t.Fatalf("locality on DV: %v", err)
	}
	if _, err := s.acts.CheckCorrection(ctx, activities.CheckCorrectionInput{CorrectionID: "x", Serial: serial, ResellerID: rs,
		Changes: map[string]string{"email": newEmail}}); err == nil || !strings.Contains(err.Error(), "nothing to correct") {
		t.Fatalf("unchanged value: %v", err)
	}
}

// TestPolicyNoticeOnRealStack: every address with a valid certificate gets
// one notice (two subscriber records with one address: one notice), none
// for revoked or expired only; a page resumed from heartbeat details starts
// after what it had handled.
func TestPolicyNoticeOnRealStack(t *testing.T) {
	s := newPDStack(t)
	ctx := context.Background()
	rs := s.reseller(t, "pn")
	addr := func(n string) string { return "pn-" + n + "-" + s.suffix + "@example.jp" }
	valid := time.Now().Add(60 * 24 * time.Hour)
	s.certificate(t, rs, "app_pn1_"+s.suffix, addr("a"), valid)
	s.certificate(t, rs, "app_pn2_"+s.suffix, addr("a"), valid)
	s.certificate(t, rs, "app_pn3_"+s.suffix, addr("b"), valid)
	s.certificate(t, rs, "app_pn4_"+s.suffix, addr("c"), valid)
	s.certificate(t, rs, "app_pn5_"+s.suffix, addr("expired"), time.Now().Add(-time.Hour))
	revoked := s.certificate(t, rs, "app_pn6_"+s.suffix, addr("revoked"), valid)
	if _, err := s.store.RevokeBatch(ctx, []string{revoked}, store.RevokeBatch{ReasonCode: 4, RequestedByKind: "staff", RevokedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	version := "2026." + s.suffix
	run := s.start(t, PolicyNoticeWorkflowID(version), PolicyNotice, PolicyNoticeInput{Version: version, EffectiveDate: "2026-12-01",
		URL: "https://certdesk.example/policy/" + version, PageSize: 2})
	p := pdResult[PolicyNoticeProgress](t, run)
	if p.Status != PolicyDone || p.Recipients != 3 || p.Sent != 3 || p.Pages != 2 {
		t.Fatalf("progress %+v", p)
	}
	recordHistory(t, s.tc, PolicyNoticeWorkflowID(version), "policynotice-pages")
	for _, n := range []string{"a", "b", "c"} {
		msgs := s.mail.WaitFor(t, addr(n), 1, 30*time.Second)
		if len(msgs) != 1 || !strings.Contains(msgs[0].Text, version) {
			t.Fatalf("%s: %d notices", n, len(msgs))
		}
	}
	for _, n := range []string{"expired", "revoked"} {
		if msgs, _ := s.mail.MessagesTo(ctx, addr(n)); len(msgs) != 0 {
			t.Fatalf("%s got a notice", n)
		}
	}

	// Resume: a page retried with heartbeat details starts after the last
	// address it handled (a new notice id, so the email log skips nothing).
	recips, err := s.store.ListNoticeRecipients(ctx, time.Now(), "", 10)
	if err != nil || len(recips) != 3 {
		t.Fatalf("recipients %d %v", len(recips), err)
	}
	var ts testsuite.WorkflowTestSuite
	aenv := ts.NewTestActivityEnvironment()
	aenv.RegisterActivity(s.acts)
	aenv.SetHeartbeatDetails(struct{ After, LastHandled string }{"", recips[0].EmailIndex})
	val, err := aenv.ExecuteActivity(s.acts.SendPolicyNotice, activities.PolicyNoticePageInput{
		WorkflowID: PolicyNoticeWorkflowID(version + "-resume"), Version: version + "-resume", EffectiveDate: time.Now(),
		URL: "https://certdesk.example/policy/resume", ValidAt: time.Now(), Limit: 10,
	})
	if err != nil {
		t.Fatal(err)
	}
	var page activities.PolicyNoticePageResult
	if err := val.Get(&page); err != nil {
		t.Fatal(err)
	}
	if page.Count != 3 || page.Sent != 2 || page.Skipped != 1 {
		t.Fatalf("resumed page %+v: want the first address skipped", page)
	}
	if msgs, _ := s.mail.MessagesTo(ctx, recips[0].Email); len(msgs) != 1 {
		t.Fatalf("the handled address got %d notices, want 1", len(msgs))
	}
}

// pdWaitFor polls until f reports done.
func pdWaitFor[T any](t *testing.T, f func() (T, bool)) T {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		v, ok := f()
		if ok {
			return v
		}
		if time.Now().After(deadline) {
			t.Fatalf("condition not reached; last %+v", v)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
