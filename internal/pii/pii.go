// Package pii protects personal data at rest: AES-256-GCM field encryption
// under a rotating key ring, and blind indexes (keyed HMAC-SHA256 of a
// normalised value) for equality lookups without clear text.
//
// # Ciphertext format (version 1)
//
//	byte 0            0x01, the format version
//	byte 1            n, the length of the key id (1..32)
//	bytes 2 .. 2+n    the key id, ASCII [A-Za-z0-9_-]
//	next 12 bytes     the GCM nonce, random per value
//	rest              AES-256-GCM ciphertext followed by its 16-byte tag
//
// The GCM associated data is the header (bytes 0 .. 2+n) followed by the
// caller's associated data, so neither the key id nor the purpose the value
// was written for (for example "subscribers.email_enc|sb_123") can be
// changed without Decrypt failing. The key id is readable without any key,
// which is what lets key rotation find old values (SQL: pii_key_id(column)).
//
// Random 96-bit nonces are safe for about 2^32 values per key (NIST SP
// 800-38D); rotate keys long before that.
package pii

import (
	"errors"
)

// KeySize is the length of every key: AES-256 and the HMAC-SHA256 blind index.
const KeySize = 32

// formatV1 is the first byte of every value Encrypt writes.
const formatV1 = 0x01

const nonceSize = 12

// ErrDecrypt means a value failed authentication: it was written under a
// different key or associated data (moved from another column or row), or
// it was altered. It never says which, so it cannot be used as an oracle.
var ErrDecrypt = errors.New("pii: value does not authenticate: it was altered, or written for another column or row, or under a different key with the same id")

// ErrUnknownKey means the value names a key id absent from the ring.
var ErrUnknownKey = errors.New("pii: value was written under a key id that is not in the key ring")

// ErrFormat means the bytes are not a value written by this package.
var ErrFormat = errors.New("pii: not an encrypted value (unknown format version or truncated)")
