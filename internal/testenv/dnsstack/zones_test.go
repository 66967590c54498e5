package dnsstack

import (
	"testing"

	"certdesk/internal/pki"
)

// The test zones must be names the CA accepts: below an ICANN public suffix
// (jp) and not suffixes themselves, wildcards included.
func TestZonesPassTheNameChecks(t *testing.T) {
	for _, z := range []string{SignedZone, BogusZone, UnsignedZone, ServFailZone} {
		for _, n := range []string{z, "www." + z, "*." + z} {
			if err := pki.CheckDomain(n); err != nil {
				t.Errorf("%s: %v", n, err)
			}
		}
	}
	if err := pki.CheckDomain("*." + TLD); err == nil {
		t.Errorf("*.%s accepted: the registry zone must be a public suffix", TLD)
	}
}
