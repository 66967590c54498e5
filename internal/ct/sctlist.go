package ct

import (
	"errors"
	"fmt"

	"github.com/google/certificate-transparency-go/tls"
	ctx509 "github.com/google/certificate-transparency-go/x509"
)

// EncodeSCTList returns the TLS-encoded SignedCertificateTimestampList of RFC
// 6962 §3.3 holding the SCTs in order: the content of the SCT list extension
// (pki.FinalTemplate wraps it in the extension's OCTET STRING).
func EncodeSCTList(scts []SCT) ([]byte, error) {
	if len(scts) == 0 {
		return nil, errors.New("SCT list: no SCTs")
	}
	var list ctx509.SignedCertificateTimestampList
	for i, s := range scts {
		if _, err := s.Parse(); err != nil {
			return nil, fmt.Errorf("SCT list: SCT %d: %w", i, err)
		}
		list.SCTList = append(list.SCTList, ctx509.SerializedSCT{Val: s.Raw})
	}
	return tls.Marshal(list)
}
