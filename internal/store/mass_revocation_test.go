package store

import (
	"fmt"
	"testing"
	"time"
)

// TestRevokePage: a mass revocation's page is revoked in one statement with
// RevokeBatch's rules, pages by keyset across serials of different lengths,
// touches nothing outside the selector, and a retried page changes nothing
// and reports the same page and cursor.
func TestRevokePage(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	for _, r := range []string{"rs_m", "rs_o"} {
		must(t, s.CreateReseller(bg, Reseller{ID: r, Name: r, APIKeyHash: HashAPIKey(r), APIKeyPrefix: r}))
	}
	// 0xff0.. crosses from 3 to 4 hex digits: text order is not numeric
	// order, and the keyset must still visit every serial once.
	nb := time.Now().Add(-time.Hour)
	must(t, s.SeedCertificates(bg, SeedSpec{N: 40, Issuer: "tls-1", Shards: 4, SerialBase: 0xff0, ResellerID: "rs_m", NotBefore: nb, NotAfter: nb.Add(90 * 24 * time.Hour)}))
	must(t, s.SeedCertificates(bg, SeedSpec{N: 40, Issuer: "tls-1", Shards: 4, SerialBase: 0x5000, ResellerID: "rs_o", NotBefore: nb, NotAfter: nb.Add(90 * 24 * time.Hour)}))

	// Before the incident: one certificate revoked for key compromise, one
	// with an open request, one with a "good" OCSP answer.
	early := time.Now().Add(-time.Minute).UTC().Truncate(time.Second)
	_, err := s.RevokeBatch(bg, []string{"ff5"}, RevokeBatch{ReasonCode: ReasonKeyCompromise, RequestedByKind: "staff", RevokedAt: early})
	must(t, err)
	deadline := time.Now().Add(time.Hour)
	_, err = s.RequestRevocation(bg, Revocation{Serial: "1001", ReasonCode: ReasonSuperseded, RequestedByKind: "subscriber", RequestedByRef: "sb", RequestedAt: early, Deadline: &deadline})
	must(t, err)
	_, err = s.UpsertOCSP(bg, OCSPResponse{Serial: "1002", DER: []byte("good"), Status: "good", ProducedAt: early, ThisUpdate: early, NextUpdate: early.Add(time.Hour)})
	must(t, err)

	sel := Selector{Issuer: "tls-1", ResellerID: "rs_m"}
	at := time.Now().UTC().Truncate(time.Second)
	b := RevokeBatch{ReasonCode: ReasonCessationOfOperation, RequestedByKind: "staff", RequestedByRef: "mass-revocation:inc", WorkflowID: "mass-revocation/inc", RevokedAt: at}
	after, total, revoked, pages := "", 0, 0, 0
	seen := map[string]bool{}
	for {
		r, err := s.RevokePage(bg, sel, after, 7, b)
		must(t, err)
		if r.Count == 0 {
			if r.Last != "" || len(r.Shards) != 0 {
				t.Fatalf("empty page %+v", r)
			}
			break
		}
		// A retry of the same page: same page, same cursor, nothing new.
		again, err := s.RevokePage(bg, sel, after, 7, b)
		must(t, err)
		if again.Count != r.Count || again.Last != r.Last || again.Revoked != 0 || fmt.Sprint(again.Shards) != fmt.Sprint(r.Shards) {
			t.Fatalf("retried page %+v, first %+v", again, r)
		}
		refs, err := s.SelectCertificates(bg, Selector{Issuer: "tls-1", ResellerID: "rs_m", IncludeRevoked: true, Through: r.Last}, after, 100)
		must(t, err)
		if len(refs) != r.Count || refs[len(refs)-1].Serial != r.Last {
			t.Fatalf("range (%q, %q]: %d certificates, page had %d", after, r.Last, len(refs), r.Count)
		}
		for _, c := range refs {
			if seen[c.Serial] || c.Status != "revoked" || c.RevokedAt == nil {
				t.Fatalf("page certificate %+v (seen %v)", c, seen[c.Serial])
			}
			seen[c.Serial] = true
		}
		total, revoked, pages, after = total+r.Count, revoked+r.Revoked, pages+1, r.Last
	}
	if total != 40 || revoked != 39 || pages != 6 || len(seen) != 40 {
		t.Fatalf("%d pages, %d certificates, %d newly revoked", pages, total, revoked)
	}
	var other int
	must(t, s.db.Get(&other, `SELECT count(*) FROM certificates WHERE reseller_id = 'rs_o' AND status <> 'valid'`))
	if other != 0 {
		t.Fatalf("%d certificates of another reseller revoked", other)
	}
	// The earlier revocation keeps its time and reason.
	r, err := s.GetRevocation(bg, "ff5")
	must(t, err)
	if r.ReasonCode != ReasonKeyCompromise || !r.RevokedAt.Equal(early) {
		t.Fatalf("earlier revocation changed: %+v", r)
	}
	// The open request is closed by the incident; its requester stays.
	r, err = s.GetRevocation(bg, "1001")
	must(t, err)
	if r.RevokedAt == nil || !r.RevokedAt.Equal(at) || r.RequestedByKind != "subscriber" {
		t.Fatalf("open request after the page: %+v", r)
	}
	r, err = s.GetRevocation(bg, "1000")
	must(t, err)
	if r.RevokedAt == nil || r.ReasonCode != ReasonCessationOfOperation || r.WorkflowID != "mass-revocation/inc" {
		t.Fatalf("revocation: %+v", r)
	}
	if _, err := s.GetOCSP(bg, "1002"); err == nil {
		t.Fatal(`the "good" OCSP answer of a revoked certificate is still stored`)
	}
	byWF, err := s.ListRevocationsByWorkflow(bg, "mass-revocation/inc", "", 100)
	must(t, err)
	if len(byWF) != 38 { // not ff5 (revoked before) nor 1001 (requested by the subscriber)
		t.Fatalf("%d revocations recorded for the workflow", len(byWF))
	}
	if _, err := s.RevokePage(bg, Selector{}, "", 7, b); err == nil {
		t.Fatal("an empty selector revoked a page")
	}
}
