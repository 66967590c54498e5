package pki

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"fmt"

	"certdesk/internal/pki/problem"
)

// Certificate Transparency issuance refusal kinds.
var (
	// ErrNoCT: the profile is not logged (client e-signature and S/MIME
	// certificates carry neither poison nor SCTs); use Issue.
	ErrNoCT = &problem.Kind{Code: "profile-without-ct", Title: "this product is not issued through Certificate Transparency"}
	// ErrPrecertMismatch: the final certificate the request describes is
	// not the one the precertificate announced, or the precertificate is not
	// this issuer's. Nothing was signed.
	ErrPrecertMismatch = &problem.Kind{Code: "precert-mismatch", Title: "the final certificate would not match its precertificate"}
)

// IssuePrecert checks req exactly as Issue does, builds the same template
// Issue would sign, adds the critical poison extension (PrecertTemplate),
// lints the precertificate and signs it with the issuing CA's own key (RFC
// 6962 §3.1, no precertificate signing CA). Only TLS server profiles are
// logged; any other refuses with ErrNoCT.
//
// The idempotency contract of Issue applies: the serial and NotBefore are
// fixed and stored before the call, and the same req is later given to
// IssueFinal. A precertificate counts as issuance of its serial (BR §7.1.2.9):
// once one is signed, the serial is never used for other contents.
func (i *Issuer) IssuePrecert(ctx context.Context, req *IssueRequest) (*Issued, error) {
	b, err := i.ctTemplate(ctx, req)
	if err != nil {
		return nil, err
	}
	pre, err := PrecertTemplate(b.tmpl)
	if err != nil {
		return nil, err
	}
	b.tmpl = pre
	return i.sign(b, nil)
}

// IssueFinal signs the certificate announced by precertDER: it rebuilds the
// template from the same req (same serial, NotBefore, validity, names,
// key), replaces the poison with the SCT list extension carrying sctList
// (the TLS-encoded SignedCertificateTimestampList, see ct.EncodeSCTList),
// lints and signs it. It refuses with ErrPrecertMismatch, before the CA key
// signs anything, unless precertDER is a precertificate signed by this
// issuer whose TBSCertificate equals the final one but for poison ↔ SCT list
// (CheckPrecertMatch): the SCTs are signatures over that TBS, and a final
// certificate that differs from it is misissued.
func (i *Issuer) IssueFinal(ctx context.Context, req *IssueRequest, precertDER []byte, sctList []byte) (*Issued, error) {
	b, err := i.ctTemplate(ctx, req)
	if err != nil {
		return nil, err
	}
	pre, err := i.ownPrecert(precertDER)
	if err != nil {
		return nil, err
	}
	preTmpl, err := PrecertTemplate(b.tmpl)
	if err != nil {
		return nil, err
	}
	if b.tmpl, err = FinalTemplate(preTmpl, sctList); err != nil {
		return nil, err
	}
	match := func(c *x509.Certificate) error {
		if err := CheckPrecertMatch(pre, c); err != nil {
			return problem.New(ErrPrecertMismatch, "issuer %s: the request does not describe the certificate precertificate %x announced (%v); nothing was signed: issue the final certificate from the request the precertificate was signed for",
				i.id, pre.SerialNumber, err)
		}
		return nil
	}
	final, err := i.sign(b, match)
	if err != nil {
		return nil, err
	}
	// sign compared the signed TBS with the linted one, so this holds; it
	// is checked again on what is returned, at the cost of a comparison.
	if err := match(final.Cert); err != nil {
		return nil, err
	}
	return final, nil
}

// ctTemplate is requestTemplate for the logged profiles only.
func (i *Issuer) ctTemplate(ctx context.Context, req *IssueRequest) (*built, error) {
	b, err := i.requestTemplate(ctx, req)
	if err != nil {
		return nil, err
	}
	if b.profile.Purpose != PurposeTLSServer {
		return nil, problem.New(ErrNoCT, "%s certificates are not logged in Certificate Transparency and carry no SCTs; issue them with Issue", b.profile.Name)
	}
	return b, nil
}

// ownPrecert parses precertDER and refuses unless it is a precertificate
// whose signature verifies with this issuer's key.
func (i *Issuer) ownPrecert(precertDER []byte) (*x509.Certificate, error) {
	if len(precertDER) == 0 {
		return nil, errors.New("final certificate: no precertificate given")
	}
	pre, err := x509.ParseCertificate(precertDER)
	if err != nil {
		return nil, fmt.Errorf("final certificate: the precertificate does not parse: %w", err)
	}
	if !IsPrecertificate(pre) {
		return nil, problem.New(ErrPrecertMismatch, "final certificate: the certificate given as precertificate (serial %x) has no critical poison extension", pre.SerialNumber)
	}
	if !bytes.Equal(pre.RawIssuer, i.cert.RawSubject) || pre.CheckSignatureFrom(i.cert) != nil {
		return nil, problem.New(ErrPrecertMismatch, "final certificate: precertificate %x was not signed by issuing CA %s", pre.SerialNumber, i.id)
	}
	return pre, nil
}
