package activities

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"certdesk/internal/correction"
	"certdesk/internal/mailer"
	"certdesk/internal/store"
)

// RecordCorrectionInput records a checked correction.
type RecordCorrectionInput struct {
	CorrectionID   string
	Serial         string
	ResellerID     string
	WorkflowID     string
	Changes        map[string]string // from the plan
	Classification string
}

// RecordCorrection writes the correction with the values it replaces (both
// encrypted) and audits it (field names only). Idempotent by correction id:
// the first record, and its old values, stay.
func (a *Activities) RecordCorrection(ctx context.Context, in RecordCorrectionInput) error {
	cs, err := loadCorrectionSubject(ctx, a.Store, in.Serial, in.ResellerID)
	if err != nil {
		return err
	}
	old := make(map[string]string, len(in.Changes))
	fields := make([]string, 0, len(in.Changes))
	for f := range in.Changes {
		old[f] = cs.held.Get(f)
		fields = append(fields, f)
	}
	sort.Strings(fields)
	if err := a.Store.CreateCorrection(ctx, store.Correction{
		ID: in.CorrectionID, Serial: cs.cert.Serial, ResellerID: in.ResellerID, OldValues: old, NewValues: in.Changes,
		Classification: in.Classification, WorkflowID: in.WorkflowID,
	}); err != nil {
		return storeErr(err, "correction "+in.CorrectionID)
	}
	return a.audit(ctx, "reseller:"+in.ResellerID, "correction.received", "correction:"+in.CorrectionID,
		map[string]any{"serial": cs.cert.Serial, "classification": in.Classification, "fields": fields})
}

// ApplyCorrectionInput writes corrected values that are not printed in the
// certificate to the subscriber record.
type ApplyCorrectionInput struct {
	CorrectionID string
	SubscriberID string
	Changes      map[string]string // the fields to apply (not printed ones)
}

// ApplyCorrection updates the subscriber record and audits which fields
// changed (APPI Art. 34). Idempotent: applying the same values again
// changes nothing.
func (a *Activities) ApplyCorrection(ctx context.Context, in ApplyCorrectionInput) error {
	if len(in.Changes) == 0 {
		return nil
	}
	sub, err := a.Store.GetSubscriber(ctx, in.SubscriberID)
	if err != nil {
		return storeErr(err, "subscriber "+in.SubscriberID)
	}
	v := correction.Values{Organization: sub.Organization, Name: sub.Name, Email: sub.Email, Phone: sub.Phone,
		Address: sub.Address, Country: sub.Country}
	v.Apply(in.Changes)
	sub.Organization, sub.Name, sub.Email, sub.Phone, sub.Address, sub.Country = v.Organization, v.Name, v.Email, v.Phone, v.Address, v.Country
	if err := a.Store.UpsertSubscriber(ctx, sub); err != nil {
		return storeErr(err, "subscriber "+in.SubscriberID)
	}
	fields := make([]string, 0, len(in.Changes))
	for f := range in.Changes {
		fields = append(fields, f)
	}
	sort.Strings(fields)
	return a.audit(ctx, "reseller:"+sub.ResellerID, "subscriber.corrected", "subscriber:"+sub.ID,
		map[string]any{"correction": in.CorrectionID, "fields": fields})
}

// CorrectionUpdate moves a correction: status and links.
type CorrectionUpdate struct {
	CorrectionID     string
	Status           string
	RevocationSerial string
	NewApplicationID string
}

// UpdateCorrection links the revocation and the new application and sets
// the status. The new application's row is written by its own workflow: until
// it exists the link is retried (an ordinary error), never refused.
func (a *Activities) UpdateCorrection(ctx context.Context, in CorrectionUpdate) error {
	if in.NewApplicationID != "" {
		if _, err := a.Store.GetApplication(ctx, in.NewApplicationID); errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("application %s is not recorded yet", in.NewApplicationID)
		} else if err != nil {
			return err
		}
	}
	if in.RevocationSerial != "" || in.NewApplicationID != "" {
		if err := a.Store.LinkCorrection(ctx, in.CorrectionID, in.RevocationSerial, in.NewApplicationID); err != nil {
			return storeErr(err, "correction "+in.CorrectionID)
		}
	}
	if in.Status == "" {
		return nil
	}
	if err := a.Store.SetCorrectionStatus(ctx, in.CorrectionID, in.Status); err != nil {
		return storeErr(err, "correction "+in.CorrectionID)
	}
	return a.audit(ctx, "system", "correction."+in.Status, "correction:"+in.CorrectionID,
		map[string]any{"revocation": in.RevocationSerial, "new_application": in.NewApplicationID})
}

// PreviousContactInput tells the previous contact address that it was
// replaced.
type PreviousContactInput struct {
	CorrectionID   string
	IdempotencyKey string
	Data           mailer.CorrectionAppliedData
}

// NotifyPreviousContact sends correction_applied to the address a
// correction replaced (read from the correction's old values, so the
// address never enters workflow history): if the change was not wanted,
// the owner of the old address hears of it.
func (a *Activities) NotifyPreviousContact(ctx context.Context, in PreviousContactInput) (NotifyResult, error) {
	c, err := a.Store.GetCorrection(ctx, in.CorrectionID)
	if err != nil {
		return NotifyResult{}, storeErr(err, "correction "+in.CorrectionID)
	}
	old := c.OldValues[FieldContactEmail]
	if old == "" || strings.EqualFold(old, c.NewValues[FieldContactEmail]) {
		return NotifyResult{}, nil
	}
	return a.Notify(ctx, NotifyInput{
		Recipient: Recipient{Email: old, RefHint: "email-bidx:" + hex.EncodeToString(a.BlindIndex.Email(old))},
		Message:   mailer.Message{Notice: mailer.CorrectionApplied, Data: in.Data, IdempotencyKey: in.IdempotencyKey},
	})
}

// AwaitRevoked returns when certificate serial was revoked, and fails with
// an ordinary (retried) error until it is: a correction that joined a
// revocation already under way waits for it this way.
func (a *Activities) AwaitRevoked(ctx context.Context, serial string) (time.Time, error) {
	r, err := a.Store.GetRevocation(ctx, serial)
	if errors.Is(err, store.ErrNotFound) {
		return time.Time{}, fmt.Errorf("certificate %s is not revoked yet", serial)
	}
	if err != nil {
		return time.Time{}, err
	}
	if r.RevokedAt == nil {
		return time.Time{}, fmt.Errorf("certificate %s is not revoked yet", serial)
	}
	return *r.RevokedAt, nil
}
