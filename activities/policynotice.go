package activities

import (
	"context"
	"time"

	"go.temporal.io/sdk/activity"

	"certdesk/internal/mailer"
)

// PolicyNoticePageInput is one page of a policy notice (O10).
type PolicyNoticePageInput struct {
	WorkflowID    string
	Version       string
	EffectiveDate time.Time
	URL           string
	Document      string
	DocumentEN    string
	// ValidAt fixes the population: subscribers with a certificate valid
	// then (the notice's start), so pages do not shift as time passes.
	ValidAt time.Time
	After   string // cursor: blind index (hex) of the last address of the previous page
	Limit   int
}

// PolicyNoticePageResult says what the page did.
type PolicyNoticePageResult struct {
	Count   int    // addresses in the page
	Sent    int    // sent now
	Skipped int    // already sent (a retried or resumed page)
	Failed  int    // refused permanently by the server; in the email log
	Last    string // cursor for the next page; "" when the page was empty
}

// policyPageProgress is the page's heartbeat: where the handled prefix of
// the page ends, by cursor rather than index, so a retry that finds the page
// changed (a certificate revoked meanwhile) still resumes at the right
// address.
type policyPageProgress struct {
	After       string
	LastHandled string
}

// SendPolicyNotice sends policy_revision to the next page of addresses
// (one per address, whatever the number of subscriber records) through the
// bulk sender: rate-limited, one SMTP connection per batch, each message
// keyed in the email log by the notice and the address's blind index. The
// handled prefix is heartbeated; a retried attempt starts after it
// (BulkOptions.StartAt), and the email log skips anything sent in between.
func (a *Activities) SendPolicyNotice(ctx context.Context, in PolicyNoticePageInput) (PolicyNoticePageResult, error) {
	if in.Limit <= 0 {
		return PolicyNoticePageResult{}, nonRetryable(ErrTypeInvalid, "policy notice page: limit must be positive", nil)
	}
	recips, err := a.Store.ListNoticeRecipients(ctx, in.ValidAt, in.After, in.Limit)
	if err != nil {
		return PolicyNoticePageResult{}, err
	}
	if len(recips) == 0 {
		return PolicyNoticePageResult{}, nil
	}
	start := 0
	var hb policyPageProgress
	if activity.HasHeartbeatDetails(ctx) && activity.GetHeartbeatDetails(ctx, &hb) == nil && hb.After == in.After && hb.LastHandled != "" {
		for start < len(recips) && recips[start].EmailIndex <= hb.LastHandled {
			start++
		}
	}
	msgs := make([]mailer.Message, len(recips))
	for i, r := range recips {
		msgs[i] = mailer.Message{
			To: r.Email, RecipientRef: "subscriber:" + r.SubscriberID, Notice: mailer.PolicyRevision,
			Data: mailer.PolicyRevisionData{Organization: r.Organization, Document: in.Document, DocumentEN: in.DocumentEN,
				Version: in.Version, EffectiveDate: in.EffectiveDate, URL: in.URL},
			IdempotencyKey: mailer.Key(in.WorkflowID, mailer.PolicyRevision, r.EmailIndex),
		}
	}
	res, err := a.Outbox.SendBulk(ctx, msgs, mailer.BulkOptions{
		RatePerSecond: a.Config.BulkRate,
		StartAt:       start,
		Progress: func(done int) {
			if done > 0 {
				activity.RecordHeartbeat(ctx, policyPageProgress{After: in.After, LastHandled: recips[done-1].EmailIndex})
			}
		},
	})
	if err != nil {
		return PolicyNoticePageResult{}, err
	}
	for _, f := range res.Failures {
		a.Log.Warn("policy notice undeliverable", "recipient_ref", msgs[f.Index].RecipientRef, "workflow", in.WorkflowID)
	}
	return PolicyNoticePageResult{Count: len(recips), Sent: res.Sent, Skipped: res.Skipped + start, Failed: len(res.Failures),
		Last: recips[len(recips)-1].EmailIndex}, nil
}

// PolicyNoticeRecord is one step of a policy notice for the audit log.
type PolicyNoticeRecord struct {
	WorkflowID    string
	Version       string
	Event         string // started or done
	EffectiveDate time.Time
	URL           string
	Recipients    int64
	Sent          int64
	Failed        int64
}

// RecordPolicyNotice audits the announcement of a new version of the
// handling rules (O10): when it started and how many were told.
func (a *Activities) RecordPolicyNotice(ctx context.Context, in PolicyNoticeRecord) error {
	return a.audit(ctx, "staff", "policy_notice."+in.Event, "policy:"+in.Version, map[string]any{
		"workflow": in.WorkflowID, "effective_date": in.EffectiveDate.Format(time.DateOnly), "url": in.URL,
		"recipients": in.Recipients, "sent": in.Sent, "failed": in.Failed,
	})
}
