package activities

import (
	"time"

	"certdesk/internal/mailer"
)

// Non-retryable application error types that workflows branch on.
const (
	ErrTypeCSRRejected   = "CSRRejected"
	ErrTypeNotAuthorized = "NotAuthorized"
	ErrTypeNotFound      = "NotFound"
	ErrTypeInvalid       = "InvalidInput"
)

// SubscriberData is what a reseller submits about the subscriber. It is
// personal data: it travels only in encrypted payloads and encrypted columns.
type SubscriberData struct {
	Organization string `json:"organization"`
	Name         string `json:"name"`
	Email        string `json:"email"`
	Phone        string `json:"phone"`
	Address      string `json:"address"`
	Country      string `json:"country"`
	Locality     string `json:"locality,omitempty"`
	Province     string `json:"province,omitempty"`
}

// Attestation is the applicant's declaration that the application is true
// (a false application is punishable) and the terms version accepted (O1).
type Attestation struct {
	TermsVersion string    `json:"terms_version"`
	Truthful     bool      `json:"truthful"`
	AttestedAt   time.Time `json:"attested_at"`
}

// Recipient names who receives a notice without putting an address in
// workflow history where a reference will do.
type Recipient struct {
	SubscriberID string // the subscriber's contact address
	ResellerID   string // the reseller's contact address
	Staff        bool   // CERTDESK_STAFF_EMAIL
	Email        string // an explicit address (a data subject before any record matches)
	// RefHint is the email-log reference to record with an explicit Email
	// (for example the subscriber it belongs to); empty: a blind index.
	RefHint string
}

// NotifyInput is one notice to one recipient. Message.To is filled in by the
// activity from Recipient; Message.IdempotencyKey must be set.
type NotifyInput struct {
	Recipient Recipient
	Message   mailer.Message
}

// NotifyResult says whether the message went out now or had already gone.
type NotifyResult struct {
	MessageID     string
	AlreadySent   bool
	Undeliverable bool // the SMTP server refused the recipient permanently
}
