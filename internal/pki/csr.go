package pki

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"

	"certdesk/internal/pki/goodkey"
	"certdesk/internal/pki/problem"
)

// CSR refusal kinds. Key refusals are the goodkey kinds, re-exported here so
// callers need one import.
var (
	ErrCSRMalformed           = &problem.Kind{Code: "csr-malformed", Title: "CSR cannot be parsed"}
	ErrCSRSignature           = &problem.Kind{Code: "csr-signature-invalid", Title: "CSR signature does not verify"}
	ErrWeakSignatureAlgorithm = &problem.Kind{Code: "csr-signature-algorithm", Title: "CSR signature algorithm not allowed by the CP"}

	ErrKeyTypeNotAllowed = goodkey.ErrKeyTypeNotAllowed
	ErrRSAKeyTooSmall    = goodkey.ErrRSAKeyTooSmall
	ErrRSAKeySize        = goodkey.ErrRSAKeySize
	ErrRSAExponent       = goodkey.ErrRSAExponent
	ErrRSAModulus        = goodkey.ErrRSAModulus
	ErrROCA              = goodkey.ErrROCA
	ErrFermat            = goodkey.ErrFermat
	ErrCurveNotAllowed   = goodkey.ErrCurveNotAllowed
	ErrECPointInvalid    = goodkey.ErrECPointInvalid
	ErrBlockedKey        = goodkey.ErrBlockedKey
	ErrDebianWeakKey     = goodkey.ErrDebianWeakKey
)

// BlockedKeys is goodkey.BlockedKeys: the caller's lookup of keys blocked
// after a key-compromise report, by SPKI SHA-256.
type BlockedKeys = goodkey.BlockedKeys

// maxCSRBytes bounds what we parse (an 8192-bit RSA CSR is ~2.5 kB).
const maxCSRBytes = 64 << 10

// Request is what the caller has verified for one application. It is plain
// data (JSON-friendly) so it can travel in a Temporal payload.
type Request struct {
	// Profile is the product name: server-dv, server-ov or client-sign.
	Profile string `json:"profile"`
	// CSR is the PKCS#10 request, PEM or DER. Only its public key (and the
	// proof of possession, its signature) is used.
	CSR []byte `json:"csr"`
	// Subject is the verified identity printed in the certificate.
	Subject Subject `json:"subject"`
	// Domains are the validated DNS names (TLS profiles), in order.
	Domains []string `json:"domains,omitempty"`
	// Email is the validated mailbox (client-sign).
	Email string `json:"email,omitempty"`
}

// ParseCSR accepts a PEM ("CERTIFICATE REQUEST" or "NEW CERTIFICATE
// REQUEST") or DER CSR.
func ParseCSR(data []byte) (*x509.CertificateRequest, error) {
	if len(data) > maxCSRBytes {
		return nil, problem.New(ErrCSRMalformed, "CSR is %d bytes, larger than any sane request; send a single PKCS#10 request", len(data))
	}
	der := data
	if b, _ := pem.Decode(data); b != nil {
		if b.Type != "CERTIFICATE REQUEST" && b.Type != "NEW CERTIFICATE REQUEST" {
			return nil, problem.New(ErrCSRMalformed, "PEM block is %q; send a CERTIFICATE REQUEST", b.Type)
		}
		der = b.Bytes
	}
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		return nil, problem.New(ErrCSRMalformed, "CSR cannot be parsed (%v); send a PKCS#10 request in PEM or DER, e.g. from `openssl req -new`", err)
	}
	return csr, nil
}

// allowedCSRSignature lists the CSR signature algorithms the CP allows:
// SHA-2 family only (O11). SHA-1 and MD5 are refused even though the seed
// CP still lists SHA-1: collisions make them unfit as proof of possession.
var allowedCSRSignature = map[x509.SignatureAlgorithm]bool{
	x509.SHA256WithRSA: true, x509.SHA384WithRSA: true, x509.SHA512WithRSA: true,
	x509.SHA256WithRSAPSS: true, x509.SHA384WithRSAPSS: true, x509.SHA512WithRSAPSS: true,
	x509.ECDSAWithSHA256: true, x509.ECDSAWithSHA384: true, x509.ECDSAWithSHA512: true,
	x509.PureEd25519: true, // the key policy decides whether Ed25519 is allowed
}

// CheckCSR runs every check that can be made before issuance on a request
// for profile r.Profile, in this order:
//
//  1. the CSR parses;
//  2. its signature algorithm is SHA-2 based (O11: SHA-1/MD5 refused);
//  3. the key passes the profile's key policy (type, size, exponent, curve,
//     ROCA, Fermat, Debian weak keys from $CERTDESK_WEAK_KEYS_DIR);
//  4. the CSR signature verifies (proof of possession);
//  5. the key is not blocked (BR 6.1.1.3), when blocked is not nil;
//  6. the names (domains or email) and the subject data are acceptable.
//
// A refusal is a *problem.Error whose kind is one of the Err* sentinels
// (errors.Is); any other error (a failed blocked-key lookup, unreadable
// weak-key lists) is retryable.
// The CSR's own subject and extensions are ignored: the certificate is
// built from r.Subject and the validated names only.
func CheckCSR(ctx context.Context, r *Request, blocked BlockedKeys) (*x509.CertificateRequest, error) {
	return DefaultProfiles.CheckCSR(ctx, r, blocked)
}

// CheckCSR is the package-level CheckCSR for this profile set.
func (s *ProfileSet) CheckCSR(ctx context.Context, r *Request, blocked BlockedKeys) (*x509.CertificateRequest, error) {
	p, err := s.Get(r.Profile)
	if err != nil {
		return nil, err
	}
	return checkCSR(ctx, p, r, blocked)
}

func checkCSR(ctx context.Context, p *Profile, r *Request, blocked BlockedKeys) (*x509.CertificateRequest, error) {
	csr, err := ParseCSR(r.CSR)
	if err != nil {
		return nil, err
	}
	if !allowedCSRSignature[csr.SignatureAlgorithm] {
		return nil, problem.New(ErrWeakSignatureAlgorithm,
			"CSR is signed with %v; the CP (O11) requires subscriber signatures with SHA-256, SHA-384 or SHA-512 (SHA-1 and MD5 are refused). Re-create the CSR, e.g. `openssl req -new -sha256`",
			csr.SignatureAlgorithm)
	}
	if err := p.Keys.CheckStatic(csr.PublicKey); err != nil {
		return nil, err
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, problem.New(ErrCSRSignature, "CSR signature does not verify (%v): the CSR was altered or not signed by the key it contains; generate it again", err)
	}
	if err := p.Keys.Check(ctx, csr.PublicKey, blocked); err != nil {
		return nil, err
	}
	if err := checkNames(p, r); err != nil {
		return nil, err
	}
	if _, err := buildSubject(p, r.Subject, r.Domains); err != nil {
		return nil, err
	}
	return csr, nil
}

func checkNames(p *Profile, r *Request) error {
	switch p.Purpose {
	case PurposeTLSServer:
		if r.Email != "" {
			return problem.New(ErrNamesNotAccepted, "TLS certificates carry no email address; remove it")
		}
		return CheckDomains(r.Domains)
	case PurposeClientSign:
		if len(r.Domains) > 0 {
			return problem.New(ErrNamesNotAccepted, "client certificates carry no domain names; remove them")
		}
		return CheckEmail(r.Email)
	case PurposeDocumentSigning, PurposeOCSPResponder:
		if len(r.Domains) > 0 {
			return problem.New(ErrNamesNotAccepted, "%s certificates carry no domain names", p.Name)
		}
		if r.Email != "" {
			return CheckEmail(r.Email)
		}
		return nil
	}
	return fmt.Errorf("profile %s has unknown purpose %q", p.Name, p.Purpose)
}
