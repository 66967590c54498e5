package pki

import (
	"crypto/x509"
	"fmt"
)

// PublicCA is the public part of a CA directory: the root and the issuing
// CA certificates, without any key. Processes that must name or chain the
// CA's certificates but never sign (the Certificate Transparency
// submitter, the repository) read it instead of LoadCA.
type PublicCA struct {
	Root *x509.Certificate
	// Issuers maps an issuing CA's id to its certificate.
	Issuers map[string]*x509.Certificate
}

// ReadPublicCA reads dir/ca.json and the certificates it names; every
// issuing CA must verify under the root.
func ReadPublicCA(dir string) (*PublicCA, error) {
	man, err := readManifest(dir)
	if err != nil {
		return nil, err
	}
	root, err := readCert(dir, man.Root.Cert)
	if err != nil {
		return nil, err
	}
	out := &PublicCA{Root: root, Issuers: map[string]*x509.Certificate{}}
	for _, mi := range man.Issuers {
		c, err := readCert(dir, mi.Cert)
		if err != nil {
			return nil, err
		}
		if err := c.CheckSignatureFrom(root); err != nil {
			return nil, fmt.Errorf("issuing CA %s is not signed by the root: %w", mi.ID, err)
		}
		out.Issuers[mi.ID] = c
	}
	return out, nil
}
