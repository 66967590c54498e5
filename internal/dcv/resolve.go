package dcv

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/miekg/dns"

	"certdesk/internal/dnsclient"
)

// resolver asks the CA's validating resolver through dnsclient (DO set, CD
// never): a bogus answer comes back as SERVFAIL with an Extended DNS Error
// (RFC 8914), which refuses validation (ballot SC-085). Insecure (unsigned)
// zones answer normally.
type resolver struct {
	addr    string
	timeout time.Duration
}

// dnssecEDE are the RFC 8914 codes that mean DNSSEC validation failed.
var dnssecEDE = map[uint16]bool{
	dns.ExtendedErrorCodeDNSBogus:             true,
	dns.ExtendedErrorCodeSignatureExpired:     true,
	dns.ExtendedErrorCodeSignatureNotYetValid: true,
	dns.ExtendedErrorCodeDNSKEYMissing:        true,
	dns.ExtendedErrorCodeRRSIGsMissing:        true,
	dns.ExtendedErrorCodeNoZoneKeyBitSet:      true,
	dns.ExtendedErrorCodeNSECMissing:          true,
}

// query returns the answer RRs of name/qtype; NXDOMAIN and NODATA are an
// empty answer, a DNSSEC failure a *Refusal, anything else an error.
func (r *resolver) query(ctx context.Context, name string, qtype uint16) ([]dns.RR, error) {
	if r.addr == "" {
		return nil, errors.New("no DNS resolver configured (CERTDESK_DCV_RESOLVER)")
	}
	in, err := (&dnsclient.Client{Address: r.addr, Timeout: r.timeout}).Exchange(ctx, dnsclient.NewQuery(name, qtype))
	if err != nil {
		return nil, fmt.Errorf("%s %s: %v", dns.TypeToString[qtype], name, err)
	}
	switch in.Rcode {
	case dns.RcodeSuccess, dns.RcodeNameError:
		return in.Answer, nil
	case dns.RcodeServerFailure:
		if ede := extendedError(in); ede != nil && dnssecEDE[ede.InfoCode] {
			return nil, refuse("O20, ballot SC-085", "DNSSEC validation of %s %s failed: %s%s",
				dns.TypeToString[qtype], name, dns.ExtendedErrorCodeToString[ede.InfoCode], extra(ede.ExtraText))
		}
	}
	msg := dns.RcodeToString[in.Rcode]
	if ede := extendedError(in); ede != nil {
		msg += " (" + dns.ExtendedErrorCodeToString[ede.InfoCode] + extra(ede.ExtraText) + ")"
	}
	return nil, fmt.Errorf("%s %s: %s", dns.TypeToString[qtype], name, msg)
}

func extra(s string) string {
	if s == "" {
		return ""
	}
	return ": " + s
}

func extendedError(m *dns.Msg) *dns.EDNS0_EDE {
	if o := m.IsEdns0(); o != nil {
		for _, opt := range o.Option {
			if e, ok := opt.(*dns.EDNS0_EDE); ok {
				return e
			}
		}
	}
	return nil
}

// addresses are name's AAAA then A addresses (CNAMEs are followed by the
// resolver; only address records of the answer count).
func (r *resolver) addresses(ctx context.Context, name string) ([]netip.Addr, error) {
	var out []netip.Addr
	var errs []string
	for _, qt := range []uint16{dns.TypeAAAA, dns.TypeA} {
		rrs, err := r.query(ctx, name, qt)
		var ref *Refusal
		if errors.As(err, &ref) {
			return nil, err
		}
		if err != nil {
			errs = append(errs, err.Error())
			continue
		}
		for _, rr := range rrs {
			switch a := rr.(type) {
			case *dns.AAAA:
				if ip, ok := netip.AddrFromSlice(a.AAAA); ok {
					out = append(out, ip)
				}
			case *dns.A:
				if ip, ok := netip.AddrFromSlice(a.A.To4()); ok {
					out = append(out, ip)
				}
			}
		}
	}
	if len(out) == 0 {
		if len(errs) > 0 {
			return nil, fmt.Errorf("resolve %s: %s", name, strings.Join(errs, "; "))
		}
		return nil, fmt.Errorf("resolve %s: no A or AAAA record", name)
	}
	return out, nil
}

// txt are the TXT strings at name, each record's strings joined.
func (r *resolver) txt(ctx context.Context, name string) ([]string, error) {
	rrs, err := r.query(ctx, name, dns.TypeTXT)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, rr := range rrs {
		if t, ok := rr.(*dns.TXT); ok {
			out = append(out, strings.Join(t.Txt, ""))
		}
	}
	return out, nil
}
