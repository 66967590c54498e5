package store

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"certdesk/internal/status"
)

// TestACMEApplicationWithoutCSR: an ACME order's application is recorded
// without a CSR, cannot start signing without one, takes its CSR once
// (again with the same key: no-op; another key: ErrConflict), and a
// reseller application still needs its CSR.
func TestACMEApplicationWithoutCSR(t *testing.T) {
	s, _ := newStore(t)
	f := newFixture(t, s)
	a := Application{ID: "app_acme_1", ResellerID: f.reseller, SubscriberID: f.subscriber, Product: "server-dv",
		Domains: []string{"www.example.jp"}, ValidityDays: 90, AttestationTermsVersion: "acme-eab", AttestationTruthful: true,
		AttestedAt: time.Now(), WorkflowID: "application/app_acme_1", ACMEOrderID: "ord_1"}
	must(t, s.CreateApplication(bg, a))
	got, err := s.GetApplication(bg, a.ID)
	if err != nil || got.CSR != nil || got.SPKISHA256 != nil || got.ACMEOrderID != "ord_1" {
		t.Fatalf("read back %+v %v", got, err)
	}
	must(t, s.SetApplicationStatus(bg, a.ID, status.AppValidating, ""))
	if err := s.SetApplicationStatus(bg, a.ID, status.AppIssuing, ""); err == nil {
		t.Fatal("an application without a CSR moved to issuing")
	}
	must(t, s.SetApplicationCSR(bg, a.ID, []byte("csr-der"), spki("k1")))
	must(t, s.SetApplicationCSR(bg, a.ID, []byte("csr-der"), spki("k1")))
	if err := s.SetApplicationCSR(bg, a.ID, []byte("other"), spki("k2")); !errors.Is(err, ErrConflict) {
		t.Fatalf("another key: %v, want ErrConflict", err)
	}
	got, err = s.GetApplication(bg, a.ID)
	if err != nil || !bytes.Equal(got.CSR, []byte("csr-der")) || !bytes.Equal(got.SPKISHA256, spki("k1")) {
		t.Fatalf("CSR %q %v", got.CSR, err)
	}
	must(t, s.SetApplicationStatus(bg, a.ID, status.AppIssuing, ""))

	// Not an ACME application: no CSR is refused, and it takes no CSR later.
	b := a
	b.ID, b.ACMEOrderID, b.WorkflowID = "app_2", "", "application/app_2"
	b.CSR, b.SPKISHA256 = nil, nil
	if err := s.CreateApplication(bg, b); err == nil {
		t.Fatal("a reseller application without a CSR was recorded")
	}
	f.application(t, "app_3")
	if err := s.SetApplicationCSR(bg, "app_3", []byte("x"), spki("k3")); !errors.Is(err, ErrNotFound) {
		t.Fatalf("CSR on a non-ACME application: %v, want ErrNotFound", err)
	}
}
