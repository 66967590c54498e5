package caa

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/miekg/dns"

	"certdesk/internal/dnsclient"
)

// Checker checks CAA through the CA's validating resolver.
type Checker struct {
	Resolver dnsclient.Resolver
	// IssuerDomains are the issuer domain names by which CAA records
	// authorize this CA (its CP/CPS lists them), e.g. "certdesk.example".
	IssuerDomains []string
	// Now is the clock of the evidence; nil means time.Now.
	Now func() time.Time
}

// maxAliases bounds a CNAME chain inside one answer.
const maxAliases = 16

// ErrBadRequest marks requests that cannot be checked at all.
var ErrBadRequest = errors.New("caa: bad request")

// Check finds the relevant RRset of req.Name (RFC 8659 §3: the CAA RRset of
// the name, else of its parent, and so on up to the TLD; each query chases
// aliases as any query does, and the climb continues from the original
// name, never from an alias target) and evaluates it. A lookup failure is a
// refusing Result, not an error; errors are for bad requests and a
// cancelled ctx.
func (c *Checker) Check(ctx context.Context, req Request) (Result, error) {
	if len(c.IssuerDomains) == 0 {
		return Result{}, fmt.Errorf("%w: the CA has no issuer domain names configured", ErrBadRequest)
	}
	base, err := baseName(req)
	if err != nil {
		return Result{}, err
	}
	now := time.Now
	if c.Now != nil {
		now = c.Now
	}
	res := Result{Request: req, Evidence: Evidence{Resolver: c.Resolver.Addr(), CheckedAt: now().UTC()}}
	res.Evidence.IssueBy = res.Evidence.CheckedAt.Add(MinValidity)

	for name := dns.Fqdn(base); name != "."; name = parent(name) {
		q := Query{Name: name, At: now().UTC()}
		r, err := c.Resolver.Exchange(ctx, dnsclient.NewQuery(name, dns.TypeCAA))
		if ctxErr := ctx.Err(); ctxErr != nil {
			return Result{}, ctxErr
		}
		if err != nil {
			q.Error = err.Error()
			res.Evidence.Queries = append(res.Evidence.Queries, q)
			res.Decision = failed(fmt.Sprintf("CAA lookup at %s failed: %v", name, err))
			return res, nil
		}
		record(&q, r)
		res.Evidence.Queries = append(res.Evidence.Queries, q)
		if r.Rcode != dns.RcodeSuccess && r.Rcode != dns.RcodeNameError {
			why := dns.RcodeToString[r.Rcode]
			if len(q.EDE) > 0 {
				why += " (" + strings.Join(q.EDE, "; ") + ")"
			}
			res.Decision = failed(fmt.Sprintf("CAA lookup at %s failed: %s", name, why))
			return res, nil
		}
		rrset, chain, err := relevant(r, name)
		if err != nil {
			res.Decision = failed(fmt.Sprintf("CAA lookup at %s: %v", name, err))
			return res, nil
		}
		if len(rrset) == 0 {
			continue // NXDOMAIN or NODATA: climb
		}
		res.RelevantName, res.AliasChain = name, chain
		minTTL := rrset[0].Hdr.Ttl
		for _, rr := range rrset {
			res.RRset = append(res.RRset, rr.String())
			minTTL = min(minTTL, rr.Hdr.Ttl)
		}
		if ttl := time.Duration(minTTL) * time.Second; ttl > MinValidity {
			res.Evidence.IssueBy = res.Evidence.CheckedAt.Add(ttl)
		}
		res.Decision = Evaluate(rrset, req, c.IssuerDomains)
		res.Reason = "CAA at " + strings.TrimSuffix(name, ".") + via(chain) + ": " + res.Reason
		return res, nil
	}
	res.Decision = Evaluate(nil, req, c.IssuerDomains)
	return res, nil
}

func failed(reason string) Decision {
	return Decision{Rule: RuleLookupFailed, Reason: reason}
}

func via(chain []string) string {
	if len(chain) == 0 {
		return ""
	}
	return " (via alias " + strings.TrimSuffix(chain[len(chain)-1], ".") + ")"
}

// relevant is the CAA RRset the answer holds for qname: the records owned
// by the end of the CNAME chain starting at qname.
func relevant(r *dns.Msg, qname string) ([]*dns.CAA, []string, error) {
	owner := qname
	var chain []string
	for hops := 0; ; hops++ {
		next := ""
		for _, rr := range r.Answer {
			if cn, ok := rr.(*dns.CNAME); ok && strings.EqualFold(cn.Hdr.Name, owner) {
				next = cn.Target
				break
			}
		}
		if next == "" {
			break
		}
		if hops == maxAliases {
			return nil, nil, fmt.Errorf("more than %d aliases", maxAliases)
		}
		owner = next
		chain = append(chain, next)
	}
	var out []*dns.CAA
	for _, rr := range r.Answer {
		if caa, ok := rr.(*dns.CAA); ok && strings.EqualFold(caa.Hdr.Name, owner) {
			out = append(out, caa)
		}
	}
	return out, chain, nil
}

// record copies an answer into the evidence.
func record(q *Query, r *dns.Msg) {
	q.Rcode = dns.RcodeToString[r.Rcode]
	// A failed answer has no DNSSEC state (bogus shows as SERVFAIL + EDE).
	if r.Rcode == dns.RcodeSuccess || r.Rcode == dns.RcodeNameError {
		q.DNSSEC = DNSSECInsecure
		if r.AuthenticatedData {
			q.DNSSEC = DNSSECSecure
		}
	}
	for _, rr := range r.Answer {
		q.Answer = append(q.Answer, rr.String())
	}
	if len(r.Answer) == 0 {
		for _, rr := range r.Ns {
			q.Authority = append(q.Authority, rr.String())
		}
	}
	if opt := r.IsEdns0(); opt != nil {
		for _, o := range opt.Option {
			if ede, ok := o.(*dns.EDNS0_EDE); ok {
				q.EDE = append(q.EDE, ede.String())
			}
		}
	}
}

// baseName is the name the climb starts at: the FQDN, or X of *.X.
func baseName(req Request) (string, error) {
	n := req.Name
	if req.Mailbox && strings.Contains(n, "@") {
		return "", fmt.Errorf("%w: pass the mailbox's domain, not the address", ErrBadRequest)
	}
	if !req.Mailbox {
		n = strings.TrimPrefix(n, "*.")
	}
	if n == "" || strings.HasSuffix(n, ".") || strings.Contains(n, "*") {
		return "", fmt.Errorf("%w: %q is not a domain name without trailing dot", ErrBadRequest, req.Name)
	}
	if _, ok := dns.IsDomainName(n); !ok || dns.CountLabel(n) < 2 {
		return "", fmt.Errorf("%w: %q is not a domain name below a TLD", ErrBadRequest, req.Name)
	}
	return strings.ToLower(n), nil
}

func parent(fqdn string) string {
	i, end := dns.NextLabel(fqdn, 0)
	if end {
		return "."
	}
	return fqdn[i:]
}
