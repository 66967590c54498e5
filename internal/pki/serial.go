package pki

import (
	"crypto/rand"
	"fmt"
	"math/big"

	"certdesk/internal/pki/goodkey"
)

// SerialBytes is the length of serials from NewSerial: 16 random bytes with
// the top bit cleared, i.e. 127 bits of entropy, well above the 64 bits of
// BR §7.1 and below the 20-octet limit of RFC 5280 §4.1.2.2.
const SerialBytes = 16

// NewSerial returns a fresh positive, non-zero serial from crypto/rand.
//
// Idempotency contract: the caller draws the serial once per application,
// stores it durably, and only then asks an Issuer to sign with it; a retried
// signing activity reuses the stored serial. See Issuer.Issue.
func NewSerial() (*big.Int, error) {
	b := make([]byte, SerialBytes)
	for {
		if _, err := rand.Read(b); err != nil {
			return nil, fmt.Errorf("reading random serial: %w", err)
		}
		b[0] &= 0x7f // positive without a leading zero octet in most cases
		s := new(big.Int).SetBytes(b)
		// Require ≥ 64 significant bits so a serial never collapses to a
		// short, guessable number (probability 2^-63 per draw).
		if s.BitLen() > 64 {
			return s, nil
		}
	}
}

// ShardFor returns the CRL shard of a serial: serial mod shards. The shard
// count of an issuer is fixed for its lifetime, because the shard URL is
// printed in every certificate's CRL distribution point.
func ShardFor(serial *big.Int, shards int) int {
	if shards <= 1 || serial == nil || serial.Sign() <= 0 {
		return 0
	}
	return int(goodkey.ModSmall(serial, uint64(shards)))
}

// maxShards bounds the shard count so ShardFor stays a word operation.
const maxShards = 1 << 20

func checkSerial(s *big.Int) error {
	if s == nil || s.Sign() <= 0 {
		return fmt.Errorf("serial must be a positive integer; draw it with NewSerial and store it before signing")
	}
	if s.BitLen() < 64 || s.BitLen() > 159 {
		return fmt.Errorf("serial has %d bits; it must carry at least 64 random bits and fit 20 octets (RFC 5280 4.1.2.2); use NewSerial", s.BitLen())
	}
	return nil
}
