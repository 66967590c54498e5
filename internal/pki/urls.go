package pki

import (
	"fmt"
	"net/url"
	"strings"
)

// URLs builds the public repository addresses printed in certificates
// (DESIGN "Starter HTTP API"): CRL shards, OCSP and CA certificates.
type URLs struct {
	// Base is the public origin, for example "http://pki.example.jp". CRL
	// and OCSP URLs must be plain http: relying parties fetch them without
	// TLS to avoid a revocation-checking loop (BR 7.1.2.11.2, RFC 5019).
	Base string
}

func (u URLs) base() string { return strings.TrimRight(u.Base, "/") }

// CRL returns the distribution point of one shard of issuer's CRL.
func (u URLs) CRL(issuerID string, shard int) string {
	return fmt.Sprintf("%s/repository/crl/%s/%d.crl", u.base(), issuerID, shard)
}

// OCSP returns the OCSP responder URL (RFC 6960 / RFC 5019).
func (u URLs) OCSP() string { return u.base() + "/ocsp" }

// CAIssuers returns the AIA caIssuers URL of issuer's certificate. It
// points at the DER form: RFC 5280 §4.2.2.1 says the URI must name a single
// DER certificate (.cer/.der) or a certs-only CMS bundle, and AIA-chasing
// clients do not parse PEM. The HTTP layer serves
// /repository/ca/{issuer}.der (application/pkix-cert) next to .pem.
func (u URLs) CAIssuers(issuerID string) string {
	return fmt.Sprintf("%s/repository/ca/%s.der", u.base(), issuerID)
}

func (u URLs) validate() error {
	p, err := url.Parse(u.Base)
	if err != nil || p.Host == "" || p.Scheme != "http" || p.RawQuery != "" || p.Fragment != "" {
		return fmt.Errorf("repository base URL %q: use http://host[:port][/path] (CRL and OCSP URLs must be plain http, BR 7.1.2.11.2)", u.Base)
	}
	return nil
}
