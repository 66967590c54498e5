package pki

import (
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"
)

// LoopbackServerCertificate signs a TLS server certificate for a
// development listener on this machine (the ACME listener under make run)
// with the TLS issuing CA. It names only loopback hosts ("localhost",
// "*.localhost" and loopback addresses), which no publicly-trusted
// certificate may name, so it is not a certificate under the BR: it skips
// the BR profile and lint, and refuses any other host.
func (i *Issuer) LoopbackServerCertificate(hosts []string, pub crypto.PublicKey, validity time.Duration) ([]byte, error) {
	if !i.Signs("server-dv") {
		return nil, fmt.Errorf("issuer %s does not sign TLS server certificates", i.id)
	}
	if len(hosts) == 0 {
		return nil, errors.New("name at least one loopback host")
	}
	if validity <= 0 || validity > 30*Day {
		return nil, errors.New("a loopback listener certificate lives 1 second to 30 days")
	}
	tmpl := &x509.Certificate{
		Subject:               pkix.Name{CommonName: hosts[0]},
		NotBefore:             time.Now().Add(-time.Minute),
		NotAfter:              time.Now().Add(validity),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			if !ip.IsLoopback() {
				return nil, fmt.Errorf("%s is not a loopback address", h)
			}
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
			continue
		}
		if h != "localhost" && !strings.HasSuffix(h, ".localhost") {
			return nil, fmt.Errorf("%s is not a loopback name (localhost or *.localhost)", h)
		}
		tmpl.DNSNames = append(tmpl.DNSNames, h)
	}
	serial, err := NewSerial()
	if err != nil {
		return nil, err
	}
	tmpl.SerialNumber = serial
	return x509.CreateCertificate(rand.Reader, tmpl, i.cert, pub, i.signer)
}
