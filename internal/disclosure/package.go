// Package disclosure builds the answer to a disclosure request (APPI
// Art. 33, O6): it gathers everything held about the requester from a
// Source, and renders the package as the JSON the CA signs and as a
// readable HTML summary. It does no storage of its own, so it is tested
// without a database.
package disclosure

import (
	"sort"
	"time"
)

// Format names the package's JSON layout.
const Format = "certdesk-disclosure/1"

// Package categories: the keys of Counts and of a package's JSON lists.
const (
	ItemSubscribers        = "subscriber_records"
	ItemApplications       = "applications"
	ItemCertificates       = "certificates"
	ItemCorrections        = "corrections"
	ItemRevocations        = "revocations"
	ItemEmails             = "emails"
	ItemProvisions         = "third_party_provisions"
	ItemStaffAccess        = "staff_access"
	ItemInquiries          = "inquiries"
	ItemDisclosureRequests = "previous_disclosure_requests"
)

const (
	controller = "CertDesk Certification Authority (CertDesk 認証局)"
	legalBasis = "APPI Art. 33 (個人情報の保護に関する法律第33条)"
	// ProvisionNote is the legal basis recorded in the provision ledger
	// when a package reaches the data subject.
	ProvisionNote = "APPI Art. 33: disclosure to the data subject at their request (個人情報の保護に関する法律第33条に基づく本人への開示)"
)

// The statements at the top of a package: nothing held, or everything held.
const (
	nothingJA = "当局は、ご請求者様ご本人に関する保有個人データを保有しておりません（個人情報の保護に関する法律第33条に基づく回答）。"
	nothingEN = "CertDesk holds no retained personal data about the requester (answer under Article 33 of the Act on the Protection of Personal Information)."
	allJA     = "本書は、個人情報の保護に関する法律第33条に基づき、ご請求者様ご本人に関して当局が保有する個人データの全てを開示するものです。"
	allEN     = "This package discloses all personal data CertDesk holds about the requester, under Article 33 of the Act on the Protection of Personal Information."
)

// Package is the JSON document a requester receives. Every list
// is present (possibly empty) so the absence of a category is explicit.
type Package struct {
	Format      string    `json:"format"`
	RequestID   string    `json:"request_id"`
	ReceivedAt  time.Time `json:"received_at"`
	CompiledAt  time.Time `json:"compiled_at"`
	Controller  string    `json:"controller"`
	LegalBasis  string    `json:"legal_basis"`
	NothingHeld bool      `json:"nothing_held"`
	StatementJA string    `json:"statement_ja"`
	StatementEN string    `json:"statement_en"`

	Subscribers          []Subscriber  `json:"subscriber_records"`
	Applications         []Application `json:"applications"`
	Certificates         []Certificate `json:"certificates"`
	Corrections          []Correction  `json:"corrections"`
	Revocations          []Revocation  `json:"revocations"`
	Emails               []Email       `json:"emails"`
	ThirdPartyProvisions []Provision   `json:"third_party_provisions"`
	StaffAccess          []Access      `json:"staff_access"`
	Inquiries            []Inquiry     `json:"inquiries"`
	DisclosureRequests   []Request     `json:"previous_disclosure_requests"`

	// Withheld counts, per category, the records found by the address
	// whose name or phone number did not match the request's (see
	// Matches). For the staff check only: never part of the package the
	// requester receives, which must not hint at another person's data.
	Withheld map[string]int `json:"-"`
}

// Subscriber is one subscriber record.
type Subscriber struct {
	ID           string    `json:"id"`
	ResellerID   string    `json:"reseller_id"`
	Organization string    `json:"organization,omitempty"`
	Name         string    `json:"name"`
	Email        string    `json:"email"`
	Phone        string    `json:"phone,omitempty"`
	Address      string    `json:"address,omitempty"`
	Country      string    `json:"country,omitempty"`
	CreatedAt    time.Time `json:"created_at"`
	UpdatedAt    time.Time `json:"updated_at"`
}

// Application is one certificate application.
type Application struct {
	ID                 string     `json:"id"`
	SubscriberID       string     `json:"subscriber_id"`
	ResellerID         string     `json:"reseller_id"`
	Product            string     `json:"product"`
	Domains            []string   `json:"domains"`
	ValidityDays       int        `json:"validity_days"`
	TermsVersion       string     `json:"terms_version"`
	AttestedAt         time.Time  `json:"attested_at"`
	Status             string     `json:"status"`
	StatusReason       string     `json:"status_reason,omitempty"`
	CertificateSerial  string     `json:"certificate_serial,omitempty"`
	VerificationMethod string     `json:"verification_method,omitempty"`
	VerificationResult string     `json:"verification_result,omitempty"`
	VerifiedAt         *time.Time `json:"verification_decided_at,omitempty"`
	CSRPEM             string     `json:"csr_pem"`
	CreatedAt          time.Time  `json:"created_at"`
}

// Certificate is one certificate.
type Certificate struct {
	Serial         string     `json:"serial"`
	SubscriberID   string     `json:"subscriber_id"`
	Issuer         string     `json:"issuer"`
	Product        string     `json:"product"`
	Status         string     `json:"status"`
	NotBefore      time.Time  `json:"not_before"`
	NotAfter       time.Time  `json:"not_after"`
	RevokedAt      *time.Time `json:"revoked_at,omitempty"`
	CertificatePEM string     `json:"certificate_pem"`
}

// Correction is one correction of a certificate's data.
type Correction struct {
	ID               string            `json:"id"`
	Serial           string            `json:"serial"`
	ResellerID       string            `json:"reseller_id"`
	OldValues        map[string]string `json:"old_values"`
	NewValues        map[string]string `json:"new_values"`
	Classification   string            `json:"classification"`
	Status           string            `json:"status"`
	RevocationSerial string            `json:"revocation_serial,omitempty"`
	NewApplicationID string            `json:"new_application_id,omitempty"`
	CreatedAt        time.Time         `json:"created_at"`
}

// Revocation is one revocation (or open request).
type Revocation struct {
	Serial          string     `json:"serial"`
	ReasonCode      int        `json:"reason_code"`
	Reason          string     `json:"reason"`
	RequestedByKind string     `json:"requested_by_kind"`
	RequestedAt     time.Time  `json:"requested_at"`
	RevokedAt       *time.Time `json:"revoked_at,omitempty"`
}

// Email is one notice sent (or attempted) to the person.
type Email struct {
	Notice    string     `json:"notice"`
	Status    string     `json:"status"`
	CreatedAt time.Time  `json:"created_at"`
	SentAt    *time.Time `json:"sent_at,omitempty"`
}

// Provision is one provision to a third party (O7).
type Provision struct {
	ID            string    `json:"id"`
	ProvidedAt    time.Time `json:"provided_at"`
	RecipientKind string    `json:"recipient_kind"`
	RecipientRef  string    `json:"recipient"`
	PersonRef     string    `json:"person_ref"`
	DataItems     []string  `json:"data_items"`
	LegalBasis    string    `json:"legal_basis"`
}

// Access is one access by staff to the person's data (O8).
type Access struct {
	StaffID    string    `json:"staff_id"`
	PersonRef  string    `json:"person_ref"`
	Purpose    string    `json:"purpose"`
	Channel    string    `json:"channel"`
	AccessedAt time.Time `json:"accessed_at"`
}

// Inquiry is one inquiry, complaint or stop request.
type Inquiry struct {
	ID         string     `json:"id"`
	Kind       string     `json:"kind"`
	Body       string     `json:"body"`
	Status     string     `json:"status"`
	Answer     string     `json:"answer,omitempty"`
	StopStatus string     `json:"stop_status,omitempty"`
	CreatedAt  time.Time  `json:"created_at"`
	AnsweredAt *time.Time `json:"answered_at,omitempty"`
}

// Request is an earlier disclosure request.
type Request struct {
	ID          string     `json:"id"`
	Name        string     `json:"name,omitempty"`
	Delivery    string     `json:"delivery_method"`
	State       string     `json:"state"`
	ReceivedAt  time.Time  `json:"received_at"`
	DeliveredAt *time.Time `json:"delivered_at,omitempty"`
}

// Counts is the number of records per category.
func (p *Package) Counts() map[string]int {
	return map[string]int{
		ItemSubscribers: len(p.Subscribers), ItemApplications: len(p.Applications), ItemCertificates: len(p.Certificates),
		ItemCorrections: len(p.Corrections), ItemRevocations: len(p.Revocations), ItemEmails: len(p.Emails),
		ItemProvisions: len(p.ThirdPartyProvisions), ItemStaffAccess: len(p.StaffAccess), ItemInquiries: len(p.Inquiries),
		ItemDisclosureRequests: len(p.DisclosureRequests),
	}
}

// DataItems are the categories that hold at least one record, sorted: what
// the provision ledger records as disclosed.
func (p *Package) DataItems() []string {
	var out []string
	for item, n := range p.Counts() {
		if n > 0 {
			out = append(out, item)
		}
	}
	sort.Strings(out)
	return out
}
