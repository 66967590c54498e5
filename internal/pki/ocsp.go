package pki

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"time"

	"golang.org/x/crypto/ocsp"
)

// OCSP validity (BR §4.9.10: at least 8 hours, at most 10 days; this CA
// uses a stricter 4-day maximum so a response never outlives the 4-day CRL
// republication rhythm of O14).
const (
	DefaultOCSPValidity = 3 * Day
	MaxOCSPValidity     = 4 * Day
	minOCSPValidity     = 8 * time.Hour
)

// ErrNotIssued is what an OCSPLookup or OCSPStatusSource returns for a
// serial the CA never issued; the responder then answers "unauthorized"
// (RFC 5019 §2.2.3), never "good" (O14).
var ErrNotIssued = errors.New("serial not issued by this CA")

// CertStatus is the revocation state of one certificate.
type CertStatus struct {
	Serial    *big.Int  `json:"serial"`
	Revoked   bool      `json:"revoked"`
	RevokedAt time.Time `json:"revoked_at,omitempty"`
	Reason    int       `json:"reason,omitempty"`
}

// SignedOCSP is a signed response plus its times, which the caller stores
// with it (cache headers and refresh decisions then need no parsing).
type SignedOCSP struct {
	DER        []byte
	ThisUpdate time.Time
	NextUpdate time.Time
}

// NeedsRefresh reports whether the stored response should be re-signed:
// at half its validity (BR 4.9.10 for validity ≥ 16 h asks for an update
// at least 8 h before nextUpdate; half of 3 days is well before).
func (s SignedOCSP) NeedsRefresh(now time.Time) bool {
	return OCSPNeedsRefresh(s.ThisUpdate, s.NextUpdate, now)
}

// OCSPNeedsRefresh is NeedsRefresh on bare times.
func OCSPNeedsRefresh(thisUpdate, nextUpdate time.Time, now time.Time) bool {
	half := thisUpdate.Add(nextUpdate.Sub(thisUpdate) / 2)
	return !now.Before(half)
}

// OCSPResponder signs responses for one issuing CA with its delegated
// responder key (ECDSA P-256: a million responses re-signed in seconds).
type OCSPResponder struct {
	issuerID string
	issuer   *x509.Certificate
	cert     *x509.Certificate
	signer   crypto.Signer
	validity time.Duration
}

// NewOCSPResponder checks that cert is a delegated responder certificate
// issued by issuer (EKU id-kp-OCSPSigning, ocsp-nocheck, matching key) and
// returns a responder. validity 0 means DefaultOCSPValidity.
func NewOCSPResponder(issuerID string, issuer, cert *x509.Certificate, signer crypto.Signer, validity time.Duration) (*OCSPResponder, error) {
	if validity == 0 {
		validity = DefaultOCSPValidity
	}
	if validity < minOCSPValidity || validity > MaxOCSPValidity {
		return nil, fmt.Errorf("OCSP validity %v out of range 8h..4 days", validity)
	}
	if err := cert.CheckSignatureFrom(issuer); err != nil {
		return nil, fmt.Errorf("responder certificate is not signed by issuer %s: %w", issuerID, err)
	}
	if !slices.Contains(cert.ExtKeyUsage, x509.ExtKeyUsageOCSPSigning) {
		return nil, errors.New("responder certificate lacks EKU id-kp-OCSPSigning")
	}
	if !hasExtension(cert, oidOCSPNoCheck) {
		return nil, errors.New("responder certificate lacks id-pkix-ocsp-nocheck")
	}
	if !publicKeysEqual(cert.PublicKey, signer.Public()) {
		return nil, errors.New("responder key does not match the responder certificate; check the key label")
	}
	return &OCSPResponder{issuerID: issuerID, issuer: issuer, cert: cert, signer: signer, validity: validity}, nil
}

func hasExtension(c *x509.Certificate, oid asn1.ObjectIdentifier) bool {
	for _, e := range c.Extensions {
		if e.Id.Equal(oid) {
			return true
		}
	}
	return false
}

// IssuerID returns the issuer this responder answers for.
func (r *OCSPResponder) IssuerID() string { return r.issuerID }

// Certificate returns the responder certificate.
func (r *OCSPResponder) Certificate() *x509.Certificate { return r.cert }

// NeedsRenewal reports whether the responder certificate should be renewed
// now: when less than a third of its lifetime, or less than twice the
// maximum response validity, remains. Responses signed just before expiry
// must stay verifiable for their whole validity.
func (r *OCSPResponder) NeedsRenewal(now time.Time) bool {
	return ResponderNeedsRenewal(r.cert, now)
}

// ResponderNeedsRenewal is NeedsRenewal for a bare certificate.
func ResponderNeedsRenewal(cert *x509.Certificate, now time.Time) bool {
	lifetime := cert.NotAfter.Sub(cert.NotBefore)
	margin := max(lifetime/3, 2*MaxOCSPValidity)
	return !now.Before(cert.NotAfter.Add(-margin))
}

// Sign signs a response for st at time now: good, or revoked with time and
// reason (0 = no reason, as in the CRL). The caller must only pass
// statuses of certificates this issuer really issued; unknown serials get
// UnauthorizedResponse instead (see RespondOCSP).
func (r *OCSPResponder) Sign(st CertStatus, now time.Time) (SignedOCSP, error) {
	if st.Serial == nil || st.Serial.Sign() <= 0 {
		return SignedOCSP{}, errors.New("status has no serial")
	}
	// Truncated to the minute like producedAt, which x/crypto/ocsp sets
	// from the wall clock truncated to the minute: thisUpdate must not be
	// after producedAt (zlint e_this_update_not_after_produced_at).
	thisUpdate := now.UTC().Truncate(time.Minute)
	nextUpdate := thisUpdate.Add(r.validity)
	if now.Before(r.cert.NotBefore) || nextUpdate.After(r.cert.NotAfter) {
		return SignedOCSP{}, fmt.Errorf("responder certificate of %s (valid until %s) does not cover the response validity; renew it (RenewOCSPResponder)", r.issuerID, r.cert.NotAfter.Format(time.RFC3339))
	}
	tmpl := ocsp.Response{
		Status:       ocsp.Good,
		SerialNumber: st.Serial,
		ThisUpdate:   thisUpdate,
		NextUpdate:   nextUpdate,
		Certificate:  r.cert,
	}
	if st.Revoked {
		if err := CheckReason(st.Reason); err != nil {
			return SignedOCSP{}, err
		}
		// Compared with now, not with thisUpdate (truncated to the minute),
		// so a revocation can be published the moment it happens.
		if st.RevokedAt.IsZero() || st.RevokedAt.After(now) {
			return SignedOCSP{}, errors.New("revocation time must be set and not in the future")
		}
		tmpl.Status = ocsp.Revoked
		tmpl.RevokedAt = st.RevokedAt.UTC().Truncate(time.Second)
		tmpl.RevocationReason = st.Reason
	}
	der, err := ocsp.CreateResponse(r.issuer, r.cert, tmpl, r.signer)
	if err != nil {
		return SignedOCSP{}, fmt.Errorf("signing OCSP response for %s: %w", r.issuerID, err)
	}
	return SignedOCSP{DER: der, ThisUpdate: thisUpdate, NextUpdate: nextUpdate}, nil
}

// OCSPIndex matches request CertIDs to issuers by issuer name and key
// hash. It needs only CA certificates, so the HTTP front end (which holds
// no keys) can use it.
type OCSPIndex struct {
	entries []ocspIndexEntry
}

type ocspIndexEntry struct {
	id       string
	nameHash map[crypto.Hash][]byte
	keyHash  map[crypto.Hash][]byte
}

// ocspHashes are the CertID hashes x/crypto/ocsp parses.
var ocspHashes = []crypto.Hash{crypto.SHA1, crypto.SHA256, crypto.SHA384, crypto.SHA512}

// NewOCSPIndex indexes issuer certificates by ID.
func NewOCSPIndex(issuers map[string]*x509.Certificate) (*OCSPIndex, error) {
	x := &OCSPIndex{}
	for id, c := range issuers {
		var spki struct {
			Algorithm asn1.RawValue
			PublicKey asn1.BitString
		}
		if _, err := asn1.Unmarshal(c.RawSubjectPublicKeyInfo, &spki); err != nil {
			return nil, fmt.Errorf("issuer %s: %w", id, err)
		}
		e := ocspIndexEntry{id: id, nameHash: map[crypto.Hash][]byte{}, keyHash: map[crypto.Hash][]byte{}}
		for _, h := range ocspHashes {
			hn := h.New()
			hn.Write(c.RawSubject)
			e.nameHash[h] = hn.Sum(nil)
			hk := h.New()
			hk.Write(spki.PublicKey.RightAlign())
			e.keyHash[h] = hk.Sum(nil)
		}
		x.entries = append(x.entries, e)
	}
	return x, nil
}

// Match returns the issuer ID of the request's CertID.
func (x *OCSPIndex) Match(req *ocsp.Request) (string, bool) {
	for _, e := range x.entries {
		if bytes.Equal(e.nameHash[req.HashAlgorithm], req.IssuerNameHash) && bytes.Equal(e.keyHash[req.HashAlgorithm], req.IssuerKeyHash) {
			return e.id, true
		}
	}
	return "", false
}

// OCSPLookup returns the signed response for a serial of an issuer, or
// ErrNotIssued. The front end implements it over stored, pre-signed
// responses.
type OCSPLookup interface {
	OCSPResponse(ctx context.Context, issuerID string, serial *big.Int) ([]byte, error)
}

// RespondOCSP answers one DER OCSP request. It always returns response
// bytes to send (with HTTP 200, as RFC 6960 requires for error statuses
// too); the error, if any, is for logging only:
//   - unparsable request → malformedRequest;
//   - unknown issuer or serial (ErrNotIssued) → unauthorized, never good;
//   - lookup failure → internalError (the client will retry).
func RespondOCSP(ctx context.Context, reqDER []byte, index *OCSPIndex, lookup OCSPLookup) ([]byte, error) {
	req, err := ocsp.ParseRequest(reqDER)
	if err != nil {
		return ocsp.MalformedRequestErrorResponse, fmt.Errorf("malformed OCSP request: %w", err)
	}
	id, ok := index.Match(req)
	if !ok {
		return ocsp.UnauthorizedErrorResponse, nil
	}
	resp, err := lookup.OCSPResponse(ctx, id, req.SerialNumber)
	if errors.Is(err, ErrNotIssued) {
		return ocsp.UnauthorizedErrorResponse, nil
	}
	if err != nil {
		return ocsp.InternalErrorErrorResponse, fmt.Errorf("OCSP lookup for issuer %s: %w", id, err)
	}
	return resp, nil
}
