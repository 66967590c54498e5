package activities

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"go.temporal.io/sdk/activity"

	"certdesk/internal/mailer"
	"certdesk/internal/status"
	"certdesk/internal/store"
)

// AuthorizeRevocationInput names the certificate and who asks.
type AuthorizeRevocationInput struct {
	Serial        string
	RequesterKind string // reseller, subscriber, staff, system
	RequesterID   string
}

// RevocationTarget is what the revocation workflow needs to know about the
// certificate. No personal data.
type RevocationTarget struct {
	Serial         string
	Issuer         string
	Shard          int
	ResellerID     string
	SubscriberID   string
	SPKISHA256     string // hex
	AlreadyRevoked bool
	RevokedAt      time.Time
}

// AuthorizeRevocation checks that the certificate exists and that the
// requester may revoke it: the managing reseller (O3), staff, CertDesk
// itself, or a subscriber whose key proof the starter verified. Another
// reseller gets NotFound, as in the API.
func (a *Activities) AuthorizeRevocation(ctx context.Context, in AuthorizeRevocationInput) (RevocationTarget, error) {
	c, err := a.Store.GetCertificate(ctx, in.Serial)
	if err != nil {
		return RevocationTarget{}, storeErr(err, "certificate "+in.Serial)
	}
	switch in.RequesterKind {
	case "reseller":
		if c.ResellerID != in.RequesterID {
			return RevocationTarget{}, nonRetryable(ErrTypeNotFound, "certificate "+in.Serial+" not found", nil)
		}
	case "subscriber", "staff", "system":
	default:
		return RevocationTarget{}, nonRetryable(ErrTypeNotAuthorized, "unknown requester kind "+in.RequesterKind, nil)
	}
	t := RevocationTarget{Serial: c.Serial, Issuer: c.Issuer, Shard: c.CRLShard, ResellerID: c.ResellerID,
		SubscriberID: c.SubscriberID, SPKISHA256: hex.EncodeToString(c.SPKISHA256), AlreadyRevoked: c.Status == status.CertRevoked}
	if t.AlreadyRevoked {
		if r, err := a.Store.GetRevocation(ctx, c.Serial); err == nil && r.RevokedAt != nil {
			t.RevokedAt = *r.RevokedAt
		}
	}
	return t, nil
}

// RevokeInput records one revocation.
type RevokeInput struct {
	Serial          string
	ReasonCode      int
	RequestedByKind string
	RequestedByRef  string
	RequestedAt     time.Time
	Deadline        time.Time
	WorkflowID      string
}

// RevokeResult is when the certificate was revoked.
type RevokeResult struct {
	RevokedAt time.Time
}

// requestedByKind maps workflow requester kinds to the database's.
func requestedByKind(k string) string {
	switch k {
	case "subscriber":
		return "key-holder"
	case "system":
		return "ca"
	}
	return k
}

// RevokeCertificate revokes the certificate in the database. A retry keeps
// the first revocation time; revoked stays revoked.
func (a *Activities) RevokeCertificate(ctx context.Context, in RevokeInput) (RevokeResult, error) {
	_, err := a.Store.RevokeBatch(ctx, []string{in.Serial}, store.RevokeBatch{
		ReasonCode: in.ReasonCode, RequestedByKind: requestedByKind(in.RequestedByKind), RequestedByRef: in.RequestedByRef,
		WorkflowID: in.WorkflowID, RevokedAt: time.Now().UTC().Truncate(time.Second),
	})
	if err != nil {
		return RevokeResult{}, storeErr(err, "revocation")
	}
	r, err := a.Store.GetRevocation(ctx, in.Serial)
	if err != nil {
		return RevokeResult{}, storeErr(err, "revocation")
	}
	if err := a.audit(ctx, requestedByKind(in.RequestedByKind)+":"+in.RequestedByRef, "certificate.revoked", "certificate:"+in.Serial,
		map[string]any{"reason_code": r.ReasonCode, "workflow": in.WorkflowID}); err != nil {
		return RevokeResult{}, err
	}
	return RevokeResult{RevokedAt: *r.RevokedAt}, nil
}

// BlockKeyInput blocks a compromised key.
type BlockKeyInput struct {
	SPKISHA256 string // hex
	Serial     string // the certificate whose compromise was reported
	Reason     string
}

// BlockKey puts the key on the blocked list (BR §6.1.1.3) and returns the
// other certificates with the same key, of every reseller, that must be
// revoked for keyCompromise too: the valid ones and the revoked ones whose
// reason is still weaker. The workflow calls it for a proven compromise only.
func (a *Activities) BlockKey(ctx context.Context, in BlockKeyInput) ([]string, error) {
	spki, err := hex.DecodeString(in.SPKISHA256)
	if err != nil || len(spki) != 32 {
		return nil, nonRetryable(ErrTypeInvalid, "bad SPKI hash", nil)
	}
	if err := a.Store.BlockKey(ctx, spki, in.Reason, "revocation:"+in.Serial); err != nil {
		return nil, storeErr(err, "blocked key")
	}
	if err := a.audit(ctx, "ca:revocation", "key.blocked", "key:"+in.SPKISHA256,
		map[string]any{"reason": in.Reason, "certificate": in.Serial}); err != nil {
		return nil, err
	}
	out, err := a.Store.ListKeyCompromiseSiblings(ctx, spki, in.Serial)
	if err != nil {
		return nil, storeErr(err, "key siblings")
	}
	return out, nil
}

// Selector picks the certificates of a mass revocation.
type Selector struct {
	Issuer       string    `json:"issuer,omitempty"`
	Serials      []string  `json:"serials,omitempty"`
	IssuedFrom   time.Time `json:"issued_from,omitempty"`
	IssuedBefore time.Time `json:"issued_before,omitempty"`
	ResellerID   string    `json:"reseller_id,omitempty"`
}

func (s Selector) store() store.Selector {
	return store.Selector{Issuer: s.Issuer, Serials: s.Serials, IssuedFrom: s.IssuedFrom, IssuedBefore: s.IssuedBefore, ResellerID: s.ResellerID}
}

// CountResult is a dry run's answer.
type CountResult struct {
	Count  int64
	Sample []string
}

// CountCertificates counts the valid certificates a selector matches and
// samples a few; it changes nothing.
func (a *Activities) CountCertificates(ctx context.Context, sel Selector) (CountResult, error) {
	if err := checkSelector(sel); err != nil {
		return CountResult{}, err
	}
	var res CountResult
	after := ""
	for {
		refs, err := a.Store.SelectCertificates(ctx, sel.store(), after, 10000)
		if err != nil {
			return CountResult{}, storeErr(err, "selector")
		}
		if len(refs) == 0 {
			return res, nil
		}
		for _, r := range refs {
			if len(res.Sample) < 10 {
				res.Sample = append(res.Sample, r.Serial)
			}
		}
		res.Count += int64(len(refs))
		after = refs[len(refs)-1].Serial
	}
}

func checkSelector(sel Selector) error {
	if sel.Issuer == "" && len(sel.Serials) == 0 && sel.IssuedFrom.IsZero() && sel.IssuedBefore.IsZero() && sel.ResellerID == "" {
		return nonRetryable(ErrTypeInvalid, "the selector is empty: name an issuer, serials, a date range or a reseller", nil)
	}
	return nil
}

// ShardRef names one CRL shard.
type ShardRef struct {
	Issuer string
	Shard  int
}

// RevokeBatchInput is one page of a mass revocation.
type RevokeBatchInput struct {
	Selector    Selector
	After       string
	Limit       int
	ReasonCode  int
	WorkflowID  string
	RequestedBy string
}

// RevokeBatchResult says what the page did.
type RevokeBatchResult struct {
	Count  int
	Last   string
	Shards []ShardRef
}

// RevokeBatch revokes the next page of certificates after the cursor, valid
// or already revoked, in one statement (store.RevokePage): a retry of the
// same page finds them revoked and moves the cursor the same way, and a kill
// mid-page leaves either the whole page revoked or none of it.
func (a *Activities) RevokeBatch(ctx context.Context, in RevokeBatchInput) (RevokeBatchResult, error) {
	if err := checkSelector(in.Selector); err != nil {
		return RevokeBatchResult{}, err
	}
	r, err := a.Store.RevokePage(ctx, in.Selector.store(), in.After, in.Limit, store.RevokeBatch{
		ReasonCode: in.ReasonCode, RequestedByKind: "staff", RequestedByRef: in.RequestedBy,
		WorkflowID: in.WorkflowID, RevokedAt: time.Now().UTC().Truncate(time.Second),
	})
	if err != nil {
		return RevokeBatchResult{}, storeErr(err, "revoke batch")
	}
	if r.Count == 0 {
		return RevokeBatchResult{}, nil
	}
	shards := make([]ShardRef, len(r.Shards))
	for i, sh := range r.Shards {
		shards[i] = ShardRef{Issuer: sh.Issuer, Shard: sh.Shard}
	}
	// One event per page (keyed by the case and the page's cursor): a retry
	// of the page finds it revoked and appends nothing more.
	raw, err := json.Marshal(map[string]any{"after": in.After, "last": r.Last, "count": r.Count, "reason_code": in.ReasonCode,
		"requested_by": in.RequestedBy})
	if err != nil {
		return RevokeBatchResult{}, nonRetryable(ErrTypeInvalid, "audit details: "+err.Error(), nil)
	}
	key := sha256.Sum256([]byte("mass_revocation.page|" + in.WorkflowID + "|" + in.After + "|" + fmt.Sprint(in.Limit)))
	if _, err := a.Store.AppendAudit(ctx, store.AuditEvent{Actor: "workflow:" + in.WorkflowID, Action: "mass_revocation.page",
		ObjectRef: "case:" + in.WorkflowID, Details: raw, EventKey: hex.EncodeToString(key[:])}); err != nil {
		return RevokeBatchResult{}, err
	}
	return RevokeBatchResult{Count: r.Count, Last: r.Last, Shards: shards}, nil
}

// NotifyRevokedInput is one page of mass revocation notices.
type NotifyRevokedInput struct {
	WorkflowID string
	After      string
	Limit      int
}

// NotifyRevokedResult says how far the notices went.
type NotifyRevokedResult struct {
	Count int
	Last  string
}

// NotifyRevoked emails revocation_done to the subscribers of the next page
// of certificates revoked by a mass revocation, through the bulk sender
// (rate-limited, one SMTP connection per batch, each keyed in the email log).
func (a *Activities) NotifyRevoked(ctx context.Context, in NotifyRevokedInput) (NotifyRevokedResult, error) {
	revs, err := a.Store.ListRevocationsByWorkflow(ctx, in.WorkflowID, in.After, in.Limit)
	if err != nil {
		return NotifyRevokedResult{}, err
	}
	if len(revs) == 0 {
		return NotifyRevokedResult{}, nil
	}
	msgs := make([]mailer.Message, 0, len(revs))
	for _, r := range revs {
		if r.SubscriberID == "" {
			continue
		}
		sub, err := a.Store.GetSubscriber(ctx, r.SubscriberID)
		if err != nil {
			continue // a subscriber record removed after its retention period
		}
		msgs = append(msgs, mailer.Message{
			To: sub.Email, RecipientRef: "subscriber:" + sub.ID, Notice: mailer.RevocationDone,
			Data:           mailer.RevocationDoneData{Serial: r.Serial, Reason: mailer.RevocationReason(r.ReasonCode), RevokedAt: r.RevokedAt},
			IdempotencyKey: mailer.Key(in.WorkflowID, mailer.RevocationDone, r.Serial),
		})
	}
	// A retried page resumes after the last message heartbeated; the email
	// log skips anything sent after that.
	start := 0
	if activity.HasHeartbeatDetails(ctx) {
		_ = activity.GetHeartbeatDetails(ctx, &start)
	}
	if _, err := a.Outbox.SendBulk(ctx, msgs, mailer.BulkOptions{RatePerSecond: a.Config.BulkRate, StartAt: start,
		Progress: func(done int) { activity.RecordHeartbeat(ctx, done) }}); err != nil {
		return NotifyRevokedResult{}, err
	}
	return NotifyRevokedResult{Count: len(revs), Last: revs[len(revs)-1].Serial}, nil
}
