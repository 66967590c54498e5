package pki

import (
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/smallstep/pkcs7"
)

// DocumentSigner makes detached CMS signatures over disclosure packages
// (DESIGN workflow 4) with the CA's document-signing key. Anyone can check
// one with
//
//	openssl cms -verify -binary -inform DER -in package.json.p7s \
//	    -content package.json -CAfile root.pem -out /dev/null
//
// The signature carries the signer certificate and its issuing CA, so the
// root is the only trust anchor needed.
type DocumentSigner struct {
	cert   *x509.Certificate
	chain  []*x509.Certificate
	signer crypto.Signer
}

// NewDocumentSigner checks cert against signer and the chain (issuing CA
// first, root excluded).
func NewDocumentSigner(cert *x509.Certificate, signer crypto.Signer, chain ...*x509.Certificate) (*DocumentSigner, error) {
	if !publicKeysEqual(cert.PublicKey, signer.Public()) {
		return nil, errors.New("document-signing key does not match its certificate; check the key label")
	}
	if len(chain) == 0 {
		return nil, errors.New("document-signing chain is empty; pass the issuing CA certificate")
	}
	if err := cert.CheckSignatureFrom(chain[0]); err != nil {
		return nil, fmt.Errorf("document-signing certificate is not issued by %s: %w", chain[0].Subject, err)
	}
	if !slices.Contains(cert.ExtKeyUsage, x509.ExtKeyUsageEmailProtection) {
		return nil, errors.New("document-signing certificate lacks EKU emailProtection, which openssl cms -verify requires")
	}
	return &DocumentSigner{cert: cert, chain: chain, signer: signer}, nil
}

// Certificate returns the signing certificate.
func (d *DocumentSigner) Certificate() *x509.Certificate { return d.cert }

// NeedsRenewal reports whether the signing certificate has less than 30
// days left (signatures must be verifiable when the package is fetched).
func (d *DocumentSigner) NeedsRenewal(now time.Time) bool {
	return !now.Before(d.cert.NotAfter.Add(-30 * Day))
}

// SignDetached returns a DER CMS SignedData (RFC 5652) over content:
// SHA-256 digest, signed attributes (content type, message digest, signing
// time), content detached, signer certificate and issuing CA included.
func (d *DocumentSigner) SignDetached(content []byte) ([]byte, error) {
	sd, err := pkcs7.NewSignedData(content)
	if err != nil {
		return nil, err
	}
	sd.SetDigestAlgorithm(pkcs7.OIDDigestAlgorithmSHA256)
	if err := sd.AddSignerChain(d.cert, d.signer, d.chain[:1], pkcs7.SignerInfoConfig{}); err != nil {
		return nil, fmt.Errorf("signing disclosure package: %w", err)
	}
	sd.Detach()
	return sd.Finish()
}
