package activities

import (
	"context"
	"strings"
	"time"

	"certdesk/internal/challenge"
	"certdesk/internal/mailer"
	"certdesk/internal/store"
)

// ChallengeInput asks for a verification's value to be made and emailed.
// It names the case and the attempt; the value itself is derived inside
// the activity and never enters workflow history.
type ChallengeInput struct {
	VerificationID string
	Attempt        int            // 1 for the first value sent
	Kind           challenge.Kind // KindCode or KindMailbox
	Recipient      Recipient
	ExpiresAt      time.Time
	ExpiryMinutes  int // as the email states it
	MaxAttempts    int
	IdempotencyKey string // of the verification_code email
}

// ChallengeIssued is what the workflow keeps: a reference, not the value.
type ChallengeIssued struct {
	ExpiresAt     time.Time
	Undeliverable bool
}

// IssueChallenge derives the one-time code (or mailbox Random Value) of a
// verification attempt with the server's challenge key, stores its keyed
// digest and emails it. A retry derives the same value, stores the same
// digest and finds the email already sent: idempotent.
func (a *Activities) IssueChallenge(ctx context.Context, in ChallengeInput) (ChallengeIssued, error) {
	if in.VerificationID == "" || in.Attempt <= 0 || in.ExpiresAt.IsZero() || in.IdempotencyKey == "" ||
		(in.Kind != challenge.KindCode && in.Kind != challenge.KindMailbox) {
		return ChallengeIssued{}, nonRetryable(ErrTypeInvalid, "issue challenge: verification id, attempt, kind (code or mailbox), expiry and idempotency key are required", nil)
	}
	keys, err := challenge.FromBlindIndex(a.BlindIndex)
	if err != nil {
		return ChallengeIssued{}, nonRetryable(ErrTypeInvalid, err.Error(), nil)
	}
	value := keys.Value(in.Kind, in.VerificationID, in.Attempt)
	if err := a.Store.SaveChallenge(ctx, store.Challenge{VerificationID: in.VerificationID, Attempt: in.Attempt, Kind: in.Kind,
		Digest: keys.Digest(in.Kind, in.VerificationID, value), ExpiresAt: in.ExpiresAt}); err != nil {
		return ChallengeIssued{}, storeErr(err, "verification "+in.VerificationID)
	}
	res, err := a.Notify(ctx, NotifyInput{Recipient: in.Recipient, Message: mailer.Message{
		Notice: mailer.VerificationCode, IdempotencyKey: in.IdempotencyKey,
		Data: mailer.VerificationCodeData{Code: value, ExpiryMinutes: in.ExpiryMinutes,
			MaxAttempts: in.MaxAttempts, MailboxControl: in.Kind == challenge.KindMailbox},
	}})
	if err != nil {
		return ChallengeIssued{}, err
	}
	return ChallengeIssued{ExpiresAt: in.ExpiresAt, Undeliverable: res.Undeliverable}, nil
}

// CheckChallengeInput is a submitted value's keyed digest (the starter
// makes it with store.ChallengeDigest; the value stays out of history).
type CheckChallengeInput struct {
	VerificationID string
	Digest         string
}

// CheckChallengeResult says whether the digest is the value sent.
type CheckChallengeResult struct {
	Match bool
}

// CheckChallenge compares a submitted digest with the stored one in
// constant time. The workflow counts attempts and decides expiry; this
// only compares (and notes a match), so a retry answers the same.
func (a *Activities) CheckChallenge(ctx context.Context, in CheckChallengeInput) (CheckChallengeResult, error) {
	if !challenge.IsDigest(in.Digest) {
		return CheckChallengeResult{}, nonRetryable(ErrTypeInvalid, "check challenge: the digest is 64 hex characters", nil)
	}
	ok, err := a.Store.MatchChallenge(ctx, in.VerificationID, in.Digest)
	if err != nil {
		return CheckChallengeResult{}, storeErr(err, "verification "+in.VerificationID)
	}
	return CheckChallengeResult{Match: ok}, nil
}

// SendLinkInput arms and emails a disclosure's download link. The token
// is derived inside the activity; history holds only this reference.
type SendLinkInput struct {
	RequestID      string
	Attempt        int // 1 for the first link
	ExpiresAt      time.Time
	Downloads      int
	IdempotencyKey string // of the disclosure_ready email
}

// SendDisclosureLink derives the download token of a request's link with
// the challenge key, stores its keyed digest, expiry and allowance, and
// emails the link to the address on the request. A retry derives the same
// token, re-arms nothing and finds the email sent: idempotent.
func (a *Activities) SendDisclosureLink(ctx context.Context, in SendLinkInput) (NotifyResult, error) {
	if in.RequestID == "" || in.Attempt <= 0 || in.IdempotencyKey == "" {
		return NotifyResult{}, nonRetryable(ErrTypeInvalid, "disclosure link: request id, attempt and idempotency key are required", nil)
	}
	keys, err := challenge.FromBlindIndex(a.BlindIndex)
	if err != nil {
		return NotifyResult{}, nonRetryable(ErrTypeInvalid, err.Error(), nil)
	}
	token := keys.Value(challenge.KindLink, in.RequestID, in.Attempt)
	link, err := a.ArmDisclosureLink(ctx, ArmLinkInput{RequestID: in.RequestID, TokenHash: keys.Digest(challenge.KindLink, "", token),
		ExpiresAt: in.ExpiresAt, Downloads: in.Downloads})
	if err != nil {
		return NotifyResult{}, err
	}
	req, err := a.Store.GetDisclosureRequest(ctx, in.RequestID)
	if err != nil {
		return NotifyResult{}, storeErr(err, "disclosure request "+in.RequestID)
	}
	return a.Notify(ctx, NotifyInput{Recipient: Recipient{Email: req.Email}, Message: mailer.Message{
		Notice: mailer.DisclosureReady, IdempotencyKey: in.IdempotencyKey,
		Data: mailer.DisclosureReadyData{RequestID: in.RequestID, DownloadURL: strings.TrimRight(link.DownloadBaseURL, "/") + "/" + token,
			ExpiresAt: in.ExpiresAt},
	}})
}
