package activities

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"go.temporal.io/sdk/activity"

	"certdesk/internal/store"
)

// Audit actions of the signing operations (issue 17): every signature the
// CA keys make is in the audit chain, with the case that asked for it.
const (
	AuditCertificateSigned    = "certificate.signed"
	AuditPrecertificateSigned = "precertificate.signed"
	AuditOCSPSigned           = "ocsp.signed"
	AuditCRLSigned            = "crl.signed"
	AuditDisclosureSigned     = "disclosure.signed"
)

// signingActor is the audit actor of a signing operation: the workflow
// whose activity asked for it ("workflow:<id>"; the case names the reseller
// or staff behind it), or "ca:signer" outside an activity.
func signingActor(ctx context.Context) string {
	if activity.IsActivity(ctx) {
		return "workflow:" + activity.GetInfo(ctx).WorkflowExecution.ID
	}
	return "ca:signer"
}

// activityScope names the activity an operation belongs to, the same on
// every retry of it ("" outside an activity): part of the audit key of
// operations a retry repeats, so they are audited once.
func activityScope(ctx context.Context) string {
	if !activity.IsActivity(ctx) {
		return ""
	}
	info := activity.GetInfo(ctx)
	return info.WorkflowExecution.ID + "|" + info.WorkflowExecution.RunID + "|" + info.ActivityID
}

// auditSigning appends the audit event of one signing operation. keyParts
// identify the operation: the event key is derived from them alone (not
// from the details or the time), so a retried activity that repeats the
// operation appends nothing more.
func (s *SigningActivities) auditSigning(ctx context.Context, action, object string, details map[string]any, keyParts ...string) error {
	raw, err := json.Marshal(details)
	if err != nil {
		return nonRetryable(ErrTypeInvalid, "audit details: "+err.Error(), nil)
	}
	key := sha256.Sum256([]byte("signing|" + action + "|" + object + "|" + strings.Join(keyParts, "|")))
	if _, err := s.Store.AppendAudit(ctx, store.AuditEvent{Actor: signingActor(ctx), Action: action, ObjectRef: object,
		Details: raw, EventKey: hex.EncodeToString(key[:])}); err != nil {
		return fmt.Errorf("audit %s %s: %w", action, object, err)
	}
	return nil
}

// auditCertificate audits the signature of certificate (or precertificate)
// c, keyed by its serial: one event however often the issuance is retried.
func (s *SigningActivities) auditCertificate(ctx context.Context, action string, c store.Certificate, applicationID string) error {
	der := c.DER
	if action == AuditPrecertificateSigned && len(c.PrecertDER) > 0 {
		der = c.PrecertDER
	}
	sum := sha256.Sum256(der)
	return s.auditSigning(ctx, action, "certificate:"+c.Serial, map[string]any{
		"issuer": c.Issuer, "application": applicationID, "product": c.Product,
		"not_before": c.NotBefore.UTC().Format(time.RFC3339), "not_after": c.NotAfter.UTC().Format(time.RFC3339),
		"sha256": hex.EncodeToString(sum[:]),
	}, c.Serial)
}

// auditOCSPBatch audits one stored batch of OCSP answers: how many, the
// serial range and the time signed. Keyed by the activity and the range, so
// a retry re-signing the same range is not a second event.
func (s *SigningActivities) auditOCSPBatch(ctx context.Context, batch []store.OCSPResponse) error {
	if len(batch) == 0 {
		return nil
	}
	first, last := batch[0].Serial, batch[len(batch)-1].Serial
	scope := activityScope(ctx)
	if scope == "" {
		scope = batch[0].ProducedAt.UTC().Format(time.RFC3339)
	}
	return s.auditSigning(ctx, AuditOCSPSigned, "ocsp:"+first, map[string]any{
		"count": len(batch), "first": first, "last": last, "produced_at": batch[0].ProducedAt.UTC().Format(time.RFC3339),
	}, scope, first, last, fmt.Sprint(len(batch)))
}
