package activities

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"time"

	"certdesk/internal/dcv"
	"certdesk/internal/pki"
	"certdesk/internal/pki/problem"
	"certdesk/internal/product"
	"certdesk/internal/status"
	"certdesk/internal/store"
)

// CheckCSRInput is what the CSR and key checks need.
type CheckCSRInput struct {
	Product string
	CSRPEM  string
	Domains []string
	Email   string
	Subject pki.Subject // the subject the certificate will carry
}

// CheckCSRResult describes the accepted key.
type CheckCSRResult struct {
	SPKISHA256 string // hex
}

// CheckCSR runs the CSR, key and name checks (O11, O15). A refusal is a
// non-retryable CSRRejected error whose message says what to fix.
func (a *Activities) CheckCSR(ctx context.Context, in CheckCSRInput) (CheckCSRResult, error) {
	req := &pki.Request{Profile: in.Product, CSR: []byte(in.CSRPEM), Domains: in.Domains, Subject: in.Subject}
	if product.Client(in.Product) {
		req.Email = in.Email
	}
	csr, err := a.Profiles.CheckCSR(ctx, req, BlockedKeys(a.Store))
	if err != nil {
		if problem.IsRefusal(err) {
			return CheckCSRResult{}, nonRetryable(ErrTypeCSRRejected, err.Error(), nil)
		}
		return CheckCSRResult{}, err
	}
	sum, err := pki.SPKISHA256(csr.PublicKey)
	if err != nil {
		return CheckCSRResult{}, nonRetryable(ErrTypeCSRRejected, err.Error(), nil)
	}
	return CheckCSRResult{SPKISHA256: hex.EncodeToString(sum[:])}, nil
}

// BlockedKeys adapts the store to pki's blocked-key check (BR §6.1.1.3).
func BlockedKeys(s *store.Store) pki.BlockedKeys { return blockedKeys{s} }

type blockedKeys struct{ s *store.Store }

func (b blockedKeys) IsBlocked(ctx context.Context, spki [32]byte) (bool, error) {
	_, blocked, err := b.s.IsKeyBlocked(ctx, spki[:])
	return blocked, err
}

// RecordApplicationInput is the application as recorded (O1).
type RecordApplicationInput struct {
	ApplicationID string
	ResellerID    string
	WorkflowID    string
	Product       string
	CSRPEM        string
	SPKISHA256    string // hex, from CheckCSR
	Domains       []string
	ValidityDays  int
	Subscriber    SubscriberData
	Attestation   Attestation
	DueAt         time.Time
	// ACMEOrderID names the ACME order the application is; its CSR (and
	// SPKISHA256) may then be empty until finalize (RecordACMECSR).
	ACMEOrderID string `json:",omitempty"`
}

// RecordApplicationResult names the subscriber record.
type RecordApplicationResult struct {
	SubscriberID string
}

// SubscriberIDFor derives the subscriber id of an application: one record
// per application keeps a retried write idempotent and lets corrections
// change one certificate's data without touching another's.
func SubscriberIDFor(applicationID string) string { return "sub_" + applicationID }

// RecordApplication writes the subscriber (encrypted) and the application
// with its attestation, and an audit event. Idempotent by application id.
func (a *Activities) RecordApplication(ctx context.Context, in RecordApplicationInput) (RecordApplicationResult, error) {
	if !in.Attestation.Truthful {
		return RecordApplicationResult{}, nonRetryable(ErrTypeInvalid, "the applicant must attest that the application is true", nil)
	}
	var der, spki []byte
	if in.ACMEOrderID == "" || in.CSRPEM != "" {
		var err error
		if der, err = csrDER(in.CSRPEM); err != nil {
			return RecordApplicationResult{}, nonRetryable(ErrTypeCSRRejected, err.Error(), nil)
		}
		if spki, err = hex.DecodeString(in.SPKISHA256); err != nil || len(spki) != 32 {
			return RecordApplicationResult{}, nonRetryable(ErrTypeInvalid, "SPKISHA256 must be 64 hex digits", nil)
		}
	}
	subID := SubscriberIDFor(in.ApplicationID)
	s := in.Subscriber
	if err := a.Store.UpsertSubscriber(ctx, store.Subscriber{
		ID: subID, ResellerID: in.ResellerID, Organization: s.Organization, Name: s.Name,
		Email: s.Email, Phone: s.Phone, Address: s.Address, Country: s.Country,
	}); err != nil {
		return RecordApplicationResult{}, storeErr(err, "subscriber")
	}
	due := in.DueAt
	attested := in.Attestation.AttestedAt
	if attested.IsZero() {
		attested = time.Now()
	}
	if err := a.Store.CreateApplication(ctx, store.Application{
		ID: in.ApplicationID, ResellerID: in.ResellerID, SubscriberID: subID, Product: in.Product,
		Domains: in.Domains, CSR: der, SPKISHA256: spki, ValidityDays: in.ValidityDays,
		AttestationTermsVersion: in.Attestation.TermsVersion, AttestationTruthful: true, AttestedAt: attested,
		Status: status.AppReceived, WorkflowID: in.WorkflowID, DueAt: &due, ACMEOrderID: in.ACMEOrderID,
	}); err != nil {
		return RecordApplicationResult{}, storeErr(err, "application")
	}
	if err := a.audit(ctx, "reseller:"+in.ResellerID, "application.received", "application:"+in.ApplicationID,
		map[string]any{"product": in.Product, "terms_version": in.Attestation.TermsVersion, "domains": len(in.Domains)}); err != nil {
		return RecordApplicationResult{}, err
	}
	return RecordApplicationResult{SubscriberID: subID}, nil
}

func csrDER(p string) ([]byte, error) {
	b, _ := pem.Decode([]byte(p))
	if b == nil {
		return nil, errors.New("CSR is not PEM")
	}
	return b.Bytes, nil
}

// ApplicationStatusInput moves an application's row.
type ApplicationStatusInput struct {
	ApplicationID  string
	Status         string
	Reason         string
	VerificationID string
	Serial         string
}

// SetApplicationStatus records the status; setting the same status again is
// a no-op, so a retry is harmless.
func (a *Activities) SetApplicationStatus(ctx context.Context, in ApplicationStatusInput) error {
	if in.VerificationID != "" {
		if err := a.Store.SetApplicationVerification(ctx, in.ApplicationID, in.VerificationID); err != nil {
			return storeErr(err, "application")
		}
	}
	// "issued" is written by StoreCertificate with the serial, atomically.
	if in.Status != status.AppIssued {
		if err := a.Store.SetApplicationStatus(ctx, in.ApplicationID, in.Status, in.Reason); err != nil {
			return storeErr(err, "application "+in.ApplicationID)
		}
	}
	return a.audit(ctx, "system", "application."+in.Status, "application:"+in.ApplicationID,
		map[string]any{"serial": in.Serial})
}

// DomainValidationInput is one domain to validate.
type DomainValidationInput struct {
	ApplicationID string
	Domain        string
	Method        string
	Token         string
}

// NewDomainTokens draws one random token per domain (BR: ≥ 112 bits).
func NewDomainTokens(domains []string) map[string]string {
	out := make(map[string]string, len(domains))
	for _, d := range domains {
		b := make([]byte, 24)
		_, _ = rand.Read(b)
		out[d] = hex.EncodeToString(b)
	}
	return out
}

// ValidateDomain records the attempt and checks the token. "Not yet" is an
// ordinary (retryable) error: the workflow's retry policy polls until the
// applicant has published the token or the application expires.
func (a *Activities) ValidateDomain(ctx context.Context, in DomainValidationInput) error {
	if _, err := a.Store.EnsureDomainValidation(ctx, store.DomainValidation{
		ApplicationID: in.ApplicationID, Domain: in.Domain, Method: in.Method, Token: in.Token,
	}); err != nil {
		return storeErr(err, "domain validation")
	}
	err := a.DCV.Validate(ctx, in.Method, in.Domain, in.Token)
	if err != nil && !errors.Is(err, dcv.ErrNotYet) {
		return nonRetryable(ErrTypeInvalid, err.Error(), nil)
	}
	if err != nil {
		return err
	}
	return storeErr(a.Store.SetDomainValidationResult(ctx, in.ApplicationID, in.Domain, "valid", "", time.Now()), "domain validation")
}

// SubjectFrom builds the certificate subject from the verified subscriber
// data: DV carries the first domain only; OV the organisation; client-sign
// the person's name (family name first, as entered).
func SubjectFrom(s SubscriberData, prod string) pki.Subject {
	switch prod {
	case product.ServerOV:
		return pki.Subject{Organization: s.Organization, Locality: s.Locality, Province: s.Province, Country: s.Country}
	case product.ClientSign:
		parts := strings.Fields(s.Name)
		sub := pki.Subject{CommonName: s.Name, Organization: s.Organization, Country: s.Country}
		if len(parts) > 0 {
			sub.Surname = parts[0]
			sub.GivenName = strings.Join(parts[1:], " ")
		}
		return sub
	}
	return pki.Subject{}
}

// audit appends to the hash-chained audit log. Details carry no personal
// data. event_key makes a retried activity append once.
func (a *Activities) audit(ctx context.Context, actor, action, object string, details map[string]any) error {
	raw, err := json.Marshal(details)
	if err != nil {
		return nonRetryable(ErrTypeInvalid, "audit details: "+err.Error(), nil)
	}
	key := sha256.Sum256([]byte(fmt.Sprint(actor, "|", action, "|", object, "|", string(raw))))
	_, err = a.Store.AppendAudit(ctx, store.AuditEvent{
		Actor: actor, Action: action, ObjectRef: object, Details: raw, EventKey: hex.EncodeToString(key[:]),
	})
	return err
}
