// Package dcv performs domain control validation (BR §3.2.2.4): an HTTP file
// under /.well-known/pki-validation/ (§3.2.2.4.18) or a DNS TXT record
// (§3.2.2.4.7). Port and resolver are configurable so tests validate names
// served on loopback.
package dcv

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// Methods.
const (
	MethodHTTP = "http-01"
	MethodDNS  = "dns-txt"
)

// ErrNotYet means the token is not (yet) where it must be; the caller retries
// while the applicant sets it up.
var ErrNotYet = errors.New("dcv: token not found yet")

// Validator checks that a token is published under a domain.
type Validator struct {
	// HTTPPort is the port of the HTTP check (80 in production).
	HTTPPort int
	// Resolver is the DNS server host:port for the TXT check.
	Resolver string
	// Dial, if set, replaces net.Dialer for HTTP (tests map names to loopback).
	Dial    func(ctx context.Context, network, addr string) (net.Conn, error)
	Timeout time.Duration
}

// DNSLabel is where the TXT record is expected: _pki-validation.<domain>.
func DNSLabel(domain string) string {
	return "_pki-validation." + strings.TrimSuffix(domain, ".") + "."
}

// HTTPPath is where the file is expected.
func HTTPPath(token string) string { return "/.well-known/pki-validation/" + token + ".txt" }

// Validate returns nil when token is found by method under domain,
// ErrNotYet (wrapped, with what was seen) when it is not.
func (v *Validator) Validate(ctx context.Context, method, domain, token string) error {
	domain = strings.TrimPrefix(strings.ToLower(domain), "*.")
	switch method {
	case MethodHTTP, "":
		return v.http(ctx, domain, token)
	case MethodDNS:
		return v.dns(ctx, domain, token)
	}
	return fmt.Errorf("dcv: unknown method %q (http-01 or dns-txt)", method)
}

func (v *Validator) timeout() time.Duration {
	if v.Timeout > 0 {
		return v.Timeout
	}
	return 10 * time.Second
}

func (v *Validator) http(ctx context.Context, domain, token string) error {
	port := v.HTTPPort
	if port == 0 {
		port = 80
	}
	dial := v.Dial
	if dial == nil {
		dial = v.resolvingDial
	}
	c := &http.Client{
		Timeout: v.timeout(),
		// BR: redirects only to the same name on 80/443; refusing all is stricter and simpler.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Transport:     &http.Transport{DialContext: dial, DisableKeepAlives: true},
	}
	url := fmt.Sprintf("http://%s:%d%s", domain, port, HTTPPath(token))
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("dcv: %w", err)
	}
	resp, err := c.Do(req)
	if err != nil {
		return fmt.Errorf("%w: GET %s: %v", ErrNotYet, HTTPPath(token), err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%w: GET %s answered %s", ErrNotYet, HTTPPath(token), resp.Status)
	}
	if strings.TrimSpace(string(body)) != token {
		return fmt.Errorf("%w: the file at %s does not hold the token", ErrNotYet, HTTPPath(token))
	}
	return nil
}

// resolvingDial looks the name up through the CA's own resolver (not the
// host's), as a CA must, and connects to the first address it returns.
func (v *Validator) resolvingDial(ctx context.Context, network, addr string) (net.Conn, error) {
	d := &net.Dialer{Timeout: v.timeout()}
	if v.Resolver == "" {
		return d.DialContext(ctx, network, addr)
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(host), dns.TypeA)
	m.RecursionDesired = true
	in, _, err := (&dns.Client{Timeout: v.timeout()}).ExchangeContext(ctx, m, v.Resolver)
	if err != nil {
		return nil, fmt.Errorf("resolve %s: %w", host, err)
	}
	for _, rr := range in.Answer {
		if a, ok := rr.(*dns.A); ok {
			return d.DialContext(ctx, network, net.JoinHostPort(a.A.String(), port))
		}
	}
	return nil, fmt.Errorf("resolve %s: no A record", host)
}

func (v *Validator) dns(ctx context.Context, domain, token string) error {
	if v.Resolver == "" {
		return errors.New("dcv: no DNS resolver configured (CERTDESK_DCV_RESOLVER)")
	}
	m := new(dns.Msg)
	m.SetQuestion(DNSLabel(domain), dns.TypeTXT)
	m.RecursionDesired = true
	c := &dns.Client{Timeout: v.timeout()}
	in, _, err := c.ExchangeContext(ctx, m, v.Resolver)
	if err != nil {
		return fmt.Errorf("%w: TXT %s: %v", ErrNotYet, DNSLabel(domain), err)
	}
	for _, rr := range in.Answer {
		if txt, ok := rr.(*dns.TXT); ok && strings.Join(txt.Txt, "") == token {
			return nil
		}
	}
	return fmt.Errorf("%w: no TXT record %s holds the token", ErrNotYet, DNSLabel(domain))
}
