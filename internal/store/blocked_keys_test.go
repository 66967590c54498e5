package store

import (
	"testing"
	"time"

	"certdesk/internal/status"
)

// sameKeyCert issues a certificate with key for a new application of
// reseller rs (created on first use with its own subscriber).
func sameKeyCert(t *testing.T, s *Store, rs, id string, key []byte) Certificate {
	t.Helper()
	if _, err := s.GetReseller(bg, rs); err != nil {
		key, prefix, err := GenerateAPIKey()
		must(t, err)
		must(t, s.CreateReseller(bg, Reseller{ID: rs, Name: rs, APIKeyHash: HashAPIKey(key), APIKeyPrefix: prefix}))
		must(t, s.UpsertSubscriber(bg, Subscriber{ID: "sb_" + rs, ResellerID: rs, Name: "n", Email: rs + "@example.jp", Country: "JP"}))
	}
	f := fx{s: s, reseller: rs, subscriber: "sb_" + rs}
	a := Application{ID: id, ResellerID: rs, SubscriberID: f.subscriber, Product: "server-dv",
		Domains: []string{"www.example.jp"}, CSR: []byte("csr-" + id), SPKISHA256: key, ValidityDays: 90,
		AttestationTermsVersion: "2026-01", AttestationTruthful: true, AttestedAt: time.Now(), WorkflowID: "application/" + id}
	must(t, s.CreateApplication(bg, a))
	must(t, s.SetApplicationStatus(bg, id, status.AppIssuing, ""))
	res, err := s.ReserveSerial(bg, id, randomSerial())
	must(t, err)
	nb := time.Now().Add(-time.Hour)
	c := Certificate{Serial: res.Serial, Issuer: "tls-1", DER: []byte("der-" + id), NotBefore: nb, NotAfter: nb.Add(90 * 24 * time.Hour),
		SPKISHA256: key, ResellerID: rs, SubscriberID: f.subscriber, ApplicationID: id, Product: a.Product}
	must(t, s.StoreCertificate(bg, c))
	return c
}

// A proven compromise of a key reaches every certificate with it, whichever
// reseller manages it: the valid ones, and the revoked ones whose reason is
// not keyCompromise yet (their reason is upgraded); the reported one and
// those already revoked for keyCompromise are left out.
func TestKeyCompromiseSiblingsAcrossResellers(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	key := spki("shared-key")
	reported := sameKeyCert(t, s, "rs_a", "app_a1", key)
	validB := sameKeyCert(t, s, "rs_b", "app_b1", key)
	supersededB := sameKeyCert(t, s, "rs_b", "app_b2", key)
	compromisedB := sameKeyCert(t, s, "rs_b", "app_b3", key)
	other := sameKeyCert(t, s, "rs_b", "app_b4", spki("other-key"))
	now := time.Now().Truncate(time.Second)
	_, err := s.RevokeBatch(bg, []string{supersededB.Serial}, RevokeBatch{ReasonCode: ReasonSuperseded, RequestedByKind: "reseller", RequestedByRef: "rs_b", RevokedAt: now})
	must(t, err)
	_, err = s.RevokeBatch(bg, []string{compromisedB.Serial}, RevokeBatch{ReasonCode: ReasonKeyCompromise, RequestedByKind: "key-holder", RevokedAt: now})
	must(t, err)

	got, err := s.ListKeyCompromiseSiblings(bg, key, reported.Serial)
	must(t, err)
	want := map[string]bool{validB.Serial: true, supersededB.Serial: true}
	if len(got) != len(want) {
		t.Fatalf("siblings %v, want %s (valid, other reseller) and %s (revoked as superseded); not %s, %s or %s",
			got, validB.Serial, supersededB.Serial, reported.Serial, compromisedB.Serial, other.Serial)
	}
	for _, sn := range got {
		if !want[sn] {
			t.Fatalf("unexpected sibling %s in %v", sn, got)
		}
	}
}
