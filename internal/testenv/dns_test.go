//go:build integration

package testenv

import (
	"context"
	"testing"
	"time"

	"github.com/miekg/dns"

	"certdesk/internal/testenv/dnsstack"
)

// The stack's zones show the three DNSSEC states and the lame delegation
// through the validating resolver, take TSIG-signed updates only, and a
// hijack resolver differs from it for exactly one name and type.
func TestDNSStack(t *testing.T) {
	s := DNS(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	q := func(server, name string, qtype uint16) *dns.Msg {
		t.Helper()
		r, err := dnsstack.Query(ctx, server, name, qtype, false)
		if err != nil {
			t.Fatalf("%s %s at %s: %v", name, dns.TypeToString[qtype], server, err)
		}
		return r
	}

	signed := DNSName(t, s.Zones.Signed)
	unsigned := DNSName(t, s.Zones.Unsigned)
	bogus := DNSName(t, s.Zones.Bogus)
	for _, n := range []string{signed, unsigned, bogus} {
		if err := s.SetRecords(ctx, n, "TXT", `"probe"`); err != nil {
			t.Fatal(err)
		}
	}
	if r := q(s.ResolverAddr, signed, dns.TypeTXT); r.Rcode != dns.RcodeSuccess || !r.AuthenticatedData || len(r.Answer) == 0 {
		t.Errorf("signed zone: want NOERROR with AD and data, got\n%v", r)
	}
	if r := q(s.ResolverAddr, unsigned, dns.TypeTXT); r.Rcode != dns.RcodeSuccess || r.AuthenticatedData || len(r.Answer) == 0 {
		t.Errorf("unsigned zone: want NOERROR without AD (insecure), got\n%v", r)
	}
	if r := q(s.ResolverAddr, bogus, dns.TypeTXT); r.Rcode != dns.RcodeServerFailure {
		t.Errorf("bogus zone: want SERVFAIL, got\n%v", r)
	}
	if r := q(s.AuthAddr, bogus, dns.TypeTXT); r.Rcode != dns.RcodeSuccess || len(r.Answer) == 0 {
		t.Errorf("bogus zone at the authoritative server: want the record, got\n%v", r)
	}
	if r := q(s.ResolverAddr, "www."+s.Zones.ServFail, dns.TypeCAA); r.Rcode != dns.RcodeServerFailure {
		t.Errorf("lame zone: want SERVFAIL, got\n%v", r)
	}

	// Deleting shows as NODATA at once.
	if err := s.DeleteRecords(ctx, signed, "TXT"); err != nil {
		t.Fatal(err)
	}
	if r := q(s.ResolverAddr, signed, dns.TypeTXT); r.Rcode != dns.RcodeNameError && (r.Rcode != dns.RcodeSuccess || len(r.Answer) != 0) {
		t.Errorf("after delete: want NODATA/NXDOMAIN, got\n%v", r)
	}

	// An update without the TSIG key is refused.
	m := new(dns.Msg)
	m.SetUpdate(dns.Fqdn(s.Zones.Unsigned))
	rrs, _ := dnsstack.ParseRRs(unsigned, "TXT", `"forged"`)
	m.Insert(rrs)
	r, err := dns.ExchangeContext(ctx, m, s.AuthAddr)
	if err != nil {
		t.Fatal(err)
	}
	if r.Rcode == dns.RcodeSuccess {
		t.Errorf("unsigned update accepted")
	}

	// The hijack resolver answers the one name/type its own way.
	hijacked := DNSHijack(t, s, unsigned, "TXT", `"hijacked"`)
	if r := q(hijacked, unsigned, dns.TypeTXT); len(r.Answer) != 1 || r.Answer[0].(*dns.TXT).Txt[0] != "hijacked" {
		t.Errorf("hijack resolver: want the forged TXT, got\n%v", r)
	}
	if r := q(s.ResolverAddr, unsigned, dns.TypeTXT); len(r.Answer) != 1 || r.Answer[0].(*dns.TXT).Txt[0] != "probe" {
		t.Errorf("stack resolver: want the real TXT, got\n%v", r)
	}
	if r := q(hijacked, s.Zones.Signed, dns.TypeSOA); r.Rcode != dns.RcodeSuccess || !r.AuthenticatedData {
		t.Errorf("hijack resolver must resolve other names normally, got\n%v", r)
	}
}
