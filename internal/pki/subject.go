package pki

import (
	"crypto/x509/pkix"
	"encoding/asn1"
	"fmt"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	zutil "github.com/zmap/zlint/v3/util"

	"certdesk/internal/pki/problem"
)

// ErrSubjectInvalid refuses subject data that cannot be printed.
var ErrSubjectInvalid = &problem.Kind{Code: "subject-invalid", Title: "subject data not acceptable"}

// Subject is the verified identity to print in the certificate. It comes
// from the application as checked by staff and the identity verification
// workflow, never from the CSR: a CSR subject is whatever the subscriber's
// tool put there and has not been verified.
type Subject struct {
	CommonName   string `json:"common_name,omitempty"`
	Organization string `json:"organization,omitempty"`
	Locality     string `json:"locality,omitempty"`
	Province     string `json:"province,omitempty"`
	// Country is the ISO 3166-1 alpha-2 code, e.g. "JP".
	Country string `json:"country,omitempty"`
	// Surname and GivenName are the subscriber's personal name for
	// client-sign (S/MIME BR 7.1.4.2.5 "Personal Name"): at least one.
	Surname   string `json:"surname,omitempty"`
	GivenName string `json:"given_name,omitempty"`
}

var (
	oidSurname   = asn1.ObjectIdentifier{2, 5, 4, 4}
	oidGivenName = asn1.ObjectIdentifier{2, 5, 4, 42}
)

// RFC 5280 Appendix A upper bounds, in characters.
const (
	ubCommonName   = 64
	ubOrganization = 64
	ubLocality     = 128
	ubProvince     = 128
)

func checkAttr(field, v string, max int, required bool) error {
	if v == "" {
		if required {
			return problem.New(ErrSubjectInvalid, "%s is required for this product; supply the verified value", field)
		}
		return nil
	}
	if !utf8.ValidString(v) {
		return problem.New(ErrSubjectInvalid, "%s is not valid UTF-8", field)
	}
	if n := utf8.RuneCountInString(v); n > max {
		return problem.New(ErrSubjectInvalid, "%s has %d characters; the maximum is %d (RFC 5280); use the registered short form", field, n, max)
	}
	if strings.TrimSpace(v) != v || strings.Contains(v, "  ") {
		return problem.New(ErrSubjectInvalid, "%s has leading, trailing or doubled spaces; normalise it", field)
	}
	for _, r := range v {
		if unicode.IsControl(r) || r == unicode.ReplacementChar {
			return problem.New(ErrSubjectInvalid, "%s contains control or invalid characters", field)
		}
	}
	return nil
}

func checkCountry(c string, required bool) error {
	if c == "" {
		if required {
			return problem.New(ErrSubjectInvalid, "country is required for this product; supply the ISO 3166-1 alpha-2 code (e.g. JP)")
		}
		return nil
	}
	if !zutil.IsISOCountryCode(c) || strings.ToUpper(c) != c {
		return problem.New(ErrSubjectInvalid, "country %q is not an upper-case ISO 3166-1 alpha-2 code (e.g. JP)", c)
	}
	return nil
}

// buildSubject returns the subject name for profile p. domains and email
// are the validated names (already checked).
func buildSubject(p *Profile, s Subject, domains []string) (pkix.Name, error) {
	switch p.Subject {
	case SubjectDV:
		if s.Organization != "" || s.Locality != "" || s.Province != "" || s.Country != "" || s.Surname != "" || s.GivenName != "" {
			return pkix.Name{}, problem.New(ErrSubjectInvalid, "%s certificates carry only a domain name (BR 7.1.2.7.2); leave organisation, locality, province and country empty or order %s", p.Name, ProfileServerOV)
		}
		cn, err := tlsCommonName(s.CommonName, domains)
		if err != nil {
			return pkix.Name{}, err
		}
		return pkix.Name{CommonName: cn}, nil
	case SubjectOV:
		if err := firstErr(
			checkAttr("organization", s.Organization, ubOrganization, true),
			checkAttr("locality", s.Locality, ubLocality, false),
			checkAttr("province", s.Province, ubProvince, false),
			checkCountry(s.Country, true),
		); err != nil {
			return pkix.Name{}, err
		}
		if s.Locality == "" && s.Province == "" {
			return pkix.Name{}, problem.New(ErrSubjectInvalid, "OV certificates need the locality or the province of the organisation (BR 7.1.2.7.4)")
		}
		cn, err := tlsCommonName(s.CommonName, domains)
		if err != nil {
			return pkix.Name{}, err
		}
		return pkix.Name{CommonName: cn, Organization: opt(s.Organization), Locality: opt(s.Locality), Province: opt(s.Province), Country: opt(s.Country)}, nil
	case SubjectPerson:
		if s.Surname == "" && s.GivenName == "" {
			return pkix.Name{}, problem.New(ErrSubjectInvalid, "client certificates need the subscriber's surname and/or given name (S/MIME BR 7.1.4.2.5); supply the verified personal name")
		}
		if err := firstErr(
			checkAttr("common name", s.CommonName, ubCommonName, true),
			checkAttr("surname", s.Surname, ubCommonName, false),
			checkAttr("given name", s.GivenName, ubCommonName, false),
			checkAttr("organization", s.Organization, ubOrganization, false),
			checkAttr("locality", s.Locality, ubLocality, false),
			checkAttr("province", s.Province, ubProvince, false),
			checkCountry(s.Country, false),
		); err != nil {
			return pkix.Name{}, err
		}
		n := pkix.Name{CommonName: s.CommonName, Organization: opt(s.Organization), Locality: opt(s.Locality), Province: opt(s.Province), Country: opt(s.Country)}
		if s.Surname != "" {
			n.ExtraNames = append(n.ExtraNames, pkix.AttributeTypeAndValue{Type: oidSurname, Value: s.Surname})
		}
		if s.GivenName != "" {
			n.ExtraNames = append(n.ExtraNames, pkix.AttributeTypeAndValue{Type: oidGivenName, Value: s.GivenName})
		}
		return n, nil
	case SubjectCA:
		if err := firstErr(
			checkAttr("common name", s.CommonName, ubCommonName, true),
			checkAttr("organization", s.Organization, ubOrganization, true),
			checkCountry(s.Country, true),
		); err != nil {
			return pkix.Name{}, err
		}
		return pkix.Name{CommonName: s.CommonName, Organization: opt(s.Organization), Country: opt(s.Country)}, nil
	}
	return pkix.Name{}, fmt.Errorf("profile %s has no subject rule", p.Name)
}

// tlsCommonName: the CN, if any, must be one of the SANs (BR 7.1.4.3);
// by default it is the first validated name short enough for a CN.
func tlsCommonName(cn string, domains []string) (string, error) {
	if cn == "" {
		// The first name that fits; with none, the subject stays empty and
		// x509 marks the SAN extension critical (RFC 5280 4.2.1.6).
		for _, d := range domains {
			if len(d) <= ubCommonName {
				return d, nil
			}
		}
		return "", nil
	}
	if !slices.Contains(domains, cn) {
		return "", problem.New(ErrSubjectInvalid, "common name %q is not one of the validated domain names; leave it empty or use one of them", cn)
	}
	if len(cn) > ubCommonName {
		return "", problem.New(ErrSubjectInvalid, "common name %q is longer than %d characters; leave it empty (the names are in the SAN extension)", cn, ubCommonName)
	}
	return cn, nil
}

func opt(v string) []string {
	if v == "" {
		return nil
	}
	return []string{v}
}

func firstErr(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}
