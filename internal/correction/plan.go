package correction

import (
	"errors"
	"fmt"
	"sort"
	"strings"
)

// Values are the values held for one certificate, by field.
type Values struct {
	Organization string
	Name         string // the subscriber's (client-sign) or the contact's (TLS)
	Country      string
	Locality     string // printed in OV certificates only
	Province     string // printed in OV certificates only
	Domains      []string
	Email        string
	Phone        string
	Address      string
}

// Get returns the value held for field ("" for an unknown field); domains
// are comma-separated, as Normalise writes them.
func (v Values) Get(field string) string {
	switch field {
	case FieldOrganization:
		return v.Organization
	case FieldSubscriberName, FieldContactName:
		return v.Name
	case FieldCountry:
		return v.Country
	case FieldLocality:
		return v.Locality
	case FieldProvince:
		return v.Province
	case FieldDomains:
		return strings.Join(v.Domains, ",")
	case FieldContactEmail:
		return v.Email
	case FieldContactPhone:
		return v.Phone
	case FieldPostalAddress:
		return v.Address
	}
	return ""
}

// Apply writes normalised changes into v.
func (v *Values) Apply(changes map[string]string) {
	for f, x := range changes {
		switch f {
		case FieldOrganization:
			v.Organization = x
		case FieldSubscriberName, FieldContactName:
			v.Name = x
		case FieldCountry:
			v.Country = x
		case FieldLocality:
			v.Locality = x
		case FieldProvince:
			v.Province = x
		case FieldDomains:
			v.Domains = strings.Split(x, ",")
		case FieldContactEmail:
			v.Email = x
		case FieldContactPhone:
			v.Phone = x
		case FieldPostalAddress:
			v.Address = x
		}
	}
}

// Certificate is what the rules need to know about the certificate being
// corrected.
type Certificate struct {
	Serial  string
	Product string
	// Valid: not revoked and not expired, so a printed change can revoke it
	// and re-apply.
	Valid bool
	Held  Values
}

// Plan is what a correction will change. Changes holds personal data.
type Plan struct {
	Changes        map[string]string // field keys, normalised values, only what actually changes
	ChangedFields  []string          // sorted
	PrintedFields  []string          // the changed fields printed in the certificate, sorted
	Classification string            // Contact or Printed
	ReviewRequired bool              // a printed change that staff review first
	EmailChanged   bool
}

// ErrRefused is wrapped by every refusal of Check: the correction cannot be
// made as given, and retrying will not help.
var ErrRefused = errors.New("correction refused")

// Check plans the submitted changes against the certificate: every key
// must name a field held for its product and every value pass Normalise;
// values equal to the ones held are dropped, and a correction that changes
// nothing is refused. A change to a printed field makes the correction
// Printed, which needs a valid certificate to revoke; the problems found
// are all reported at once.
func Check(c Certificate, submitted map[string]string) (Plan, error) {
	plan := Plan{Changes: map[string]string{}, Classification: Contact}
	var problems []string
	for key, raw := range submitted {
		field := Canonical(key, c.Product)
		if !Held(c.Product, field) {
			problems = append(problems, fmt.Sprintf("%q is not held for a %s certificate", key, c.Product))
			continue
		}
		v, err := Normalise(field, raw)
		if err != nil {
			problems = append(problems, err.Error())
			continue
		}
		if prev, dup := plan.Changes[field]; dup && prev != v {
			problems = append(problems, fmt.Sprintf("%s is given twice with different values", field))
			continue
		}
		if v != c.Held.Get(field) {
			plan.Changes[field] = v
		}
	}
	if len(problems) > 0 {
		sort.Strings(problems)
		return Plan{}, fmt.Errorf("%w: %s", ErrRefused, strings.Join(problems, "; "))
	}
	if len(plan.Changes) == 0 {
		return Plan{}, fmt.Errorf("%w: every value given is already the one held; nothing to correct", ErrRefused)
	}
	for f := range plan.Changes {
		plan.ChangedFields = append(plan.ChangedFields, f)
		if IsPrinted(c.Product, f) {
			plan.PrintedFields = append(plan.PrintedFields, f)
		}
	}
	sort.Strings(plan.ChangedFields)
	sort.Strings(plan.PrintedFields)
	_, plan.EmailChanged = plan.Changes[FieldContactEmail]
	if len(plan.PrintedFields) == 0 {
		return plan, nil
	}
	// Printed: revoke and re-apply. Only a valid certificate is revoked; for
	// one already revoked or expired the reseller applies anew.
	if !c.Valid {
		return Plan{}, fmt.Errorf("%w: %s is printed in certificate %s, which is no longer valid; submit a new application with the corrected data",
			ErrRefused, strings.Join(plan.PrintedFields, ", "), c.Serial)
	}
	plan.Classification = Printed
	plan.ReviewRequired = ReviewRequired(c.Product)
	return plan, nil
}
