package dcv

import (
	"fmt"
	"net/netip"
	"strings"
)

// specialPurpose are the IANA special-purpose address blocks (RFC 6890 and
// its updates: the IPv4 and IPv6 Special-Purpose Address Registries) plus
// multicast and the reserved IPv4 class E. A CA's validator never sends
// domain validation traffic to them: a name pointed at one would turn the
// validator into a probe of the CA's own network (a blind SSRF).
var specialPurpose = func() []struct {
	p    netip.Prefix
	name string
} {
	blocks := []struct{ cidr, name string }{
		{"0.0.0.0/8", "this network"},
		{"10.0.0.0/8", "private"},
		{"100.64.0.0/10", "shared address space (CGNAT)"},
		{"127.0.0.0/8", "loopback"},
		{"169.254.0.0/16", "link-local"},
		{"172.16.0.0/12", "private"},
		{"192.0.0.0/24", "IETF protocol assignments"},
		{"192.0.2.0/24", "documentation"},
		{"192.31.196.0/24", "AS112"},
		{"192.52.193.0/24", "AMT"},
		{"192.88.99.0/24", "6to4 relay anycast"},
		{"192.168.0.0/16", "private"},
		{"192.175.48.0/24", "direct delegation AS112"},
		{"198.18.0.0/15", "benchmarking"},
		{"198.51.100.0/24", "documentation"},
		{"203.0.113.0/24", "documentation"},
		{"224.0.0.0/4", "multicast"},
		{"240.0.0.0/4", "reserved"},
		{"255.255.255.255/32", "limited broadcast"},
		{"::/128", "unspecified address"},
		{"::1/128", "loopback"},
		{"::ffff:0:0/96", "IPv4-mapped"},
		{"64:ff9b::/96", "IPv4/IPv6 translation"},
		{"64:ff9b:1::/48", "local IPv4/IPv6 translation"},
		{"100::/64", "discard-only"},
		{"2001::/23", "IETF protocol assignments"},
		{"2001:db8::/32", "documentation"},
		{"2002::/16", "6to4"},
		{"3fff::/20", "documentation"},
		{"5f00::/16", "segment routing SIDs"},
		{"fc00::/7", "unique local"},
		{"fe80::/10", "link-local"},
		{"ff00::/8", "multicast"},
	}
	out := make([]struct {
		p    netip.Prefix
		name string
	}, len(blocks))
	for i, b := range blocks {
		out[i].p, out[i].name = netip.MustParsePrefix(b.cidr), b.name
	}
	return out
}()

// SpecialPurpose names the special-purpose block addr lies in, or "" when
// addr is an ordinary global unicast address. IPv4-mapped IPv6 addresses are
// judged as the IPv4 address they carry.
func SpecialPurpose(addr netip.Addr) string {
	if addr.Is4In6() {
		addr = addr.Unmap()
	}
	for _, b := range specialPurpose {
		if b.p.Contains(addr) {
			return b.name
		}
	}
	return ""
}

// ParseNetworks reads a comma-separated list of CIDR prefixes (the
// development setting naming the special-purpose ranges validation may
// reach, e.g. "127.0.0.0/8,::1/128").
func ParseNetworks(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		p, err := netip.ParsePrefix(f)
		if err != nil {
			return nil, fmt.Errorf("%q is not a CIDR prefix such as 127.0.0.0/8", f)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// allowed reports whether validation may connect to addr: a global address
// always, a special-purpose one only inside a development network.
func (v *Validator) allowed(addr netip.Addr) error {
	name := SpecialPurpose(addr)
	if name == "" {
		return nil
	}
	a := addr.Unmap()
	for _, p := range v.DevNetworks {
		if p.Contains(a) {
			return nil
		}
	}
	return fmt.Errorf("%s is a %s address: domain validation never connects to special-purpose addresses", addr, name)
}
