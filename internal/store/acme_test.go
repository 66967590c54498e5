package store

import (
	"errors"
	"sync"
	"testing"
	"time"
)

func TestACMENonceSingleUse(t *testing.T) {
	s, _ := newStore(t)
	n, err := s.NewACMENonce(bg, time.Hour)
	must(t, err)
	// Of concurrent consumers exactly one wins.
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok := 0
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if s.ConsumeACMENonce(bg, n) == nil {
				mu.Lock()
				ok++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if ok != 1 {
		t.Fatalf("nonce consumed %d times, want 1", ok)
	}
	if err := s.ConsumeACMENonce(bg, "neverIssuedNonce0000"); !errors.Is(err, ErrUsed) {
		t.Fatalf("unknown nonce: %v, want ErrUsed", err)
	}
	old, err := s.NewACMENonce(bg, -time.Second)
	must(t, err)
	if err := s.ConsumeACMENonce(bg, old); !errors.Is(err, ErrUsed) {
		t.Fatalf("expired nonce: %v, want ErrUsed", err)
	}
}

func TestACMEEABAndAccounts(t *testing.T) {
	s, _ := newStore(t)
	key, prefix, _ := GenerateAPIKey()
	must(t, s.CreateReseller(bg, Reseller{ID: "rs_acme", Name: "A", APIKeyHash: HashAPIKey(key), APIKeyPrefix: prefix}))

	if _, err := s.CreateEABCredential(bg, "rs_nobody", nil, "", nil); !errors.Is(err, ErrNotFound) {
		t.Fatalf("EAB for unknown reseller: %v", err)
	}
	c, err := s.CreateEABCredential(bg, "rs_acme", []string{"server-dv"}, "cust-42", nil)
	must(t, err)
	got, err := s.GetEABCredential(bg, c.KID)
	must(t, err)
	if string(got.HMACKey) != string(c.HMACKey) || len(got.HMACKey) != 32 || got.Reference != "cust-42" || len(got.Products) != 1 || got.Products[0] != "server-dv" {
		t.Fatalf("read back %+v", got)
	}
	var raw []byte
	must(t, s.db.QueryRow(`SELECT hmac_key_enc FROM acme_eab_credentials WHERE kid=$1`, c.KID).Scan(&raw))
	if string(raw) == string(c.HMACKey) {
		t.Fatal("HMAC key stored in clear")
	}

	a, err := s.CreateACMEAccount(bg, ACMEAccount{Thumbprint: "tp1", JWK: []byte(`{"kty":"EC"}`), EABKID: c.KID, Contact: "mailto:a@example.com"})
	must(t, err)
	if a.ResellerID != "rs_acme" || a.Status != "valid" {
		t.Fatalf("account %+v", a)
	}
	// Single use: a second account with the same credential is refused and
	// nothing is written.
	if _, err := s.CreateACMEAccount(bg, ACMEAccount{Thumbprint: "tp2", JWK: []byte(`{}`), EABKID: c.KID}); !errors.Is(err, ErrUsed) {
		t.Fatalf("second use of EAB: %v", err)
	}
	if _, err := s.ACMEAccountByThumbprint(bg, "tp2"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("half-written account: %v", err)
	}
	// A key already bound is a conflict and leaves the credential unspent.
	c2, err := s.CreateEABCredential(bg, "rs_acme", nil, "", nil)
	must(t, err)
	if _, err := s.CreateACMEAccount(bg, ACMEAccount{Thumbprint: "tp1", JWK: []byte(`{}`), EABKID: c2.KID}); !errors.Is(err, ErrConflict) {
		t.Fatalf("same key twice: %v", err)
	}
	if g, _ := s.GetEABCredential(bg, c2.KID); g.UsedAt != nil {
		t.Fatal("credential spent by a failed newAccount")
	}
	past := time.Now().Add(-time.Minute)
	c3, err := s.CreateEABCredential(bg, "rs_acme", nil, "", &past)
	must(t, err)
	if _, err := s.CreateACMEAccount(bg, ACMEAccount{Thumbprint: "tp3", JWK: []byte(`{}`), EABKID: c3.KID}); !errors.Is(err, ErrUsed) {
		t.Fatalf("expired EAB: %v", err)
	}

	b, err := s.ACMEAccountByThumbprint(bg, "tp1")
	must(t, err)
	if b.ID != a.ID || b.Contact != "mailto:a@example.com" {
		t.Fatalf("by thumbprint %+v", b)
	}
	must(t, s.RolloverACMEAccountKey(bg, a.ID, "tp1", "tp9", []byte(`{"kty":"OKP"}`)))
	if err := s.RolloverACMEAccountKey(bg, a.ID, "tp1", "tp8", []byte(`{}`)); !errors.Is(err, ErrInvalidTransition) {
		t.Fatalf("rollover from stale key: %v", err)
	}
	must(t, s.DeactivateACMEAccount(bg, a.ID))
	must(t, s.DeactivateACMEAccount(bg, a.ID))
	if err := s.RolloverACMEAccountKey(bg, a.ID, "tp9", "tp7", []byte(`{}`)); !errors.Is(err, ErrInvalidTransition) {
		t.Fatalf("rollover of deactivated account: %v", err)
	}
	if err := s.DeactivateACMEAccount(bg, "acct_none"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("deactivate unknown: %v", err)
	}
}

func TestACMEEABRevocationDeactivatesAccount(t *testing.T) {
	s, _ := newStore(t)
	for _, id := range []string{"rs_rev", "rs_other"} {
		key, prefix, _ := GenerateAPIKey()
		must(t, s.CreateReseller(bg, Reseller{ID: id, Name: id, APIKeyHash: HashAPIKey(key), APIKeyPrefix: prefix}))
	}
	c, err := s.CreateEABCredential(bg, "rs_rev", nil, "cust-1", nil)
	must(t, err)
	a, err := s.CreateACMEAccount(bg, ACMEAccount{Thumbprint: "tpr", JWK: []byte(`{}`), EABKID: c.KID})
	must(t, err)
	// Another reseller cannot revoke it, and nothing changes.
	if _, err := s.RevokeEABCredential(bg, "rs_other", c.KID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("revoke by another reseller: %v", err)
	}
	if got, _ := s.GetACMEAccount(bg, a.ID); got.Status != "valid" {
		t.Fatalf("account after a refused revocation: %s", got.Status)
	}
	r, err := s.RevokeEABCredential(bg, "rs_rev", c.KID)
	must(t, err)
	if r.RevokedAt == nil || r.AccountID != a.ID || r.Reference != "cust-1" || r.HMACKey != nil {
		t.Fatalf("revoked credential %+v", r)
	}
	if got, _ := s.GetACMEAccount(bg, a.ID); got.Status != "deactivated" {
		t.Fatalf("account after revocation: %s", got.Status)
	}
	// Again: the same revocation time.
	r2, err := s.RevokeEABCredential(bg, "rs_rev", c.KID)
	must(t, err)
	if !r2.RevokedAt.Equal(*r.RevokedAt) {
		t.Fatalf("second revocation moved revoked_at: %v, %v", r.RevokedAt, r2.RevokedAt)
	}
	// An unspent revoked credential can no longer make an account.
	c2, err := s.CreateEABCredential(bg, "rs_rev", nil, "", nil)
	must(t, err)
	_, err = s.RevokeEABCredential(bg, "rs_rev", c2.KID)
	must(t, err)
	if _, err := s.CreateACMEAccount(bg, ACMEAccount{Thumbprint: "tpr2", JWK: []byte(`{}`), EABKID: c2.KID}); !errors.Is(err, ErrUsed) {
		t.Fatalf("account from a revoked credential: %v", err)
	}
}

func TestACMERenewalWindowsAndReplaces(t *testing.T) {
	s, _ := newStore(t)
	key, prefix, _ := GenerateAPIKey()
	must(t, s.CreateReseller(bg, Reseller{ID: "rs_ari", Name: "A", APIKeyHash: HashAPIKey(key), APIKeyPrefix: prefix}))
	c, err := s.CreateEABCredential(bg, "rs_ari", nil, "", nil)
	must(t, err)
	a, err := s.CreateACMEAccount(bg, ACMEAccount{Thumbprint: "tpa", JWK: []byte(`{}`), EABKID: c.KID})
	must(t, err)
	issued := func(serial, replaces string) ACMEOrder {
		t.Helper()
		o, err := s.CreateACMEOrder(bg, ACMEOrder{AccountID: a.ID, Profile: "server-dv", Replaces: replaces,
			Identifiers: []ACMEIdentifier{{Type: "dns", Value: "a.example"}}, ExpiresAt: time.Now().Add(time.Hour)}, []string{"dns-01"}, time.Hour)
		must(t, err)
		_, err = s.db.Exec(`UPDATE acme_orders SET status = 'processing' WHERE id = $1`, o.ID)
		must(t, err)
		must(t, s.FinishACMEOrder(bg, o.ID, "pem", serial, nil))
		return o
	}
	issued("abc", "")
	issued("def", "")

	if _, _, ok, err := s.RenewalWindow(bg, "abc"); ok || err != nil {
		t.Fatalf("window before any override: %v %v", ok, err)
	}
	before := time.Now().Add(-5 * time.Second)
	n, err := s.SetRenewalWindowNow(bg, []string{"0ABC", "def", "fff"})
	must(t, err)
	if n != 2 {
		t.Fatalf("SetRenewalWindowNow touched %d certificates, want 2 (fff is not an ACME certificate)", n)
	}
	start, end, ok, err := s.RenewalWindow(bg, "0abc")
	must(t, err)
	if !ok || start.Before(before) || start.After(time.Now().Add(5*time.Second)) || end.Sub(start) != UrgentRenewalWindow {
		t.Fatalf("window %v–%v (%v)", start, end, ok)
	}
	if _, _, ok, _ := s.RenewalWindow(bg, "fff"); ok {
		t.Fatal("a window for a certificate not issued through ACME")
	}

	// A renewal names what it replaces; a second order replacing the same
	// certificate is a conflict and writes nothing.
	if n, _ := s.CountACMEReplaced(bg, []string{"abc", "def"}); n != 0 {
		t.Fatalf("replaced before any renewal: %d", n)
	}
	o := issued("1111", "abc")
	got, err := s.GetACMEOrder(bg, a.ID, o.ID)
	must(t, err)
	if got.Replaces != "abc" {
		t.Fatalf("replaces read back %q", got.Replaces)
	}
	if _, err := s.CreateACMEOrder(bg, ACMEOrder{AccountID: a.ID, Profile: "server-dv", Replaces: "abc",
		Identifiers: []ACMEIdentifier{{Type: "dns", Value: "a.example"}}, ExpiresAt: time.Now().Add(time.Hour)}, []string{"dns-01"}, time.Hour); !errors.Is(err, ErrConflict) {
		t.Fatalf("second replacement of abc: %v", err)
	}
	if n, _ := s.CountACMEReplaced(bg, []string{"abc", "def"}); n != 1 {
		t.Fatalf("replaced after one renewal: %d, want 1", n)
	}
}
