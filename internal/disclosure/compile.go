package disclosure

import (
	"context"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"time"

	"certdesk/internal/pii"
	"certdesk/internal/revocation"
	"certdesk/internal/store"
)

// Source is what Compile reads: the subset of the store that holds personal
// data about a person. Every method reports an absent row as
// store.ErrNotFound; any other error fails the compilation, because a
// package that promises "all personal data" must not silently miss some.
type Source interface {
	FindSubscribersByEmail(ctx context.Context, email string) ([]store.Subscriber, error)
	ListApplicationsBySubscriber(ctx context.Context, subscriberID string) ([]store.Application, error)
	GetVerification(ctx context.Context, id string) (store.Verification, error)
	ListCertificatesBySubscriber(ctx context.Context, subscriberID string) ([]store.CertificateRef, error)
	GetCertificate(ctx context.Context, serial string) (store.Certificate, error)
	GetRevocation(ctx context.Context, serial string) (store.Revocation, error)
	ListCorrectionsBySubscriber(ctx context.Context, subscriberID string) ([]store.Correction, error)
	ListProvisionsByPerson(ctx context.Context, personRef string) ([]store.Provision, error)
	ListStaffAccessByPerson(ctx context.Context, personRef string) ([]store.StaffAccess, error)
	ListEmailsByRecipient(ctx context.Context, refs ...string) ([]store.EmailLogEntry, error)
	ListInquiriesByEmail(ctx context.Context, email string) ([]store.Inquiry, error)
	ListDisclosureRequestsByEmail(ctx context.Context, email, exceptID string) ([]store.DisclosureRequest, error)
}

// Input is one request to compile.
type Input struct {
	Request store.DisclosureRequest
	// EmailRef is the email-log reference of the requester's address (its
	// blind index): emails sent to the address before any subscriber
	// record matched it are found by it.
	EmailRef string
	// ExcludeKeyPrefixes leaves out emails whose idempotency key starts
	// with one of these (the request's own one-time code: not data held
	// before it).
	ExcludeKeyPrefixes []string
	// Now is the compilation time; zero: time.Now.
	Now time.Time
}

// Compile gathers everything src holds about the person who asks: the
// subscriber records with the request's address (several may hold it)
// whose name and phone number also match those the request gives (see
// Matches), and what hangs off each; the emails sent to them and to the
// address; and earlier requests with the same address, name and phone
// number. Records found by the address alone are not disclosed (a shared
// address must not give away another person's data): they are counted in
// Package.Withheld for the staff check, never listed. Inquiries name only an
// address, so they cannot be told apart and are withheld too. It returns
// the package and the person references disclosed about (subscriber ids;
// the email reference when only emails or earlier requests matched; none
// when nothing is held). Any read that fails fails the whole compilation:
// no partial package.
func Compile(ctx context.Context, src Source, in Input) (*Package, []string, error) {
	now := in.Now
	if now.IsZero() {
		now = time.Now()
	}
	req := in.Request
	p := &Package{Format: Format, RequestID: req.ID, ReceivedAt: req.ReceivedAt.UTC(),
		CompiledAt: now.UTC().Truncate(time.Second), Controller: controller, LegalBasis: legalBasis,
		Subscribers: []Subscriber{}, Applications: []Application{}, Certificates: []Certificate{},
		Corrections: []Correction{}, Revocations: []Revocation{}, Emails: []Email{},
		ThirdPartyProvisions: []Provision{}, StaffAccess: []Access{}, Inquiries: []Inquiry{},
		DisclosureRequests: []Request{}}
	subs, err := src.FindSubscribersByEmail(ctx, req.Email)
	if err != nil {
		return nil, nil, fmt.Errorf("disclosure %s: subscribers: %w", req.ID, err)
	}
	refs := []string{in.EmailRef}
	var personRefs []string
	for _, s := range subs {
		if !Matches(req.Name, req.Phone, s.Name, s.Phone) {
			p.withhold(ItemSubscribers)
			continue
		}
		refs = append(refs, "subscriber:"+s.ID)
		personRefs = append(personRefs, s.ID)
		p.Subscribers = append(p.Subscribers, Subscriber{ID: s.ID, ResellerID: s.ResellerID, Organization: s.Organization,
			Name: s.Name, Email: s.Email, Phone: s.Phone, Address: s.Address, Country: s.Country,
			CreatedAt: s.CreatedAt.UTC(), UpdatedAt: s.UpdatedAt.UTC()})
		if err := addSubscriber(ctx, src, p, s.ID); err != nil {
			return nil, nil, fmt.Errorf("disclosure %s: subscriber %s: %w", req.ID, s.ID, err)
		}
	}
	if err := addContact(ctx, src, p, req, refs, in.ExcludeKeyPrefixes); err != nil {
		return nil, nil, fmt.Errorf("disclosure %s: %w", req.ID, err)
	}

	total := 0
	for _, n := range p.Counts() {
		total += n
	}
	p.NothingHeld = total == 0
	if p.NothingHeld {
		p.StatementJA, p.StatementEN = nothingJA, nothingEN
		return p, nil, nil
	}
	p.StatementJA, p.StatementEN = allJA, allEN
	if len(personRefs) == 0 {
		personRefs = []string{in.EmailRef}
	}
	return p, personRefs, nil
}

// addContact adds what is found by the address itself: the emails sent to
// it (their notice and time; the mailbox holder received them) and earlier
// disclosure requests whose name and phone number match; inquiries are
// only counted as withheld.
func addContact(ctx context.Context, src Source, p *Package, req store.DisclosureRequest, refs, exclude []string) error {
	emails, err := src.ListEmailsByRecipient(ctx, refs...)
	if err != nil {
		return fmt.Errorf("emails: %w", err)
	}
	for _, e := range emails {
		if hasAnyPrefix(e.IdempotencyKey, exclude) {
			continue
		}
		p.Emails = append(p.Emails, Email{Notice: e.Notice, Status: e.Status, CreatedAt: e.CreatedAt.UTC(), SentAt: utcPtr(e.SentAt)})
	}
	inqs, err := src.ListInquiriesByEmail(ctx, req.Email)
	if err != nil {
		return fmt.Errorf("inquiries: %w", err)
	}
	// An inquiry names only a contact address: nothing tells whose it is.
	for range inqs {
		p.withhold(ItemInquiries)
	}
	prev, err := src.ListDisclosureRequestsByEmail(ctx, req.Email, req.ID)
	if err != nil {
		return fmt.Errorf("earlier disclosure requests: %w", err)
	}
	for _, r := range prev {
		if !Matches(req.Name, req.Phone, r.Name, r.Phone) {
			p.withhold(ItemDisclosureRequests)
			continue
		}
		p.DisclosureRequests = append(p.DisclosureRequests, Request{ID: r.ID, Name: r.Name, Delivery: r.DeliveryMethod,
			State: r.State, ReceivedAt: r.ReceivedAt.UTC(), DeliveredAt: utcPtr(r.DeliveredAt)})
	}
	return nil
}

// addSubscriber adds what hangs off one subscriber record.
func addSubscriber(ctx context.Context, src Source, p *Package, subID string) error {
	apps, err := src.ListApplicationsBySubscriber(ctx, subID)
	if err != nil {
		return fmt.Errorf("applications: %w", err)
	}
	for _, ap := range apps {
		d := Application{ID: ap.ID, SubscriberID: subID, ResellerID: ap.ResellerID, Product: ap.Product,
			Domains: append([]string{}, ap.Domains...), ValidityDays: ap.ValidityDays, TermsVersion: ap.AttestationTermsVersion,
			AttestedAt: ap.AttestedAt.UTC(), Status: ap.Status, StatusReason: ap.StatusReason, CertificateSerial: ap.CertificateSerial,
			CreatedAt: ap.CreatedAt.UTC()}
		if len(ap.CSR) > 0 { // an ACME order before finalize has none
			d.CSRPEM = string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: ap.CSR}))
		}
		if ap.VerificationID != "" {
			v, err := src.GetVerification(ctx, ap.VerificationID)
			switch {
			case err == nil:
				d.VerificationMethod, d.VerificationResult, d.VerifiedAt = v.Method, v.Result, utcPtr(v.DecidedAt)
			case !errors.Is(err, store.ErrNotFound):
				return fmt.Errorf("verification of application %s: %w", ap.ID, err)
			}
		}
		p.Applications = append(p.Applications, d)
	}
	certs, err := src.ListCertificatesBySubscriber(ctx, subID)
	if err != nil {
		return fmt.Errorf("certificates: %w", err)
	}
	for _, ref := range certs {
		c, err := src.GetCertificate(ctx, ref.Serial)
		if err != nil {
			return fmt.Errorf("certificate %s: %w", ref.Serial, err)
		}
		p.Certificates = append(p.Certificates, Certificate{Serial: c.Serial, SubscriberID: subID, Issuer: c.Issuer,
			Product: c.Product, Status: c.Status, NotBefore: c.NotBefore.UTC(), NotAfter: c.NotAfter.UTC(), RevokedAt: utcPtr(ref.RevokedAt),
			CertificatePEM: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.DER}))})
		r, err := src.GetRevocation(ctx, c.Serial)
		if errors.Is(err, store.ErrNotFound) {
			continue
		} else if err != nil {
			return fmt.Errorf("revocation of %s: %w", c.Serial, err)
		}
		p.Revocations = append(p.Revocations, Revocation{Serial: r.Serial, ReasonCode: r.ReasonCode,
			Reason: revocation.NameOf(r.ReasonCode), RequestedByKind: r.RequestedByKind, RequestedAt: r.RequestedAt.UTC(),
			RevokedAt: utcPtr(r.RevokedAt)})
	}
	corrs, err := src.ListCorrectionsBySubscriber(ctx, subID)
	if err != nil {
		return fmt.Errorf("corrections: %w", err)
	}
	for _, c := range corrs {
		p.Corrections = append(p.Corrections, Correction{ID: c.ID, Serial: c.Serial, ResellerID: c.ResellerID,
			OldValues: c.OldValues, NewValues: c.NewValues, Classification: c.Classification, Status: c.Status,
			RevocationSerial: c.RevocationSerial, NewApplicationID: c.NewApplicationID, CreatedAt: c.CreatedAt.UTC()})
	}
	provs, err := src.ListProvisionsByPerson(ctx, subID)
	if err != nil {
		return fmt.Errorf("provisions: %w", err)
	}
	for _, pr := range provs {
		p.ThirdPartyProvisions = append(p.ThirdPartyProvisions, Provision{ID: pr.ID, ProvidedAt: pr.ProvidedAt.UTC(),
			RecipientKind: pr.RecipientKind, RecipientRef: pr.RecipientRef, PersonRef: pr.PersonRef,
			DataItems: append([]string{}, pr.DataItems...), LegalBasis: pr.LegalBasis})
	}
	acc, err := src.ListStaffAccessByPerson(ctx, subID)
	if err != nil {
		return fmt.Errorf("staff access: %w", err)
	}
	for _, x := range acc {
		p.StaffAccess = append(p.StaffAccess, Access{StaffID: x.StaffID, PersonRef: x.PersonRef, Purpose: x.Purpose,
			Channel: x.Channel, AccessedAt: x.AccessedAt.UTC()})
	}
	return nil
}

// Matches says whether a record (its name and phone number) belongs to the
// requester who gave name and phone: both must be present on both sides
// and equal after pii.NormalizeName and pii.NormalizePhone. A record with
// no phone number on file, or a request without one, never matches: the
// address alone, or the address and a name, is not enough.
func Matches(name, phone, recordName, recordPhone string) bool {
	n, rn := pii.NormalizeName(name), pii.NormalizeName(recordName)
	ph, rph := pii.NormalizePhone(phone), pii.NormalizePhone(recordPhone)
	return n != "" && ph != "" && n == rn && ph == rph
}

func (p *Package) withhold(item string) {
	if p.Withheld == nil {
		p.Withheld = map[string]int{}
	}
	p.Withheld[item]++
}

func hasAnyPrefix(s string, prefixes []string) bool {
	for _, p := range prefixes {
		if p != "" && strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}
