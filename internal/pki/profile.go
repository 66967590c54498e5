package pki

import (
	"crypto/x509"
	"encoding/asn1"
	"fmt"
	"sort"
	"time"

	"certdesk/internal/pki/goodkey"
	"certdesk/internal/pki/problem"
	"certdesk/internal/product"
)

// Product (profile) names, as sent by resellers (DESIGN workflow 1).
const (
	ProfileServerDV   = product.ServerDV
	ProfileServerOV   = product.ServerOV
	ProfileClientSign = product.ClientSign
	// Internal profiles, never accepted from a reseller.
	profileDocumentSigning = "document-signing"
	profileOCSPResponder   = "ocsp-responder"
)

// Day is 24 hours, the unit of the BR validity limits.
const Day = 24 * time.Hour

// Purpose says what a certificate is for; it decides which issuing CA may
// sign a profile and which name checks apply.
type Purpose string

// Purposes.
const (
	PurposeTLSServer  Purpose = "tls-server"
	PurposeClientSign Purpose = product.ClientSign
	// Internal purposes.
	PurposeDocumentSigning Purpose = "document-signing"
	PurposeOCSPResponder   Purpose = "ocsp-responder"
)

// SubjectRule says which subject attributes a profile prints.
type SubjectRule string

// Subject rules.
const (
	// SubjectDV: commonName only, equal to one of the validated domains
	// (BR §7.1.2.7.2 allows nothing else for DV).
	SubjectDV SubjectRule = "dv"
	// SubjectOV: C, ST and/or L, O, CN (BR §7.1.2.7.3).
	SubjectOV SubjectRule = "ov"
	// SubjectPerson: CN (the person), optional O, L, ST, C.
	SubjectPerson SubjectRule = "person"
	// SubjectCA: CN, O, C of the CA itself (internal profiles).
	SubjectCA SubjectRule = "ca"
)

// oidDocumentSigning is id-kp-documentSigning (RFC 9336).
var oidDocumentSigning = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 3, 36}

// oidOCSPNoCheck is id-pkix-ocsp-nocheck (RFC 6960 §4.2.2.2.1).
var oidOCSPNoCheck = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 48, 1, 5}

// Profile is a certificate profile as data.
type Profile struct {
	Name    string
	Purpose Purpose
	// Public profiles may be requested by resellers.
	Public bool

	KeyUsage           x509.KeyUsage
	ExtKeyUsage        []x509.ExtKeyUsage
	UnknownExtKeyUsage []asn1.ObjectIdentifier

	// MaxValidity caps the validity (notAfter − notBefore + 1 s, the BR
	// way of counting). For TLS the BR schedule may cap it further, see
	// MaxValidityAt. DefaultValidity applies when the request gives none.
	MaxValidity     time.Duration
	DefaultValidity time.Duration

	// BRPolicy is the CA/B Forum reserved policy OID, nil when no CA/B
	// requirements apply.
	BRPolicy asn1.ObjectIdentifier
	// SponsoredPolicy replaces BRPolicy when the subject names an
	// organisation (S/MIME BR sponsor-validated instead of
	// individual-validated).
	SponsoredPolicy asn1.ObjectIdentifier
	// LiabilityNotice prints the liability cap as an id-qt-unotice
	// qualifier of the CA policy. The BR (§7.1.2.7.9, since SC62, zlint
	// e_policy_qualifiers_other_than_cps_not_permitted) forbid any qualifier
	// but id-qt-cps in TLS certificates, so TLS profiles carry the CPS URI
	// only and the cap is stated in the CPS it points to.
	LiabilityNotice bool
	// Policies false omits the certificate policies extension (OCSP
	// responder certificates, BR §7.1.2.8: NOT RECOMMENDED).
	Policies bool
	// RevocationInfo false omits CRL distribution point and AIA (OCSP
	// responder certificates are never checked, they carry ocsp-nocheck).
	RevocationInfo bool
	// OCSPNoCheck adds id-pkix-ocsp-nocheck.
	OCSPNoCheck bool

	Keys    goodkey.Policy
	Subject SubjectRule
	// lintExclusions are zlint lints not run for this profile, by name,
	// each justified where the profile is defined.
	lintExclusions []string
}

// SC-081 schedule of the maximum TLS subscriber validity (BR §6.3.2). The
// values are one day below each limit, the figure zlint's warning lints and
// the ballot recommend, so that clock skew or rounding never breaches it.
var tlsValiditySchedule = []struct {
	from time.Time
	max  time.Duration
}{
	{time.Date(2029, 3, 15, 0, 0, 0, 0, time.UTC), 46 * Day},
	{time.Date(2027, 3, 15, 0, 0, 0, 0, time.UTC), 99 * Day},
	{time.Date(2026, 3, 15, 0, 0, 0, 0, time.UTC), 199 * Day},
	{time.Time{}, 397 * Day},
}

// TLSMaxValidityAt is the BR schedule's longest TLS subscriber validity
// for a notBefore of at (one day below the ballot's limit).
func TLSMaxValidityAt(at time.Time) time.Duration {
	for _, s := range tlsValiditySchedule {
		if !at.Before(s.from) {
			return s.max
		}
	}
	return tlsValiditySchedule[len(tlsValiditySchedule)-1].max
}

// MaxValidityAt returns the longest validity allowed for a certificate
// whose notBefore is at, combining the profile cap and, for TLS, the BR
// schedule.
func (p *Profile) MaxValidityAt(at time.Time) time.Duration {
	m := p.MaxValidity
	if p.Purpose == PurposeTLSServer {
		for _, s := range tlsValiditySchedule {
			if !at.Before(s.from) {
				if s.max < m {
					m = s.max
				}
				break
			}
		}
	}
	return m
}

// ProfileOptions tunes the built-in profiles.
type ProfileOptions struct {
	// ClientMaxValidity caps client-sign certificates; 0 means 825 days.
	ClientMaxValidity time.Duration
	// ClientDefaultValidity applies when a request gives none; 0 means
	// 365 days.
	ClientDefaultValidity time.Duration
	// TLSMaxValidity lowers the TLS cap below the BR schedule; 0 means the
	// schedule alone (199 days until 2027-03-15).
	TLSMaxValidity time.Duration
	// DocumentSigningValidity is the validity of the disclosure-signing
	// certificate; 0 means 397 days.
	DocumentSigningValidity time.Duration
	// OCSPResponderValidity is the validity of delegated OCSP responder
	// certificates; 0 means 30 days.
	OCSPResponderValidity time.Duration
}

// ProfileSet is the set of profiles an Issuer and CheckCSR know.
type ProfileSet struct {
	m map[string]*Profile
}

// DefaultProfiles is the built-in set with default options.
var DefaultProfiles = mustProfiles(ProfileOptions{})

func mustProfiles(o ProfileOptions) *ProfileSet {
	s, err := NewProfileSet(o)
	if err != nil {
		panic(err)
	}
	return s
}

// NewProfileSet builds the three public profiles and the two internal ones.
//
// Choices, with reasons:
//
//   - server-dv / server-ov: KU digitalSignature only, EKU serverAuth only.
//     keyEncipherment (RSA key transport) is obsolete with TLS 1.3 and only
//     "MAY" in BR §7.1.2.7.11; the Chrome Root Program requires dedicated
//     serverAuth hierarchies, so no clientAuth. RSA ≥ 2048 and ECDSA
//     P-256/P-384 keys; no Ed25519 (not allowed by the BR).
//   - client-sign: the e-signature certificate of the seed CA. KU
//     digitalSignature + contentCommitment (non-repudiation: the signature
//     is a legal e-signature), EKU clientAuth (login to e-government and
//     corporate systems) + emailProtection (signing S/MIME mail and, via
//     S/MIME tooling, documents). A document-signing EKU alone
//     (RFC 9336) is not yet understood by mail clients or by
//     `openssl cms`/`smime` defaults. Keys are RSA only, with SHA-2
//     signatures: the CP says subscriber signatures are RSA with
//     SHA-256/384/512 (O11). Validity up to 825 days (S/MIME BR maximum),
//     default 365. A certificate with emailProtection and a mailbox is an
//     S/MIME certificate, so the profile follows the S/MIME BR
//     "multipurpose" generation (clientAuth allowed): individual-validated
//     (2.23.140.1.5.4.2), or sponsor-validated (2.23.140.1.5.3.2) when the
//     subject names the subscriber's organisation; the subject carries the
//     personal name (surname/givenName) as the S/MIME BR require.
func NewProfileSet(o ProfileOptions) (*ProfileSet, error) {
	if o.ClientMaxValidity == 0 {
		o.ClientMaxValidity = 825 * Day
	}
	if o.ClientDefaultValidity == 0 {
		o.ClientDefaultValidity = 365 * Day
	}
	if o.DocumentSigningValidity == 0 {
		o.DocumentSigningValidity = 397 * Day
	}
	if o.OCSPResponderValidity == 0 {
		o.OCSPResponderValidity = 30 * Day
	}
	tlsMax := 397 * Day // the schedule lowers it; see MaxValidityAt
	if o.TLSMaxValidity != 0 {
		if o.TLSMaxValidity > tlsMax {
			return nil, fmt.Errorf("TLS maximum validity %v exceeds the BR limit", o.TLSMaxValidity)
		}
		tlsMax = o.TLSMaxValidity
	}
	if o.ClientDefaultValidity > o.ClientMaxValidity {
		return nil, fmt.Errorf("client default validity %v exceeds its maximum %v", o.ClientDefaultValidity, o.ClientMaxValidity)
	}
	if o.OCSPResponderValidity > 90*Day {
		// BR 4.9.9: short-lived, because a responder cert cannot be revoked
		// (it carries ocsp-nocheck).
		return nil, fmt.Errorf("OCSP responder validity %v is too long; keep it short (≤ 90 days, default 30)", o.OCSPResponderValidity)
	}
	tlsKeys := goodkey.Policy{AllowRSA: true, AllowP256: true, AllowP384: true, Purpose: "TLS server certificates"}
	profiles := []*Profile{
		{
			Name: ProfileServerDV, Purpose: PurposeTLSServer, Public: true,
			KeyUsage:    x509.KeyUsageDigitalSignature,
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
			MaxValidity: tlsMax, DefaultValidity: tlsMax,
			BRPolicy: OIDDomainValidated, Policies: true, RevocationInfo: true,
			Keys: tlsKeys, Subject: SubjectDV,
		},
		{
			Name: ProfileServerOV, Purpose: PurposeTLSServer, Public: true,
			KeyUsage:    x509.KeyUsageDigitalSignature,
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
			MaxValidity: tlsMax, DefaultValidity: tlsMax,
			BRPolicy: OIDOrganizationValidated, Policies: true, RevocationInfo: true,
			Keys: tlsKeys, Subject: SubjectOV,
		},
		{
			Name: ProfileClientSign, Purpose: PurposeClientSign, Public: true,
			KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageContentCommitment,
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageEmailProtection},
			MaxValidity: o.ClientMaxValidity, DefaultValidity: o.ClientDefaultValidity,
			BRPolicy:        OIDSMIMEIndividualMultipurpose,
			SponsoredPolicy: OIDSMIMESponsorMultipurpose,
			LiabilityNotice: true, Policies: true, RevocationInfo: true,
			Keys:    goodkey.Policy{AllowRSA: true, Purpose: "client e-signature certificates (CP: RSA with SHA-256/384/512)"},
			Subject: SubjectPerson,
		},
		{
			// Signs disclosure packages (DESIGN workflow 4). emailProtection
			// is what `openssl cms -verify` checks by default (purpose
			// smimesign); id-kp-documentSigning (RFC 9336) states the real
			// use for tools that know it.
			Name: profileDocumentSigning, Purpose: PurposeDocumentSigning,
			KeyUsage:           x509.KeyUsageDigitalSignature | x509.KeyUsageContentCommitment,
			ExtKeyUsage:        []x509.ExtKeyUsage{x509.ExtKeyUsageEmailProtection},
			UnknownExtKeyUsage: []asn1.ObjectIdentifier{oidDocumentSigning},
			MaxValidity:        o.DocumentSigningValidity, DefaultValidity: o.DocumentSigningValidity,
			LiabilityNotice: true, Policies: true, RevocationInfo: true,
			Keys:    goodkey.Policy{AllowP256: true, AllowP384: true, AllowRSA: true, Purpose: "document signing"},
			Subject: SubjectCA,
		},
		{
			// BR §7.1.2.8 delegated OCSP responder: KU digitalSignature,
			// EKU id-kp-OCSPSigning only, ocsp-nocheck, no policies, no
			// revocation pointers, short validity.
			Name: profileOCSPResponder, Purpose: PurposeOCSPResponder,
			KeyUsage:    x509.KeyUsageDigitalSignature,
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageOCSPSigning},
			MaxValidity: o.OCSPResponderValidity, DefaultValidity: o.OCSPResponderValidity,
			OCSPNoCheck: true,
			Keys:        goodkey.Policy{AllowP256: true, Purpose: "OCSP responders"},
			Subject:     SubjectCA,
		},
	}
	s := &ProfileSet{m: map[string]*Profile{}}
	for _, p := range profiles {
		s.m[p.Name] = p
	}
	return s, nil
}

// ErrUnknownProfile refuses a product name the CA does not sell.
var ErrUnknownProfile = &problem.Kind{Code: "unknown-profile", Title: "unknown certificate profile"}

// Get returns a public profile by name.
func (s *ProfileSet) Get(name string) (*Profile, error) {
	p, ok := s.m[name]
	if !ok || !p.Public {
		return nil, problem.New(ErrUnknownProfile, "unknown product %q; use one of %v", name, s.Names())
	}
	return p, nil
}

func (s *ProfileSet) internal(name string) *Profile { return s.m[name] }

// Names lists the public profile names.
func (s *ProfileSet) Names() []string {
	var out []string
	for n, p := range s.m {
		if p.Public {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}
