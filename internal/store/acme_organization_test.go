package store

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"testing"
	"time"

	"certdesk/internal/status"
)

// ovIssued makes an issued server-ov application id of f's reseller whose
// identity verification passed (verified: true) or is pending, with a
// certificate whose subject is the organisation.
func (f fx) ovIssued(t *testing.T, id string, verified bool) Certificate {
	t.Helper()
	a := Application{ID: id, ResellerID: f.reseller, SubscriberID: f.subscriber, Product: "server-ov",
		Domains: []string{"www.example.jp"}, CSR: []byte("csr-der-" + id), SPKISHA256: spki("key-" + id),
		ValidityDays: 90, AttestationTermsVersion: "2026-01", AttestationTruthful: true, AttestedAt: time.Now(),
		WorkflowID: "application/" + id}
	must(t, f.s.CreateApplication(bg, a))
	ver := "ver-" + id
	must(t, f.s.CreateVerification(bg, Verification{ID: ver, SubjectKind: "application", SubjectRef: id, Method: "registry"}))
	if verified {
		must(t, f.s.DecideVerification(bg, ver, "passed", "staff:st_1", "registry:1234", time.Now()))
	}
	must(t, f.s.SetApplicationVerification(bg, id, ver))
	must(t, f.s.SetApplicationStatus(bg, id, status.AppIssuing, ""))
	res, err := f.s.ReserveSerial(bg, id, randomSerial())
	must(t, err)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	sn, _ := new(big.Int).SetString(res.Serial, 16)
	now := time.Now().Truncate(time.Second)
	tmpl := &x509.Certificate{SerialNumber: sn, NotBefore: now, NotAfter: now.Add(90 * 24 * time.Hour),
		Subject:  pkix.Name{Organization: []string{"株式会社テスト"}, Locality: []string{"Chiyoda-ku"}, Province: []string{"Tokyo"}, Country: []string{"JP"}},
		DNSNames: []string{"www.example.jp"}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	must(t, err)
	c := Certificate{Serial: res.Serial, Issuer: "tls-test", DER: der, NotBefore: now, NotAfter: tmpl.NotAfter,
		SPKISHA256: a.SPKISHA256, ResellerID: f.reseller, SubscriberID: f.subscriber, ApplicationID: id, Product: a.Product}
	must(t, f.s.StoreCertificate(bg, c))
	return c
}

// TestEABOrganizationBinding: EAB credentials bound to a verified
// organisation (issue 16) keep the binding and give back the verified
// certificate's subject; anything that proves no verified organisation is
// refused with nothing written.
func TestEABOrganizationBinding(t *testing.T) {
	s, _ := newStore(t)
	f := newFixture(t, s)
	cert := f.ovIssued(t, "app_ov_1", true)
	f.ovIssued(t, "app_ov_pending", false)
	f.application(t, "app_dv_1")
	key, prefix, _ := GenerateAPIKey()
	must(t, s.CreateReseller(bg, Reseller{ID: "rs_other", Name: "B", APIKeyHash: HashAPIKey(key), APIKeyPrefix: prefix}))

	c, err := s.CreateEABCredentialWith(bg, "rs_a", EABOptions{Products: []string{"server-ov"}, Reference: "cust-ov", OrganizationFrom: "app_ov_1"})
	must(t, err)
	if c.OrganizationFrom != "app_ov_1" {
		t.Fatalf("created %+v", c)
	}
	got, err := s.GetEABCredential(bg, c.KID)
	must(t, err)
	if got.OrganizationFrom != "app_ov_1" {
		t.Fatalf("read back binding %q", got.OrganizationFrom)
	}
	org, err := s.EABOrganization(bg, c.KID)
	must(t, err)
	want := VerifiedOrganization{ApplicationID: "app_ov_1", ResellerID: "rs_a", VerificationID: "ver-app_ov_1", CertificateSerial: cert.Serial,
		Organization: "株式会社テスト", Locality: "Chiyoda-ku", Province: "Tokyo", Country: "JP"}
	org.VerifiedAt = time.Time{}
	if org != want {
		t.Fatalf("organisation %+v, want %+v", org, want)
	}

	before := count(t, s, "acme_eab_credentials")
	for _, tc := range []struct {
		reseller, app string
		want          error
	}{
		{"rs_a", "app_nope", ErrNotFound},
		{"rs_other", "app_ov_1", ErrNotFound}, // another reseller's organisation
		{"rs_a", "app_dv_1", ErrNotVerified},
		{"rs_a", "app_ov_pending", ErrNotVerified},
	} {
		if _, err := s.CreateEABCredentialWith(bg, tc.reseller, EABOptions{OrganizationFrom: tc.app}); !errors.Is(err, tc.want) {
			t.Errorf("%s binding %s: %v, want %v", tc.reseller, tc.app, err, tc.want)
		}
	}
	if n := count(t, s, "acme_eab_credentials"); n != before {
		t.Fatalf("refused bindings wrote %d credentials", n-before)
	}

	// Unbound credentials have no organisation.
	plain, err := s.CreateEABCredential(bg, "rs_a", []string{"server-ov"}, "", nil)
	must(t, err)
	if _, err := s.EABOrganization(bg, plain.KID); !errors.Is(err, ErrNotVerified) {
		t.Fatalf("unbound credentials: %v, want ErrNotVerified", err)
	}
	// A verification older than BR §4.2.1 allows no longer binds, checked at
	// every use.
	_, err = s.db.Exec(`UPDATE identity_verifications SET decided_at = now() - interval '826 days' WHERE id = 'ver-app_ov_1'`)
	must(t, err)
	if _, err := s.EABOrganization(bg, c.KID); !errors.Is(err, ErrNotVerified) {
		t.Fatalf("stale verification: %v, want ErrNotVerified", err)
	}
}
