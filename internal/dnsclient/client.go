// Package dnsclient is the one way CertDesk asks the CA's validating
// recursive resolver: queries with the DO bit and never CD, UDP with a TCP
// retry on truncation, SERVFAIL and transport errors retried. Domain
// validation (internal/dcv) and CAA (internal/caa) both use it.
package dnsclient

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// Resolver is the CA's validating recursive resolver. Exchange sends one
// query and returns the answer; a transport error (timeout, refused
// connection) is an error, a DNS error is an rcode in the answer.
type Resolver interface {
	Exchange(ctx context.Context, m *dns.Msg) (*dns.Msg, error)
	// Addr names the resolver in the evidence.
	Addr() string
}

// Client is a Resolver at one address (host:port), reached over UDP with a
// TCP retry when the answer is truncated. The resolver must validate DNSSEC
// (BR §3.2.2.8.1 from 2026-03-15): the CA trusts it to answer SERVFAIL for
// bogus data and to set AD only for validated answers, so it must run on
// the CA's own hosts or be reached over a protected path.
type Client struct {
	Address string
	// Timeout of one try; 0 means 10 s.
	Timeout time.Duration
	// Tries per query on transport errors and SERVFAIL; 0 means 2 (BR
	// §3.2.2.8 speaks of a lookup retried at least once).
	Tries int
}

// Addr is the resolver's address.
func (c *Client) Addr() string { return c.Address }

// Exchange sends m, retrying transport errors and SERVFAIL.
func (c *Client) Exchange(ctx context.Context, m *dns.Msg) (*dns.Msg, error) {
	timeout, tries := c.Timeout, c.Tries
	if timeout == 0 {
		timeout = 10 * time.Second
	}
	if tries == 0 {
		tries = 2
	}
	var (
		r   *dns.Msg
		err error
	)
	for i := 0; i < tries; i++ {
		r, err = c.once(ctx, m, timeout)
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if err == nil && r.Rcode != dns.RcodeServerFailure {
			return r, nil
		}
	}
	return r, err
}

func (c *Client) once(ctx context.Context, m *dns.Msg, timeout time.Duration) (*dns.Msg, error) {
	dc := &dns.Client{Timeout: timeout}
	r, _, err := dc.ExchangeContext(ctx, m, c.Address)
	if err == nil && r.Truncated {
		dc.Net = "tcp"
		r, _, err = dc.ExchangeContext(ctx, m, c.Address)
	}
	if err != nil {
		return nil, err
	}
	// The ID is checked by miekg/dns; a mismatched question is no answer.
	if len(r.Question) != 1 || !strings.EqualFold(r.Question[0].Name, m.Question[0].Name) || r.Question[0].Qtype != m.Question[0].Qtype {
		return nil, fmt.Errorf("answer from %s is for another question", c.Address)
	}
	return r, nil
}

// NewQuery is a recursive query with the DO bit (so the resolver reports
// the validation outcome in AD, RFC 6840 §5.7) and without CD: the
// resolver must validate.
func NewQuery(name string, qtype uint16) *dns.Msg {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	m.RecursionDesired = true
	m.AuthenticatedData = true
	m.SetEdns0(1232, true)
	return m
}
