// Package revocation is the one vocabulary of revocation reasons: their
// RFC 5280 names and CRL codes, the subsets each kind of requester may give
// and the words notices use for them. Everything else (the API, the
// workflows, the mailer, the disclosure package) refers to these.
package revocation

import (
	"fmt"
	"strings"
)

// Reason is a CRLReason code (RFC 5280 §5.3.1). Only the codes BR §7.2.2
// allows for subscriber certificates are defined here: no certificateHold,
// no cACompromise.
type Reason int

// The reasons CertDesk uses.
const (
	Unspecified          Reason = 0
	KeyCompromise        Reason = 1
	AffiliationChanged   Reason = 3
	Superseded           Reason = 4
	CessationOfOperation Reason = 5
	PrivilegeWithdrawn   Reason = 9
)

type labels struct{ name, ja, en string }

// reasons holds every allowed reason, in code order.
var reasons = []struct {
	code Reason
	labels
}{
	{Unspecified, labels{"unspecified", "理由の指定なし", "unspecified"}},
	{KeyCompromise, labels{"keyCompromise", "秘密鍵の危殆化", "key compromise"}},
	{AffiliationChanged, labels{"affiliationChanged", "証明書記載事項の変更", "affiliation changed"}},
	{Superseded, labels{"superseded", "新しい証明書への置き換え", "superseded"}},
	{CessationOfOperation, labels{"cessationOfOperation", "証明書の利用終了", "cessation of operation"}},
	{PrivilegeWithdrawn, labels{"privilegeWithdrawn", "権限の喪失", "privilege withdrawn"}},
}

func (r Reason) lookup() (labels, bool) {
	for _, e := range reasons {
		if e.code == r {
			return e.labels, true
		}
	}
	return labels{}, false
}

// Valid reports whether r is one of the reasons BR §7.2.2 allows.
func (r Reason) Valid() bool { _, ok := r.lookup(); return ok }

// String is the RFC 5280 name, e.g. "keyCompromise"; an unknown code prints
// as "reason(N)".
func (r Reason) String() string {
	if l, ok := r.lookup(); ok {
		return l.name
	}
	return fmt.Sprintf("reason(%d)", int(r))
}

// Japanese is the reason as a Japanese notice words it.
func (r Reason) Japanese() string { l, _ := r.lookup(); return l.ja }

// English is the reason as an English notice words it.
func (r Reason) English() string { l, _ := r.lookup(); return l.en }

// Validate returns an error naming the allowed codes when r is not one.
func (r Reason) Validate() error {
	if !r.Valid() {
		return fmt.Errorf("revocation reason %d is not allowed (BR §7.2.2: %s)", int(r), codeList(All()))
	}
	return nil
}

// All is every allowed reason, in code order.
func All() []Reason {
	out := make([]Reason, len(reasons))
	for i, e := range reasons {
		out[i] = e.code
	}
	return out
}

// ResellerAllowed are the reasons a managing reseller (or the subscriber
// through it) may give: privilegeWithdrawn is the CA's own decision.
func ResellerAllowed() []Reason {
	return []Reason{Unspecified, KeyCompromise, AffiliationChanged, Superseded, CessationOfOperation}
}

// StaffAllowed are the reasons staff may give: every allowed reason.
func StaffAllowed() []Reason { return All() }

// Parse returns the reason whose RFC 5280 name is name (exact case), or an
// error listing the names that are allowed.
func Parse(name string) (Reason, error) {
	for _, e := range reasons {
		if e.name == name {
			return e.code, nil
		}
	}
	return 0, fmt.Errorf("revocation reason %q is not allowed (use one of %s)", name, strings.Join(Names(All()), ", "))
}

// ParseFrom is Parse restricted to set: a name outside it is refused with
// the names that are allowed.
func ParseFrom(name string, set []Reason) (Reason, error) {
	r, err := Parse(name)
	if err == nil && In(r, set) {
		return r, nil
	}
	return 0, fmt.Errorf("revocation reason %q is not allowed here (use one of %s)", name, strings.Join(Names(set), ", "))
}

// In reports whether r is in set.
func In(r Reason, set []Reason) bool {
	for _, s := range set {
		if s == r {
			return true
		}
	}
	return false
}

// Names are the RFC 5280 names of set, in its order.
func Names(set []Reason) []string {
	out := make([]string, len(set))
	for i, r := range set {
		out[i] = r.String()
	}
	return out
}

// NameOf is the RFC 5280 name of code, or the number itself for a code this
// package does not define (old rows, a foreign CRL).
func NameOf(code int) string {
	if r := Reason(code); r.Valid() {
		return r.String()
	}
	return fmt.Sprint(code)
}

func codeList(set []Reason) string {
	s := make([]string, len(set))
	for i, r := range set {
		s[i] = fmt.Sprint(int(r))
	}
	return strings.Join(s, ", ")
}
