package activities

import (
	"context"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"net/mail"
	"regexp"
	"sort"
	"strings"
	"time"

	"certdesk/internal/mailer"
	"certdesk/internal/store"
)

// Correction field keys: the names mailer.FieldLabels knows, so notices
// list the corrected items in Japanese and English.
const (
	FieldOrganization   = "organization_name"
	FieldLocality       = "locality"
	FieldProvince       = "state_or_province"
	FieldCountry        = "country"
	FieldSubscriberName = "subscriber_name" // the person named in a client-sign certificate
	FieldContactName    = "contact_name"    // the contact person of a TLS certificate
	FieldDomains        = "domains"
	FieldContactEmail   = "contact_email"
	FieldContactPhone   = "contact_phone"
	FieldPostalAddress  = "postal_address"
)

// Correction classifications (the corrections.classification column).
const (
	CorrectionContact = "contact" // nothing printed in the certificate changes
	CorrectionPrinted = "printed" // the certificate must be revoked and re-applied for
)

// fieldAliases accepts the short names a reseller system is likely to send.
var fieldAliases = map[string]string{
	"organization": FieldOrganization, "org": FieldOrganization,
	"province": FieldProvince, "state": FieldProvince,
	"email": FieldContactEmail, "phone": FieldContactPhone, "telephone": FieldContactPhone,
	"address": FieldPostalAddress,
}

// printedFields lists, per product, the fields printed in the certificate
// (what SubjectFrom and the issuer put there): a change to one of them
// needs a new certificate. The other fields a product holds are applied to
// the subscriber record.
var printedFields = map[string]map[string]bool{
	"server-dv":   {FieldDomains: true},
	"server-ov":   {FieldOrganization: true, FieldLocality: true, FieldProvince: true, FieldCountry: true, FieldDomains: true},
	"client-sign": {FieldSubscriberName: true, FieldOrganization: true, FieldCountry: true, FieldContactEmail: true},
}

// heldFields lists, per product, every field CertDesk holds for it.
var heldFields = map[string]map[string]bool{
	"server-dv": {FieldDomains: true, FieldOrganization: true, FieldContactName: true, FieldCountry: true,
		FieldContactEmail: true, FieldContactPhone: true, FieldPostalAddress: true},
	"server-ov": {FieldDomains: true, FieldOrganization: true, FieldLocality: true, FieldProvince: true, FieldCountry: true,
		FieldContactName: true, FieldContactEmail: true, FieldContactPhone: true, FieldPostalAddress: true},
	"client-sign": {FieldSubscriberName: true, FieldOrganization: true, FieldCountry: true,
		FieldContactEmail: true, FieldContactPhone: true, FieldPostalAddress: true},
}

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

// correctionSubject is what a correction reads about one certificate.
type correctionSubject struct {
	cert store.Certificate
	sub  store.Subscriber
	app  store.Application
	x509 *x509.Certificate // nil if the DER does not parse
}

// loadCorrectionSubject reads the certificate only if resellerID manages it:
// another reseller gets NotFound, as in the API (O3).
func (a *Activities) loadCorrectionSubject(ctx context.Context, serial, resellerID string) (correctionSubject, error) {
	var cs correctionSubject
	c, err := a.Store.GetCertificateForReseller(ctx, serial, resellerID)
	if err != nil {
		return cs, storeErr(err, "certificate "+store.NormalizeSerial(serial))
	}
	cs.cert = c
	if cs.sub, err = a.Store.GetSubscriber(ctx, c.SubscriberID); err != nil {
		return cs, storeErr(err, "subscriber of certificate "+c.Serial)
	}
	if cs.app, err = a.Store.GetApplication(ctx, c.ApplicationID); err != nil {
		return cs, storeErr(err, "application of certificate "+c.Serial)
	}
	if x, err := x509.ParseCertificate(c.DER); err == nil {
		cs.x509 = x
	}
	return cs, nil
}

// current returns the value held for a field.
func (cs correctionSubject) current(field string) string {
	first := func(v []string) string {
		if len(v) > 0 {
			return v[0]
		}
		return ""
	}
	switch field {
	case FieldOrganization:
		return cs.sub.Organization
	case FieldSubscriberName, FieldContactName:
		return cs.sub.Name
	case FieldCountry:
		return cs.sub.Country
	case FieldLocality:
		if cs.x509 != nil {
			return first(cs.x509.Subject.Locality)
		}
	case FieldProvince:
		if cs.x509 != nil {
			return first(cs.x509.Subject.Province)
		}
	case FieldDomains:
		return strings.Join(cs.app.Domains, ",")
	case FieldContactEmail:
		return cs.sub.Email
	case FieldContactPhone:
		return cs.sub.Phone
	case FieldPostalAddress:
		return cs.sub.Address
	}
	return ""
}

var (
	countryRE = regexp.MustCompile(`^[A-Z]{2}$`)
	phoneRE   = regexp.MustCompile(`^\+?[0-9][0-9 ()\-]{5,30}$`)
)

// canonicalField maps a submitted key to its canonical name for product.
func canonicalField(key, product string) string {
	k := strings.ToLower(strings.TrimSpace(key))
	if c, ok := fieldAliases[k]; ok {
		k = c
	}
	if k == "name" || k == FieldContactName || k == FieldSubscriberName {
		if product == "client-sign" {
			return FieldSubscriberName
		}
		return FieldContactName
	}
	return k
}

// normaliseValue checks one corrected value and returns it in stored form.
func normaliseValue(field, v string) (string, error) {
	v = strings.TrimSpace(v)
	if len([]rune(v)) > 256 && field != FieldDomains {
		return "", fmt.Errorf("%s is longer than 256 characters", field)
	}
	switch field {
	case FieldContactEmail:
		addr, err := mail.ParseAddress(v)
		if err != nil || addr.Name != "" || addr.Address != v {
			return "", fmt.Errorf("%s is not a plain email address", field)
		}
		return v, nil
	case FieldCountry:
		v = strings.ToUpper(v)
		if !countryRE.MatchString(v) {
			return "", fmt.Errorf("%s must be an ISO 3166-1 alpha-2 code such as JP", field)
		}
		return v, nil
	case FieldContactPhone:
		if v != "" && !phoneRE.MatchString(v) {
			return "", fmt.Errorf("%s is not a telephone number", field)
		}
		return v, nil
	case FieldPostalAddress:
		return v, nil // may be cleared
	case FieldDomains:
		var out []string
		seen := map[string]bool{}
		for _, d := range strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' }) {
			d = strings.TrimSuffix(strings.ToLower(d), ".")
			if d != "" && !seen[d] {
				seen[d] = true
				out = append(out, d)
			}
		}
		if len(out) == 0 {
			return "", fmt.Errorf("%s must list at least one domain name", field)
		}
		return strings.Join(out, ","), nil
	}
	if v == "" {
		return "", fmt.Errorf("%s cannot be empty", field)
	}
	return v, nil
}

// CheckCorrection authorises and plans a correction. It writes nothing: a
// reseller that does not manage the certificate gets NotFound (as in the
// API), an unusable change InvalidInput, and nothing is left behind.
func (a *Activities) CheckCorrection(ctx context.Context, in CheckCorrectionInput) (CorrectionPlan, error) {
	cs, err := a.loadCorrectionSubject(ctx, in.Serial, in.ResellerID)
	if err != nil {
		return CorrectionPlan{}, err
	}
	product := cs.cert.Product
	plan := CorrectionPlan{Serial: cs.cert.Serial, Product: product, SubscriberID: cs.sub.ID, ApplicationID: cs.app.ID,
		Organization: cs.sub.Organization, Changes: map[string]string{}, Classification: CorrectionContact}
	var problems []string
	for key, raw := range in.Changes {
		field := canonicalField(key, product)
		if _, known := mailer.FieldLabels[field]; !known || !heldFields[product][field] {
			problems = append(problems, fmt.Sprintf("%q is not held for a %s certificate", key, product))
			continue
		}
		v, err := normaliseValue(field, raw)
		if err != nil {
			problems = append(problems, err.Error())
			continue
		}
		if prev, dup := plan.Changes[field]; dup && prev != v {
			problems = append(problems, fmt.Sprintf("%s is given twice with different values", field))
			continue
		}
		if v != cs.current(field) {
			plan.Changes[field] = v
		}
	}
	if len(problems) > 0 {
		sort.Strings(problems)
		return CorrectionPlan{}, nonRetryable(ErrTypeInvalid, "correction refused: "+strings.Join(problems, "; "), nil)
	}
	if len(plan.Changes) == 0 {
		return CorrectionPlan{}, nonRetryable(ErrTypeInvalid, "correction refused: every value given is already the one held; nothing to correct", nil)
	}
	for f := range plan.Changes {
		plan.ChangedFields = append(plan.ChangedFields, f)
		if printedFields[product][f] {
			plan.PrintedFields = append(plan.PrintedFields, f)
		}
	}
	sort.Strings(plan.ChangedFields)
	sort.Strings(plan.PrintedFields)
	_, plan.EmailChanged = plan.Changes[FieldContactEmail]
	if len(plan.PrintedFields) == 0 {
		return plan, nil
	}

	// A printed change: revoke and re-apply. Only a valid certificate is
	// revoked; for one already revoked or expired the reseller applies anew.
	if cs.cert.Status != "valid" || !time.Now().Before(cs.cert.NotAfter) {
		return CorrectionPlan{}, nonRetryable(ErrTypeInvalid, fmt.Sprintf(
			"correction refused: %s is printed in certificate %s, which is no longer valid; submit a new application with the corrected data",
			strings.Join(plan.PrintedFields, ", "), cs.cert.Serial), nil)
	}
	plan.Classification = CorrectionPrinted
	plan.ReviewRequired = product == "server-ov" || product == "client-sign"
	sd := SubscriberData{Organization: cs.sub.Organization, Name: cs.sub.Name, Email: cs.sub.Email, Phone: cs.sub.Phone,
		Address: cs.sub.Address, Country: cs.sub.Country,
		Locality: cs.current(FieldLocality), Province: cs.current(FieldProvince)}
	applySubscriberData(&sd, plan.Changes)
	domains := cs.app.Domains
	if v, ok := plan.Changes[FieldDomains]; ok {
		domains = strings.Split(v, ",")
	}
	plan.Reissue = &ReissueData{
		Product: product, Domains: domains, ValidityDays: cs.app.ValidityDays, Subscriber: sd,
		TermsVersion: cs.app.AttestationTermsVersion,
		CSRPEM:       string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: cs.app.CSR})),
	}
	return plan, nil
}

// applySubscriberData writes corrected values into subscriber data.
func applySubscriberData(sd *SubscriberData, changes map[string]string) {
	for f, v := range changes {
		switch f {
		case FieldOrganization:
			sd.Organization = v
		case FieldSubscriberName, FieldContactName:
			sd.Name = v
		case FieldCountry:
			sd.Country = v
		case FieldLocality:
			sd.Locality = v
		case FieldProvince:
			sd.Province = v
		case FieldContactEmail:
			sd.Email = v
		case FieldContactPhone:
			sd.Phone = v
		case FieldPostalAddress:
			sd.Address = v
		}
	}
}

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
	cs, err := a.loadCorrectionSubject(ctx, in.Serial, in.ResellerID)
	if err != nil {
		return err
	}
	old := make(map[string]string, len(in.Changes))
	fields := make([]string, 0, len(in.Changes))
	for f := range in.Changes {
		old[f] = cs.current(f)
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
	sd := SubscriberData{Organization: sub.Organization, Name: sub.Name, Email: sub.Email, Phone: sub.Phone,
		Address: sub.Address, Country: sub.Country}
	applySubscriberData(&sd, in.Changes)
	sub.Organization, sub.Name, sub.Email, sub.Phone, sub.Address, sub.Country = sd.Organization, sd.Name, sd.Email, sd.Phone, sd.Address, sd.Country
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
