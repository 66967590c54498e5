package store

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/big"
	"sync"
	"testing"
	"time"

	"certdesk/internal/pii"
	"certdesk/internal/status"
	"certdesk/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

var bg = context.Background()

// newStore gives the test its own migrated database and fresh keys.
func newStore(t *testing.T) (*Store, *pii.KeyRing) {
	t.Helper()
	db, _ := testenv.NewDatabase(t)
	ring := newRing(t, "k1")
	k, _ := pii.GenerateKey()
	bidx, err := pii.ParseBlindIndexKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return New(db, ring, bidx), ring
}

func newRing(t *testing.T, ids ...string) *pii.KeyRing {
	t.Helper()
	var keys []pii.Key
	for _, id := range ids {
		b := make([]byte, 32)
		rand.Read(b)
		keys = append(keys, pii.Key{ID: id, Secret: b})
	}
	r, err := pii.NewKeyRing(keys...)
	if err != nil {
		t.Fatal(err)
	}
	testKeysMu.Lock()
	defer testKeysMu.Unlock()
	testKeys[r] = map[string][]byte{}
	for _, k := range keys {
		testKeys[r][k.ID] = k.Secret
	}
	return r
}

var (
	testKeysMu sync.Mutex
	testKeys   = map[*pii.KeyRing]map[string][]byte{}
)

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func randomSerial() string {
	b := make([]byte, 16)
	rand.Read(b)
	b[0] = b[0]&0x7f | 0x40
	return new(big.Int).SetBytes(b).Text(16)
}

func spki(s string) []byte {
	h := sha256.Sum256([]byte(s))
	return h[:]
}

// fx is a reseller with one subscriber, used by most tests.
type fx struct {
	s          *Store
	reseller   string
	subscriber string
}

func newFixture(t *testing.T, s *Store) fx {
	t.Helper()
	key, prefix, err := GenerateAPIKey()
	must(t, err)
	must(t, s.CreateReseller(bg, Reseller{ID: "rs_a", Name: "Reseller A", APIKeyHash: HashAPIKey(key), APIKeyPrefix: prefix, ContactEmail: "ra@reseller-a.example"}))
	must(t, s.UpsertSubscriber(bg, Subscriber{ID: "sb_1", ResellerID: "rs_a", Name: "山田太郎", Email: "Taro.Yamada@Example.JP",
		Phone: "+81 3-1234-5678", Organization: "株式会社テスト", Address: "東京都千代田区1-1", Country: "JP"}))
	return fx{s: s, reseller: "rs_a", subscriber: "sb_1"}
}

// application creates a DV application with id.
func (f fx) application(t *testing.T, id string) Application {
	t.Helper()
	a := Application{ID: id, ResellerID: f.reseller, SubscriberID: f.subscriber, Product: "server-dv",
		Domains: []string{"www.example.jp"}, CSR: []byte("csr-der-" + id), SPKISHA256: spki("key-" + id),
		ValidityDays: 90, AttestationTermsVersion: "2026-01", AttestationTruthful: true, AttestedAt: time.Now(),
		WorkflowID: "application/" + id}
	must(t, f.s.CreateApplication(bg, a))
	return a
}

// issue creates an application and a certificate for it.
func (f fx) issue(t *testing.T, id, issuer string, shard int, notBefore time.Time) Certificate {
	t.Helper()
	a := f.application(t, id)
	must(t, f.s.SetApplicationStatus(bg, id, status.AppIssuing, ""))
	res, err := f.s.ReserveSerial(bg, id, randomSerial())
	must(t, err)
	c := Certificate{Serial: res.Serial, Issuer: issuer, DER: []byte("der-" + id), NotBefore: notBefore,
		NotAfter: notBefore.Add(90 * 24 * time.Hour), SPKISHA256: a.SPKISHA256, ResellerID: f.reseller,
		SubscriberID: f.subscriber, ApplicationID: id, Product: a.Product, CRLShard: shard}
	must(t, f.s.StoreCertificate(bg, c))
	return c
}

func count(t *testing.T, s *Store, table string) int {
	t.Helper()
	var n int
	must(t, s.db.Get(&n, fmt.Sprintf(`SELECT count(*) FROM %s`, table)))
	return n
}

func hexOf(s string) string { return hex.EncodeToString([]byte(s)) }
