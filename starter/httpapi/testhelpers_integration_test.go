//go:build integration

package httpapi

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"certdesk/internal/pii"
	"certdesk/internal/pki"
	"certdesk/internal/store"
	"certdesk/internal/testenv"
)

// newTestStore is a store over a fresh migrated database with throwaway
// personal-data and blind-index keys.
func newTestStore(t *testing.T) (*sqlx.DB, *store.Store) {
	t.Helper()
	pool, _ := testenv.NewDatabase(t)
	secret := make([]byte, 32)
	_, _ = rand.Read(secret)
	ring, err := pii.NewKeyRing(pii.Key{ID: "k1", Secret: secret})
	if err != nil {
		t.Fatal(err)
	}
	bk, _ := pii.GenerateKey()
	bidx, err := pii.ParseBlindIndexKey(bk)
	if err != nil {
		t.Fatal(err)
	}
	return pool, store.New(pool, ring, bidx)
}

// ocspTestCA is an issuing CA that signs its own OCSP responses, with n
// seeded certificates from serial base (a reseller of its own owns them).
type ocspTestCA struct {
	key    *ecdsa.PrivateKey
	issuer *x509.Certificate
	idx    *pki.OCSPIndex
}

func newOCSPTestCA(t *testing.T, st *store.Store, issuerID, reseller string, base int64, n int) *ocspTestCA {
	t.Helper()
	ctx := context.Background()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: issuerID + " CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	issuer, _ := x509.ParseCertificate(der)
	idx, err := pki.NewOCSPIndex(map[string]*x509.Certificate{issuerID: issuer})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.CreateReseller(ctx, store.Reseller{ID: reseller, Name: reseller, APIKeyHash: fmt.Sprintf("%x", sha256.Sum256([]byte(reseller))), APIKeyPrefix: "cdk_" + reseller[len(reseller)-1:]}); err != nil {
		t.Fatal(err)
	}
	if err := st.SeedCertificates(ctx, store.SeedSpec{N: n, Issuer: issuerID, Shards: 1, SerialBase: base, ResellerID: reseller,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(90 * 24 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	return &ocspTestCA{key: key, issuer: issuer, idx: idx}
}
