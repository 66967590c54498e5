package dnsstack

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// pollInterval paces every wait; the deadlines come from the caller's context.
const pollInterval = 100 * time.Millisecond

// Query sends one query to server (UDP, TCP on truncation) with the DO bit,
// and the CD bit when cd is set (the resolver then answers even bogus data).
func Query(ctx context.Context, server, name string, qtype uint16, cd bool) (*dns.Msg, error) {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	m.SetEdns0(1232, true)
	m.CheckingDisabled = cd
	c := &dns.Client{Timeout: 5 * time.Second}
	r, _, err := c.ExchangeContext(ctx, m, server)
	if err == nil && r.Truncated {
		c.Net = "tcp"
		r, _, err = c.ExchangeContext(ctx, m, server)
	}
	return r, err
}

// poll calls f until it reports done or ctx ends; the error names what was
// awaited and the last thing seen.
func poll(ctx context.Context, what string, f func() (done bool, last string)) error {
	last := ""
	for {
		done, l := f()
		if done {
			return nil
		}
		last = l
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w (last: %s)", what, context.Cause(ctx), last)
		case <-time.After(pollInterval):
		}
	}
}

func describe(r *dns.Msg, err error) string {
	if err != nil {
		return err.Error()
	}
	return fmt.Sprintf("%s, %d answers", dns.RcodeToString[r.Rcode], len(r.Answer))
}

// waitKSK waits until server publishes the zone's KSK (flags 257).
func waitKSK(ctx context.Context, server, zone string) (*dns.DNSKEY, error) {
	var ksk *dns.DNSKEY
	err := poll(ctx, "the KSK of "+zone+" at "+server, func() (bool, string) {
		r, err := Query(ctx, server, zone, dns.TypeDNSKEY, false)
		if err != nil || r.Rcode != dns.RcodeSuccess {
			return false, describe(r, err)
		}
		for _, rr := range r.Answer {
			if k, ok := rr.(*dns.DNSKEY); ok && k.Flags == 257 {
				ksk = k
				return true, ""
			}
		}
		return false, describe(r, err)
	})
	return ksk, err
}

// waitAnswer waits until server answers name/qtype with data.
func waitAnswer(ctx context.Context, server, name string, qtype uint16) (*dns.Msg, error) {
	var out *dns.Msg
	err := poll(ctx, fmt.Sprintf("%s %s at %s", name, dns.TypeToString[qtype], server), func() (bool, string) {
		r, err := Query(ctx, server, name, qtype, false)
		if err == nil && r.Rcode == dns.RcodeSuccess && len(r.Answer) > 0 {
			out = r
			return true, ""
		}
		return false, describe(r, err)
	})
	return out, err
}

// waitSigned waits until server answers name/qtype with an RRSIG over it.
func waitSigned(ctx context.Context, server, name string, qtype uint16) error {
	return poll(ctx, fmt.Sprintf("signed %s %s at %s", name, dns.TypeToString[qtype], server), func() (bool, string) {
		r, err := Query(ctx, server, name, qtype, false)
		if err != nil || r.Rcode != dns.RcodeSuccess {
			return false, describe(r, err)
		}
		for _, rr := range r.Answer {
			if sig, ok := rr.(*dns.RRSIG); ok && sig.TypeCovered == qtype {
				return true, ""
			}
		}
		return false, describe(r, err)
	})
}

// waitSecure waits until the resolver validates the zone's SOA (AD set).
func waitSecure(ctx context.Context, resolver, zone string) error {
	return poll(ctx, "a validated answer for "+zone+" from "+resolver, func() (bool, string) {
		r, err := Query(ctx, resolver, zone, dns.TypeSOA, false)
		if err == nil && r.Rcode == dns.RcodeSuccess && r.AuthenticatedData {
			return true, ""
		}
		return false, describe(r, err) + fmt.Sprintf(", AD=%v", err == nil && r.AuthenticatedData)
	})
}

// rrsetOf is the canonical text (owner lower-case, TTL zero) of the answer's
// records of qtype at name, sorted as the server sent them.
func rrsetOf(r *dns.Msg, name string, qtype uint16) []string {
	var out []string
	for _, rr := range r.Answer {
		h := rr.Header()
		if h.Rrtype == qtype && strings.EqualFold(h.Name, dns.Fqdn(name)) {
			out = append(out, canonical(rr))
		}
	}
	return out
}

func canonical(rr dns.RR) string {
	c := dns.Copy(rr)
	c.Header().Ttl = 0
	c.Header().Name = strings.ToLower(c.Header().Name)
	return c.String()
}
