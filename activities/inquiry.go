package activities

import (
	"context"
	"time"

	"certdesk/internal/store"
)

// Inquiry kinds (O9), as the store defines them.
const (
	InquiryKindInquiry       = store.InquiryKindInquiry
	InquiryKindComplaint     = store.InquiryKindComplaint
	InquiryKindStopProvision = store.InquiryKindStopProvision
)

// RecordInquiryInput is an inquiry as received.
type RecordInquiryInput struct {
	InquiryID  string
	Kind       string
	Contact    string
	Body       string
	ReceivedAt time.Time
	DueAt      time.Time
	WorkflowID string
}

// RecordInquiry stores the inquiry (contact and text encrypted; an email
// contact blind-indexed so a disclosure finds it), registers a request to
// stop provision to third parties, and audits the receipt (kind only).
// Idempotent by inquiry id.
func (a *Activities) RecordInquiry(ctx context.Context, in RecordInquiryInput) error {
	if err := a.Store.CreateInquiry(ctx, store.Inquiry{ID: in.InquiryID, Kind: in.Kind, Contact: in.Contact, Body: in.Body,
		DueAt: in.DueAt, WorkflowID: in.WorkflowID}); err != nil {
		return storeErr(err, "inquiry "+in.InquiryID)
	}
	if in.Kind == InquiryKindStopProvision {
		if err := a.Store.RequestProvisionStop(ctx, in.InquiryID, in.ReceivedAt); err != nil {
			return storeErr(err, "provision stop "+in.InquiryID)
		}
	}
	return a.audit(ctx, "system", "inquiry.received", "inquiry:"+in.InquiryID,
		map[string]any{"kind": in.Kind, "due_at": in.DueAt.UTC().Format(time.RFC3339)})
}

// InquiryStatusInput moves an inquiry.
type InquiryStatusInput struct {
	InquiryID string
	Status    string // received, in_progress, answered or closed
}

// SetInquiryStatus records the status (absolute: retry-safe).
func (a *Activities) SetInquiryStatus(ctx context.Context, in InquiryStatusInput) error {
	return storeErr(a.Store.SetInquiryStatus(ctx, in.InquiryID, in.Status), "inquiry "+in.InquiryID)
}

// AnswerInquiryInput is staff's answer.
type AnswerInquiryInput struct {
	InquiryID string
	Kind      string
	Answer    string
	Reviewer  string
	// Decision on a stop request: stop or refuse.
	Decision   string
	AnsweredAt time.Time
}

// AnswerInquiry records the answer and, for a stop request, staff's
// decision in the provision-stop register, and audits both (no text).
// Idempotent: the first answer and decision stay.
func (a *Activities) AnswerInquiry(ctx context.Context, in AnswerInquiryInput) error {
	if err := a.Store.AnswerInquiry(ctx, in.InquiryID, in.Answer, in.AnsweredAt); err != nil {
		return storeErr(err, "inquiry "+in.InquiryID)
	}
	details := map[string]any{"kind": in.Kind}
	if in.Kind == InquiryKindStopProvision {
		status := store.ProvisionStopRefused
		if in.Decision == "stop" {
			status = store.ProvisionStopStopped
		}
		if err := a.Store.DecideProvisionStop(ctx, in.InquiryID, status, in.Reviewer, in.AnsweredAt); err != nil {
			return storeErr(err, "provision stop "+in.InquiryID)
		}
		details["provision_stop"] = status
	}
	return a.audit(ctx, actorOf(in.Reviewer), "inquiry.answered", "inquiry:"+in.InquiryID, details)
}
