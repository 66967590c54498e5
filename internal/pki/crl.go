package pki

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"
	"time"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// RFC 5280 CRLReason codes.
const (
	ReasonUnspecified          = 0
	ReasonKeyCompromise        = 1
	ReasonCACompromise         = 2
	ReasonAffiliationChanged   = 3
	ReasonSuperseded           = 4
	ReasonCessationOfOperation = 5
	ReasonCertificateHold      = 6
	ReasonRemoveFromCRL        = 8
	ReasonPrivilegeWithdrawn   = 9
	ReasonAACompromise         = 10
)

// allowedReasons are the codes BR §7.2.2 allows in subscriber CRLs and
// OCSP (O13); 0 is allowed but printed as "no reasonCode extension".
var allowedReasons = [11]bool{
	ReasonUnspecified: true, ReasonKeyCompromise: true, ReasonAffiliationChanged: true,
	ReasonSuperseded: true, ReasonCessationOfOperation: true, ReasonPrivilegeWithdrawn: true,
}

// CheckReason refuses reason codes the BR do not allow (2 cACompromise, 6
// certificateHold, 8 removeFromCRL, 10 aACompromise, unknown values).
func CheckReason(code int) error {
	if code < 0 || code >= len(allowedReasons) || !allowedReasons[code] {
		return fmt.Errorf("revocation reason %d is not allowed (BR 7.2.2: only 0 unspecified, 1 keyCompromise, 3 affiliationChanged, 4 superseded, 5 cessationOfOperation, 9 privilegeWithdrawn; certificateHold is never used)", code)
	}
	return nil
}

// Limits on CRL validity (BR §4.9.7 / §7.2).
const (
	DefaultCRLValidity = 7 * Day
	MaxCRLValidity     = 10 * Day  // CRLs covering subscriber certificates
	MaxCACRLValidity   = 365 * Day // CRLs covering CA certificates (root)
)

// CRLEntry is one revoked certificate.
type CRLEntry struct {
	Serial    *big.Int  `json:"serial"`
	RevokedAt time.Time `json:"revoked_at"`
	// Reason is the RFC 5280 CRLReason; 0 (unspecified) is encoded by
	// omitting the reasonCode entry extension, as BR 7.2.2 requires.
	Reason int `json:"reason,omitempty"`
}

// CRLRequest asks for one shard of the issuer's CRL.
type CRLRequest struct {
	// Shard is 0..CRLShards-1; every entry must belong to it
	// (ShardFor(serial) == Shard).
	Shard int
	// Number is the CRLNumber. The caller persists it and guarantees it is
	// strictly greater than any number used before for this issuer and
	// shard (O14), e.g. a per-issuer counter incremented in the database
	// before signing, or ThisUpdate in nanoseconds. ≤ 20 octets.
	Number *big.Int
	// ThisUpdate is fixed by the caller (so a retry is identical apart from
	// the signature); NextUpdate 0 means ThisUpdate + 7 days, at most 10.
	ThisUpdate time.Time
	NextUpdate time.Time
	// Entries need not be sorted; they must be unique.
	Entries []CRLEntry
}

// lintSampleSize is how many entries the lint CRL carries. Linting the
// whole CRL would triple the cost of a 100,000-entry shard (DESIGN target:
// ≤ 1.2× a raw x509.CreateRevocationList); zlint's CRL lints check the
// structure, the extensions and per-entry encodings, which are identical
// for every entry, and the per-entry rules (reason codes, dates, shard,
// uniqueness) are enforced on every entry by CRL itself.
const lintSampleSize = 8

// CRL signs one shard of the issuer's CRL. With more than one shard the
// CRL carries a critical Issuing Distribution Point naming the shard URL
// (the URL printed in the certificates of that shard) and
// onlyContainsUserCerts; with one shard (and for the root) it is a full
// CRL without IDP, as BR 7.2.2 requires. It refuses reason codes outside BR
// 7.2.2, entries of another shard, duplicates, revocation times after
// thisUpdate and nextUpdate beyond 10 days (12 months for a root).
func (i *Issuer) CRL(ctx context.Context, req *CRLRequest) ([]byte, error) {
	if req.Shard < 0 || req.Shard >= i.shards {
		return nil, fmt.Errorf("shard %d out of range: issuer %s has %d shards", req.Shard, i.id, i.shards)
	}
	if req.Number == nil || req.Number.Sign() <= 0 || len(req.Number.Bytes()) > 20 {
		return nil, errors.New("CRLNumber must be a positive integer of at most 20 octets, strictly increasing per shard (store it before signing)")
	}
	if req.ThisUpdate.IsZero() {
		return nil, errors.New("ThisUpdate is zero; set it (and store it with the CRL number) before signing")
	}
	thisUpdate := req.ThisUpdate.UTC().Truncate(time.Second)
	nextUpdate := req.NextUpdate.UTC().Truncate(time.Second)
	if req.NextUpdate.IsZero() {
		nextUpdate = thisUpdate.Add(DefaultCRLValidity)
	}
	limit := MaxCRLValidity
	if i.root {
		limit = MaxCACRLValidity
	}
	if !nextUpdate.After(thisUpdate) || nextUpdate.Sub(thisUpdate) > limit {
		return nil, fmt.Errorf("nextUpdate must be after thisUpdate and at most %.0f days later (BR 4.9.7); got %v", limit.Hours()/24, nextUpdate.Sub(thisUpdate))
	}
	if thisUpdate.Before(i.cert.NotBefore) || thisUpdate.After(i.cert.NotAfter) {
		return nil, fmt.Errorf("thisUpdate %s is outside the validity of issuer %s", thisUpdate.Format(time.RFC3339), i.id)
	}

	// One pass over the entries, allocation-free apart from the output
	// slice and the duplicate set, so the cost stays a small fraction of
	// x509's per-entry encoding.
	entries := make([]x509.RevocationListEntry, len(req.Entries))
	seen := make(map[[20]byte]struct{}, len(req.Entries))
	var key [20]byte
	var sample []x509.RevocationListEntry
	var reasonSampled [len(allowedReasons)]bool
	for n := range req.Entries {
		e := &req.Entries[n]
		if e.Serial == nil || e.Serial.Sign() <= 0 || e.Serial.BitLen() > 160 {
			return nil, fmt.Errorf("CRL entry %d: serial must be a positive integer of at most 20 octets", n)
		}
		if e.Reason < 0 || e.Reason >= len(allowedReasons) || !allowedReasons[e.Reason] {
			return nil, fmt.Errorf("CRL entry %d (serial %x): %w", n, e.Serial, CheckReason(e.Reason))
		}
		if i.shards > 1 && ShardFor(e.Serial, i.shards) != req.Shard {
			return nil, fmt.Errorf("CRL entry %d (serial %x) belongs to shard %d, not %d; select entries by shard", n, e.Serial, ShardFor(e.Serial, i.shards), req.Shard)
		}
		if e.RevokedAt.IsZero() || e.RevokedAt.After(thisUpdate) {
			return nil, fmt.Errorf("CRL entry %d (serial %x): revocation time must be set and not after thisUpdate", n, e.Serial)
		}
		e.Serial.FillBytes(key[:])
		if _, dup := seen[key]; dup {
			return nil, fmt.Errorf("CRL entry %d: serial %x listed twice", n, e.Serial)
		}
		seen[key] = struct{}{}
		entries[n] = x509.RevocationListEntry{SerialNumber: e.Serial, RevocationTime: e.RevokedAt.UTC(), ReasonCode: e.Reason}
		if len(sample) < lintSampleSize || !reasonSampled[e.Reason] {
			reasonSampled[e.Reason] = true
			sample = append(sample, entries[n])
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	tmpl := &x509.RevocationList{
		Number:     req.Number,
		ThisUpdate: thisUpdate,
		NextUpdate: nextUpdate,
	}
	// BR 7.2.2: a partitioned CRL carries the IDP; a full and complete CRL
	// (one shard, or the root's CRL) must not, and relying parties such as
	// OpenSSL then apply it to every certificate of the issuer.
	if i.shards > 1 {
		idp, err := issuingDistributionPoint(i.urls.CRL(i.id, req.Shard), i.root)
		if err != nil {
			return nil, err
		}
		tmpl.ExtraExtensions = []pkix.Extension{idp}
	}
	lintTmpl := *tmpl
	lintTmpl.RevokedCertificateEntries = sample
	if err := i.linter.RevocationList(&lintTmpl, i.root); err != nil {
		return nil, err
	}
	tmpl.RevokedCertificateEntries = entries
	der, err := x509.CreateRevocationList(rand.Reader, tmpl, i.cert, i.signer)
	if err != nil {
		return nil, fmt.Errorf("signing CRL of issuer %s shard %d: %w", i.id, req.Shard, err)
	}
	return der, nil
}

var oidIssuingDistributionPoint = asn1.ObjectIdentifier{2, 5, 29, 28}

// issuingDistributionPoint encodes RFC 5280 §5.2.5 with the shard URL as
// distributionPoint fullName, so a relying party can tell which shard a CRL
// is and match it with the certificate's CRL distribution point (BR 7.2.2
// requires the extension, critical, for partitioned CRLs).
func issuingDistributionPoint(url string, caCerts bool) (pkix.Extension, error) {
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		// distributionPoint [0] DistributionPointName (a CHOICE: explicit)
		b.AddASN1(cbasn1.Tag(0).ContextSpecific().Constructed(), func(b *cryptobyte.Builder) {
			// fullName [0] GeneralNames (implicit SEQUENCE OF GeneralName)
			b.AddASN1(cbasn1.Tag(0).ContextSpecific().Constructed(), func(b *cryptobyte.Builder) {
				// uniformResourceIdentifier [6] IA5String (implicit)
				b.AddASN1(cbasn1.Tag(6).ContextSpecific(), func(b *cryptobyte.Builder) {
					b.AddBytes([]byte(url))
				})
			})
		})
		if caCerts {
			// onlyContainsCACerts [2] BOOLEAN
			b.AddASN1(cbasn1.Tag(2).ContextSpecific(), func(b *cryptobyte.Builder) { b.AddUint8(0xff) })
		} else {
			// onlyContainsUserCerts [1] BOOLEAN
			b.AddASN1(cbasn1.Tag(1).ContextSpecific(), func(b *cryptobyte.Builder) { b.AddUint8(0xff) })
		}
	})
	v, err := b.Bytes()
	if err != nil {
		return pkix.Extension{}, err
	}
	return pkix.Extension{Id: oidIssuingDistributionPoint, Critical: true, Value: v}, nil
}
