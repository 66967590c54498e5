package activities

import (
	"context"
	"encoding/hex"
	"errors"

	"certdesk/internal/mailer"
)

// Notify sends one notice exactly once per idempotency key: the email log
// records the key before sending and the result after, so a retry after a
// recorded success sends nothing. The address is resolved here from the
// recipient reference, so workflow history holds references, not addresses.
func (a *Activities) Notify(ctx context.Context, in NotifyInput) (NotifyResult, error) {
	m := in.Message
	if m.IdempotencyKey == "" {
		return NotifyResult{}, nonRetryable(ErrTypeInvalid, "notify: IdempotencyKey is required", nil)
	}
	switch r := in.Recipient; {
	case r.SubscriberID != "":
		sub, err := a.Store.GetSubscriber(ctx, r.SubscriberID)
		if err != nil {
			return NotifyResult{}, storeErr(err, "subscriber "+r.SubscriberID)
		}
		m.To, m.RecipientRef = sub.Email, "subscriber:"+sub.ID
	case r.ResellerID != "":
		rs, err := a.Store.GetReseller(ctx, r.ResellerID)
		if err != nil {
			return NotifyResult{}, storeErr(err, "reseller "+r.ResellerID)
		}
		if rs.ContactEmail == "" {
			return NotifyResult{}, nil // a reseller without a contact address gets API status only
		}
		m.To, m.RecipientRef = rs.ContactEmail, "reseller:"+rs.ID
	case r.Staff:
		m.To, m.RecipientRef = a.Config.StaffEmail, "staff"
		if d, ok := m.Data.(*mailer.StaffCaseData); ok {
			d.TemporalUIURL, d.Namespace = a.Config.TemporalUIURL, a.Config.TemporalNamespace
		}
	case r.Email != "":
		m.To = r.Email
		m.RecipientRef = r.RefHint
		if m.RecipientRef == "" {
			m.RecipientRef = "email-bidx:" + hex.EncodeToString(a.BlindIndex.Email(r.Email))
		}
	default:
		return NotifyResult{}, nonRetryable(ErrTypeInvalid, "notify: no recipient", nil)
	}
	res, err := a.Outbox.Send(ctx, m)
	if err != nil {
		if errors.Is(err, mailer.ErrBadData) {
			return NotifyResult{}, nonRetryable(ErrTypeInvalid, "notify "+string(m.Notice)+": "+err.Error(), err)
		}
		if mailer.IsPermanent(err) {
			// The server refused the address for good; the email log holds
			// the failure and staff see it. The case goes on.
			a.Log.Warn("notice undeliverable", "notice", string(m.Notice), "recipient_ref", m.RecipientRef)
			return NotifyResult{Undeliverable: true}, nil
		}
		return NotifyResult{}, err
	}
	return NotifyResult{MessageID: res.MessageID, AlreadySent: res.AlreadySent}, nil
}
