package activities

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"regexp"
	"strings"
	"time"

	"certdesk/internal/disclosure"
	"certdesk/internal/mailer"
	"certdesk/internal/store"
)

// ArmLinkInput arms a request's download link. Only the token's hash comes
// here; the token itself goes only into the email to the requester.
type ArmLinkInput struct {
	RequestID string
	TokenHash string // keyed digest (SendDisclosureLink), or store.HashLinkToken(token) before it
	ExpiresAt time.Time
	Downloads int
}

// ArmLinkResult tells the workflow where downloads are served.
type ArmLinkResult struct {
	DownloadBaseURL string // the token is appended
}

var tokenHashRE = regexp.MustCompile(`^[0-9a-f]{64}$`)

// ArmDisclosureLink stores the link's token hash, expiry and allowance.
// Retry-safe: the same link again is a no-op.
func (a *Activities) ArmDisclosureLink(ctx context.Context, in ArmLinkInput) (ArmLinkResult, error) {
	if !tokenHashRE.MatchString(in.TokenHash) || in.Downloads <= 0 || in.ExpiresAt.IsZero() {
		return ArmLinkResult{}, nonRetryable(ErrTypeInvalid, "disclosure link: token hash, expiry and a positive download count are required", nil)
	}
	if ref, err := a.Store.DisclosurePackageRef(ctx, in.RequestID); err != nil {
		return ArmLinkResult{}, storeErr(err, "disclosure request "+in.RequestID)
	} else if ref == "" {
		return ArmLinkResult{}, nonRetryable(ErrTypeInvalid, "disclosure request "+in.RequestID+" has no signed package to link to", nil)
	}
	if err := a.Store.SetDisclosureLink(ctx, in.RequestID, in.TokenHash, in.ExpiresAt, in.Downloads); err != nil {
		return ArmLinkResult{}, storeErr(err, "disclosure request "+in.RequestID)
	}
	if err := a.audit(ctx, "system", "disclosure.link_armed", "disclosure:"+in.RequestID,
		map[string]any{"expires_at": in.ExpiresAt.UTC().Format(time.RFC3339), "downloads": in.Downloads}); err != nil {
		return ArmLinkResult{}, err
	}
	return ArmLinkResult{DownloadBaseURL: strings.TrimRight(a.Config.PublicBaseURL, "/") + "/v1/disclosures/"}, nil
}

// DeliverNothingInput sends the signed "nothing held" answer.
type DeliverNothingInput struct {
	RequestID      string
	IdempotencyKey string
}

var unsafeName = regexp.MustCompile(`[^0-9A-Za-z._-]`)

// DeliverDisclosureNothing emails disclosure_nothing_held to the requester
// with the signed statement attached (JSON and its detached CMS signature),
// so the "no data" answer is as verifiable as a package. The address and
// the statement are read here, not carried through workflow history.
func (a *Activities) DeliverDisclosureNothing(ctx context.Context, in DeliverNothingInput) (NotifyResult, error) {
	req, err := a.Store.GetDisclosureRequest(ctx, in.RequestID)
	if err != nil {
		return NotifyResult{}, storeErr(err, "disclosure request "+in.RequestID)
	}
	if req.PackageRef == "" {
		return NotifyResult{}, nonRetryable(ErrTypeInvalid, "disclosure request "+in.RequestID+" has no signed answer", nil)
	}
	pkg, err := a.Store.GetDisclosurePackage(ctx, req.PackageRef)
	if err != nil {
		return NotifyResult{}, storeErr(err, "disclosure package of "+in.RequestID)
	}
	name := "disclosure-" + unsafeName.ReplaceAllString(in.RequestID, "_") + ".json"
	return a.Notify(ctx, NotifyInput{
		Recipient: Recipient{Email: req.Email},
		Message: mailer.Message{Notice: mailer.DisclosureNothing, Data: mailer.DisclosureNothingData{RequestID: in.RequestID},
			IdempotencyKey: in.IdempotencyKey, Attachments: []mailer.Attachment{
				{Name: name, ContentType: "application/json", Data: pkg.JSON},
				{Name: name + ".p7s", ContentType: "application/pkcs7-signature", Data: pkg.SignatureDER},
			}},
	})
}

// DisclosureDeliveryInput records that the answer reached the requester.
type DisclosureDeliveryInput struct {
	RequestID   string
	WorkflowID  string
	Method      string   // electronic or paper
	PersonRefs  []string // subscriber ids disclosed about (none: nothing held)
	DataItems   []string
	DeliveredAt time.Time
	StaffID     string // paper: who printed and mailed it
	Reason      string // state reason, no personal data
}

// RecordDisclosureDelivery writes the disclosure into the provision ledger
// (one record per person disclosed about: recipient the data subject, legal
// basis APPI Art. 33), logs staff access for a paper delivery (staff read
// the data to print it, O8) and marks the request delivered. Idempotent.
func (a *Activities) RecordDisclosureDelivery(ctx context.Context, in DisclosureDeliveryInput) error {
	for _, person := range in.PersonRefs {
		if len(in.DataItems) == 0 {
			break
		}
		if err := a.Store.RecordProvision(ctx, store.Provision{
			ID: in.WorkflowID + "/provision/" + person, ProvidedAt: in.DeliveredAt, RecipientKind: "requester",
			RecipientRef: "data-subject (disclosure " + in.RequestID + ")", PersonRef: person, DataItems: in.DataItems,
			LegalBasis: disclosure.ProvisionNote, ContextRef: in.WorkflowID,
		}); err != nil {
			return storeErr(err, "provision record")
		}
		if in.StaffID != "" {
			if err := a.Store.RecordStaffAccess(ctx, store.StaffAccess{
				EventKey: in.WorkflowID + "/paper/" + person, StaffID: in.StaffID, PersonRef: person,
				Purpose: "print and mail disclosure " + in.RequestID, Channel: "paper delivery", AccessedAt: in.DeliveredAt,
			}); err != nil {
				return err
			}
		}
	}
	if err := a.Store.SetDisclosureState(ctx, in.RequestID, store.DisclosureDelivered, in.Reason); err != nil {
		return storeErr(err, "disclosure request "+in.RequestID)
	}
	actor := "system"
	if in.StaffID != "" {
		actor = "staff:" + in.StaffID
	}
	return a.audit(ctx, actor, "disclosure.delivered", "disclosure:"+in.RequestID,
		map[string]any{"method": in.Method, "persons": len(in.PersonRefs), "items": in.DataItems})
}

// NewLinkToken draws a download-link token (256 random bits, URL-safe).
// Only disclosures from before the disclosure-secret-in-activity change
// call it (inside SideEffect); newer ones use SendDisclosureLink, which
// keeps the token out of workflow history.
func NewLinkToken() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// LinkTokenHash is what the store keeps for a link token.
func LinkTokenHash(token string) string { return store.HashLinkToken(token) }
