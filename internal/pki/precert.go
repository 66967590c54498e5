package pki

import (
	"bytes"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"slices"

	ctx509 "github.com/google/certificate-transparency-go/x509"
)

// Certificate Transparency extensions (RFC 6962).
var (
	// OIDCTPoison marks a precertificate (RFC 6962 §3.1): critical, its
	// value ASN.1 NULL, so that no relying party accepts it as a certificate.
	OIDCTPoison = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 11129, 2, 4, 3}
	// OIDCTSCTList carries the SignedCertificateTimestampList embedded in the
	// final certificate (RFC 6962 §3.3), non-critical.
	OIDCTSCTList = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 11129, 2, 4, 2}
)

// asn1Null is the DER encoding of ASN.1 NULL, the poison extension's value.
var asn1Null = []byte{0x05, 0x00}

// PrecertTemplate returns a copy of tmpl with the critical poison extension
// appended, ready to be signed by the issuing CA itself (no precertificate
// signing CA: RFC 6962 §3.1's simpler form, which the logs and browsers
// accept). The copy is shallow except for ExtraExtensions, which it owns.
func PrecertTemplate(tmpl *x509.Certificate) (*x509.Certificate, error) {
	if tmpl == nil {
		return nil, errors.New("precertificate: no template")
	}
	for _, e := range tmpl.ExtraExtensions {
		if e.Id.Equal(OIDCTPoison) || e.Id.Equal(OIDCTSCTList) {
			return nil, fmt.Errorf("precertificate: the template already carries CT extension %s", e.Id)
		}
	}
	pre := *tmpl
	pre.ExtraExtensions = append(slices.Clip(slices.Clone(tmpl.ExtraExtensions)),
		pkix.Extension{Id: OIDCTPoison, Critical: true, Value: asn1Null})
	return &pre, nil
}

// FinalTemplate returns a copy of the precertificate template pre in which the
// poison extension is replaced, at the same position, by the non-critical SCT
// list extension carrying sctList (the TLS-encoded
// SignedCertificateTimestampList of RFC 6962 §3.3, see ct.EncodeSCTList).
// Signing it with the same issuer gives a TBSCertificate identical to the
// precertificate's but for that one extension, which is what every SCT in
// the list signed.
func FinalTemplate(pre *x509.Certificate, sctList []byte) (*x509.Certificate, error) {
	if pre == nil {
		return nil, errors.New("final certificate: no precertificate template")
	}
	if len(sctList) == 0 {
		return nil, errors.New("final certificate: empty SCT list; a certificate without SCTs is not issued from a precertificate")
	}
	// The extension's value is an OCTET STRING holding the TLS encoding.
	value, err := asn1.Marshal(sctList)
	if err != nil {
		return nil, err
	}
	exts := slices.Clone(pre.ExtraExtensions)
	at := -1
	for i, e := range exts {
		switch {
		case e.Id.Equal(OIDCTPoison):
			if at >= 0 {
				return nil, errors.New("final certificate: the precertificate template has two poison extensions")
			}
			at = i
		case e.Id.Equal(OIDCTSCTList):
			return nil, errors.New("final certificate: the precertificate template already carries an SCT list")
		}
	}
	if at < 0 {
		return nil, errors.New("final certificate: the template is not a precertificate template (no poison extension)")
	}
	exts[at] = pkix.Extension{Id: OIDCTSCTList, Critical: false, Value: value}
	final := *pre
	final.ExtraExtensions = exts
	return &final, nil
}

// IsPrecertificate reports whether cert carries the critical poison extension.
func IsPrecertificate(cert *x509.Certificate) bool {
	for _, e := range cert.Extensions {
		if e.Id.Equal(OIDCTPoison) {
			return e.Critical
		}
	}
	return false
}

// CheckPrecertMatch refuses unless the final certificate's TBS equals the
// precertificate's once the poison and the SCT list are removed (RFC 6962
// §3.1), compared with certificate-transparency-go's removal, the code logs
// and monitors use to rebuild a precertificate's TBS.
func CheckPrecertMatch(pre, final *x509.Certificate) error {
	preTBS, err := ctx509.RemoveCTPoison(pre.RawTBSCertificate)
	if err != nil {
		return fmt.Errorf("precertificate: %w", err)
	}
	finalTBS, err := ctx509.RemoveSCTList(final.RawTBSCertificate)
	if err != nil {
		return fmt.Errorf("final certificate: %w", err)
	}
	if !bytes.Equal(preTBS, finalTBS) {
		return errors.New("the final certificate differs from its precertificate beyond poison ↔ SCT list")
	}
	return nil
}
