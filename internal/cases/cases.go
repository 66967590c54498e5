// Package cases names what staff search by: the custom search attributes every
// CertDesk workflow keeps current, and the case types. Search attributes never
// carry personal data: only types, statuses, reseller IDs, serials and times.
package cases

import "go.temporal.io/sdk/temporal"

// Search attribute keys registered on the Temporal namespace.
var (
	CaseType          = temporal.NewSearchAttributeKeyKeyword("CaseType")
	CaseStatus        = temporal.NewSearchAttributeKeyKeyword("CaseStatus")
	ResellerID        = temporal.NewSearchAttributeKeyKeyword("ResellerID")
	CertificateSerial = temporal.NewSearchAttributeKeyKeyword("CertificateSerial")
	DueAt             = temporal.NewSearchAttributeKeyTime("DueAt")
)

// SearchAttributeTypes maps each custom attribute to the type name the
// `temporal` CLI expects (`--search-attribute Name=Type`).
var SearchAttributeTypes = []struct{ Name, Type string }{
	{"CaseType", "Keyword"},
	{"CaseStatus", "Keyword"},
	{"ResellerID", "Keyword"},
	{"CertificateSerial", "Keyword"},
	{"DueAt", "Datetime"},
}

// Case types, also the first segment of every workflow ID.
const (
	TypeApplication    = "application"
	TypeVerification   = "verification"
	TypeCorrection     = "correction"
	TypeDisclosure     = "disclosure"
	TypeRevocation     = "revocation"
	TypeMassRevocation = "mass-revocation"
	TypeInquiry        = "inquiry"
	TypePolicyNotice   = "policy-notice"
	TypeSystemCheck    = "system-check"
)
