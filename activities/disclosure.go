package activities

import (
	"context"
	"encoding/hex"
	"errors"
	"time"

	"certdesk/internal/disclosure"
	"certdesk/internal/store"
)

// DisclosureRequestInput is a disclosure request as received (O6).
type DisclosureRequestInput struct {
	RequestID     string
	Name          string
	Email         string
	Phone         string // given at application time: the second matching factor
	PostalAddress string
	Delivery      string // electronic or paper
	ReceivedAt    time.Time
	DueAt         time.Time
	WorkflowID    string
}

// RecordDisclosureRequest stores the request (personal data encrypted) and
// audits its receipt. Idempotent by request id.
func (a *Activities) RecordDisclosureRequest(ctx context.Context, in DisclosureRequestInput) error {
	if err := a.Store.CreateDisclosureRequest(ctx, store.DisclosureRequest{
		ID: in.RequestID, Name: in.Name, Email: in.Email, Phone: in.Phone, PostalAddress: in.PostalAddress,
		ReceivedAt: in.ReceivedAt, DueAt: in.DueAt, DeliveryMethod: in.Delivery, WorkflowID: in.WorkflowID,
	}); err != nil {
		return storeErr(err, "disclosure request "+in.RequestID)
	}
	return a.audit(ctx, "system", "disclosure.received", "disclosure:"+in.RequestID,
		map[string]any{"delivery": in.Delivery, "due_at": in.DueAt.UTC().Format(time.RFC3339)})
}

// DisclosureStateInput moves a request.
type DisclosureStateInput struct {
	RequestID      string
	State          string // received, verifying_identity, compiling, delivering, delivered, closed
	Reason         string // no personal data
	VerificationID string
	Actor          string // audit actor; default system
}

// SetDisclosureState records the state (absolute: retry-safe) and audits it.
func (a *Activities) SetDisclosureState(ctx context.Context, in DisclosureStateInput) error {
	if in.VerificationID != "" {
		if err := a.Store.SetDisclosureVerification(ctx, in.RequestID, in.VerificationID); err != nil {
			return storeErr(err, "disclosure request "+in.RequestID)
		}
	}
	if err := a.Store.SetDisclosureState(ctx, in.RequestID, in.State, in.Reason); err != nil {
		return storeErr(err, "disclosure request "+in.RequestID)
	}
	actor := in.Actor
	if actor == "" {
		actor = "system"
	}
	return a.audit(ctx, actor, "disclosure."+in.State, "disclosure:"+in.RequestID, map[string]any{"reason": in.Reason})
}

// DisclosurePauseInput stops or restarts the O6 clock.
type DisclosurePauseInput struct {
	RequestID string
	Reviewer  string
	Reason    string    // pause: why the requester is waited for; no personal data
	At        time.Time // pause: when the clock stopped
	DueAt     time.Time // resume: the due time moved by the paused time
	PausedFor time.Duration
}

// PauseDisclosure stops the clock while waiting for the requester (e.g. for
// identity documents), keeps the reason on the request and audits it.
func (a *Activities) PauseDisclosure(ctx context.Context, in DisclosurePauseInput) error {
	if err := a.Store.PauseDisclosure(ctx, in.RequestID, in.Reason, in.At); err != nil {
		return storeErr(err, "disclosure request "+in.RequestID)
	}
	return a.audit(ctx, actorOf(in.Reviewer), "disclosure.paused", "disclosure:"+in.RequestID,
		map[string]any{"reason": in.Reason, "at": in.At.UTC().Format(time.RFC3339)})
}

// ResumeDisclosure restarts the clock with the due time extended.
func (a *Activities) ResumeDisclosure(ctx context.Context, in DisclosurePauseInput) error {
	if err := a.Store.ResumeDisclosure(ctx, in.RequestID, in.DueAt); err != nil {
		return storeErr(err, "disclosure request "+in.RequestID)
	}
	return a.audit(ctx, actorOf(in.Reviewer), "disclosure.resumed", "disclosure:"+in.RequestID,
		map[string]any{"due_at": in.DueAt.UTC().Format(time.RFC3339), "paused_seconds": int64(in.PausedFor / time.Second)})
}

// CompileDisclosureInput names the request to answer.
type CompileDisclosureInput struct {
	RequestID string
	// ExcludeKeyPrefixes leaves out the emails of this very request (the
	// one-time code): they are not data held before it.
	ExcludeKeyPrefixes []string
}

// CompileDisclosureResult describes the draft without its content.
type CompileDisclosureResult struct {
	SHA256      string         // digest of the package JSON, what the CA signs
	NothingHeld bool           // no retained personal data about the requester
	Counts      map[string]int // records per category
	DataItems   []string       // the categories disclosed (for the provision ledger)
	PersonRefs  []string       // subscriber ids found (or the email reference)
	// Withheld counts the records found by the address alone (name or
	// phone number not matching): not disclosed; for the staff check.
	Withheld map[string]int `json:",omitempty"`
}

// DisclosurePackage is the JSON document a requester receives (see
// internal/disclosure).
type DisclosurePackage = disclosure.Package

// Disclosure package categories, as CompileDisclosureResult.Counts keys them.
const (
	ItemSubscribers        = disclosure.ItemSubscribers
	ItemApplications       = disclosure.ItemApplications
	ItemCertificates       = disclosure.ItemCertificates
	ItemCorrections        = disclosure.ItemCorrections
	ItemRevocations        = disclosure.ItemRevocations
	ItemEmails             = disclosure.ItemEmails
	ItemProvisions         = disclosure.ItemProvisions
	ItemStaffAccess        = disclosure.ItemStaffAccess
	ItemInquiries          = disclosure.ItemInquiries
	ItemDisclosureRequests = disclosure.ItemDisclosureRequests
)

// CompileDisclosure gathers everything held about the person who asks
// (records found by the address through the blind index whose name and
// phone number also match the request's; see disclosure.Compile), renders it as JSON and HTML and stores the draft
// for the signer. Insert-once: a retry returns the first draft's digest. A
// read that fails fails the activity (retried): the package promises all
// data, so it is never stored partial.
func (a *Activities) CompileDisclosure(ctx context.Context, in CompileDisclosureInput) (CompileDisclosureResult, error) {
	req, err := a.Store.GetDisclosureRequest(ctx, in.RequestID)
	if err != nil {
		return CompileDisclosureResult{}, storeErr(err, "disclosure request "+in.RequestID)
	}
	pkg, personRefs, err := disclosure.Compile(ctx, a.Store, disclosure.Input{Request: req,
		EmailRef: "email-bidx:" + hex.EncodeToString(a.BlindIndex.Email(req.Email)), ExcludeKeyPrefixes: in.ExcludeKeyPrefixes})
	if errors.Is(err, store.ErrNotFound) {
		return CompileDisclosureResult{}, nonRetryable(ErrTypeNotFound, err.Error(), nil)
	} else if err != nil {
		return CompileDisclosureResult{}, err // a database error: retried, never a partial package
	}
	jsonDoc, err := disclosure.Marshal(pkg)
	if err != nil {
		return CompileDisclosureResult{}, nonRetryable(ErrTypeInvalid, "disclosure package: "+err.Error(), nil)
	}
	html, err := disclosure.RenderHTML(pkg)
	if err != nil {
		return CompileDisclosureResult{}, nonRetryable(ErrTypeInvalid, "disclosure package: "+err.Error(), nil)
	}
	digest, err := a.Store.SaveDisclosureDraft(ctx, in.RequestID, jsonDoc, html)
	if err != nil {
		return CompileDisclosureResult{}, storeErr(err, "disclosure draft "+in.RequestID)
	}
	res := CompileDisclosureResult{SHA256: digest, NothingHeld: pkg.NothingHeld, Counts: pkg.Counts(),
		DataItems: pkg.DataItems(), PersonRefs: personRefs, Withheld: pkg.Withheld}
	if err := a.audit(ctx, "system", "disclosure.compiled", "disclosure:"+in.RequestID,
		map[string]any{"sha256": digest, "counts": res.Counts, "withheld": res.Withheld}); err != nil {
		return CompileDisclosureResult{}, err
	}
	return res, nil
}
