package caa

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/miekg/dns"
)

// Property tags.
const (
	TagIssue     = "issue"
	TagIssueWild = "issuewild"
	TagIodef     = "iodef"
	TagIssueMail = "issuemail" // RFC 9495
	// The BR's DCV contact tags (Appendix A): understood, never restricting.
	TagContactEmail = "contactemail"
	TagContactPhone = "contactphone"
)

// The parameters of RFC 8657.
const (
	ParamAccountURI        = "accounturi"
	ParamValidationMethods = "validationmethods"
)

// FlagCritical is the Issuer Critical flag (bit 0, RFC 8659 §4.1).
const FlagCritical = 128

var knownTags = []string{TagIssue, TagIssueWild, TagIodef, TagIssueMail, TagContactEmail, TagContactPhone}

// Evaluate decides a request against its relevant RRset (empty: no CAA
// found) for a CA whose issuer domain names are issuers. It does no I/O.
func Evaluate(rrset []*dns.CAA, req Request, issuers []string) Decision {
	if len(rrset) == 0 {
		return Decision{Permitted: true, Rule: RuleNoCAA, Reason: "no CAA records at the name or any parent"}
	}
	var d Decision
	for _, rr := range rrset {
		tag := strings.ToLower(rr.Tag)
		if tag == TagIodef {
			d.Iodef = append(d.Iodef, rr.Value)
		}
		// RFC 8659 §4.1: an unknown critical property forbids issuance
		// whatever else the RRset says.
		if rr.Flag&FlagCritical != 0 && !slices.Contains(knownTags, tag) {
			d.Rule, d.Record = RuleCriticalUnknown, present(rr)
			d.Reason = fmt.Sprintf("critical property %q is not understood by this CA", rr.Tag)
			return d
		}
	}

	wildcard := strings.HasPrefix(req.Name, "*.")
	var props []*dns.CAA
	kind := TagIssue
	switch {
	case req.Mailbox:
		kind = TagIssueMail
	case wildcard && hasTag(rrset, TagIssueWild):
		// RFC 8659 §4.3: issuewild, when present, alone governs wildcards.
		kind = TagIssueWild
	}
	for _, rr := range rrset {
		if strings.ToLower(rr.Tag) == kind {
			props = append(props, rr)
		}
	}
	if len(props) == 0 {
		d.Permitted, d.Rule = true, RuleUnrestricted
		d.Reason = fmt.Sprintf("CAA records present but no %s property", kind)
		return d
	}

	// The best refusal seen: a property naming us with unmet parameters
	// explains more than one naming another CA.
	refusal := Decision{Rule: RuleForbidden}
	rank := map[Rule]int{RuleForbidden: 0, RuleNotAuthorized: 1, RuleMethodMismatch: 2, RuleAccountURIMismatch: 3}
	refuse := func(rule Rule, rr *dns.CAA, reason string) {
		if refusal.Record == "" || rank[rule] > rank[refusal.Rule] {
			refusal = Decision{Rule: rule, Record: present(rr), Reason: reason}
		}
	}
	for _, rr := range props {
		issuer, params, err := ParseIssueValue(rr.Value)
		switch {
		case err != nil:
			// A malformed property cannot name us; it still restricts.
			refuse(RuleNotAuthorized, rr, fmt.Sprintf("%s property is malformed (%v) and authorizes no CA", kind, err))
			continue
		case issuer == "":
			refuse(RuleForbidden, rr, fmt.Sprintf("%s property with no issuer domain name forbids issuance", kind))
			continue
		case !slices.ContainsFunc(issuers, func(i string) bool { return strings.EqualFold(i, issuer) }):
			refuse(RuleNotAuthorized, rr, fmt.Sprintf("%s property authorizes %q, not this CA", kind, issuer))
			continue
		}
		if uri, ok := params[ParamAccountURI]; ok && uri != req.AccountURI {
			why := "the request has no account URI"
			if req.AccountURI != "" {
				why = "the request's account differs"
			}
			refuse(RuleAccountURIMismatch, rr, fmt.Sprintf("%s property limits this CA to account %q; %s", kind, uri, why))
			continue
		}
		if methods, ok := params[ParamValidationMethods]; ok && !slices.Contains(strings.Split(methods, ","), req.Method) {
			why := "the request names no validation method"
			if req.Method != "" {
				why = fmt.Sprintf("the domain was validated by %q", req.Method)
			}
			refuse(RuleMethodMismatch, rr, fmt.Sprintf("%s property limits this CA to validation methods %q; %s", kind, methods, why))
			continue
		}
		d.Permitted, d.Rule, d.Record = true, RuleAuthorized, present(rr)
		d.Reason = fmt.Sprintf("%s property authorizes this CA (%s)", kind, issuer)
		return d
	}
	refusal.Iodef = d.Iodef
	return refusal
}

func hasTag(rrset []*dns.CAA, tag string) bool {
	return slices.ContainsFunc(rrset, func(rr *dns.CAA) bool { return strings.ToLower(rr.Tag) == tag })
}

// present is a property in presentation format, without owner, TTL and class.
func present(rr *dns.CAA) string {
	return fmt.Sprintf("%d %s %q", rr.Flag, rr.Tag, rr.Value)
}

// ParseIssueValue parses the value of an issue, issuewild or issuemail
// property (RFC 8659 §4.2 grammar): an optional issuer domain name, then
// optionally ";" and tag=value parameters separated by ";". Parameter tags
// are returned in lower case; a repeated tag is malformed. Parameters other
// than RFC 8657's are returned too and ignored by Evaluate.
func ParseIssueValue(v string) (issuer string, params map[string]string, err error) {
	issuerPart, paramPart, hasParams := strings.Cut(v, ";")
	issuer = strings.Trim(issuerPart, " \t")
	if issuer != "" && !isIssuerDomain(issuer) {
		return "", nil, fmt.Errorf("issuer domain name %q is not a domain name", issuer)
	}
	params = map[string]string{}
	paramPart = strings.Trim(paramPart, " \t")
	if !hasParams || paramPart == "" {
		return issuer, params, nil
	}
	for _, p := range strings.Split(paramPart, ";") {
		tag, val, ok := strings.Cut(strings.Trim(p, " \t"), "=")
		tag, val = strings.ToLower(strings.Trim(tag, " \t")), strings.Trim(val, " \t")
		switch {
		case !ok:
			return "", nil, fmt.Errorf("parameter %q has no '='", p)
		case !isLabel(tag):
			return "", nil, fmt.Errorf("parameter tag %q is malformed", tag)
		case !isParamValue(val):
			return "", nil, fmt.Errorf("parameter %s has a malformed value", tag)
		}
		if _, dup := params[tag]; dup {
			return "", nil, fmt.Errorf("parameter %s given twice", tag)
		}
		params[tag] = val
	}
	if m, ok := params[ParamValidationMethods]; ok {
		for _, l := range strings.Split(m, ",") {
			if l == "" || strings.Trim(l, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-") != "" {
				return "", nil, errors.New("validationmethods is not a comma-separated list of labels")
			}
		}
	}
	return issuer, params, nil
}

func isIssuerDomain(s string) bool {
	for _, l := range strings.Split(s, ".") {
		if !isLabel(l) {
			return false
		}
	}
	return true
}

// isLabel: (ALPHA / DIGIT) *( *("-") (ALPHA / DIGIT) ).
func isLabel(l string) bool {
	if l == "" || l[0] == '-' || l[len(l)-1] == '-' {
		return false
	}
	for i := 0; i < len(l); i++ {
		c := l[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// isParamValue: *(%x21-3A / %x3C-7E), visible ASCII without ";".
func isParamValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < 0x21 || c > 0x7e || c == ';' {
			return false
		}
	}
	return true
}
