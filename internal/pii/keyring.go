package pii

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"regexp"
	"strings"
)

// KeyRing holds the AES-256-GCM keys that may have written stored values.
// The last key is the current one: Encrypt always uses it; Decrypt accepts
// any key in the ring. A KeyRing is safe for concurrent use.
//
// Its String and GoString methods print key ids only, so a ring logged by
// mistake does not leak key material.
type KeyRing struct {
	aeads   map[string]cipher.AEAD
	ids     []string
	current string
}

var keyIDPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,32}$`)

// ParseKeyRing reads "id:BASE64KEY,id:BASE64KEY,…", oldest first; the last
// entry is the current key for new writes. Keys are 32 random bytes in
// standard or URL base64 (padding optional), for example from GenerateKey.
// Errors name the entry and what is wrong with it, never the key material.
func ParseKeyRing(s string) (*KeyRing, error) {
	if strings.TrimSpace(s) == "" {
		return nil, fmt.Errorf("pii: key ring is empty; expected \"id:BASE64KEY[,id:BASE64KEY…]\" with 32-byte keys (generate one with pii.GenerateKey)")
	}
	r := &KeyRing{aeads: make(map[string]cipher.AEAD)}
	for i, entry := range strings.Split(s, ",") {
		entry = strings.TrimSpace(entry)
		id, b64, ok := strings.Cut(entry, ":")
		if !ok {
			return nil, fmt.Errorf("pii: key ring entry %d has no \":\"; write it as id:BASE64KEY", i+1)
		}
		id = strings.TrimSpace(id)
		if !keyIDPattern.MatchString(id) {
			return nil, fmt.Errorf("pii: key ring entry %d: key id must be 1-32 characters of A-Z a-z 0-9 _ -", i+1)
		}
		key, err := decodeKey(strings.TrimSpace(b64))
		if err != nil {
			return nil, fmt.Errorf("pii: key ring entry %d (id %q): %v", i+1, id, err)
		}
		if err := r.add(id, key); err != nil {
			return nil, fmt.Errorf("pii: key ring entry %d: %v", i+1, err)
		}
	}
	return r, nil
}

// NewKeyRing builds a ring from raw keys given oldest first; the last is current.
func NewKeyRing(keys ...Key) (*KeyRing, error) {
	if len(keys) == 0 {
		return nil, fmt.Errorf("pii: a key ring needs at least one key")
	}
	r := &KeyRing{aeads: make(map[string]cipher.AEAD)}
	for _, k := range keys {
		if !keyIDPattern.MatchString(k.ID) {
			return nil, fmt.Errorf("pii: key id must be 1-32 characters of A-Z a-z 0-9 _ -")
		}
		if len(k.Secret) != KeySize {
			return nil, fmt.Errorf("pii: key %q is %d bytes; keys must be %d bytes", k.ID, len(k.Secret), KeySize)
		}
		if err := r.add(k.ID, k.Secret); err != nil {
			return nil, fmt.Errorf("pii: %v", err)
		}
	}
	return r, nil
}

// Key is one entry of a key ring.
type Key struct {
	ID     string
	Secret []byte
}

func (r *KeyRing) add(id string, key []byte) error {
	if _, dup := r.aeads[id]; dup {
		return fmt.Errorf("key id %q appears twice; every key needs its own id", id)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return fmt.Errorf("key %q: %v", id, err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return fmt.Errorf("key %q: %v", id, err)
	}
	r.aeads[id] = aead
	r.ids = append(r.ids, id)
	r.current = id
	return nil
}

// decodeKey accepts the usual base64 spellings, because keys get pasted
// into environment files by hand.
func decodeKey(s string) ([]byte, error) {
	if s == "" {
		return nil, fmt.Errorf("key is empty")
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			if len(b) != KeySize {
				return nil, fmt.Errorf("key decodes to %d bytes; it must be %d random bytes (generate one with pii.GenerateKey)", len(b), KeySize)
			}
			return b, nil
		}
	}
	return nil, fmt.Errorf("key is not valid base64")
}

// GenerateKey returns a fresh random 32-byte key in standard base64, ready to
// append to a key ring string as "id:KEY" or to use as a blind index key.
func GenerateKey() (string, error) {
	b := make([]byte, KeySize)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("pii: reading random key: %w", err)
	}
	return base64.StdEncoding.EncodeToString(b), nil
}

// CurrentID is the id of the key new values are written under.
func (r *KeyRing) CurrentID() string { return r.current }

// IDs lists the key ids, oldest first.
func (r *KeyRing) IDs() []string { return append([]string(nil), r.ids...) }

// String names the keys without their material.
func (r *KeyRing) String() string {
	if r == nil {
		return "pii.KeyRing(nil)"
	}
	return fmt.Sprintf("pii.KeyRing{ids: %s, current: %s}", strings.Join(r.ids, ","), r.current)
}

// GoString keeps %#v from printing key material.
func (r *KeyRing) GoString() string { return r.String() }

// Encrypt seals plaintext under the current key. aad names what the value is
// for (table, column, row); Decrypt must be given the same aad.
func (r *KeyRing) Encrypt(plaintext, aad []byte) ([]byte, error) {
	aead := r.aeads[r.current]
	n := len(r.current)
	out := make([]byte, 2+n+nonceSize, 2+n+nonceSize+len(plaintext)+aead.Overhead())
	out[0] = formatV1
	out[1] = byte(n)
	copy(out[2:], r.current)
	nonce := out[2+n:]
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("pii: reading random nonce: %w", err)
	}
	return aead.Seal(out, nonce, plaintext, fullAAD(out[:2+n], aad)), nil
}

// Decrypt opens a value written by Encrypt under any key in the ring.
func (r *KeyRing) Decrypt(value, aad []byte) ([]byte, error) {
	id, err := KeyID(value)
	if err != nil {
		return nil, err
	}
	aead, ok := r.aeads[id]
	if !ok {
		return nil, fmt.Errorf("%w (key id %q; the ring has %s): put the old key back in the ring until key rotation has rewritten every value",
			ErrUnknownKey, id, strings.Join(r.ids, ","))
	}
	h := 2 + len(id)
	if len(value) < h+nonceSize+aead.Overhead() {
		return nil, ErrFormat
	}
	pt, err := aead.Open(nil, value[h:h+nonceSize], value[h+nonceSize:], fullAAD(value[:h], aad))
	if err != nil {
		return nil, ErrDecrypt
	}
	return pt, nil
}

// NeedsRotation reports whether value was written under a key other than the
// current one.
func (r *KeyRing) NeedsRotation(value []byte) bool {
	id, err := KeyID(value)
	return err != nil || id != r.current
}

// KeyID returns the id of the key a value was written under, without
// decrypting it.
func KeyID(value []byte) (string, error) {
	if len(value) < 2 || value[0] != formatV1 {
		return "", ErrFormat
	}
	n := int(value[1])
	if n == 0 || len(value) < 2+n+nonceSize {
		return "", ErrFormat
	}
	return string(value[2 : 2+n]), nil
}

func fullAAD(header, aad []byte) []byte {
	b := make([]byte, 0, len(header)+len(aad))
	return append(append(b, header...), aad...)
}
