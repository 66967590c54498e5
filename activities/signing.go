package activities

import (
	"context"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"time"

	"certdesk/internal/pki"
	"certdesk/internal/pki/problem"
	"certdesk/internal/status"
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
}

// SigningActivities run only on the "certdesk-signing" task queue, in the
// one process that holds the CA keys.
type SigningActivities struct {
	CA    *pki.CA
	Store SigningStore
	Log   *slog.Logger
	// Keys is where new OCSP responder keys are made; nil disables renewal.
	Keys pki.KeyStore
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

// issueLocked runs under the application's issuance lock. Whether a
// certificate was already issued must be known before signing: a read that
// fails stops here (and is retried) rather than risk a second certificate.
func (s *SigningActivities) issueLocked(ctx context.Context, in IssueInput) (IssueResult, error) {
	iss, err := s.Store.GetIssuance(ctx, in.ApplicationID)
	switch {
	case err == nil:
		c, err := s.Store.GetCertificate(ctx, iss.Serial)
		if err == nil {
			return issueResult(c), nil
		}
		if !errors.Is(err, store.ErrNotFound) {
			return IssueResult{}, err
		}
	case !errors.Is(err, store.ErrNotFound):
		return IssueResult{}, err
	}
	if err := checkEvidence(ctx, s.Store, in, time.Now()); err != nil {
		return IssueResult{}, err
	}
	issuer, err := s.CA.IssuerFor(in.Product)
	if err != nil {
		return IssueResult{}, nonRetryable(ErrTypeInvalid, err.Error(), nil)
	}
	candidate, err := pki.NewSerial()
	if err != nil {
		return IssueResult{}, err
	}
	iss, err = s.Store.ReserveSerial(ctx, in.ApplicationID, candidate.Text(16))
	if err != nil {
		return IssueResult{}, storeErr(err, "issuance")
	}
	serial, ok := new(big.Int).SetString(iss.Serial, 16)
	if !ok {
		return IssueResult{}, nonRetryable(ErrTypeInvalid, "reserved serial is not hex", nil)
	}
	req := &pki.IssueRequest{
		Request:   pki.Request{Profile: in.Product, CSR: []byte(in.CSRPEM), Subject: in.Subject, Domains: in.Domains, Email: in.Email},
		Serial:    serial,
		NotBefore: notBefore(iss.ReservedAt, time.Now()),
		Validity:  time.Duration(in.ValidityDays) * 24 * time.Hour,
	}
	out, err := issuer.Issue(ctx, req)
	if err != nil {
		if problem.IsRefusal(err) {
			return IssueResult{}, nonRetryable(ErrTypeCSRRejected, err.Error(), nil)
		}
		return IssueResult{}, err
	}
	spki, err := pki.SPKISHA256(out.Cert.PublicKey)
	if err != nil {
		return IssueResult{}, err
	}
	c := store.Certificate{
		Serial: iss.Serial, Issuer: issuer.ID(), DER: out.DER, NotBefore: out.Cert.NotBefore, NotAfter: out.Cert.NotAfter,
		SPKISHA256: spki[:], Status: status.CertValid, ResellerID: in.ResellerID, SubscriberID: in.SubscriberID,
		ApplicationID: in.ApplicationID, Product: in.Product, CRLShard: out.Shard,
	}
	if err := s.Store.StoreCertificate(ctx, c); err != nil {
		return IssueResult{}, storeErr(err, "certificate")
	}
	// A first OCSP answer ("good") so relying parties get one at once.
	if err := s.signOCSP(ctx, []string{c.Serial}); err != nil {
		s.Log.Warn("first OCSP response not signed; the refresh schedule will", "serial", c.Serial, "error", err)
	}
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
		CertificatePEM: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.DER}))}
}
