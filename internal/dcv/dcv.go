// Package dcv performs domain control validation (BR §3.2.2.4): an HTTP file
// under /.well-known/pki-validation/ (§3.2.2.4.18) or a DNS TXT record
// (§3.2.2.4.7). Port and resolver are configurable so tests validate names
// served on loopback.
package dcv

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"
)

// Methods.
const (
	MethodHTTP = "http-01"
	MethodDNS  = "dns-txt"
)

// ErrNotYet means the token is not (yet) where it must be; the caller retries
// while the applicant sets it up.
var ErrNotYet = errors.New("dcv: token not found yet")

// Refusal is a validation that can never succeed as asked: a wildcard name by
// the file method, a name whose addresses are all special-purpose, a zone
// whose DNSSEC signatures do not validate. Rule names the requirement.
type Refusal struct {
	Rule   string // e.g. "BR §3.2.2.4.18"
	Detail string
}

func (r *Refusal) Error() string { return "dcv: refused (" + r.Rule + "): " + r.Detail }

func refuse(rule, format string, args ...any) error {
	return &Refusal{Rule: rule, Detail: fmt.Sprintf(format, args...)}
}

// AuthorizedPorts are the only ports the file method may use (BR
// §3.2.2.4.18: 80 for http, 443 for https).
var AuthorizedPorts = []int{80, 443}

// Validator checks that a token is published under a domain.
type Validator struct {
	// HTTPPort is the port of the file method: 80 (http) or 443 (https).
	// Any other port is a development setting and needs DevNetworks.
	HTTPPort int
	// Resolver is the CA's validating (DNSSEC) resolver, host:port. Every
	// lookup of the file and DNS methods goes through it.
	Resolver string
	// DevNetworks are special-purpose ranges validation may nevertheless
	// reach (loopback in development and tests). Empty in production.
	DevNetworks []netip.Prefix
	// Dial, if set, replaces resolution and dialling for the file method:
	// unit tests without DNS only.
	Dial    func(ctx context.Context, network, addr string) (net.Conn, error)
	Timeout time.Duration
}

// Check refuses a configuration a CA must not run with: a file-method port
// outside the Authorized Ports without a development network setting.
func (v *Validator) Check() error {
	p := v.port()
	for _, a := range AuthorizedPorts {
		if p == a {
			return nil
		}
	}
	if len(v.DevNetworks) == 0 {
		return fmt.Errorf("dcv: HTTP port %d is not an Authorized Port (BR §3.2.2.4.18: 80 or 443); other ports are for development only, with CERTDESK_DCV_DEV_NETWORKS set", p)
	}
	return nil
}

func (v *Validator) port() int {
	if v.HTTPPort == 0 {
		return 80
	}
	return v.HTTPPort
}

// DNSLabel is where the TXT record is expected: _pki-validation.<domain>.
func DNSLabel(domain string) string {
	return "_pki-validation." + strings.TrimSuffix(domain, ".") + "."
}

// HTTPPath is where the file is expected.
func HTTPPath(token string) string { return "/.well-known/pki-validation/" + token + ".txt" }

// Validate returns nil when token is found by method under domain,
// ErrNotYet (wrapped, with what was seen) when it is not, and a *Refusal
// when it never can be.
func (v *Validator) Validate(ctx context.Context, method, domain, token string) error {
	domain = strings.ToLower(strings.TrimSuffix(domain, "."))
	wildcard := strings.HasPrefix(domain, "*.")
	base := strings.TrimPrefix(domain, "*.")
	switch method {
	case MethodHTTP, "":
		if wildcard {
			return refuse("BR §3.2.2.4.18", "%s is a wildcard name: it is validated only by a DNS method (dns-txt), never by a file", domain)
		}
		if err := v.Check(); err != nil {
			return err
		}
		return v.http(ctx, base, HTTPPath(token), token)
	case MethodDNS:
		return v.dns(ctx, DNSLabel(base), token)
	case MethodACMEHTTP01, MethodACMEDNS01:
		// An ACME order's challenge: token is the key authorization.
		return v.ValidateACME(ctx, method, domain, token)
	}
	return fmt.Errorf("dcv: unknown method %q (http-01, dns-txt, acme-http-01 or acme-dns-01)", method)
}

func (v *Validator) timeout() time.Duration {
	if v.Timeout > 0 {
		return v.Timeout
	}
	return 10 * time.Second
}

// maxRedirects bounds the redirects the file method follows.
const maxRedirects = 10

// http fetches path from domain and compares the body, trimmed, to want.
func (v *Validator) http(ctx context.Context, domain, path, want string) error {
	dial := v.Dial
	if dial == nil {
		dial = v.filteredDial
	}
	c := &http.Client{
		Timeout:       v.timeout(),
		CheckRedirect: v.checkRedirect,
		Transport: &http.Transport{DialContext: dial, DisableKeepAlives: true, Proxy: nil,
			// BR §3.2.2.4.18 does not ask the file's server for a trusted
			// certificate: the check is control of the content.
			TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}, //nolint:gosec
	}
	scheme := "http"
	if v.port() == 443 {
		scheme = "https"
	}
	url := fmt.Sprintf("%s://%s%s", scheme, hostPort(domain, v.port(), scheme), path)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("dcv: %w", err)
	}
	resp, err := c.Do(req)
	if err != nil {
		var ref *Refusal
		if errors.As(err, &ref) {
			return ref
		}
		return fmt.Errorf("%w: GET %s: %v", ErrNotYet, path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%w: GET %s answered %s", ErrNotYet, path, resp.Status)
	}
	if strings.TrimSpace(string(body)) != want {
		return fmt.Errorf("%w: the file at %s does not hold the expected value", ErrNotYet, path)
	}
	return nil
}

// hostPort leaves the scheme's default port out of the URL.
func hostPort(host string, port int, scheme string) string {
	if (scheme == "http" && port == 80) || (scheme == "https" && port == 443) {
		return host
	}
	return net.JoinHostPort(host, fmt.Sprint(port))
}

// checkRedirect follows only what BR §3.2.2.4.18 allows: HTTP 3xx redirects
// to http or https URLs on an Authorized Port (or the development port).
func (v *Validator) checkRedirect(req *http.Request, via []*http.Request) error {
	if len(via) >= maxRedirects {
		return fmt.Errorf("stopped after %d redirects", maxRedirects)
	}
	u := req.URL
	if u.Scheme != "http" && u.Scheme != "https" {
		return refuse("BR §3.2.2.4.18", "redirect to a %q URL: only http and https are allowed", u.Scheme)
	}
	port := 80
	if u.Scheme == "https" {
		port = 443
	}
	if p := u.Port(); p != "" {
		fmt.Sscan(p, &port)
	}
	if port != 80 && port != 443 && !(len(v.DevNetworks) > 0 && port == v.port()) {
		return refuse("BR §3.2.2.4.18", "redirect to port %d: only the Authorized Ports 80 and 443 are allowed", port)
	}
	return nil
}

// filteredDial resolves the name through the CA's validating resolver (AAAA
// and A), drops special-purpose addresses and connects to the first address
// that answers.
func (v *Validator) filteredDial(ctx context.Context, network, addr string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	var addrs []netip.Addr
	if a, err := netip.ParseAddr(host); err == nil {
		addrs = []netip.Addr{a} // a redirect to an address literal
	} else {
		addrs, err = v.resolver().addresses(ctx, host)
		if err != nil {
			return nil, err
		}
	}
	d := &net.Dialer{Timeout: v.timeout()}
	var refused, failed []string
	for _, a := range addrs {
		if err := v.allowed(a); err != nil {
			refused = append(refused, err.Error())
			continue
		}
		c, err := d.DialContext(ctx, network, net.JoinHostPort(a.String(), port))
		if err == nil {
			return c, nil
		}
		failed = append(failed, err.Error())
	}
	if len(failed) == 0 && len(refused) > 0 {
		return nil, refuse("O20", "%s: %s", host, strings.Join(refused, "; "))
	}
	return nil, fmt.Errorf("connect to %s: %s", host, strings.Join(append(failed, refused...), "; "))
}

func (v *Validator) resolver() *resolver {
	return &resolver{addr: v.Resolver, timeout: v.timeout()}
}

// dns looks for a TXT record at label holding token.
func (v *Validator) dns(ctx context.Context, label, token string) error {
	if v.Resolver == "" {
		return errors.New("dcv: no DNS resolver configured (CERTDESK_DCV_RESOLVER)")
	}
	txts, err := v.resolver().txt(ctx, label)
	if err != nil {
		var ref *Refusal
		if errors.As(err, &ref) {
			return ref
		}
		return fmt.Errorf("%w: TXT %s: %v", ErrNotYet, label, err)
	}
	for _, t := range txts {
		if t == token {
			return nil
		}
	}
	return fmt.Errorf("%w: no TXT record %s holds the token", ErrNotYet, label)
}

// CAAMethod is the RFC 8657 validationmethods label of method. The file and
// TXT methods of BR §3.2.2.4.18 and §3.2.2.4.7 are not ACME challenges, so
// they carry CA-specific ("ca-") labels; ACME orders use the challenge type.
func CAAMethod(method string) string {
	switch method {
	case MethodHTTP, "":
		return "ca-http-file"
	case MethodDNS:
		return "ca-dns-txt"
	case MethodACMEHTTP01:
		return "http-01"
	case MethodACMEDNS01:
		return "dns-01"
	}
	return method
}
