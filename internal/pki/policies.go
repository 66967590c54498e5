package pki

import (
	"crypto/x509/pkix"
	"encoding/asn1"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Certificate policy OIDs.
var (
	// OIDDomainValidated and OIDOrganizationValidated are the CA/Browser
	// Forum reserved policy identifiers (BR §7.1.6.1).
	OIDDomainValidated       = asn1.ObjectIdentifier{2, 23, 140, 1, 2, 1}
	OIDOrganizationValidated = asn1.ObjectIdentifier{2, 23, 140, 1, 2, 2}
	// OIDSMIMEIndividualMultipurpose and OIDSMIMESponsorMultipurpose are
	// the S/MIME BR (§7.1.6.1) reserved OIDs of client-sign: a certificate
	// with id-kp-emailProtection and a mailbox is an S/MIME certificate,
	// and "multipurpose" admits clientAuth next to emailProtection.
	OIDSMIMEIndividualMultipurpose = asn1.ObjectIdentifier{2, 23, 140, 1, 5, 4, 2}
	OIDSMIMESponsorMultipurpose    = asn1.ObjectIdentifier{2, 23, 140, 1, 5, 3, 2}

	oidCertificatePolicies = asn1.ObjectIdentifier{2, 5, 29, 32}
	oidAnyPolicy           = asn1.ObjectIdentifier{2, 5, 29, 32, 0}
	oidQualifierCPS        = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 2, 1}
	oidQualifierUserNotice = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 2, 2}
)

// DefaultLiabilityCapJPY is the per-certificate liability cap of the seed
// subscriber terms (DESIGN O16).
const DefaultLiabilityCapJPY = 1_000_000

// CAPolicy is the CA's own certificate policy (its CP/CPS), printed in the
// certificate policies extension of every certificate it issues (O16).
type CAPolicy struct {
	// OID identifies the CA's CP/CPS, under the CA's IANA private enterprise
	// number. Development setups may use the documentation arc
	// 1.3.6.1.4.1.32473 (RFC 5612).
	OID asn1.ObjectIdentifier
	// CPSURI is the http(s) URL of the CPS, printed as an id-qt-cps
	// qualifier (BR §7.1.2.7.9 allows only http/https here).
	CPSURI string
	// LiabilityCapJPY is the per-certificate liability cap; 0 means
	// DefaultLiabilityCapJPY.
	LiabilityCapJPY int64
	// NoticeText replaces the generated liability notice; at most 200
	// characters (RFC 5280 §4.2.1.4 DisplayText).
	NoticeText string
}

func (p CAPolicy) validate() error {
	if len(p.OID) < 2 {
		return fmt.Errorf("CA policy OID is not set; use the OID of your CP/CPS (your IANA PEN arc, or 1.3.6.1.4.1.32473.x for development)")
	}
	u, err := url.Parse(p.CPSURI)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("CPS URI %q must be an absolute http or https URL (BR 7.1.2.7.9)", p.CPSURI)
	}
	if p.LiabilityCapJPY < 0 {
		return fmt.Errorf("liability cap must not be negative")
	}
	if n := utf8.RuneCountInString(p.notice()); n > 200 {
		return fmt.Errorf("liability notice has %d characters; RFC 5280 limits explicitText to 200", n)
	}
	return nil
}

// LiabilityCap returns the effective per-certificate cap in JPY.
func (p CAPolicy) LiabilityCap() int64 {
	if p.LiabilityCapJPY == 0 {
		return DefaultLiabilityCapJPY
	}
	return p.LiabilityCapJPY
}

// notice is the explicitText of the user notice: Japanese first, then
// English, as the DESIGN asks of every subscriber-facing text.
func (p CAPolicy) notice() string {
	if p.NoticeText != "" {
		return p.NoticeText
	}
	amount := groupThousands(p.LiabilityCap())
	return fmt.Sprintf("本証明書1枚あたりの責任上限額は%s円です。Liability is limited to JPY %s per certificate; see the CPS.", amount, amount)
}

func groupThousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// ASN.1 shapes of RFC 5280 §4.2.1.4. Go's x509 can emit policy OIDs but no
// qualifiers, so the extension is encoded here and passed as an
// ExtraExtension.
type policyInformation struct {
	Policy     asn1.ObjectIdentifier
	Qualifiers []policyQualifierInfo `asn1:"optional,omitempty"`
}

type policyQualifierInfo struct {
	ID        asn1.ObjectIdentifier
	Qualifier asn1.RawValue
}

// userNotice omits noticeRef: RFC 5280 says conforming CAs SHOULD NOT use
// it, and explicitText is a UTF8String as RFC 5280 recommends.
type userNotice struct {
	ExplicitText string `asn1:"utf8"`
}

// policySpec is one policy of the extension.
type policySpec struct {
	OID        asn1.ObjectIdentifier
	CPSURI     string // "" = no id-qt-cps qualifier
	UserNotice string // "" = no id-qt-unotice qualifier
}

// certificatePoliciesExtension encodes the extension (non-critical, as the
// BR require).
func certificatePoliciesExtension(specs []policySpec) (pkix.Extension, error) {
	infos := make([]policyInformation, 0, len(specs))
	for _, s := range specs {
		pi := policyInformation{Policy: s.OID}
		if s.CPSURI != "" {
			v, err := asn1.MarshalWithParams(s.CPSURI, "ia5")
			if err != nil {
				return pkix.Extension{}, fmt.Errorf("encoding CPS URI: %w", err)
			}
			pi.Qualifiers = append(pi.Qualifiers, policyQualifierInfo{ID: oidQualifierCPS, Qualifier: asn1.RawValue{FullBytes: v}})
		}
		if s.UserNotice != "" {
			v, err := asn1.Marshal(userNotice{ExplicitText: s.UserNotice})
			if err != nil {
				return pkix.Extension{}, fmt.Errorf("encoding user notice: %w", err)
			}
			pi.Qualifiers = append(pi.Qualifiers, policyQualifierInfo{ID: oidQualifierUserNotice, Qualifier: asn1.RawValue{FullBytes: v}})
		}
		infos = append(infos, pi)
	}
	der, err := asn1.Marshal(infos)
	if err != nil {
		return pkix.Extension{}, err
	}
	return pkix.Extension{Id: oidCertificatePolicies, Value: der}, nil
}
