package store

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestRevokeBatchRules(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	f := newFixture(t, s)
	t0 := time.Now().Add(-time.Hour).Truncate(time.Microsecond)
	var serials []string
	for i := 0; i < 5; i++ {
		serials = append(serials, f.issue(t, fmt.Sprintf("app_%d", i), "tls-1", i%2, t0).Serial)
	}
	// OCSP "good" responses exist before the revocation.
	for _, sn := range serials {
		_, err := s.UpsertOCSP(bg, OCSPResponse{Serial: sn, DER: []byte("good"), Status: "good", ProducedAt: t0, ThisUpdate: t0, NextUpdate: t0.Add(96 * time.Hour)})
		must(t, err)
	}
	revokedAt := time.Now().Truncate(time.Microsecond)
	batch := RevokeBatch{ReasonCode: ReasonSuperseded, RequestedByKind: "reseller", RequestedByRef: "rs_a", WorkflowID: "revocation/x", RevokedAt: revokedAt}

	if _, err := s.RevokeBatch(bg, serials[:1], RevokeBatch{ReasonCode: 6, RevokedAt: revokedAt, RequestedByKind: "staff"}); err == nil || !strings.Contains(err.Error(), "certificateHold") {
		t.Fatalf("reason 6 accepted: %v", err)
	}
	res, err := s.RevokeBatch(bg, append([]string{"DEAD", strings.ToUpper(serials[0])}, serials[:3]...), batch)
	must(t, err)
	if res.Revoked != 3 || res.AlreadyRevoked != 0 || len(res.Unknown) != 1 || res.Unknown[0] != "dead" {
		t.Fatalf("first batch: %+v", res)
	}
	res, err = s.RevokeBatch(bg, serials[:3], batch)
	must(t, err)
	if res.Revoked != 0 || res.AlreadyRevoked != 3 {
		t.Fatalf("retried batch: %+v", res)
	}
	// The stale "good" responses are gone; a late "good" upsert is refused.
	if _, err := s.GetOCSP(bg, serials[0]); !errors.Is(err, ErrNotFound) {
		t.Fatalf("good OCSP response survived revocation: %v", err)
	}
	if ok, err := s.UpsertOCSP(bg, OCSPResponse{Serial: serials[0], DER: []byte("good"), Status: "good", ProducedAt: revokedAt, ThisUpdate: revokedAt, NextUpdate: revokedAt.Add(time.Hour)}); err != nil || ok {
		t.Fatalf("good response for a revoked certificate stored: %v %v", ok, err)
	}
	if ok, err := s.UpsertOCSP(bg, OCSPResponse{Serial: "abc", DER: []byte("x"), Status: "good", ProducedAt: revokedAt, ThisUpdate: revokedAt, NextUpdate: revokedAt}); err != nil || ok {
		t.Fatalf("response for a serial never issued stored: %v %v", ok, err)
	}
	if ok, err := s.UpsertOCSP(bg, OCSPResponse{Serial: serials[0], DER: []byte("revoked"), Status: "revoked", ProducedAt: revokedAt, ThisUpdate: revokedAt, NextUpdate: revokedAt.Add(time.Hour)}); err != nil || !ok {
		t.Fatalf("revoked response: %v %v", ok, err)
	}
	if ok, _ := s.UpsertOCSP(bg, OCSPResponse{Serial: serials[0], DER: []byte("older"), Status: "revoked", ProducedAt: t0, ThisUpdate: t0, NextUpdate: t0}); ok {
		t.Fatal("an older response replaced a newer one")
	}

	// Never un-revoked, reason never weakened, time never changed; raising
	// to keyCompromise is allowed.
	later := revokedAt.Add(time.Hour)
	_, err = s.RevokeBatch(bg, serials[:1], RevokeBatch{ReasonCode: ReasonUnspecified, RequestedByKind: "staff", RevokedAt: later})
	must(t, err)
	r, err := s.GetRevocation(bg, serials[0])
	must(t, err)
	if r.ReasonCode != ReasonSuperseded || !r.RevokedAt.Equal(revokedAt) || r.RequestedByKind != "reseller" {
		t.Fatalf("revocation changed by a weaker request: %+v", r)
	}
	_, err = s.RevokeBatch(bg, serials[:1], RevokeBatch{ReasonCode: ReasonKeyCompromise, RequestedByKind: "key-holder", RevokedAt: later})
	must(t, err)
	r, _ = s.GetRevocation(bg, serials[0])
	if r.ReasonCode != ReasonKeyCompromise || !r.RevokedAt.Equal(revokedAt) {
		t.Fatalf("escalation to keyCompromise: %+v", r)
	}
	for _, q := range []string{
		`UPDATE certificates SET status = 'valid' WHERE serial = $1`,
		`UPDATE revocations SET reason_code = 4 WHERE serial = $1`,
		`UPDATE revocations SET revoked_at = now() WHERE serial = $1`,
	} {
		if _, err := s.db.Exec(q, serials[0]); err == nil {
			t.Fatalf("%s succeeded", q)
		}
	}

	// CRL listing per shard.
	for shard, want := range map[int]int{0: 2, 1: 1} {
		got, err := s.ListRevoked(bg, "tls-1", shard, time.Now())
		must(t, err)
		if len(got) != want {
			t.Fatalf("shard %d: %d entries, want %d", shard, len(got), want)
		}
	}
	got, _ := s.ListRevoked(bg, "tls-1", 0, time.Now().Add(365*24*time.Hour))
	if len(got) != 0 {
		t.Fatalf("expired certificates listed: %v", got)
	}

	// An open request is closed by the batch; the requester stays.
	deadline := time.Now().Add(24 * time.Hour)
	req, err := s.RequestRevocation(bg, Revocation{Serial: serials[3], ReasonCode: ReasonSuperseded, RequestedByKind: "subscriber", RequestedByRef: "sb_1", RequestedAt: time.Now(), Deadline: &deadline})
	must(t, err)
	if req.RevokedAt != nil {
		t.Fatal("request is revoked already")
	}
	req, err = s.RequestRevocation(bg, Revocation{Serial: serials[3], ReasonCode: ReasonKeyCompromise, RequestedByKind: "key-holder", RequestedAt: time.Now(), Deadline: &deadline})
	must(t, err)
	if req.ReasonCode != ReasonKeyCompromise || req.RequestedByKind != "subscriber" {
		t.Fatalf("escalated request: %+v", req)
	}
	open, err := s.ListOpenRevocations(bg, 10)
	must(t, err)
	if len(open) != 1 || open[0].Serial != serials[3] {
		t.Fatalf("open revocations: %+v", open)
	}
	_, err = s.RevokeBatch(bg, serials[3:4], RevokeBatch{ReasonCode: ReasonSuperseded, RequestedByKind: "staff", RevokedAt: revokedAt})
	must(t, err)
	req, _ = s.GetRevocation(bg, serials[3])
	if req.RevokedAt == nil || req.ReasonCode != ReasonKeyCompromise || req.RequestedByKind != "subscriber" {
		t.Fatalf("request after batch: %+v", req)
	}
	ref, err := s.GetCertificateRef(bg, serials[3])
	must(t, err)
	if ref.Status != "revoked" || ref.ReasonCode == nil || *ref.ReasonCode != 1 || ref.RevokedAt == nil {
		t.Fatalf("certificate ref: %+v", ref)
	}
}

func TestSelectCertificatesKeyset(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	f := newFixture(t, s)
	must(t, s.CreateReseller(bg, Reseller{ID: "rs_b", Name: "B", APIKeyHash: HashAPIKey("b"), APIKeyPrefix: "b"}))
	must(t, s.UpsertSubscriber(bg, Subscriber{ID: "sb_b", ResellerID: "rs_b", Name: "B", Email: "b@example.jp"}))
	fb := fx{s: s, reseller: "rs_b", subscriber: "sb_b"}
	jan := time.Date(2026, 1, 10, 0, 0, 0, 0, time.UTC)
	feb := time.Date(2026, 2, 10, 0, 0, 0, 0, time.UTC)
	for i := 0; i < 25; i++ {
		when, issuer := jan, "tls-1"
		if i%2 == 1 {
			when = feb
		}
		if i%5 == 0 {
			issuer = "tls-2"
		}
		if i%3 == 0 {
			fb.issue(t, fmt.Sprintf("b_%d", i), issuer, 0, when)
		} else {
			f.issue(t, fmt.Sprintf("a_%d", i), issuer, 0, when)
		}
	}
	walk := func(sel Selector, page int) []CertificateRef {
		var all []CertificateRef
		after := ""
		for {
			got, err := s.SelectCertificates(bg, sel, after, page)
			must(t, err)
			all = append(all, got...)
			if len(got) < page {
				return all
			}
			after = got[len(got)-1].Serial
		}
	}
	check := func(name string, sel Selector, want func(CertificateRef) bool) {
		t.Helper()
		got := walk(sel, 4)
		for i := 1; i < len(got); i++ {
			if got[i-1].Serial >= got[i].Serial {
				t.Fatalf("%s: not in serial order", name)
			}
		}
		var all []CertificateRef
		must(t, s.db.Select(&all, certRefSelect+` ORDER BY c.serial`))
		n := 0
		for _, c := range all {
			if want(c) {
				n++
			}
		}
		if len(got) != n || n == 0 {
			t.Fatalf("%s: selected %d, want %d", name, len(got), n)
		}
		for _, c := range got {
			if !want(c) {
				t.Fatalf("%s: selected %+v", name, c)
			}
		}
	}
	check("issuer", Selector{Issuer: "tls-2"}, func(c CertificateRef) bool { return c.Issuer == "tls-2" })
	check("reseller", Selector{ResellerID: "rs_b"}, func(c CertificateRef) bool { return c.ResellerID == "rs_b" })
	check("february", Selector{IssuedFrom: feb.Add(-time.Hour), IssuedBefore: feb.Add(time.Hour)}, func(c CertificateRef) bool { return c.NotBefore.Equal(feb) })
	check("issuer+reseller+january", Selector{Issuer: "tls-1", ResellerID: "rs_a", IssuedBefore: feb}, func(c CertificateRef) bool {
		return c.Issuer == "tls-1" && c.ResellerID == "rs_a" && c.NotBefore.Equal(jan)
	})
	some := walk(Selector{Issuer: "tls-1"}, 100)[:3]
	list := []string{some[0].Serial, strings.ToUpper(some[1].Serial), "00" + some[2].Serial}
	check("serials", Selector{Serials: list}, func(c CertificateRef) bool {
		return c.Serial == some[0].Serial || c.Serial == some[1].Serial || c.Serial == some[2].Serial
	})
	// Revoked certificates drop out unless asked for.
	_, err := s.RevokeBatch(bg, []string{some[0].Serial}, RevokeBatch{ReasonCode: 5, RequestedByKind: "ca", RevokedAt: time.Now()})
	must(t, err)
	if got := walk(Selector{Serials: list}, 10); len(got) != 2 {
		t.Fatalf("revoked selected by default: %d", len(got))
	}
	if got := walk(Selector{Serials: list, IncludeRevoked: true}, 10); len(got) != 3 {
		t.Fatalf("IncludeRevoked: %d", len(got))
	}
	if _, err := s.SelectCertificates(bg, Selector{}, "", 10); err == nil {
		t.Fatal("empty selector accepted")
	}
	byKey, err := s.ListCertificatesBySPKI(bg, spki("key-a_1"))
	must(t, err)
	if len(byKey) != 1 || byKey[0].ApplicationID != "a_1" {
		t.Fatalf("by SPKI: %+v", byKey)
	}
}

func TestCRLNumbersAndState(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	const workers, each = 4, 50
	var mu sync.Mutex
	seen := map[int64]bool{}
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			last := int64(0)
			for i := 0; i < each; i++ {
				n, err := s.NextCRLNumber(bg, "tls-1", 3)
				if err != nil {
					t.Error(err)
					return
				}
				if n <= last {
					t.Errorf("number went from %d to %d", last, n)
				}
				last = n
				mu.Lock()
				if seen[n] {
					t.Errorf("number %d handed out twice", n)
				}
				seen[n] = true
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(seen) != workers*each {
		t.Fatalf("%d distinct numbers", len(seen))
	}
	if _, err := s.LatestCRL(bg, "tls-1", 3); !errors.Is(err, ErrNotFound) {
		t.Fatalf("latest before any save: %v", err)
	}
	now := time.Now().Truncate(time.Microsecond)
	ok, err := s.SaveCRL(bg, CRL{Issuer: "tls-1", Shard: 3, Number: 150, ThisUpdate: now, NextUpdate: now.Add(96 * time.Hour), DER: []byte("crl150")})
	must(t, err)
	if !ok {
		t.Fatal("CRL 150 not saved")
	}
	if ok, _ := s.SaveCRL(bg, CRL{Issuer: "tls-1", Shard: 3, Number: 149, ThisUpdate: now, NextUpdate: now, DER: []byte("crl149")}); ok {
		t.Fatal("an older CRL replaced a newer one")
	}
	if _, err := s.SaveCRL(bg, CRL{Issuer: "tls-1", Shard: 3, Number: 9999, ThisUpdate: now, NextUpdate: now, DER: []byte("x")}); err == nil {
		t.Fatal("an unallocated number was accepted")
	}
	c, err := s.LatestCRL(bg, "tls-1", 3)
	must(t, err)
	if c.Number != 150 || string(c.DER) != "crl150" || !c.NextUpdate.Equal(now.Add(96*time.Hour)) {
		t.Fatalf("latest: %+v", c)
	}
	all, err := s.ListCRLs(bg, "tls-1")
	must(t, err)
	if len(all) != 1 {
		t.Fatalf("ListCRLs: %d", len(all))
	}
}

func TestOCSPDue(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	f := newFixture(t, s)
	now := time.Now()
	a := f.issue(t, "app_a", "tls-1", 0, now.Add(-time.Hour))
	b := f.issue(t, "app_b", "tls-1", 0, now.Add(-time.Hour))
	f.issue(t, "app_c", "tls-1", 0, now.Add(-200*24*time.Hour)) // expired: no OCSP work
	n, err := s.UpsertOCSPBatch(bg, []OCSPResponse{
		{Serial: a.Serial, DER: []byte("a"), Status: "good", ProducedAt: now, ThisUpdate: now, NextUpdate: now.Add(96 * time.Hour)},
		{Serial: b.Serial, DER: []byte("b"), Status: "good", ProducedAt: now, ThisUpdate: now, NextUpdate: now.Add(time.Hour)},
	})
	must(t, err)
	if n != 2 {
		t.Fatalf("stored %d", n)
	}
	due, err := s.ListOCSPDue(bg, now.Add(48*time.Hour), "", 10)
	must(t, err)
	if len(due) != 1 || due[0].Serial != b.Serial {
		t.Fatalf("due: %+v", due)
	}
	r, err := s.GetOCSP(bg, strings.ToUpper(a.Serial))
	must(t, err)
	if string(r.DER) != "a" || r.Status != "good" {
		t.Fatalf("get: %+v", r)
	}
}
