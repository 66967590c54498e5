// Package correction holds the rules for a reseller's correction of a
// certificate's data (APPI Art. 34): the field names and the short names
// accepted for them, which fields each product holds and which it prints
// in the certificate, how a value is checked and stored, and when a change
// needs a new certificate and a staff review. It reads and writes nothing.
package correction

import (
	"fmt"
	"sort"
	"strings"

	"certdesk/internal/contact"
	"certdesk/internal/product"
)

// Field keys: also the names mailer.FieldLabels knows, so notices list the
// corrected items in Japanese and English.
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

// Classifications (the corrections.classification column).
const (
	Contact = "contact" // nothing printed in the certificate changes
	Printed = "printed" // the certificate must be revoked and re-applied for
)

// aliases are the short names a reseller system is likely to send.
var aliases = map[string]string{
	"organization": FieldOrganization, "org": FieldOrganization,
	"province": FieldProvince, "state": FieldProvince,
	"email": FieldContactEmail, "phone": FieldContactPhone, "telephone": FieldContactPhone,
	"address": FieldPostalAddress,
}

type fieldSet map[string]bool

// printed lists, per product, the fields printed in the certificate (what
// the issuer puts in the subject and SAN): a change to one of them needs a
// new certificate. The product's other fields are applied to the
// subscriber record.
var printed = map[string]fieldSet{
	product.ServerDV:   {FieldDomains: true},
	product.ServerOV:   {FieldOrganization: true, FieldLocality: true, FieldProvince: true, FieldCountry: true, FieldDomains: true},
	product.ClientSign: {FieldSubscriberName: true, FieldOrganization: true, FieldCountry: true, FieldContactEmail: true},
}

// held lists, per product, every field CertDesk holds for it.
var held = map[string]fieldSet{
	product.ServerDV: {FieldDomains: true, FieldOrganization: true, FieldContactName: true, FieldCountry: true,
		FieldContactEmail: true, FieldContactPhone: true, FieldPostalAddress: true},
	product.ServerOV: {FieldDomains: true, FieldOrganization: true, FieldLocality: true, FieldProvince: true, FieldCountry: true,
		FieldContactName: true, FieldContactEmail: true, FieldContactPhone: true, FieldPostalAddress: true},
	product.ClientSign: {FieldSubscriberName: true, FieldOrganization: true, FieldCountry: true,
		FieldContactEmail: true, FieldContactPhone: true, FieldPostalAddress: true},
}

// Fields lists every field key, sorted.
func Fields() []string {
	seen := map[string]bool{}
	for _, set := range held {
		for f := range set {
			seen[f] = true
		}
	}
	out := make([]string, 0, len(seen))
	for f := range seen {
		out = append(out, f)
	}
	sort.Strings(out)
	return out
}

// Held reports whether CertDesk holds field for certificates of prod.
func Held(prod, field string) bool { return held[prod][field] }

// IsPrinted reports whether field is printed in certificates of prod.
func IsPrinted(prod, field string) bool { return printed[prod][field] }

// ReviewRequired reports whether a printed change on a certificate of prod
// goes to staff before the certificate is revoked: the products whose
// identity was verified need it verified again.
func ReviewRequired(prod string) bool { return product.VerifiesIdentity(prod) }

// Canonical maps a submitted key to its field key for prod: case and
// surrounding space are ignored, aliases resolved, and "name" is the
// subscriber's name on a client certificate, the contact's otherwise.
func Canonical(key, prod string) string {
	k := strings.ToLower(strings.TrimSpace(key))
	if c, ok := aliases[k]; ok {
		k = c
	}
	if k == "name" || k == FieldContactName || k == FieldSubscriberName {
		if product.Client(prod) {
			return FieldSubscriberName
		}
		return FieldContactName
	}
	return k
}

// Normalise checks one corrected value and returns it in stored form:
// trimmed; a country in capitals; domains lower-case, without a final dot,
// deduplicated and comma-separated. Only the phone number and the postal
// address may be cleared.
func Normalise(field, v string) (string, error) {
	v = strings.TrimSpace(v)
	if field != FieldDomains {
		if err := contact.CheckText(v, contact.MaxText); err != nil {
			return "", fmt.Errorf("%s: %v", field, err)
		}
	}
	switch field {
	case FieldContactEmail:
		if err := contact.CheckEmail(v); err != nil {
			return "", fmt.Errorf("%s: %v", field, err)
		}
		return v, nil
	case FieldCountry:
		v = strings.ToUpper(v)
		if err := contact.CheckCountry(v); err != nil {
			return "", fmt.Errorf("%s: %v", field, err)
		}
		return v, nil
	case FieldContactPhone:
		if v != "" {
			if err := contact.CheckPhone(v); err != nil {
				return "", fmt.Errorf("%s: %v", field, err)
			}
		}
		return v, nil
	case FieldPostalAddress:
		return v, nil
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
