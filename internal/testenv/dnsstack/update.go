package dnsstack

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// ZoneOf is the test zone that holds name (the registry zone TLD for names
// directly under it), or an error for names the stack does not serve.
func (s *Stack) ZoneOf(name string) (zone, server string, err error) {
	n := strings.ToLower(strings.TrimSuffix(name, "."))
	for _, z := range []string{s.Zones.Signed, s.Zones.Bogus, s.Zones.Unsigned} {
		if n == z || strings.HasSuffix(n, "."+z) {
			return z, s.AuthAddr, nil
		}
	}
	if n == s.Zones.ServFail || strings.HasSuffix(n, "."+s.Zones.ServFail) {
		return "", "", fmt.Errorf("dnsstack: %s is in the lame zone %s, which no server serves", name, s.Zones.ServFail)
	}
	if n == TLD || strings.HasSuffix(n, "."+TLD) {
		return TLD, s.RegistryAddr, nil
	}
	return "", "", fmt.Errorf("dnsstack: %s is not in a zone of the stack (%s, %s, %s under %s)", name, s.Zones.Signed, s.Zones.Bogus, s.Zones.Unsigned, TLD)
}

// SetRecords replaces the RRset name/rrtype with records of the given rdata
// (zone-file syntax, e.g. `0 issue "certdesk.example"`) by an RFC 2136
// update signed with the stack's TSIG key, and returns once the
// authoritative server and the resolver both serve the new RRset.
func (s *Stack) SetRecords(ctx context.Context, name, rrtype string, rdata ...string) error {
	if len(rdata) == 0 {
		return fmt.Errorf("dnsstack: SetRecords %s %s without rdata; use DeleteRecords", name, rrtype)
	}
	t, ok := dns.StringToType[strings.ToUpper(rrtype)]
	if !ok {
		return fmt.Errorf("dnsstack: unknown record type %q", rrtype)
	}
	rrs, err := ParseRRs(name, rrtype, rdata...)
	if err != nil {
		return err
	}
	want := make([]string, len(rrs))
	for i, rr := range rrs {
		want[i] = canonical(rr)
	}
	slices.Sort(want)
	return s.update(ctx, name, t, rrs, want)
}

// DeleteRecords removes the RRset name/rrtype and returns once the
// authoritative server and the resolver no longer serve it.
func (s *Stack) DeleteRecords(ctx context.Context, name, rrtype string) error {
	t, ok := dns.StringToType[strings.ToUpper(rrtype)]
	if !ok {
		return fmt.Errorf("dnsstack: unknown record type %q", rrtype)
	}
	return s.update(ctx, name, t, nil, nil)
}

// ParseRRs builds records name/rrtype from rdata in zone-file syntax, with
// the stack's short TTL.
func ParseRRs(name, rrtype string, rdata ...string) ([]dns.RR, error) {
	var out []dns.RR
	for _, rd := range rdata {
		rr, err := dns.NewRR(fmt.Sprintf("%s %d IN %s %s", dns.Fqdn(name), RecordTTL, strings.ToUpper(rrtype), rd))
		if err != nil {
			return nil, fmt.Errorf("dnsstack: record %s %s %s: %w", name, rrtype, rd, err)
		}
		out = append(out, rr)
	}
	return out, nil
}

func (s *Stack) update(ctx context.Context, name string, t uint16, rrs []dns.RR, want []string) error {
	zone, server, err := s.ZoneOf(name)
	if err != nil {
		return err
	}
	fqdn := dns.Fqdn(strings.ToLower(name))
	m := new(dns.Msg)
	m.SetUpdate(dns.Fqdn(zone))
	m.RemoveRRset([]dns.RR{&dns.ANY{Hdr: dns.RR_Header{Name: fqdn, Rrtype: t}}})
	if len(rrs) > 0 {
		m.Insert(rrs)
	}
	m.SetTsig(s.TSIG.Name, s.TSIG.Algorithm, 300, time.Now().Unix())
	c := &dns.Client{Net: "tcp", Timeout: 10 * time.Second, TsigSecret: map[string]string{s.TSIG.Name: s.TSIG.Secret}}
	r, _, err := c.ExchangeContext(ctx, m, server)
	if err != nil {
		return fmt.Errorf("dnsstack: update %s %s at %s: %w", name, dns.TypeToString[t], server, err)
	}
	if r.Rcode != dns.RcodeSuccess {
		return fmt.Errorf("dnsstack: update %s %s at %s: %s", name, dns.TypeToString[t], server, dns.RcodeToString[r.Rcode])
	}
	// The authoritative server applies (and signs) the update
	// asynchronously; the resolver caches for at most a second. CD lets the
	// resolver's view of the bogus zone be checked too.
	for _, at := range []struct {
		server string
		cd     bool
	}{{server, false}, {s.ResolverAddr, true}} {
		what := fmt.Sprintf("%s %s = %v at %s", name, dns.TypeToString[t], want, at.server)
		err := poll(ctx, what, func() (bool, string) {
			r, err := Query(ctx, at.server, name, t, at.cd)
			if err != nil {
				return false, err.Error()
			}
			if r.Rcode != dns.RcodeSuccess && r.Rcode != dns.RcodeNameError {
				return false, dns.RcodeToString[r.Rcode]
			}
			got := rrsetOf(r, name, t)
			slices.Sort(got)
			return slices.Equal(got, want), fmt.Sprint(got)
		})
		if err != nil {
			return fmt.Errorf("dnsstack: %w", err)
		}
	}
	return nil
}
