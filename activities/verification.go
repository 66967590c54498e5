package activities

import (
	"context"
	"time"

	"certdesk/internal/challenge"
	"certdesk/internal/store"
)

// NewOneTimeCode draws a uniform 6-digit code from crypto/rand. Only
// verifications from before the verification-secret-in-activity change
// call it (inside SideEffect); newer ones use IssueChallenge, which keeps
// the code out of workflow history.
func NewOneTimeCode() string { return challenge.NewCode() }

// NewMailboxValue draws the Random Value that proves control of a
// client-sign mailbox (S/MIME BR §3.2.2.1: 128 bits, valid 24 hours), for
// verifications from before IssueChallenge, as NewOneTimeCode.
func NewMailboxValue() string { return challenge.NewMailboxValue() }

// RegistryQuery asks the organisation registry about an applicant.
type RegistryQuery struct {
	Organization string
	Country      string
}

// RegistryResult is what the registry said; no personal data.
type RegistryResult struct {
	Found      bool
	RegistryID string
	Status     string
}

// LookupOrganization checks the organisation in the registry (BR §3.2.2.1).
func (a *Activities) LookupOrganization(ctx context.Context, q RegistryQuery) (RegistryResult, error) {
	if a.Registry == nil {
		return RegistryResult{}, nonRetryable(ErrTypeInvalid, "no organisation registry configured (CERTDESK_REGISTRY_FILE)", nil)
	}
	r, ok, err := a.Registry.Find(ctx, q.Organization, q.Country)
	if err != nil {
		return RegistryResult{}, err
	}
	return RegistryResult{Found: ok, RegistryID: r.RegistryID, Status: r.Status}, nil
}

// VerificationRecord is the outcome of one identity verification.
type VerificationRecord struct {
	VerificationID string
	Purpose        string // application or disclosure
	CaseRef        string
	SubjectRef     string
	Result         string // verified, refused, locked, code_expired, expired
	Reason         string
	Evidence       string
	DecidedBy      string
	Attempts       int
	Locked         bool
}

// RecordVerification stores the result and its evidence reference and
// audits it. Idempotent by verification id.
func (a *Activities) RecordVerification(ctx context.Context, in VerificationRecord) error {
	method := "email-otp"
	if in.DecidedBy != "" {
		method = "document" // staff saw the documents after the code
	}
	if err := a.Store.CreateVerification(ctx, store.Verification{
		ID: in.VerificationID, SubjectKind: in.Purpose, SubjectRef: in.CaseRef, Method: method,
		Result: "pending", WorkflowID: "verification/" + in.VerificationID,
	}); err != nil {
		return storeErr(err, "verification")
	}
	if err := a.Store.RecordVerificationAttempts(ctx, in.VerificationID, in.Attempts, in.Locked); err != nil {
		return storeErr(err, "verification")
	}
	result, by := "failed", in.DecidedBy
	if in.Result == "verified" {
		result = "passed"
	}
	if by == "" {
		by = "system"
	}
	if err := a.Store.DecideVerification(ctx, in.VerificationID, result, by, in.Evidence, time.Now()); err != nil {
		return storeErr(err, "verification")
	}
	return a.audit(ctx, actorOf(by), "verification."+in.Result, "verification:"+in.VerificationID,
		map[string]any{"purpose": in.Purpose, "case": in.CaseRef, "attempts": in.Attempts})
}

func actorOf(by string) string {
	if by == "system" {
		return by
	}
	return "staff:" + by
}
