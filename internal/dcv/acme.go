package dcv

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strings"
)

// ACME challenge methods (RFC 8555 §8.3, §8.4). The value checked is the
// key authorization, token + "." + base64url(JWK thumbprint), not the bare
// token of the BR file and TXT methods.
const (
	MethodACMEHTTP01 = "acme-http-01"
	MethodACMEDNS01  = "acme-dns-01"
)

// ACMEKeyAuthorization is token "." thumbprint, the thumbprint being the
// base64url RFC 7638 SHA-256 thumbprint of the account key (§8.1).
func ACMEKeyAuthorization(token, thumbprint string) string { return token + "." + thumbprint }

// ACMEHTTPPath is where http-01 expects the key authorization.
func ACMEHTTPPath(token string) string { return "/.well-known/acme-challenge/" + token }

// ACMEDNSLabel is where dns-01 expects its TXT record.
func ACMEDNSLabel(domain string) string {
	return "_acme-challenge." + strings.TrimSuffix(domain, ".") + "."
}

// ACMEDNSValue is the TXT value of dns-01: base64url(SHA-256(key authorization)).
func ACMEDNSValue(keyAuthorization string) string {
	sum := sha256.Sum256([]byte(keyAuthorization))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// ValidateACME checks an ACME challenge of method (MethodACMEHTTP01 or
// MethodACMEDNS01) for domain with the given key authorization. Results are
// those of Validate: nil, ErrNotYet (wrapped) or a *Refusal. The file
// method's rules apply to http-01 unchanged (Authorized Ports, filtered
// addresses, redirects; no wildcards).
func (v *Validator) ValidateACME(ctx context.Context, method, domain, keyAuthorization string) error {
	domain = strings.ToLower(strings.TrimSuffix(domain, "."))
	wildcard := strings.HasPrefix(domain, "*.")
	base := strings.TrimPrefix(domain, "*.")
	token, _, ok := strings.Cut(keyAuthorization, ".")
	if !ok || token == "" {
		return fmt.Errorf("dcv: %q is not a key authorization (token.thumbprint)", keyAuthorization)
	}
	switch method {
	case MethodACMEHTTP01:
		if wildcard {
			return refuse("RFC 8555 §7.1.3", "%s is a wildcard name: http-01 cannot validate it, use dns-01", domain)
		}
		if err := v.Check(); err != nil {
			return err
		}
		return v.http(ctx, base, ACMEHTTPPath(token), keyAuthorization)
	case MethodACMEDNS01:
		return v.dns(ctx, ACMEDNSLabel(base), ACMEDNSValue(keyAuthorization))
	}
	return fmt.Errorf("dcv: unknown ACME method %q (acme-http-01 or acme-dns-01)", method)
}
