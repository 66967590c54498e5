package activities

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"time"

	"certdesk/internal/correction"
	"certdesk/internal/status"
	"certdesk/internal/store"
)

// Correction field keys and classifications, as internal/correction
// defines them.
const (
	FieldOrganization   = correction.FieldOrganization
	FieldLocality       = correction.FieldLocality
	FieldProvince       = correction.FieldProvince
	FieldCountry        = correction.FieldCountry
	FieldSubscriberName = correction.FieldSubscriberName
	FieldContactName    = correction.FieldContactName
	FieldDomains        = correction.FieldDomains
	FieldContactEmail   = correction.FieldContactEmail
	FieldContactPhone   = correction.FieldContactPhone
	FieldPostalAddress  = correction.FieldPostalAddress

	CorrectionContact = correction.Contact
	CorrectionPrinted = correction.Printed
)

// CheckCorrectionInput is a reseller's correction as the starter received it.
type CheckCorrectionInput struct {
	CorrectionID string
	Serial       string
	ResellerID   string
	Changes      map[string]string
}

// ReissueData prefills the new application a printed change leads to.
type ReissueData struct {
	Product      string
	CSRPEM       string // the old application's CSR: the key stays, the data changes
	Domains      []string
	ValidityDays int
	Subscriber   SubscriberData
	TermsVersion string
}

// CorrectionPlan is what a correction will do. It carries personal data
// (the corrected values): encrypted payloads only, never details or logs.
type CorrectionPlan struct {
	Serial         string
	Product        string
	SubscriberID   string
	ApplicationID  string
	Organization   string            // greeting in notices
	Changes        map[string]string // canonical keys, normalised values, only what actually changes
	ChangedFields  []string          // sorted names; no values
	PrintedFields  []string          // the changed fields that are printed in the certificate
	Classification string            // contact or printed
	// ReviewRequired: a printed change on an OV or client certificate goes
	// to staff before the certificate is revoked.
	ReviewRequired bool
	EmailChanged   bool
	Reissue        *ReissueData // printed changes only
}

// correctionReader is what a correction reads about one certificate.
type correctionReader interface {
	GetCertificateForReseller(ctx context.Context, serial, resellerID string) (store.Certificate, error)
	GetSubscriber(ctx context.Context, id string) (store.Subscriber, error)
	GetApplication(ctx context.Context, id string) (store.Application, error)
}

// correctionSubject is what a correction reads about one certificate.
type correctionSubject struct {
	cert store.Certificate
	sub  store.Subscriber
	app  store.Application
	held correction.Values
}

// loadCorrectionSubject reads the certificate only if resellerID manages it:
// another reseller gets NotFound, as in the API (O3).
func loadCorrectionSubject(ctx context.Context, st correctionReader, serial, resellerID string) (correctionSubject, error) {
	var cs correctionSubject
	c, err := st.GetCertificateForReseller(ctx, serial, resellerID)
	if err != nil {
		return cs, storeErr(err, "certificate "+store.NormalizeSerial(serial))
	}
	cs.cert = c
	if cs.sub, err = st.GetSubscriber(ctx, c.SubscriberID); err != nil {
		return cs, storeErr(err, "subscriber of certificate "+c.Serial)
	}
	if cs.app, err = st.GetApplication(ctx, c.ApplicationID); err != nil {
		return cs, storeErr(err, "application of certificate "+c.Serial)
	}
	cs.held = correction.Values{Organization: cs.sub.Organization, Name: cs.sub.Name, Country: cs.sub.Country,
		Domains: cs.app.Domains, Email: cs.sub.Email, Phone: cs.sub.Phone, Address: cs.sub.Address}
	// Locality and province are held only in the certificate (OV).
	if x, err := x509.ParseCertificate(c.DER); err == nil {
		cs.held.Locality, cs.held.Province = first(x.Subject.Locality), first(x.Subject.Province)
	}
	return cs, nil
}

func first(v []string) string {
	if len(v) > 0 {
		return v[0]
	}
	return ""
}

// CheckCorrection authorises and plans a correction. It writes nothing: a
// reseller that does not manage the certificate gets NotFound (as in the
// API), an unusable change InvalidInput, and nothing is left behind.
func (a *Activities) CheckCorrection(ctx context.Context, in CheckCorrectionInput) (CorrectionPlan, error) {
	return checkCorrection(ctx, a.Store, in, time.Now())
}

func checkCorrection(ctx context.Context, st correctionReader, in CheckCorrectionInput, now time.Time) (CorrectionPlan, error) {
	cs, err := loadCorrectionSubject(ctx, st, in.Serial, in.ResellerID)
	if err != nil {
		return CorrectionPlan{}, err
	}
	prod := cs.cert.Product
	p, err := correction.Check(correction.Certificate{Serial: cs.cert.Serial, Product: prod, Held: cs.held,
		Valid: cs.cert.Status == status.CertValid && now.Before(cs.cert.NotAfter)}, in.Changes)
	if err != nil {
		return CorrectionPlan{}, nonRetryable(ErrTypeInvalid, err.Error(), nil)
	}
	plan := CorrectionPlan{Serial: cs.cert.Serial, Product: prod, SubscriberID: cs.sub.ID, ApplicationID: cs.app.ID,
		Organization: cs.sub.Organization, Changes: p.Changes, ChangedFields: p.ChangedFields, PrintedFields: p.PrintedFields,
		Classification: p.Classification, ReviewRequired: p.ReviewRequired, EmailChanged: p.EmailChanged}
	if p.Classification != correction.Printed {
		return plan, nil
	}
	// A printed change: the new application carries the corrected data,
	// and the old key (the CSR stays, the data changes).
	v := cs.held
	v.Apply(p.Changes)
	plan.Reissue = &ReissueData{
		Product: prod, Domains: v.Domains, ValidityDays: cs.app.ValidityDays, TermsVersion: cs.app.AttestationTermsVersion,
		Subscriber: SubscriberData{Organization: v.Organization, Name: v.Name, Email: v.Email, Phone: v.Phone,
			Address: v.Address, Country: v.Country, Locality: v.Locality, Province: v.Province},
		CSRPEM: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: cs.app.CSR})),
	}
	return plan, nil
}
