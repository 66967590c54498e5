// Package challenge is the one definition of the values CertDesk sends to a
// mailbox and expects back: the 6-digit one-time code (a second factor when
// a data subject's identity is checked) and the Random Value that proves
// control of a client-sign certificate's mailbox (S/MIME BR §3.2.2.1: at
// least 112 bits of entropy, valid at most 24 hours).
package challenge

import (
	"crypto/rand"
	"encoding/base32"
	"fmt"
	"math/big"
	"regexp"
	"time"
)

// MailboxValueValidity is how long a mailbox Random Value may be used.
const MailboxValueValidity = 24 * time.Hour

// mailboxValueBytes is 16 bytes, 128 bits: more than the 112 the S/MIME BR
// ask for.
const mailboxValueBytes = 16

var (
	codePattern     = regexp.MustCompile(`^[0-9]{6}$`)
	mailboxPattern  = regexp.MustCompile(`^[A-Z2-7]{26}$`)
	mailboxEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)
)

// NewCode draws a 6-digit one-time code.
func NewCode() string {
	n, err := rand.Int(rand.Reader, big.NewInt(1_000_000))
	if err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return fmt.Sprintf("%06d", n.Int64())
}

// IsCode reports whether s has the form of a one-time code.
func IsCode(s string) bool { return codePattern.MatchString(s) }

// NewMailboxValue draws a mailbox Random Value: 128 random bits as 26
// base32 characters (A–Z, 2–7), easy to copy from an email.
func NewMailboxValue() string {
	b := make([]byte, mailboxValueBytes)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return mailboxEncoding.EncodeToString(b)
}

// IsMailboxValue reports whether s has the form of a mailbox Random Value.
func IsMailboxValue(s string) bool { return mailboxPattern.MatchString(s) }

// Valid reports whether s is either kind of value.
func Valid(s string) bool { return IsCode(s) || IsMailboxValue(s) }
