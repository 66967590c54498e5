// Package contact holds the one set of rules for subscriber contact fields
// (email, phone, country, free text), used by the API when an application
// arrives and by corrections when a reseller changes a field, so the two can
// never accept different values.
package contact

import (
	"fmt"
	"net/mail"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Limits on stored contact values, in characters.
const (
	MaxEmail = 254 // RFC 5321 §4.5.3.1.3 path limit
	MaxName  = 64  // X.520 ub-common-name, also printed in certificates
	MaxText  = 256
)

var (
	phonePattern   = regexp.MustCompile(`^\+?[0-9][0-9 ()-]{5,30}$`)
	countryPattern = regexp.MustCompile(`^[A-Z]{2}$`)
)

// CheckEmail accepts a plain address (no display name, no comments) of at
// most MaxEmail characters.
func CheckEmail(v string) error {
	if len(v) > MaxEmail {
		return fmt.Errorf("at most %d characters", MaxEmail)
	}
	addr, err := mail.ParseAddress(v)
	if err != nil || addr.Name != "" || addr.Address != v || !strings.Contains(v, "@") {
		return fmt.Errorf("not a plain email address such as name@example.jp")
	}
	return nil
}

// CheckPhone accepts digits, spaces, parentheses and hyphens with an
// optional leading +, 7 to 32 characters.
func CheckPhone(v string) error {
	if !phonePattern.MatchString(v) {
		return fmt.Errorf("digits, spaces, ()- and an optional leading +, 7 to 32 characters, starting with a digit or +")
	}
	return nil
}

// CheckCountry accepts an ISO 3166-1 alpha-2 code in capitals.
func CheckCountry(v string) error {
	if !countryPattern.MatchString(v) {
		return fmt.Errorf("ISO 3166-1 alpha-2 code in capitals, e.g. JP")
	}
	return nil
}

// CheckText accepts valid UTF-8 without control characters, at most max
// characters.
func CheckText(v string, max int) error {
	if !utf8.ValidString(v) || strings.IndexFunc(v, unicode.IsControl) >= 0 {
		return fmt.Errorf("control characters are not allowed")
	}
	if utf8.RuneCountInString(v) > max {
		return fmt.Errorf("at most %d characters", max)
	}
	return nil
}
