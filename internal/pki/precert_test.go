package pki

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"math/big"
	"testing"
	"time"
)

func TestPrecertAndFinalDifferOnlyInPoisonAndSCTList(t *testing.T) {
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	now := time.Now().UTC().Truncate(time.Second)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "throwaway CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	leafKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(0x1234567890), Subject: pkix.Name{CommonName: "www.example.jp"},
		NotBefore: now, NotAfter: now.Add(90*24*time.Hour - time.Second), DNSNames: []string{"www.example.jp"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true, CRLDistributionPoints: []string{"http://crl.example.jp/1.crl"},
		// An extension after which the CT one lands: order must be kept.
		ExtraExtensions: []pkix.Extension{{Id: asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 48, 1, 5}, Value: asn1Null}},
	}
	pre, err := PrecertTemplate(tmpl)
	if err != nil {
		t.Fatal(err)
	}
	if len(tmpl.ExtraExtensions) != 1 {
		t.Fatalf("PrecertTemplate changed the caller's template: %d extra extensions", len(tmpl.ExtraExtensions))
	}
	preDER, err := x509.CreateCertificate(rand.Reader, pre, ca, &leafKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	// Any bytes: the TBS comparison does not care what the list holds.
	sctList := []byte{0x00, 0x04, 0x00, 0x02, 0xAA, 0xBB}
	final, err := FinalTemplate(pre, sctList)
	if err != nil {
		t.Fatal(err)
	}
	finalDER, err := x509.CreateCertificate(rand.Reader, final, ca, &leafKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	preCert, _ := x509.ParseCertificate(preDER)
	finalCert, _ := x509.ParseCertificate(finalDER)
	if !IsPrecertificate(preCert) || IsPrecertificate(finalCert) {
		t.Fatalf("IsPrecertificate: precert %v, final %v", IsPrecertificate(preCert), IsPrecertificate(finalCert))
	}
	if preCert.SerialNumber.Cmp(finalCert.SerialNumber) != 0 {
		t.Fatal("serials differ")
	}
	for _, e := range finalCert.Extensions {
		if e.Id.Equal(OIDCTSCTList) {
			var inner []byte
			if _, err := asn1.Unmarshal(e.Value, &inner); err != nil || !bytes.Equal(inner, sctList) || e.Critical {
				t.Fatalf("SCT list extension: critical %v, value %x (%v)", e.Critical, e.Value, err)
			}
		}
	}
	// The comparison uses certificate-transparency-go's extension removal,
	// the code the logs and monitors use to rebuild the precertificate TBS.
	if err := CheckPrecertMatch(preCert, finalCert); err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(preCert.RawTBSCertificate, finalCert.RawTBSCertificate) {
		t.Fatal("precert and final TBS are identical: the extensions were not swapped")
	}
}

func TestPrecertTemplateRefusals(t *testing.T) {
	if _, err := PrecertTemplate(nil); err == nil {
		t.Error("nil template accepted")
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2)}
	pre, _ := PrecertTemplate(tmpl)
	if _, err := PrecertTemplate(pre); err == nil {
		t.Error("poisoning twice accepted")
	}
	if _, err := FinalTemplate(tmpl, []byte{1}); err == nil {
		t.Error("final template from a template without poison accepted")
	}
	if _, err := FinalTemplate(pre, nil); err == nil {
		t.Error("empty SCT list accepted")
	}
}
