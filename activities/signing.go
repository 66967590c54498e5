package activities

import (
	"context"
	"encoding/pem"
	"fmt"
	"log/slog"
	"time"

	"certdesk/internal/pki"
	"certdesk/internal/store"
)

// SigningStore is what the signing activities read and write: *store.Store
// in production, a fake in unit tests.
type SigningStore interface {
	// Issuance.
	WithIssuanceLock(ctx context.Context, applicationID string, fn func(ctx context.Context) error) error
	GetIssuance(ctx context.Context, applicationID string) (store.Issuance, error)
	ReserveSerial(ctx context.Context, applicationID, candidate string) (store.Issuance, error)
	GetCertificate(ctx context.Context, serial string) (store.Certificate, error)
	StoreCertificate(ctx context.Context, c store.Certificate) error
	// Certificate Transparency.
	StorePrecertificate(ctx context.Context, c store.Certificate) error
	StoreFinalCertificate(ctx context.Context, serial string, der []byte) error
	ListSCTs(ctx context.Context, serial string) ([]store.SCT, error)
	// CRLs.
	NextCRLNumber(ctx context.Context, issuer string, shard int) (int64, error)
	ListRevoked(ctx context.Context, issuer string, shard int, validAt time.Time) ([]store.RevokedEntry, error)
	SaveCRL(ctx context.Context, c store.CRL) (saved bool, err error)
	// OCSP.
	GetCertificateRef(ctx context.Context, serial string) (store.CertificateRef, error)
	ListOCSPDue(ctx context.Context, refreshBefore time.Time, after string, limit int) ([]store.CertificateRef, error)
	SelectCertificates(ctx context.Context, sel store.Selector, after string, limit int) ([]store.CertificateRef, error)
	UpsertOCSPBatch(ctx context.Context, rs []store.OCSPResponse) (int, error)
	// Validation evidence, checked before signing.
	EvidenceStore
	// Disclosure packages.
	DisclosurePackageRef(ctx context.Context, requestID string) (string, error)
	GetDisclosurePackage(ctx context.Context, id string) (store.DisclosurePackage, error)
	GetDisclosureDraft(ctx context.Context, requestID string) (store.DisclosureDraft, error)
	SaveDisclosurePackage(ctx context.Context, p store.DisclosurePackage) (string, error)
	DeleteDisclosureDraft(ctx context.Context, requestID string) error
	// The audit chain: every signing operation is recorded (issue 17).
	AppendAudit(ctx context.Context, e store.AuditEvent) (store.AuditEvent, error)
}

// SigningActivities run only on the "certdesk-signing" task queue, in the
// one process that holds the CA keys.
type SigningActivities struct {
	CA    *pki.CA
	Store SigningStore
	Log   *slog.Logger
	// Keys is where new OCSP responder keys are made; nil disables renewal.
	Keys pki.KeyStore
	// CT is the Certificate Transparency log list and policy; nil refuses
	// TLS issuance.
	CT *CTLogs
}

// RenewOCSPResponders replaces each delegated OCSP responder certificate
// that is close to expiry with a new key and certificate, and returns how
// many it renewed. The daily schedule runs it, so renewal is automatic.
func (s *SigningActivities) RenewOCSPResponders(ctx context.Context) (int, error) {
	if s.Keys == nil {
		return 0, nil
	}
	now := time.Now()
	n := 0
	for _, is := range s.CA.Issuers() {
		r, ok := s.CA.Responder(is.ID())
		if ok && !r.NeedsRenewal(now) {
			continue
		}
		if _, err := s.CA.RenewOCSPResponder(ctx, s.Keys, is.ID(), now); err != nil {
			return n, fmt.Errorf("renew OCSP responder of %s: %w", is.ID(), err)
		}
		s.Log.Info("OCSP responder renewed", "issuer", is.ID())
		n++
	}
	return n, nil
}

// IssueInput is what the signer needs; the subject is the verified data.
type IssueInput struct {
	ApplicationID string
	ResellerID    string
	SubscriberID  string
	Product       string
	CSRPEM        string
	Domains       []string
	Email         string
	ValidityDays  int
	Subject       pki.Subject
}

// IssueResult describes the issued certificate.
type IssueResult struct {
	Serial         string
	Issuer         string
	Shard          int
	NotBefore      time.Time
	NotAfter       time.Time
	CertificatePEM string
	// CTState is the stored certificate's (store.CTNone, CTPrecert or
	// CTFinal); while CTPrecert, CertificatePEM is the precertificate.
	CTState string `json:",omitempty"`
	// SCTs are the final certificate's embedded SCTs.
	SCTs []SCTInfo `json:",omitempty"`
}

// IssueCertificate lints and signs the application's certificate exactly
// once. The serial is reserved in the database before signing, the work
// runs under the application's issuance lock (Store.WithIssuanceLock), and
// a certificate already stored for the application is returned as it is: a
// retried or concurrent call never signs a second certificate.
func (s *SigningActivities) IssueCertificate(ctx context.Context, in IssueInput) (IssueResult, error) {
	var res IssueResult
	err := s.Store.WithIssuanceLock(ctx, in.ApplicationID, func(ctx context.Context) error {
		var err error
		res, err = s.issueLocked(ctx, in)
		return err
	})
	return res, err
}

// issueLocked runs under the application's issuance lock.
func (s *SigningActivities) issueLocked(ctx context.Context, in IssueInput) (IssueResult, error) {
	p, err := s.prepare(ctx, in)
	if err != nil || p.existing != nil {
		if p.existing != nil {
			// Audited again (one event by key): an earlier attempt may
			// have stored the certificate and failed before its audit.
			if err := s.auditCertificate(ctx, AuditCertificateSigned, *p.existing, in.ApplicationID); err != nil {
				return IssueResult{}, err
			}
			return issueResult(*p.existing), nil
		}
		return IssueResult{}, err
	}
	out, err := p.issuer.Issue(ctx, p.req)
	if err != nil {
		return IssueResult{}, signErr(err)
	}
	c, err := s.certificateRow(in, p, out)
	if err != nil {
		return IssueResult{}, err
	}
	if err := s.Store.StoreCertificate(ctx, c); err != nil {
		return IssueResult{}, storeErr(err, "certificate")
	}
	if err := s.auditCertificate(ctx, AuditCertificateSigned, c, in.ApplicationID); err != nil {
		return IssueResult{}, err
	}
	s.firstOCSP(ctx, c.Serial)
	return issueResult(c), nil
}

// maxBackdate keeps notBefore within 48 hours of signing (BR §7.1.2.7)
// with a margin: a serial reserved long ago by an attempt that never signed
// gets the signing time instead.
const maxBackdate = 47 * time.Hour

// notBefore is the reservation time, so retries sign the same validity,
// unless that is too far before the signing time now.
func notBefore(reserved, now time.Time) time.Time {
	if now.Sub(reserved) > maxBackdate {
		reserved = now
	}
	return reserved.UTC().Truncate(time.Second)
}

func issueResult(c store.Certificate) IssueResult {
	return IssueResult{Serial: c.Serial, Issuer: c.Issuer, Shard: c.CRLShard, NotBefore: c.NotBefore, NotAfter: c.NotAfter,
		CertificatePEM: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.DER})), CTState: c.CTState}
}
