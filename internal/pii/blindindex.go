package pii

import (
	"crypto/hmac"
	"crypto/sha256"
	"fmt"
	"strings"
	"unicode"
)

// BlindIndex computes keyed HMAC-SHA256 digests of normalised values, so a
// column can be searched by equality while only ciphertext and digests are
// stored. Its key must differ from every encryption key: the index is meant
// to survive encryption key rotation, and a leak of one key must not give
// away the other. Changing the blind index key means recomputing every
// index from the decrypted values.
type BlindIndex struct {
	key []byte
}

// Purposes separate the digests of different kinds of value, so the same
// string as an email and as a name gives unrelated digests.
const (
	PurposeEmail = "email"
	PurposePhone = "phone"
)

// NewBlindIndex uses a 32-byte key.
func NewBlindIndex(key []byte) (*BlindIndex, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("pii: blind index key is %d bytes; it must be %d random bytes", len(key), KeySize)
	}
	return &BlindIndex{key: append([]byte(nil), key...)}, nil
}

// ParseBlindIndexKey reads a base64 32-byte key (for example from
// GenerateKey). The error never echoes the input.
func ParseBlindIndexKey(s string) (*BlindIndex, error) {
	key, err := decodeKey(strings.TrimSpace(s))
	if err != nil {
		return nil, fmt.Errorf("pii: blind index key: %v", err)
	}
	return NewBlindIndex(key)
}

// String hides the key.
func (b *BlindIndex) String() string { return "pii.BlindIndex{…}" }

// GoString hides the key from %#v.
func (b *BlindIndex) GoString() string { return b.String() }

// Sum is the 32-byte digest of an already normalised value for purpose, or
// nil for an empty value (nothing to look up, stored as NULL).
func (b *BlindIndex) Sum(purpose, normalised string) []byte {
	if normalised == "" {
		return nil
	}
	m := hmac.New(sha256.New, b.key)
	m.Write([]byte(purpose))
	m.Write([]byte{0})
	m.Write([]byte(normalised))
	return m.Sum(nil)
}

// Email is the index of an email address after NormalizeEmail.
func (b *BlindIndex) Email(s string) []byte { return b.Sum(PurposeEmail, NormalizeEmail(s)) }

// Phone is the index of a phone number after NormalizePhone.
func (b *BlindIndex) Phone(s string) []byte { return b.Sum(PurposePhone, NormalizePhone(s)) }

// NormalizeEmail trims surrounding space and lower-cases the address, after
// folding full-width ASCII (ｙａｍａｄａ＠… typed with a Japanese IME) to
// ASCII, so the forms a person actually types find the same record.
func NormalizeEmail(s string) string {
	return strings.ToLower(strings.TrimSpace(foldWidth(s)))
}

// NormalizePhone keeps the digits, and a leading "+" if the number starts
// with one, after folding full-width digits: "+81 3-1234-5678" gives
// "+81312345678". It does not convert national numbers to international
// form: "03-1234-5678" gives "0312345678", a different index.
func NormalizePhone(s string) string {
	s = strings.TrimSpace(foldWidth(s))
	var out strings.Builder
	if strings.HasPrefix(s, "+") {
		out.WriteByte('+')
	}
	for _, r := range s {
		if r >= '0' && r <= '9' {
			out.WriteRune(r)
		}
	}
	if out.Len() == 1 && strings.HasPrefix(out.String(), "+") {
		return ""
	}
	return out.String()
}

// foldWidth maps full-width ASCII variants (U+FF01..U+FF5E) and the
// ideographic space to their ASCII forms.
func foldWidth(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 0xFF01 && r <= 0xFF5E:
			return r - 0xFEE0
		case r == '\u3000':
			return ' '
		case unicode.IsSpace(r):
			return ' '
		}
		return r
	}, s)
}

// NormalizeName is the form in which two spellings of a person's name are
// compared (disclosure matching): full-width ASCII folded, letters
// lower-cased and every space removed, so "山田 太郎", "山田　太郎" and
// "山田太郎", or "Taro Yamada" and "taro  yamada", are one name. It does
// not transliterate (山田 is not Yamada) or reorder given and family names.
func NormalizeName(s string) string {
	return strings.Map(func(r rune) rune {
		if r == ' ' {
			return -1
		}
		return unicode.ToLower(r)
	}, foldWidth(s))
}
