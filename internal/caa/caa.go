// Package caa decides whether the CA may issue for a domain name or a
// mailbox domain under the domain's CAA records: RFC 8659 (relevant RRset by
// climbing the DNS tree, aliases chased by the resolver, issue/issuewild,
// the critical flag, iodef), RFC 8657 (accounturi and validationmethods
// parameters) and RFC 9495 (issuemail for S/MIME), as BR §3.2.2.8 and the
// S/MIME BR §4.2.2.1 demand. Every lookup goes to the CA's validating
// resolver: a bogus answer arrives as SERVFAIL and refuses, like every
// lookup failure that is not NXDOMAIN or NODATA.
//
// BR §3.2.2.8 lets a CA treat some lookup failures as permission (outside
// the CA's infrastructure, retried, no DNSSEC chain to the root) and skip
// CAA in three cases (a logged precertificate, the CA as DNS operator, a
// technically constrained subordinate CA's own issuance). None is
// implemented: any failure refuses, and every issuance checks CAA.
//
// The Result carries the decision, the rule and record behind it, where the
// relevant RRset was found, and the DNS evidence (each query, its answer as
// text, rcode, DNSSEC status, the resolver and the time), to be stored with
// the application.
package caa

import (
	"time"
)

// Request is what the CA is asked to issue for, as far as CAA is concerned.
type Request struct {
	// Name is an FQDN or a wildcard domain name ("*.example.jp") for a TLS
	// certificate, or the domain part of a mailbox (Mailbox set). Lower
	// case, no trailing dot; never a whole mailbox address.
	Name string `json:"name"`
	// Mailbox: S/MIME, so only issuemail properties apply (RFC 9495).
	Mailbox bool `json:"mailbox,omitempty"`
	// AccountURI identifies the applicant's account with the CA, for the
	// RFC 8657 accounturi parameter; empty when the request has none.
	AccountURI string `json:"account_uri,omitempty"`
	// Method is the RFC 8657 label of the validation method that proved
	// control (ACME names such as "dns-01", or a "ca-" label); empty when
	// not known.
	Method string `json:"method,omitempty"`
}

// Rule names the rule that decided a Result.
type Rule string

// The rules. Permitting: RuleNoCAA, RuleUnrestricted, RuleAuthorized; all
// others refuse.
const (
	RuleNoCAA              Rule = "no-caa"                     // no relevant RRset anywhere up the tree
	RuleUnrestricted       Rule = "unrestricted"               // RRset without a property restricting this kind of certificate
	RuleAuthorized         Rule = "authorized"                 // a property names one of the CA's issuer domain names
	RuleCriticalUnknown    Rule = "critical-unknown-tag"       // a critical property the CA does not understand
	RuleForbidden          Rule = "issuance-forbidden"         // only empty issuer domain names (issue ";")
	RuleNotAuthorized      Rule = "not-authorized"             // properties name other CAs (or are malformed)
	RuleAccountURIMismatch Rule = "accounturi-mismatch"        // ours, but bound to another account (RFC 8657)
	RuleMethodMismatch     Rule = "validationmethods-mismatch" // ours, but for other validation methods (RFC 8657)
	RuleLookupFailed       Rule = "lookup-failed"              // a lookup failed other than NXDOMAIN/NODATA
)

// Permits reports whether the rule allows issuance.
func (r Rule) Permits() bool {
	return r == RuleNoCAA || r == RuleUnrestricted || r == RuleAuthorized
}

// Decision is the outcome of evaluating a relevant RRset.
type Decision struct {
	Permitted bool   `json:"permitted"`
	Rule      Rule   `json:"rule"`
	Reason    string `json:"reason"`
	// Record is the property that decided, in presentation format
	// (`0 issue "ca.example"`), when one did.
	Record string `json:"record,omitempty"`
	// Iodef are the iodef URLs of the relevant RRset (RFC 8659 §4.4),
	// recorded for incident reports; CertDesk does not send any.
	Iodef []string `json:"iodef,omitempty"`
}

// Result is a Decision with where it came from.
type Result struct {
	Request Request `json:"request"`
	Decision
	// RelevantName is the FQDN (trailing dot) whose CAA query returned the
	// relevant RRset; empty for RuleNoCAA and failures.
	RelevantName string `json:"relevant_name,omitempty"`
	// AliasChain are the CNAME targets the resolver followed from
	// RelevantName to the owner of the RRset, in order.
	AliasChain []string `json:"alias_chain,omitempty"`
	// RRset is the relevant RRset in presentation format.
	RRset    []string `json:"rrset,omitempty"`
	Evidence Evidence `json:"evidence"`
}

// Evidence is the DNS record of a check.
type Evidence struct {
	Resolver  string    `json:"resolver"`
	CheckedAt time.Time `json:"checked_at"`
	// IssueBy is when the check stops covering issuance: the greater of
	// eight hours and the relevant RRset's TTL (BR §3.2.2.8).
	IssueBy time.Time `json:"issue_by"`
	Queries []Query   `json:"queries"`
}

// DNSSEC states of an answer from the validating resolver.
const (
	DNSSECSecure   = "secure"   // AD set: validated to the trust anchor
	DNSSECInsecure = "insecure" // no AD: the resolver proved the zone unsigned
)

// Query is one CAA query and its answer.
type Query struct {
	Name   string    `json:"name"`
	At     time.Time `json:"at"`
	Rcode  string    `json:"rcode,omitempty"`
	DNSSEC string    `json:"dnssec,omitempty"`
	// EDE are the resolver's Extended DNS Errors (RFC 8914), e.g. why a
	// zone is bogus.
	EDE    []string `json:"ede,omitempty"`
	Answer []string `json:"answer,omitempty"`
	// Authority holds the proof of a negative answer (SOA, NSEC, RRSIG).
	Authority []string `json:"authority,omitempty"`
	Error     string   `json:"error,omitempty"`
}

// MinValidity is BR §3.2.2.8's floor on how long a CAA check covers issuance.
const MinValidity = 8 * time.Hour
