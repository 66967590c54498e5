package challenge

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"regexp"
	"strconv"

	"certdesk/internal/pii"
)

// Kind is what a derived value is for.
type Kind string

// The kinds of value CertDesk derives.
const (
	KindCode    Kind = "code"    // 6-digit one-time code
	KindMailbox Kind = "mailbox" // 26-character mailbox Random Value
	KindLink    Kind = "link"    // disclosure download-link token
)

// keyLabel separates the challenge key from every other use of the blind
// index key (whose own purposes are "email" and "phone").
const keyLabel = "certdesk challenge key v1"

// Keys derives the values CertDesk emails and the keyed digests it keeps
// of them. A value is an HMAC of (kind, case id, attempt) under a server
// secret, so a retried activity derives and sends the same value again and
// nothing random has to pass through workflow history; the database and
// history hold only keyed digests, useless without the secret. Without the
// secret a 6-digit code cannot be found from its digest.
type Keys struct {
	derive, digest []byte
}

// NewKeys uses a secret of at least 32 bytes.
func NewKeys(secret []byte) (*Keys, error) {
	if len(secret) < 32 {
		return nil, fmt.Errorf("challenge: the key is %d bytes; at least 32 are needed", len(secret))
	}
	return &Keys{derive: mac(secret, "derive"), digest: mac(secret, "digest")}, nil
}

// FromBlindIndex derives the challenge keys from the blind index key
// (CERTDESK_BLIND_INDEX_KEY) under a label of their own, so the worker and
// the starter, which both hold that key, need no further configuration.
// Rotating the blind index key invalidates only the values still
// outstanding (minutes to days).
func FromBlindIndex(b *pii.BlindIndex) (*Keys, error) {
	if b == nil {
		return nil, fmt.Errorf("challenge: no blind index key (CERTDESK_BLIND_INDEX_KEY) to derive the challenge key from")
	}
	return NewKeys(b.Sum("challenge", keyLabel))
}

// String hides the keys.
func (k *Keys) String() string { return "challenge.Keys{…}" }

// GoString hides the keys from %#v.
func (k *Keys) GoString() string { return k.String() }

func mac(key []byte, parts ...string) []byte {
	m := hmac.New(sha256.New, key)
	for _, p := range parts {
		m.Write([]byte(p))
		m.Write([]byte{0})
	}
	return m.Sum(nil)
}

// Value is the value of kind for attempt (1, 2, …) of case caseID.
func (k *Keys) Value(kind Kind, caseID string, attempt int) string {
	sum := mac(k.derive, string(kind), caseID, strconv.Itoa(attempt))
	switch kind {
	case KindCode:
		// 2^64 mod 10^6 is negligible next to 2^64: no visible bias.
		return fmt.Sprintf("%06d", binary.BigEndian.Uint64(sum[:8])%1_000_000)
	case KindMailbox:
		return mailboxEncoding.EncodeToString(sum[:mailboxValueBytes])
	case KindLink:
		return base64.RawURLEncoding.EncodeToString(sum)
	}
	panic("challenge: unknown kind " + string(kind))
}

// Digest is the keyed digest (64 hex characters) kept of a value sent for
// case caseID; for a link token, whose case is not known when it comes
// back, caseID is "".
func (k *Keys) Digest(kind Kind, caseID, value string) string {
	return hex.EncodeToString(mac(k.digest, string(kind), caseID, value))
}

var digestPattern = regexp.MustCompile(`^[0-9a-f]{64}$`)

// IsDigest reports whether s has the form of a Digest.
func IsDigest(s string) bool { return digestPattern.MatchString(s) }

// Equal compares two digests in constant time.
func Equal(a, b string) bool { return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1 }
