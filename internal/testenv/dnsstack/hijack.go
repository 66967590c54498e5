package dnsstack

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/miekg/dns"
)

// Resolver is an extra resolver of a stack (see Hijack).
type Resolver struct {
	Addr string
	s    *Stack
}

// Stop stops the resolver.
func (r *Resolver) Stop() { r.s.Stop() }

// Hijack starts a second validating Unbound, configured like the stack's,
// that answers name/rrtype from its own data (rdata in zone-file syntax)
// and resolves everything else through the stack: a network perspective
// whose view of one name an attacker has changed. Other types at name are
// resolved normally. The forged answer carries no AD bit, exactly like an
// answer from an unsigned zone, so a hijack is indistinguishable from the
// truth for names in the unsigned zone, the realistic case to test;
// dir holds its configuration and log.
func (s *Stack) Hijack(ctx context.Context, dir, name, rrtype string, rdata ...string) (*Resolver, error) {
	rrs, err := ParseRRs(name, rrtype, rdata...)
	if err != nil {
		return nil, err
	}
	if len(rrs) == 0 {
		return nil, fmt.Errorf("dnsstack: Hijack %s %s without rdata", name, rrtype)
	}
	dir, err = filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	for _, d := range []string{"resolver", "logs"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o700); err != nil {
			return nil, err
		}
	}
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	ld := localData{Name: dns.Fqdn(strings.ToLower(name))}
	for _, rr := range rrs {
		ld.RRs = append(ld.RRs, quoteLocalData(rr.String()))
	}
	h := &Stack{Dir: dir, ResolverAddr: addr(port)}
	p := unboundParams{Dir: filepath.Join(dir, "resolver"), Port: port, RegistryPort: s.registryPort, AuthPort: s.authPort,
		Anchor: filepath.Join(s.Dir, "resolver", TLD+".anchor"), Zones: s.Zones, LocalData: []localData{ld}}
	if err := h.startUnbound(ctx, "unbound-hijack", p, false); err != nil {
		return nil, err
	}
	if err := waitSecure(ctx, h.ResolverAddr, s.Zones.Signed); err != nil {
		h.Stop()
		return nil, fmt.Errorf("dnsstack: hijack resolver: %w (log in %s)", err, filepath.Join(dir, "logs"))
	}
	return &Resolver{Addr: h.ResolverAddr, s: h}, nil
}
