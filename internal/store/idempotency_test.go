package store

import (
	"encoding/json"
	"testing"
	"time"

	"certdesk/internal/status"
)

// TestWritesAreIdempotent runs every write an activity uses twice with the
// same key: the second call must succeed and leave exactly one row.
func TestWritesAreIdempotent(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	f := newFixture(t, s)
	cert := f.issue(t, "app_cert", "tls-1", 0, time.Now().Add(-time.Hour))
	f.application(t, "app_x")
	now := time.Now()
	deadline := now.Add(24 * time.Hour)
	must(t, s.CreateDisclosureRequest(bg, DisclosureRequest{ID: "dr_base", Email: "x@example.jp", DueAt: now}))

	cases := []struct {
		name  string
		table string
		where string
		write func() error
	}{
		{"CreateReseller", "resellers", "id = 'rs_b'", func() error {
			return s.CreateReseller(bg, Reseller{ID: "rs_b", Name: "B", APIKeyHash: HashAPIKey("kb"), APIKeyPrefix: "kb"})
		}},
		{"UpsertSubscriber", "subscribers", "id = 'sb_2'", func() error {
			return s.UpsertSubscriber(bg, Subscriber{ID: "sb_2", ResellerID: "rs_a", Name: "佐藤花子", Email: "hanako@example.jp"})
		}},
		{"CreateApplication", "applications", "id = 'app_2'", func() error {
			return s.CreateApplication(bg, Application{ID: "app_2", ResellerID: "rs_a", SubscriberID: "sb_1", Product: "client-sign",
				CSR: []byte("csr"), SPKISHA256: spki("k2"), ValidityDays: 365, AttestationTermsVersion: "v1",
				AttestationTruthful: true, AttestedAt: now})
		}},
		{"SetApplicationStatus", "applications", "id = 'app_x' AND status = 'validating'", func() error {
			return s.SetApplicationStatus(bg, "app_x", status.AppValidating, "checking domains")
		}},
		{"EnsureDomainValidation", "domain_validations", "application_id = 'app_x'", func() error {
			_, err := s.EnsureDomainValidation(bg, DomainValidation{ApplicationID: "app_x", Domain: "WWW.Example.JP.", Method: "http-01", Token: "tok"})
			return err
		}},
		{"CreateVerification", "identity_verifications", "id = 'iv_1'", func() error {
			return s.CreateVerification(bg, Verification{ID: "iv_1", SubjectKind: "application", SubjectRef: "app_x", Method: "email-otp"})
		}},
		{"DecideVerification", "identity_verifications", "id = 'iv_1' AND result = 'passed'", func() error {
			return s.DecideVerification(bg, "iv_1", "passed", "staff:1", "doc/1", now)
		}},
		{"ReserveSerial", "issuances", "application_id = 'app_x'", func() error {
			_, err := s.ReserveSerial(bg, "app_x", randomSerial()) // a new candidate each time: the first wins
			return err
		}},
		{"StoreCertificate", "certificates", "application_id = 'app_cert'", func() error {
			return s.StoreCertificate(bg, cert)
		}},
		{"RequestRevocation", "revocations", "serial = '" + cert.Serial + "'", func() error {
			_, err := s.RequestRevocation(bg, Revocation{Serial: cert.Serial, ReasonCode: 4, RequestedByKind: "reseller",
				RequestedByRef: "rs_a", RequestedAt: now, Deadline: &deadline})
			return err
		}},
		{"RevokeBatch", "revocations", "serial = '" + cert.Serial + "' AND revoked_at IS NOT NULL", func() error {
			_, err := s.RevokeBatch(bg, []string{cert.Serial}, RevokeBatch{ReasonCode: 4, RequestedByKind: "reseller", RevokedAt: now})
			return err
		}},
		{"BlockKey", "blocked_keys", "true", func() error {
			return s.BlockKey(bg, spki("bad"), "keyCompromise", "revocation/x")
		}},
		{"CreateCorrection", "corrections", "id = 'co_1'", func() error {
			return s.CreateCorrection(bg, Correction{ID: "co_1", Serial: cert.Serial, ResellerID: "rs_a",
				OldValues: map[string]string{"phone": "1"}, NewValues: map[string]string{"phone": "2"}, Classification: "contact"})
		}},
		{"LinkCorrection", "corrections", "id = 'co_1' AND new_application_id = 'app_2'", func() error {
			return s.LinkCorrection(bg, "co_1", cert.Serial, "app_2")
		}},
		{"CreateDisclosureRequest", "disclosure_requests", "id = 'dr_1'", func() error {
			return s.CreateDisclosureRequest(bg, DisclosureRequest{ID: "dr_1", Name: "山田太郎", Email: "taro@example.jp", DueAt: now.Add(7 * 24 * time.Hour)})
		}},
		{"PauseDisclosure", "disclosure_requests", "id = 'dr_1' AND paused_at IS NOT NULL", func() error {
			return s.PauseDisclosure(bg, "dr_1", "waiting for identity documents", now)
		}},
		{"SaveDisclosurePackage", "disclosure_packages", "request_id = 'dr_1'", func() error {
			_, err := s.SaveDisclosurePackage(bg, DisclosurePackage{ID: "dp_1", RequestID: "dr_1", JSON: []byte(`{}`), HTML: []byte("<p>"), SignatureDER: []byte{0x30}})
			return err
		}},
		{"SetDisclosureLink", "disclosure_requests", "id = 'dr_1' AND downloads_left = 3", func() error {
			return s.SetDisclosureLink(bg, "dr_1", HashLinkToken("tok"), now.Add(time.Hour), 3)
		}},
		{"CreateInquiry", "inquiries", "id = 'iq_1'", func() error {
			return s.CreateInquiry(bg, Inquiry{ID: "iq_1", Kind: "complaint", Contact: "taro@example.jp", Body: "本文", DueAt: now})
		}},
		{"AnswerInquiry", "inquiries", "id = 'iq_1' AND status = 'answered'", func() error {
			return s.AnswerInquiry(bg, "iq_1", "回答", now)
		}},
		{"ReserveEmail", "email_log", "idempotency_key = 'application/app_x/issued'", func() error {
			_, err := s.ReserveEmail(bg, "application/app_x/issued", "issued", "sb_1")
			return err
		}},
		{"MarkEmailSent", "email_log", "idempotency_key = 'application/app_x/issued' AND status = 'sent'", func() error {
			return s.MarkEmailSent(bg, "application/app_x/issued", "<m1@x>")
		}},
		{"RecordProvision", "third_party_provisions", "id = 'pv_1'", func() error {
			return s.RecordProvision(bg, Provision{ID: "pv_1", RecipientKind: "reseller", RecipientRef: "rs_a", PersonRef: "sb_1",
				DataItems: []string{"name", "email"}, LegalBasis: "consent"})
		}},
		{"RecordStaffAccess", "staff_access_log", "event_key = 'disclosure/dr_1/compile'", func() error {
			return s.RecordStaffAccess(bg, StaffAccess{EventKey: "disclosure/dr_1/compile", StaffID: "st_1", PersonRef: "sb_1",
				Purpose: "disclosure compile", Channel: "worker"})
		}},
		{"AppendAudit(event key)", "audit_events", "event_key = 'revocation/x/revoked'", func() error {
			_, err := s.AppendAudit(bg, AuditEvent{EventKey: "revocation/x/revoked", Actor: "system", Action: "certificate.revoked",
				ObjectRef: "certificate/x", Details: json.RawMessage(`{"reason":4}`)})
			return err
		}},
		{"SaveCRL", "crl_state", "issuer = 'tls-1' AND number = 1", func() error {
			_, err := s.SaveCRL(bg, CRL{Issuer: "tls-1", Shard: 0, Number: 1, ThisUpdate: now, NextUpdate: now.Add(time.Hour), DER: []byte{1}})
			return err
		}},
		{"UpsertOCSP", "ocsp_responses", "serial = '" + cert.Serial + "'", func() error {
			_, err := s.UpsertOCSP(bg, OCSPResponse{Serial: cert.Serial, DER: []byte{1}, Status: "revoked", ProducedAt: now, ThisUpdate: now, NextUpdate: now.Add(time.Hour)})
			return err
		}},
	}
	_, err := s.NextCRLNumber(bg, "tls-1", 0) // SaveCRL needs an allocated number
	must(t, err)
	for _, c := range cases {
		for i := 1; i <= 2; i++ {
			if err := c.write(); err != nil {
				t.Fatalf("%s, call %d: %v", c.name, i, err)
			}
			var n int
			must(t, s.db.Get(&n, `SELECT count(*) FROM `+c.table+` WHERE `+c.where))
			if n != 1 {
				t.Fatalf("%s, call %d: %d matching rows in %s, want 1", c.name, i, n, c.table)
			}
		}
	}
	// Totals: nothing was duplicated under another key either.
	for table, want := range map[string]int{"revocations": 1, "certificates": 1, "issuances": 2, "email_log": 1,
		"audit_events": 1, "third_party_provisions": 1, "staff_access_log": 1, "disclosure_packages": 1} {
		if got := count(t, s, table); got != want {
			t.Errorf("%s has %d rows, want %d", table, got, want)
		}
	}
}
