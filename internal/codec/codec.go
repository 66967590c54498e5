// Package codec encrypts Temporal payloads (workflow inputs and results,
// activity arguments, signals, updates, queries, memos, summaries, failure
// details) with AES-256-GCM before they leave the process, so the Temporal
// server, its database and anyone reading a workflow history without the key
// see ciphertext only (DESIGN "Temporal payloads", O8).
//
// Every CertDesk client and worker wraps its data converter with this codec
// through internal/temporalclient; the starter serves the same codec over
// HTTP for the Temporal Web UI and CLI (the "remote codec" protocol).
//
// An encrypted payload has metadata encoding "binary/encrypted" and
// "encryption-key-id" naming the key; its data is nonce ‖ AES-GCM(proto of
// the original payload) with the key id as associated data. Payloads without
// that encoding pass through Decode untouched, so plain JSON sent by the
// `temporal` CLI (an Update's input, for example) still reaches workflows.
package codec

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"strings"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"google.golang.org/protobuf/proto"
)

// Metadata written on every encrypted payload.
const (
	// Encoding is the metadata "encoding" of an encrypted payload.
	Encoding = "binary/encrypted"
	// MetadataKeyID names the key that encrypted the payload.
	MetadataKeyID = "encryption-key-id"
)

// aadPrefix binds a ciphertext to its purpose and key id.
const aadPrefix = "certdesk-temporal-payload|"

var keyIDPattern = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// Codec is a converter.PayloadCodec with a key ring: it encrypts with the
// newest key and decrypts with whichever key a payload names. It is safe for
// concurrent use.
type Codec struct {
	current string
	keys    map[string]cipher.AEAD
}

var _ converter.PayloadCodec = (*Codec)(nil)

// ParseKeys reads CERTDESK_CODEC_KEY: either one base64 key of 32 bytes (its
// id is derived from the key: "k" + 8 hex characters of its SHA-256), or a
// ring "id:base64,id:base64,…" with the newest key last, so keys can rotate:
// the newest encrypts, every listed key still decrypts.
func ParseKeys(s string) (*Codec, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, errors.New("codec: no key given (base64 of 32 random bytes, e.g. `openssl rand -base64 32`)")
	}
	c := &Codec{keys: map[string]cipher.AEAD{}}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		id, b64, ok := strings.Cut(part, ":")
		if !ok {
			id, b64 = "", part
		}
		key, err := base64.StdEncoding.DecodeString(b64)
		if err != nil || len(key) != 32 {
			return nil, fmt.Errorf("codec: key %q is not base64 of 32 bytes", id)
		}
		if id == "" {
			sum := sha256.Sum256(key)
			id = "k" + hex.EncodeToString(sum[:4])
		}
		if !keyIDPattern.MatchString(id) {
			return nil, fmt.Errorf("codec: key id %q: use letters, digits, '.', '_' or '-'", id)
		}
		if _, dup := c.keys[id]; dup {
			return nil, fmt.Errorf("codec: key id %q listed twice", id)
		}
		block, err := aes.NewCipher(key)
		if err != nil {
			return nil, err
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, err
		}
		c.keys[id] = aead
		c.current = id
	}
	return c, nil
}

// KeyID is the id of the key new payloads are encrypted with.
func (c *Codec) KeyID() string { return c.current }

// IsEncrypted reports whether p is a payload this codec format encrypted.
func IsEncrypted(p *commonpb.Payload) bool {
	return p != nil && string(p.GetMetadata()[converter.MetadataEncoding]) == Encoding
}

// Encode encrypts every payload with the current key.
func (c *Codec) Encode(payloads []*commonpb.Payload) ([]*commonpb.Payload, error) {
	aead := c.keys[c.current]
	out := make([]*commonpb.Payload, len(payloads))
	for i, p := range payloads {
		plain, err := proto.Marshal(p)
		if err != nil {
			return payloads, fmt.Errorf("codec: marshal payload: %w", err)
		}
		nonce := make([]byte, aead.NonceSize(), aead.NonceSize()+len(plain)+aead.Overhead())
		if _, err := rand.Read(nonce); err != nil {
			return payloads, fmt.Errorf("codec: nonce: %w", err)
		}
		out[i] = &commonpb.Payload{
			Metadata: map[string][]byte{
				converter.MetadataEncoding: []byte(Encoding),
				MetadataKeyID:              []byte(c.current),
			},
			Data: aead.Seal(nonce, nonce, plain, []byte(aadPrefix+c.current)),
		}
	}
	return out, nil
}

// Decode decrypts the payloads this codec encrypted and passes any other
// payload through unchanged. A payload under an unknown key, or one that was
// tampered with, is an error naming the key id (never the content).
func (c *Codec) Decode(payloads []*commonpb.Payload) ([]*commonpb.Payload, error) {
	out := make([]*commonpb.Payload, len(payloads))
	for i, p := range payloads {
		if !IsEncrypted(p) {
			out[i] = p
			continue
		}
		id := string(p.Metadata[MetadataKeyID])
		aead, ok := c.keys[id]
		if !ok {
			return payloads, fmt.Errorf("codec: payload encrypted with key %q, which this process does not hold (CERTDESK_CODEC_KEY)", id)
		}
		if len(p.Data) < aead.NonceSize()+aead.Overhead() {
			return payloads, fmt.Errorf("codec: encrypted payload too short")
		}
		nonce, ct := p.Data[:aead.NonceSize()], p.Data[aead.NonceSize():]
		plain, err := aead.Open(nil, nonce, ct, []byte(aadPrefix+id))
		if err != nil {
			return payloads, fmt.Errorf("codec: payload under key %q does not decrypt (tampered, or a different key with the same id)", id)
		}
		var orig commonpb.Payload
		if err := proto.Unmarshal(plain, &orig); err != nil {
			return payloads, fmt.Errorf("codec: decrypted payload: %w", err)
		}
		out[i] = &orig
	}
	return out, nil
}

// DataConverter wraps the SDK's default data converter with c.
func (c *Codec) DataConverter() converter.DataConverter {
	return converter.NewCodecDataConverter(converter.GetDefaultDataConverter(), c)
}

// FailureConverter encodes failure messages and stack traces through the
// data converter (EncodeCommonAttributes), so an error text that happens to
// quote personal data is encrypted in history like any other payload.
func (c *Codec) FailureConverter() converter.FailureConverter {
	return temporal.NewDefaultFailureConverter(temporal.DefaultFailureConverterOptions{
		DataConverter:          c.DataConverter(),
		EncodeCommonAttributes: true,
	})
}
