package store

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"certdesk/internal/status"
)

func TestResellers(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	key, prefix, err := GenerateAPIKey()
	must(t, err)
	if !strings.HasPrefix(key, "cdk_") || len(key) != 47 || !strings.HasPrefix(key, prefix) {
		t.Fatalf("key %q prefix %q", key, prefix)
	}
	must(t, s.CreateReseller(bg, Reseller{ID: "rs_x", Name: "X", APIKeyHash: HashAPIKey(key), APIKeyPrefix: prefix}))
	r, err := s.ResellerByKeyHash(bg, HashAPIKey(key))
	must(t, err)
	if r.ID != "rs_x" || r.ContactEmail != "" {
		t.Fatalf("%+v", r)
	}
	if err := s.CreateReseller(bg, Reseller{ID: "rs_x", Name: "X", APIKeyHash: HashAPIKey("other"), APIKeyPrefix: "o"}); !errors.Is(err, ErrConflict) {
		t.Fatalf("same id, other key: %v", err)
	}
	if err := s.CreateReseller(bg, Reseller{ID: "rs_y", Name: "Y", APIKeyHash: HashAPIKey(key), APIKeyPrefix: prefix}); !errors.Is(err, ErrConflict) {
		t.Fatalf("same key, other id: %v", err)
	}
	if err := s.CreateReseller(bg, Reseller{ID: "bad id", Name: "Y", APIKeyHash: HashAPIKey("z"), APIKeyPrefix: "z"}); err == nil {
		t.Fatal("bad id accepted")
	}
	must(t, s.DisableReseller(bg, "rs_x", time.Now()))
	if _, err := s.ResellerByKeyHash(bg, HashAPIKey(key)); !errors.Is(err, ErrNotFound) {
		t.Fatalf("disabled reseller authenticated: %v", err)
	}
	if _, err := s.ResellerByKeyHash(bg, HashAPIKey("nope")); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown key: %v", err)
	}
}

func TestApplicationLifecycleAndScoping(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	f := newFixture(t, s)
	must(t, s.CreateReseller(bg, Reseller{ID: "rs_b", Name: "B", APIKeyHash: HashAPIKey("b"), APIKeyPrefix: "b"}))
	a := f.application(t, "app_1")

	if _, err := s.GetApplicationForReseller(bg, "app_1", "rs_b"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("another reseller read the application: %v", err)
	}
	got, err := s.GetApplicationForReseller(bg, "app_1", "rs_a")
	must(t, err)
	if string(got.CSR) != "csr-der-app_1" || got.Status != status.AppReceived || got.Domains[0] != "www.example.jp" {
		t.Fatalf("%+v", got)
	}
	if _, err := s.GetSubscriberForReseller(bg, "sb_1", "rs_b"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("another reseller read the subscriber: %v", err)
	}
	if err := s.UpsertSubscriber(bg, Subscriber{ID: "sb_1", ResellerID: "rs_b", Name: "x", Email: "x@x"}); !errors.Is(err, ErrConflict) {
		t.Fatalf("subscriber taken over by another reseller: %v", err)
	}
	other := a
	other.ResellerID = "rs_b"
	if err := s.CreateApplication(bg, other); !errors.Is(err, ErrConflict) {
		t.Fatalf("same id, other reseller: %v", err)
	}
	bad := a
	bad.ID, bad.AttestationTruthful = "app_false", false
	if err := s.CreateApplication(bg, bad); err == nil || !strings.Contains(err.Error(), "attestation") {
		t.Fatalf("false attestation accepted: %v", err)
	}

	must(t, s.SetApplicationStatus(bg, "app_1", status.AppValidating, ""))
	must(t, s.SetApplicationStatus(bg, "app_1", status.AppAwaitingReview, ""))
	if err := s.SetApplicationStatus(bg, "app_1", status.AppValidating, ""); !errors.Is(err, ErrInvalidTransition) {
		t.Fatalf("backwards: %v", err)
	}
	if err := s.SetApplicationStatus(bg, "app_1", status.AppIssued, ""); !errors.Is(err, ErrInvalidTransition) {
		t.Fatalf("issued without a certificate: %v", err)
	}
	must(t, s.SetApplicationStatus(bg, "app_1", status.AppIssuing, "approved by st_1"))
	if err := s.SetApplicationStatus(bg, "app_1", status.AppWithdrawn, ""); !errors.Is(err, ErrInvalidTransition) {
		t.Fatalf("withdrawn while signing: %v", err)
	}
	if err := s.SetApplicationStatus(bg, "nope", status.AppValidating, ""); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown application: %v", err)
	}

	// Reservation: the first candidate wins, concurrently too.
	var wg sync.WaitGroup
	got2 := make([]string, 4)
	for i := range got2 {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			r, err := s.ReserveSerial(bg, "app_1", randomSerial())
			if err != nil {
				t.Error(err)
				return
			}
			got2[i] = r.Serial
		}(i)
	}
	wg.Wait()
	for _, sn := range got2 {
		if sn != got2[0] {
			t.Fatalf("reservations differ: %v", got2)
		}
	}
	f.application(t, "app_2")
	if _, err := s.ReserveSerial(bg, "app_2", strings.ToUpper(got2[0])); !errors.Is(err, ErrSerialTaken) {
		t.Fatalf("serial reused: %v", err)
	}
	res, err := s.GetIssuance(bg, "app_1")
	must(t, err)
	if res.ReservedAt.Nanosecond() != 0 {
		t.Fatalf("reserved_at not whole seconds: %v", res.ReservedAt)
	}

	cert := Certificate{Serial: randomSerial(), Issuer: "tls-1", DER: []byte("der"), NotBefore: res.ReservedAt,
		NotAfter: res.ReservedAt.Add(time.Hour), SPKISHA256: a.SPKISHA256, ResellerID: "rs_a", SubscriberID: "sb_1",
		ApplicationID: "app_1", Product: "server-dv"}
	if err := s.StoreCertificate(bg, cert); !errors.Is(err, ErrConflict) {
		t.Fatalf("certificate with a serial other than the reserved one: %v", err)
	}
	cert.Serial = res.Serial
	must(t, s.StoreCertificate(bg, cert))
	must(t, s.StoreCertificate(bg, cert))
	app, err := s.GetApplication(bg, "app_1")
	must(t, err)
	if app.Status != status.AppIssued || app.CertificateSerial != res.Serial {
		t.Fatalf("application after issuance: %s %s", app.Status, app.CertificateSerial)
	}
	if _, err := s.GetCertificateForReseller(bg, res.Serial, "rs_b"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("another reseller read the certificate: %v", err)
	}
	c, err := s.GetCertificateForReseller(bg, "00"+strings.ToUpper(res.Serial), "rs_a")
	must(t, err)
	if string(c.DER) != "der" || c.Status != "valid" {
		t.Fatalf("certificate: %+v", c)
	}

	due := time.Now().Add(-time.Minute)
	must(t, s.SetApplicationDue(bg, "app_2", due))
	open, err := s.ListOpenApplicationsDue(bg, time.Now(), 10)
	must(t, err)
	if len(open) != 1 || open[0].ID != "app_2" {
		t.Fatalf("due applications: %+v", open)
	}
	apps, err := s.ListApplicationsBySubscriber(bg, "sb_1")
	must(t, err)
	if len(apps) != 2 {
		t.Fatalf("by subscriber: %d", len(apps))
	}
}

func TestValidationsAndVerifications(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	f := newFixture(t, s)
	f.application(t, "app_1")
	dv, err := s.EnsureDomainValidation(bg, DomainValidation{ApplicationID: "app_1", Domain: "Example.JP", Method: "dns-txt", Token: "first"})
	must(t, err)
	again, err := s.EnsureDomainValidation(bg, DomainValidation{ApplicationID: "app_1", Domain: "example.jp.", Method: "dns-txt", Token: "second"})
	must(t, err)
	if dv.Token != "first" || again.Token != "first" || again.Domain != "example.jp" {
		t.Fatalf("token not stable: %q %q", dv.Token, again.Token)
	}
	must(t, s.SetDomainValidationResult(bg, "app_1", "EXAMPLE.jp", "valid", "", time.Now()))
	list, err := s.ListDomainValidations(bg, "app_1")
	must(t, err)
	if len(list) != 1 || list[0].Result != "valid" || list[0].ValidatedAt == nil {
		t.Fatalf("%+v", list)
	}

	must(t, s.CreateVerification(bg, Verification{ID: "iv_1", SubjectKind: "application", SubjectRef: "app_1", Method: "email-otp"}))
	must(t, s.RecordVerificationAttempts(bg, "iv_1", 3, false))
	must(t, s.RecordVerificationAttempts(bg, "iv_1", 2, false)) // a late retry
	must(t, s.RecordVerificationAttempts(bg, "iv_1", 5, true))
	must(t, s.RecordVerificationAttempts(bg, "iv_1", 4, false))
	v, err := s.GetVerification(bg, "iv_1")
	must(t, err)
	if v.Attempts != 5 || !v.Locked {
		t.Fatalf("attempts %d locked %v", v.Attempts, v.Locked)
	}
	must(t, s.DecideVerification(bg, "iv_1", "failed", "system", "", time.Now()))
	must(t, s.DecideVerification(bg, "iv_1", "failed", "system", "", time.Now()))
	if err := s.DecideVerification(bg, "iv_1", "passed", "st_1", "", time.Now()); !errors.Is(err, ErrAlreadyDecided) {
		t.Fatalf("decision overturned: %v", err)
	}
}

func TestEmailLog(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	const key = "revocation/abc/first-report"
	sent, err := s.ReserveEmail(bg, key, "first-report", "sb_1")
	must(t, err)
	if sent {
		t.Fatal("new key reported as sent")
	}
	must(t, s.MarkEmailFailed(bg, key, "dial tcp: connection refused"))
	sent, err = s.ReserveEmail(bg, key, "first-report", "sb_1")
	must(t, err)
	if sent {
		t.Fatal("failed send reported as sent")
	}
	must(t, s.MarkEmailSent(bg, key, "<1@certdesk>"))
	must(t, s.MarkEmailSent(bg, key, "<2@certdesk>"))
	must(t, s.MarkEmailFailed(bg, key, "late failure report"))
	sent, err = s.ReserveEmail(bg, key, "first-report", "sb_1")
	must(t, err)
	if !sent {
		t.Fatal("sent key not reported as sent")
	}
	e, err := s.GetEmailLog(bg, key)
	must(t, err)
	if e.Status != "sent" || e.Attempts != 2 || e.MessageID != "<1@certdesk>" || e.SentAt == nil {
		t.Fatalf("%+v", e)
	}
	if err := s.MarkEmailSent(bg, "never-reserved", "x"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unreserved key: %v", err)
	}
	list, err := s.ListEmailsByRecipient(bg, "sb_1", "sb_2")
	must(t, err)
	if len(list) != 1 {
		t.Fatalf("by recipient: %d", len(list))
	}
	if got := ScrubAddresses("550 <a.b+c@example.jp> and 山田@例え.jp rejected", 1000); got != "550 <<address>> and <address> rejected" {
		t.Fatalf("scrub: %q", got)
	}
	if got := ScrubAddresses("日本語", 4); got != "日" {
		t.Fatalf("cut: %q", got)
	}
}

func TestDisclosureFlow(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	now := time.Now()
	must(t, s.CreateDisclosureRequest(bg, DisclosureRequest{ID: "dr_1", Name: "山田太郎", Email: "taro@example.jp", DueAt: now.Add(7 * 24 * time.Hour)}))
	if err := s.CreateDisclosureRequest(bg, DisclosureRequest{ID: "dr_2", Email: "x@example.jp", DeliveryMethod: "paper", DueAt: now}); err == nil {
		t.Fatal("paper delivery without an address accepted")
	}
	must(t, s.SetDisclosureState(bg, "dr_1", DisclosureVerifyingIdentity, ""))
	must(t, s.PauseDisclosure(bg, "dr_1", "waiting for identity documents", now))
	r, err := s.GetDisclosureRequest(bg, "dr_1")
	must(t, err)
	if r.PausedReason == "" || r.Name != "山田太郎" || r.Email != "taro@example.jp" {
		t.Fatalf("%+v", r)
	}
	must(t, s.ResumeDisclosure(bg, "dr_1", now.Add(8*24*time.Hour)))
	id, err := s.SaveDisclosurePackage(bg, DisclosurePackage{ID: "dp_1", RequestID: "dr_1", JSON: []byte(`{"a":1}`), HTML: []byte("<p>山田太郎</p>"), SignatureDER: []byte{0x30}})
	must(t, err)
	id2, err := s.SaveDisclosurePackage(bg, DisclosurePackage{ID: "dp_2", RequestID: "dr_1", JSON: []byte(`{"a":2}`), HTML: []byte("x"), SignatureDER: []byte{0x30}})
	must(t, err)
	if id != "dp_1" || id2 != "dp_1" {
		t.Fatalf("package ids %s %s", id, id2)
	}
	if _, err := s.ConsumeDisclosureDownload(bg, "token", now); !errors.Is(err, ErrLinkUnavailable) {
		t.Fatalf("download before the link: %v", err)
	}
	must(t, s.SetDisclosureLink(bg, "dr_1", HashLinkToken("token"), now.Add(time.Hour), 2))
	for i := 0; i < 2; i++ {
		p, err := s.ConsumeDisclosureDownload(bg, "token", now)
		must(t, err)
		if string(p.HTML) != "<p>山田太郎</p>" {
			t.Fatalf("package: %q", p.HTML)
		}
	}
	if _, err := s.ConsumeDisclosureDownload(bg, "token", now); !errors.Is(err, ErrLinkUnavailable) {
		t.Fatalf("third download: %v", err)
	}
	must(t, s.SetDisclosureLink(bg, "dr_1", HashLinkToken("token2"), now.Add(time.Hour), 1))
	if _, err := s.ConsumeDisclosureDownload(bg, "token2", now.Add(2*time.Hour)); !errors.Is(err, ErrLinkUnavailable) {
		t.Fatalf("expired link: %v", err)
	}
	must(t, s.SetDisclosureState(bg, "dr_1", DisclosureDelivered, ""))
	must(t, s.SetDisclosureState(bg, "dr_1", DisclosureDelivered, ""))
	if err := s.SetDisclosureState(bg, "dr_1", DisclosureCompiling, ""); !errors.Is(err, ErrInvalidTransition) {
		t.Fatalf("delivered request reopened: %v", err)
	}
	r, _ = s.GetDisclosureRequest(bg, "dr_1")
	if r.DeliveredAt == nil || r.PackageRef != "dp_1" {
		t.Fatalf("%+v", r)
	}
}

func TestCorrections(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	f := newFixture(t, s)
	c := f.issue(t, "app_1", "tls-1", 0, time.Now().Add(-time.Hour))
	f.application(t, "app_2")
	must(t, s.CreateCorrection(bg, Correction{ID: "co_1", Serial: c.Serial, ResellerID: "rs_a",
		OldValues: map[string]string{"organization": "株式会社テスト"}, NewValues: map[string]string{"organization": "株式会社新"}, Classification: "printed"}))
	must(t, s.LinkCorrection(bg, "co_1", c.Serial, ""))
	must(t, s.LinkCorrection(bg, "co_1", "", "app_2"))
	if err := s.LinkCorrection(bg, "co_1", "", "app_1"); !errors.Is(err, ErrConflict) {
		t.Fatalf("relink: %v", err)
	}
	must(t, s.SetCorrectionStatus(bg, "co_1", CorrectionReissuing))
	got, err := s.GetCorrectionForReseller(bg, "co_1", "rs_a")
	must(t, err)
	if got.NewValues["organization"] != "株式会社新" || got.NewApplicationID != "app_2" || got.RevocationSerial != c.Serial || got.Status != CorrectionReissuing {
		t.Fatalf("%+v", got)
	}
	list, err := s.ListCorrectionsBySubscriber(bg, "sb_1")
	must(t, err)
	if len(list) != 1 {
		t.Fatalf("by subscriber: %d", len(list))
	}
	blocked, ok, err := s.IsKeyBlocked(bg, c.SPKISHA256)
	must(t, err)
	if ok {
		t.Fatalf("blocked: %+v", blocked)
	}
	must(t, s.BlockKey(bg, c.SPKISHA256, "keyCompromise", "revocation/"+c.Serial))
	if _, ok, _ := s.IsKeyBlocked(bg, c.SPKISHA256); !ok {
		t.Fatal("key not blocked")
	}
}

func TestStoreWithoutKeys(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	bare := New(s.db, nil, nil)
	if err := bare.UpsertSubscriber(bg, Subscriber{ID: "x", ResellerID: "rs_a", Name: "n", Email: "e@x"}); !errors.Is(err, ErrNoKeys) {
		t.Fatalf("%v", err)
	}
	if _, err := bare.NextCRLNumber(bg, "tls-1", 0); err != nil {
		t.Fatalf("CRL work needs no keys: %v", err)
	}
}

func TestNormalizeSerial(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{"0A:1B:ff": "a1bff", "00ab": "ab", "AB": "ab", "0x0f": "f", "00": "0", "": ""} {
		if got := NormalizeSerial(in); got != want {
			t.Errorf("NormalizeSerial(%q) = %q, want %q", in, got, want)
		}
	}
}
