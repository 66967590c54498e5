package pki

import (
	"net/mail"
	"net/netip"
	"strings"

	"github.com/weppos/publicsuffix-go/publicsuffix"
	"golang.org/x/net/idna"

	"certdesk/internal/pki/problem"
)

// Name refusal kinds.
var (
	ErrNoNames          = &problem.Kind{Code: "no-names", Title: "no validated domain names"}
	ErrTooManyNames     = &problem.Kind{Code: "too-many-names", Title: "too many domain names"}
	ErrDuplicateName    = &problem.Kind{Code: "duplicate-name", Title: "domain name listed twice"}
	ErrNameMalformed    = &problem.Kind{Code: "name-malformed", Title: "domain name malformed"}
	ErrNameTooLong      = &problem.Kind{Code: "name-too-long", Title: "domain name or label too long"}
	ErrNameIPAddress    = &problem.Kind{Code: "name-ip-address", Title: "IP addresses are not accepted"}
	ErrNameNotPublic    = &problem.Kind{Code: "name-not-public", Title: "name is not under a public top-level domain"}
	ErrNameIsSuffix     = &problem.Kind{Code: "name-is-public-suffix", Title: "name is a public suffix"}
	ErrWildcardInvalid  = &problem.Kind{Code: "wildcard-invalid", Title: "wildcard not allowed there"}
	ErrEmailInvalid     = &problem.Kind{Code: "email-invalid", Title: "email address invalid"}
	ErrNamesNotAccepted = &problem.Kind{Code: "names-not-accepted", Title: "this product takes no domain names"}
)

// Limits on names.
const (
	MaxNames        = 100 // SANs per TLS certificate, as Boulder
	maxDNSNameLen   = 253 // RFC 1035, without the trailing dot
	maxDNSLabelLen  = 63
	maxEmailAddrLen = 254 // RFC 5321 path limit
)

// CheckDomains checks the validated domain names of a TLS request: at
// least one, at most MaxNames, each well-formed (CheckDomain), no duplicate.
// The caller passes them exactly as validated by domain-control validation.
func CheckDomains(names []string) error {
	if len(names) == 0 {
		return problem.New(ErrNoNames, "a TLS certificate needs at least one validated domain name; complete domain control validation first")
	}
	if len(names) > MaxNames {
		return problem.New(ErrTooManyNames, "%d domain names requested; at most %d per certificate, split the request", len(names), MaxNames)
	}
	seen := make(map[string]bool, len(names))
	for _, n := range names {
		if err := CheckDomain(n); err != nil {
			return err
		}
		if seen[n] {
			return problem.New(ErrDuplicateName, "%q is listed twice; list each name once", n)
		}
		seen[n] = true
	}
	return nil
}

// CheckDomain checks one DNS name for a publicly-trusted TLS certificate:
// lower-case LDH labels (A-labels for IDNs), no IP address, not an internal
// name (its public suffix must be in the ICANN section of the Public Suffix
// List, which excludes single labels and .local/.internal/.test/...), not a
// public suffix itself, and a wildcard only as the whole leftmost label and
// not directly above a public suffix (BR §3.2.2.6).
func CheckDomain(name string) error {
	if name == "" {
		return problem.New(ErrNameMalformed, "empty domain name; remove it from the list")
	}
	if _, err := netip.ParseAddr(strings.Trim(name, "[]")); err == nil {
		return problem.New(ErrNameIPAddress, "%q is an IP address; this CA issues only for domain names", name)
	}
	if len(name) > maxDNSNameLen {
		return problem.New(ErrNameTooLong, "domain name has %d characters; the maximum is %d", len(name), maxDNSNameLen)
	}
	if strings.HasSuffix(name, ".") {
		return problem.New(ErrNameMalformed, "%q ends with a dot; send the name without the trailing dot", name)
	}
	labels := strings.Split(name, ".")
	base := name
	wildcard := false
	for i, l := range labels {
		if strings.Contains(l, "*") {
			if i != 0 || l != "*" {
				return problem.New(ErrWildcardInvalid, "%q: a wildcard must be the whole leftmost label, as in *.example.com", name)
			}
			wildcard = true
			continue
		}
		if err := checkLabel1035(name, l); err != nil {
			return err
		}
	}
	if wildcard {
		base = strings.TrimPrefix(name, "*.")
	}
	// IDNs: every xn-- label must decode to a valid U-label, so the
	// certificate never carries a name browsers cannot display or match.
	if strings.Contains(base, "xn--") {
		if _, err := idna.Registration.ToUnicode(base); err != nil {
			return problem.New(ErrNameMalformed, "%q contains an invalid IDN A-label (%v); send the punycode produced by a conforming IDNA2008 converter", name, err)
		}
	}
	if len(labels) < 2 {
		return problem.New(ErrNameNotPublic, "%q is a single-label (internal) name; only names under a public top-level domain can be certified", name)
	}
	// Internal names: the suffix must be an ICANN rule, so unregistered
	// TLDs (.local, .internal, .test, .lan, ...) fail here.
	if publicsuffix.DefaultList.Find(base, &publicsuffix.FindOptions{IgnorePrivate: true}) == nil {
		return problem.New(ErrNameNotPublic, "%q is not under a public top-level domain (internal or reserved name); use a registered domain", name)
	}
	// The name must be below its public suffix. For wildcards the private
	// section counts too: *.github.io would cover other people's sites.
	opts := &publicsuffix.FindOptions{IgnorePrivate: !wildcard, DefaultRule: nil}
	if _, err := publicsuffix.DomainFromListWithOptions(publicsuffix.DefaultList, base, opts); err != nil {
		if wildcard {
			return problem.New(ErrWildcardInvalid, "%q: a wildcard directly above the public suffix %q is not allowed (BR 3.2.2.6)", name, base)
		}
		return problem.New(ErrNameIsSuffix, "%q is a public suffix, not a registrable domain", name)
	}
	return nil
}

func checkLabel1035(name, l string) error {
	if l == "" {
		return problem.New(ErrNameMalformed, "%q has an empty label (two dots in a row or a leading dot)", name)
	}
	if len(l) > maxDNSLabelLen {
		return problem.New(ErrNameTooLong, "%q has a label of %d characters; the maximum is %d", name, len(l), maxDNSLabelLen)
	}
	for i := 0; i < len(l); i++ {
		c := l[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case c == '-':
			if i == 0 || i == len(l)-1 {
				return problem.New(ErrNameMalformed, "%q: label %q starts or ends with a hyphen", name, l)
			}
		case c >= 'A' && c <= 'Z':
			return problem.New(ErrNameMalformed, "%q contains upper-case letters; send the name in lower case", name)
		default:
			return problem.New(ErrNameMalformed, "%q contains %q; only a-z, 0-9 and '-' are allowed (convert IDNs to xn-- punycode)", name, string(c))
		}
	}
	// R-LDH labels ("ab--...") are reserved except the xn-- IDN prefix.
	if len(l) >= 4 && l[2] == '-' && l[3] == '-' && !strings.HasPrefix(l, "xn--") {
		return problem.New(ErrNameMalformed, "%q: label %q has hyphens in positions 3 and 4, reserved for IDNs (xn--)", name, l)
	}
	return nil
}

// CheckEmail checks the validated mailbox of a client certificate: a bare
// ASCII addr-spec (no display name), a domain that passes the domain rules
// (without wildcard) and sane lengths. Its messages never repeat the local
// part: errors end up in logs, and a mailbox is personal data.
func CheckEmail(addr string) error {
	if addr == "" {
		return problem.New(ErrEmailInvalid, "a client certificate needs the subscriber's validated email address")
	}
	if len(addr) > maxEmailAddrLen {
		return problem.New(ErrEmailInvalid, "the email address has %d characters; the maximum is %d", len(addr), maxEmailAddrLen)
	}
	a, err := mail.ParseAddress(addr)
	if err != nil || a.Address != addr || a.Name != "" {
		return problem.New(ErrEmailInvalid, "the email address is not a bare address (local@domain); send only the address, without display name or brackets")
	}
	at := strings.LastIndexByte(addr, '@')
	local, domain := addr[:at], addr[at+1:]
	if len(local) > 64 {
		return problem.New(ErrEmailInvalid, "the local part of the email address is longer than 64 characters")
	}
	for _, r := range local {
		if r > 0x7e || r < 0x21 {
			return problem.New(ErrEmailInvalid, "the email address has non-ASCII characters in the local part; certificates carry rfc822Name as IA5String")
		}
	}
	if strings.Contains(domain, "*") {
		return problem.New(ErrEmailInvalid, "wildcards are not allowed in an email address")
	}
	if err := CheckDomain(domain); err != nil {
		return problem.New(ErrEmailInvalid, "the domain of the email address is not acceptable: %v", err)
	}
	return nil
}
