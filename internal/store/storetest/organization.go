// Package storetest makes store records other packages' tests need.
package storetest

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"time"

	"certdesk/internal/product"
	"certdesk/internal/status"
	"certdesk/internal/store"
)

// Organization is the subject VerifiedOV puts in its certificate.
var Organization = pkix.Name{Organization: []string{"Example Verified KK"}, Locality: []string{"Chiyoda-ku"},
	Province: []string{"Tokyo"}, Country: []string{"JP"}}

// VerifiedOV records, for an existing reseller, an issued server-ov
// application appID whose identity verification passed, with a (self-signed,
// test-only) certificate whose subject is Organization: the record an EAB
// credential's organization_from names.
func VerifiedOV(ctx context.Context, st *store.Store, resellerID, appID string) (store.Certificate, error) {
	sub := "sub_" + appID
	if err := st.UpsertSubscriber(ctx, store.Subscriber{ID: sub, ResellerID: resellerID, Name: "Hanako Example",
		Email: "hanako@example.jp", Organization: Organization.Organization[0], Country: "JP"}); err != nil {
		return store.Certificate{}, err
	}
	h := sha256.Sum256([]byte("key-" + appID))
	if err := st.CreateApplication(ctx, store.Application{ID: appID, ResellerID: resellerID, SubscriberID: sub, Product: product.ServerOV,
		Domains: []string{"www.example.jp"}, CSR: []byte("csr-" + appID), SPKISHA256: h[:], ValidityDays: 90,
		AttestationTermsVersion: "2026-01", AttestationTruthful: true, AttestedAt: time.Now(), WorkflowID: "application/" + appID}); err != nil {
		return store.Certificate{}, err
	}
	ver := "ver-" + appID
	steps := []func() error{
		func() error {
			return st.CreateVerification(ctx, store.Verification{ID: ver, SubjectKind: "application", SubjectRef: appID, Method: "registry"})
		},
		func() error {
			return st.DecideVerification(ctx, ver, "passed", "staff:st_test", "registry:test", time.Now())
		},
		func() error { return st.SetApplicationVerification(ctx, appID, ver) },
		func() error { return st.SetApplicationStatus(ctx, appID, status.AppIssuing, "") },
	}
	for _, f := range steps {
		if err := f(); err != nil {
			return store.Certificate{}, err
		}
	}
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	b[0] = b[0]&0x7f | 0x40
	res, err := st.ReserveSerial(ctx, appID, new(big.Int).SetBytes(b).Text(16))
	if err != nil {
		return store.Certificate{}, err
	}
	sn, _ := new(big.Int).SetString(res.Serial, 16)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	now := time.Now().Truncate(time.Second)
	tmpl := &x509.Certificate{SerialNumber: sn, NotBefore: now, NotAfter: now.Add(90 * 24 * time.Hour), Subject: Organization,
		DNSNames: []string{"www.example.jp"}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return store.Certificate{}, err
	}
	c := store.Certificate{Serial: res.Serial, Issuer: "tls-test", DER: der, NotBefore: now, NotAfter: tmpl.NotAfter,
		SPKISHA256: h[:], ResellerID: resellerID, SubscriberID: sub, ApplicationID: appID, Product: product.ServerOV}
	return c, st.StoreCertificate(ctx, c)
}
