package httpapi

import (
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"regexp"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"certdesk/activities"
	"certdesk/internal/api"
	"certdesk/internal/challenge"
	"certdesk/internal/contact"
	"certdesk/internal/dcv"
	"certdesk/internal/pki"
	"certdesk/internal/pki/problem"
	"certdesk/internal/product"
	"certdesk/internal/revocation"
	"certdesk/workflows"
)

// The request bodies of the API. Each type checks itself (Validate) and
// reports every invalid field at once; the handlers only decode, validate,
// then act. Checks that need the store or Temporal (a blocked key, whose
// certificate it is) stay in the handlers.

var (
	idPattern              = regexp.MustCompile(`^[A-Za-z0-9_-]{1,100}$`)
	versionPattern         = regexp.MustCompile(`^[A-Za-z0-9._-]{1,32}$`)
	correctionFieldPattern = regexp.MustCompile(`^[a-z][a-z_]{0,39}$`)
)

// maxDomainsInAPI is the most names one application may ask for.
const maxDomainsInAPI = 100

// applicationRequest is the body of POST /v1/applications.
type applicationRequest struct {
	Product                string          `json:"product"`
	CSR                    string          `json:"csr"`
	Domains                []string        `json:"domains"`
	ValidityDays           int             `json:"validity_days"`
	Subscriber             subscriberJSON  `json:"subscriber"`
	Attestation            attestationJSON `json:"attestation"`
	DomainValidationMethod string          `json:"domain_validation_method"`
}

type subscriberJSON struct {
	Organization string `json:"organization"`
	Name         string `json:"name"`
	Email        string `json:"email"`
	Phone        string `json:"phone"`
	Address      string `json:"address"`
	Country      string `json:"country"`
	Locality     string `json:"locality"`
	Province     string `json:"province"`
}

type attestationJSON struct {
	TermsVersion string `json:"terms_version"`
	Truthful     *bool  `json:"truthful"`
}

// Validate checks every field against the product's profile as of now and
// normalises the request on the way: domain names lower-cased without a
// trailing dot, validity_days defaulted from the profile. The CSR is only
// parsed here; the product's full CSR and key checks need the blocked-key
// list and run after (Server.checkCSR).
func (r *applicationRequest) Validate(profiles *pki.ProfileSet, now time.Time) *api.Validation {
	var v api.Validation
	sub := r.Subscriber
	prof, perr := profiles.Get(r.Product)
	if v.Required("product", r.Product == "") && (perr != nil || !product.Valid(r.Product)) {
		v.Add("product", "one_of", "must be one of "+strings.Join(product.All(), ", "))
		prof = nil
	}
	tls := product.TLS(r.Product)

	// Domains.
	domains := make([]string, 0, len(r.Domains))
	for _, d := range r.Domains {
		domains = append(domains, strings.TrimSuffix(strings.ToLower(strings.TrimSpace(d)), "."))
	}
	r.Domains = domains
	switch {
	case tls && len(domains) == 0:
		v.Add("domains", "required", "TLS certificates need at least one domain name")
	case !tls && len(domains) > 0 && r.Product != "":
		v.Add("domains", "not_allowed", "client certificates carry no domain names")
	case len(domains) > maxDomainsInAPI:
		v.Add("domains", "too_many", fmt.Sprintf("at most %d names", maxDomainsInAPI))
	case tls:
		for i, d := range domains {
			if err := pki.CheckDomain(d); err != nil {
				v.Add(fmt.Sprintf("domains[%d]", i), problem.CodeOf(err), err.Error())
			}
		}
		if v.OK() {
			if err := pki.CheckDomains(domains); err != nil {
				v.Add("domains", problem.CodeOf(err), err.Error())
			}
		}
	}
	switch r.DomainValidationMethod {
	case "", dcv.MethodHTTP, dcv.MethodDNS:
		if r.DomainValidationMethod != "" && !tls {
			v.Add("domain_validation_method", "not_allowed", "only TLS products validate domains")
		}
	default:
		v.Add("domain_validation_method", "one_of", "must be http-01 or dns-txt")
	}

	// Validity.
	if prof != nil {
		maxDays := int(prof.MaxValidityAt(now) / pki.Day)
		if r.ValidityDays == 0 {
			r.ValidityDays = int(prof.DefaultValidity / pki.Day)
			if r.ValidityDays == 0 || r.ValidityDays > maxDays {
				r.ValidityDays = maxDays
			}
		}
		if r.ValidityDays < 1 || r.ValidityDays > maxDays {
			v.Add("validity_days", "out_of_range", fmt.Sprintf("must be between 1 and %d days for %s", maxDays, r.Product))
		}
	}

	// Subscriber: the contact rules shared with corrections.
	textField(&v, "subscriber.name", sub.Name, contact.MaxName, true)
	textField(&v, "subscriber.organization", sub.Organization, 64, r.Product == product.ServerOV)
	textField(&v, "subscriber.address", sub.Address, 200, false)
	textField(&v, "subscriber.locality", sub.Locality, 128, false)
	textField(&v, "subscriber.province", sub.Province, 128, false)
	emailField(&v, "subscriber.email", sub.Email)
	if sub.Phone != "" {
		if err := contact.CheckPhone(sub.Phone); err != nil {
			v.Add("subscriber.phone", "invalid", err.Error())
		}
	}
	if sub.Country != "" {
		if err := contact.CheckCountry(sub.Country); err != nil {
			v.Add("subscriber.country", "invalid", err.Error())
		}
	} else if r.Product == product.ServerOV {
		v.Add("subscriber.country", "required", "OV certificates print the country")
	}

	// Attestation (O1).
	if v.Required("attestation.terms_version", r.Attestation.TermsVersion == "") && !versionPattern.MatchString(r.Attestation.TermsVersion) {
		v.Add("attestation.terms_version", "invalid", "letters, digits, '.', '_' or '-', at most 32")
	}
	if r.Attestation.Truthful == nil || !*r.Attestation.Truthful {
		v.Add("attestation.truthful", "must_be_true", "the applicant must attest that the application is true (a false application is punishable)")
	}

	// CSR: parsed here; the product's checks follow once the rest is sound.
	if v.Required("csr", strings.TrimSpace(r.CSR) == "") {
		if _, err := pki.ParseCSR([]byte(r.CSR)); err != nil {
			v.Add("csr", problem.CodeOf(err), err.Error())
		}
	}
	return &v
}

// subscriber is the subscriber's data as the workflows take it.
func (r *applicationRequest) subscriber() activities.SubscriberData {
	sub := r.Subscriber
	return activities.SubscriberData{
		Organization: sub.Organization, Name: sub.Name, Email: sub.Email, Phone: sub.Phone,
		Address: sub.Address, Country: sub.Country, Locality: sub.Locality, Province: sub.Province,
	}
}

// input is the workflow input of a validated request; the handler adds the
// ids and the attestation time.
func (r *applicationRequest) input() workflows.ApplicationInput {
	return workflows.ApplicationInput{
		Product: r.Product, CSRPEM: r.CSR, Domains: r.Domains, ValidityDays: r.ValidityDays,
		Subscriber: r.subscriber(),
		Attestation: activities.Attestation{
			TermsVersion: r.Attestation.TermsVersion, Truthful: true,
		},
		DomainValidationMethod: r.DomainValidationMethod,
	}
}

// withdrawRequest is the optional body of POST …/withdraw.
type withdrawRequest struct {
	Reason string `json:"reason"`
}

// Validate accepts a short reason without control characters.
func (r *withdrawRequest) Validate() *api.Validation {
	var v api.Validation
	if len(r.Reason) > 500 || strings.IndexFunc(r.Reason, unicode.IsControl) >= 0 {
		v.Add("reason", "invalid", "at most 500 characters, no control characters")
	}
	return &v
}

// revocationRequest is the body of POST /v1/certificates/{serial}/revocation.
type revocationRequest struct {
	Reason  string `json:"reason"`
	Comment string `json:"comment"`
}

// Validate accepts the reasons a reseller may give (BR §7.2.2;
// privilegeWithdrawn is the CA's own decision) and a comment for staff.
func (r *revocationRequest) Validate() *api.Validation {
	var v api.Validation
	allowed := revocation.ResellerAllowed()
	if v.Required("reason", r.Reason == "") {
		if _, err := revocation.ParseFrom(r.Reason, allowed); err != nil {
			// Not err itself: it quotes the submitted value.
			v.Add("reason", "one_of", "must be one of "+strings.Join(revocation.Names(allowed), ", "))
		}
	}
	validComment(&v, r.Comment)
	return &v
}

// keyProofRequest is the body of POST /v1/revocations.
type keyProofRequest struct {
	Certificate string `json:"certificate"`
	Signature   string `json:"signature"`
	CSR         string `json:"csr"`
	Comment     string `json:"comment"`

	// Set by Validate.
	cert *x509.Certificate
	sig  []byte // the decoded signature, when the proof is a signature
}

// Validate parses the certificate and the proof (a signature or a CSR,
// exactly one); whether the proof verifies is the handler's check, once it
// knows the certificate is CertDesk's.
func (r *keyProofRequest) Validate() *api.Validation {
	var v api.Validation
	if v.Required("certificate", strings.TrimSpace(r.Certificate) == "") {
		b, _ := pem.Decode([]byte(r.Certificate))
		if b == nil || b.Type != "CERTIFICATE" {
			v.Add("certificate", "invalid", "send the certificate as one PEM CERTIFICATE block")
		} else if c, err := x509.ParseCertificate(b.Bytes); err != nil {
			v.Add("certificate", "invalid", "the certificate does not parse")
		} else {
			r.cert = c
		}
	}
	switch {
	case r.Signature == "" && r.CSR == "":
		v.Add("signature", "required", "send signature (or csr) proving possession of the certificate's key")
	case r.Signature != "" && r.CSR != "":
		v.Add("csr", "not_allowed", "send either signature or csr, not both")
	}
	if r.Signature != "" {
		sig, err := base64.StdEncoding.DecodeString(strings.TrimSpace(r.Signature))
		if err != nil || len(sig) == 0 || len(sig) > 2048 {
			v.Add("signature", "invalid", "base64 of the signature over the challenge")
		} else {
			r.sig = sig
		}
	}
	if r.CSR != "" {
		if _, err := pki.ParseCSR([]byte(r.CSR)); err != nil {
			v.Add("csr", "csr-malformed", "the CSR does not parse")
		}
	}
	validComment(&v, r.Comment)
	return &v
}

// correctionRequest is the body of POST /v1/certificates/{serial}/corrections.
type correctionRequest struct {
	Changes map[string]string `json:"changes"`
	Reason  string            `json:"reason"`
}

// Validate checks the field names and values for shape only: what a change
// means, and whether it can be made, is the correction workflow's decision.
func (r *correctionRequest) Validate() *api.Validation {
	var v api.Validation
	switch {
	case len(r.Changes) == 0:
		v.Add("changes", "required", "name at least one field and its corrected value")
	case len(r.Changes) > 20:
		v.Add("changes", "too_many", "at most 20 fields per correction")
	}
	for k, val := range r.Changes {
		if !correctionFieldPattern.MatchString(k) {
			v.Add("changes", "invalid_field", "field names are lower-case words such as email, phone, address, organization, name, country, domains")
			break
		}
		freeText(&v, "changes."+k, val, 1024, false)
	}
	freeText(&v, "reason", r.Reason, 500, false)
	return &v
}

// disclosureRequest is the body of POST /v1/disclosure-requests. Records
// are matched by the email address, the name and the phone number given
// when applying, all three (issue 17).
type disclosureRequest struct {
	Name          string `json:"name"`
	Email         string `json:"email"`
	Phone         string `json:"phone"`
	Delivery      string `json:"delivery"`
	PostalAddress string `json:"postal_address"`
}

// Validate checks the request and defaults delivery to electronic.
func (r *disclosureRequest) Validate() *api.Validation {
	var v api.Validation
	freeText(&v, "name", r.Name, 128, true)
	emailField(&v, "email", r.Email)
	if strings.TrimSpace(r.Phone) == "" {
		v.Add("phone", "required", "the phone number given when applying (records are matched by name, email and phone)")
	} else if err := contact.CheckPhone(r.Phone); err != nil {
		v.Add("phone", "invalid", err.Error())
	}
	if r.Delivery == "" {
		r.Delivery = workflows.DeliveryElectronic
	}
	if r.Delivery != workflows.DeliveryElectronic && r.Delivery != workflows.DeliveryPaper {
		v.Add("delivery", "one_of", "electronic (a download link by email, the default) or paper")
	}
	freeText(&v, "postal_address", r.PostalAddress, 300, r.Delivery == workflows.DeliveryPaper)
	return &v
}

// inquiryRequest is the body of POST /v1/inquiries.
type inquiryRequest struct {
	Kind    string `json:"kind"`
	Contact string `json:"contact"`
	Body    string `json:"body"`
}

// Validate checks the kind and that contact and body are sound text.
func (r *inquiryRequest) Validate() *api.Validation {
	var v api.Validation
	switch r.Kind {
	case "inquiry", "complaint", "stop_provision":
	default:
		v.Add("kind", "one_of", "inquiry, complaint or stop_provision")
	}
	freeText(&v, "contact", r.Contact, 254, true)
	freeText(&v, "body", r.Body, 4000, true)
	return &v
}

// codeRequest is the body of POST /v1/verifications/{id}/code.
type codeRequest struct {
	Code string `json:"code"`
}

// Validate accepts six digits.
func (r *codeRequest) Validate() *api.Validation {
	var v api.Validation
	if !challenge.Valid(r.Code) {
		v.Add("code", "invalid", "the code from the email: 6 digits, or for a client certificate's mailbox the 26 characters A–Z and 2–7")
	}
	return &v
}

// textField checks a one-line contact text field with contact.CheckText:
// present when required, valid UTF-8 without control characters, at most
// max characters.
func textField(v *api.Validation, field, val string, max int, required bool) {
	if required && !v.Required(field, strings.TrimSpace(val) == "") {
		return
	}
	if err := contact.CheckText(val, max); err != nil {
		code := "too_long"
		if !utf8.ValidString(val) || strings.IndexFunc(val, unicode.IsControl) >= 0 {
			code = "invalid_characters"
		}
		v.Add(field, code, err.Error())
	}
}

// emailField checks a required email address with contact.CheckEmail.
func emailField(v *api.Validation, field, val string) {
	if !v.Required(field, val == "") {
		return
	}
	if err := contact.CheckEmail(val); err != nil {
		code := "email-invalid"
		if len(val) > contact.MaxEmail {
			code = "too_long"
		}
		v.Add(field, code, err.Error())
	}
}

// freeText checks a free-text field that may span lines: valid UTF-8, no
// control characters but newlines, at most max characters, present when
// required.
func freeText(v *api.Validation, field, val string, max int, required bool) {
	if required && !v.Required(field, strings.TrimSpace(val) == "") {
		return
	}
	if !utf8.ValidString(val) || strings.IndexFunc(val, func(r rune) bool { return unicode.IsControl(r) && r != '\n' }) >= 0 {
		v.Add(field, "invalid_characters", "control characters are not allowed")
	} else if utf8.RuneCountInString(val) > max {
		v.Add(field, "too_long", fmt.Sprintf("at most %d characters", max))
	}
}

// validComment accepts free text for staff: short, no control characters.
func validComment(v *api.Validation, c string) {
	if len(c) > 500 || strings.IndexFunc(c, func(r rune) bool { return unicode.IsControl(r) && r != '\n' }) >= 0 {
		v.Add("comment", "invalid", "at most 500 characters, no control characters")
	}
}
