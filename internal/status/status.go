// Package status is the one vocabulary of application and certificate
// statuses: the store persists them (the schema's CHECK constraints list the
// same words), the workflows move applications through them and publish them
// as the CaseStatus search attribute, and the API reports them.
package status

// Application statuses, in the order an application normally moves.
const (
	AppReceived          = "received"
	AppValidating        = "validating"
	AppVerifyingIdentity = "verifying_identity"
	AppAwaitingReview    = "awaiting_review"
	AppIssuing           = "issuing"
	AppIssued            = "issued"
	AppRejected          = "rejected"
	AppWithdrawn         = "withdrawn"
	AppExpired           = "expired"
	AppFailed            = "failed"
)

// AppTerminal reports whether an application in status s is finished: no
// transition leaves it.
func AppTerminal(s string) bool {
	switch s {
	case AppIssued, AppRejected, AppWithdrawn, AppExpired, AppFailed:
		return true
	}
	return false
}

// Certificate statuses. A revoked certificate never becomes valid again
// (the schema's trigger refuses it).
const (
	CertValid   = "valid"
	CertRevoked = "revoked"
)

// OCSP answer statuses as stored (RFC 6960 certStatus; "unknown" is never
// stored: it is the answer for a serial CertDesk did not issue).
const (
	OCSPGood    = "good"
	OCSPRevoked = "revoked"
)
