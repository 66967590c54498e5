//go:build integration

package caa

import (
	"context"
	"strings"
	"testing"
	"time"

	"certdesk/internal/testenv"

	"certdesk/internal/dnsclient"
)

// The RFC 8659 cases of issue 14 against the real stack: Knot DNS serving
// the zones (records set by TSIG-signed RFC 2136 updates) and the validating
// Unbound as the CA's resolver.

func TestMain(m *testing.M) { testenv.Main(m) }

type env struct {
	t   *testing.T
	s   *testenv.DNSStack
	c   *Checker
	ctx context.Context
}

func newEnv(t *testing.T) *env {
	s := testenv.DNS(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	return &env{t: t, s: s, ctx: ctx, c: &Checker{Resolver: &dnsclient.Client{Address: s.ResolverAddr}, IssuerDomains: issuers}}
}

func (e *env) set(name, rrtype string, rdata ...string) {
	e.t.Helper()
	if err := e.s.SetRecords(e.ctx, name, rrtype, rdata...); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) check(req Request, rule Rule) Result {
	e.t.Helper()
	r, err := e.c.Check(e.ctx, req)
	if err != nil {
		e.t.Fatalf("%s: %v", req.Name, err)
	}
	if r.Rule != rule || r.Permitted != rule.Permits() {
		e.t.Fatalf("%s: got %s (permitted %v): %s\nevidence: %+v", req.Name, r.Rule, r.Permitted, r.Reason, r.Evidence.Queries)
	}
	if r.Evidence.Resolver != e.s.ResolverAddr || r.Evidence.CheckedAt.IsZero() || len(r.Evidence.Queries) == 0 {
		e.t.Errorf("%s: evidence incomplete: %+v", req.Name, r.Evidence)
	}
	return r
}

func TestIntegrationNoCAAAnywhere(t *testing.T) {
	e := newEnv(t)
	name := testenv.DNSName(t, e.s.Zones.Signed)
	r := e.check(Request{Name: "www." + name}, RuleNoCAA)
	var names []string
	for _, q := range r.Evidence.Queries {
		names = append(names, q.Name)
		if q.DNSSEC != DNSSECSecure || len(q.Authority) == 0 {
			t.Errorf("%s: DNSSEC %q with %d authority records, want a secure denial", q.Name, q.DNSSEC, len(q.Authority))
		}
	}
	if want := "www." + name + ". " + name + ". " + e.s.Zones.Signed + ". jp."; strings.Join(names, " ") != want {
		t.Errorf("climbed %v, want %s", names, want)
	}
}

func TestIntegrationIssueForCertDesk(t *testing.T) {
	e := newEnv(t)
	name := testenv.DNSName(t, e.s.Zones.Signed)
	e.set(name, "CAA", `0 issue "certdesk.example"`)
	r := e.check(Request{Name: name}, RuleAuthorized)
	if r.RelevantName != name+"." || len(r.RRset) != 1 || r.Evidence.Queries[0].DNSSEC != DNSSECSecure {
		t.Errorf("got %+v", r)
	}
}

func TestIntegrationIssueOtherCAOnly(t *testing.T) {
	e := newEnv(t)
	name := testenv.DNSName(t, e.s.Zones.Signed)
	e.set(name, "CAA", `0 issue "other-ca.example"`, `0 iodef "mailto:security@`+name+`"`)
	r := e.check(Request{Name: name}, RuleNotAuthorized)
	if r.Record != `0 issue "other-ca.example"` || len(r.Iodef) != 1 || r.Iodef[0] != "mailto:security@"+name {
		t.Errorf("got %+v", r)
	}
}

func TestIntegrationIssueSemicolon(t *testing.T) {
	e := newEnv(t)
	name := testenv.DNSName(t, e.s.Zones.Signed)
	e.set(name, "CAA", `0 issue ";"`)
	e.check(Request{Name: name}, RuleForbidden)
}

func TestIntegrationIssuewildDiffersFromIssue(t *testing.T) {
	e := newEnv(t)
	name := testenv.DNSName(t, e.s.Zones.Signed)
	e.set(name, "CAA", `0 issue "certdesk.example"`, `0 issuewild "other-ca.example"`)
	e.check(Request{Name: name}, RuleAuthorized)
	r := e.check(Request{Name: "*." + name}, RuleNotAuthorized)
	if r.Record != `0 issuewild "other-ca.example"` {
		t.Errorf("wildcard decided by %q", r.Record)
	}
	// And the other way round: wildcards only.
	name2 := testenv.DNSName(t, e.s.Zones.Signed)
	e.set(name2, "CAA", `0 issue ";"`, `0 issuewild "certdesk.example"`)
	e.check(Request{Name: "*." + name2}, RuleAuthorized)
	e.check(Request{Name: name2}, RuleForbidden)
}

func TestIntegrationParentFoundByClimbing(t *testing.T) {
	e := newEnv(t)
	name := testenv.DNSName(t, e.s.Zones.Signed)
	e.set(name, "CAA", `0 issue "other-ca.example"`)
	e.set("b."+name, "TXT", `"an existing name without CAA"`)
	r := e.check(Request{Name: "a.b." + name}, RuleNotAuthorized)
	if r.RelevantName != name+"." || len(r.Evidence.Queries) != 3 {
		t.Errorf("found at %q after %d queries, want %s. after 3", r.RelevantName, len(r.Evidence.Queries), name)
	}
	e.check(Request{Name: "*.b." + name}, RuleNotAuthorized)
}

func TestIntegrationCNAMEChain(t *testing.T) {
	e := newEnv(t)
	name := testenv.DNSName(t, e.s.Zones.Signed)
	target := testenv.DNSName(t, e.s.Zones.Unsigned)
	// www → a.target → b.target, which holds CAA: the RRset of www, found
	// through an alias chain that leaves the signed zone (insecure).
	e.set("b."+target, "CAA", `0 issue "other-ca.example"`)
	e.set("a."+target, "CNAME", "b."+target+".")
	e.set("www."+name, "CNAME", "a."+target+".")
	e.set(name, "CAA", `0 issue "certdesk.example"`)
	r := e.check(Request{Name: "www." + name}, RuleNotAuthorized)
	if r.RelevantName != "www."+name+"." || strings.Join(r.AliasChain, " ") != "a."+target+". b."+target+"." {
		t.Errorf("relevant %q via %v", r.RelevantName, r.AliasChain)
	}
	if r.Evidence.Queries[0].DNSSEC != DNSSECInsecure {
		t.Errorf("a chain into the unsigned zone is insecure, got %q", r.Evidence.Queries[0].DNSSEC)
	}

	// An alias whose target has no CAA: the climb goes on from the alias's
	// own parent (authorizes us), never from the target's (forbids all).
	e.set("c."+target, "TXT", `"no CAA here"`)
	e.set(target, "CAA", `0 issue ";"`)
	e.set("cdn."+name, "CNAME", "c."+target+".")
	r = e.check(Request{Name: "cdn." + name}, RuleAuthorized)
	if r.RelevantName != name+"." {
		t.Errorf("relevant %q, want %s.", r.RelevantName, name)
	}
}

func TestIntegrationUnknownCriticalTag(t *testing.T) {
	e := newEnv(t)
	name := testenv.DNSName(t, e.s.Zones.Signed)
	e.set(name, "CAA", `0 issue "certdesk.example"`, `128 tbs "unknown"`)
	e.check(Request{Name: name}, RuleCriticalUnknown)
}

func TestIntegrationUnknownNonCriticalTag(t *testing.T) {
	e := newEnv(t)
	name := testenv.DNSName(t, e.s.Zones.Signed)
	e.set(name, "CAA", `0 issue "certdesk.example"`, `0 tbs "unknown"`)
	e.check(Request{Name: name}, RuleAuthorized)
}

func TestIntegrationServfail(t *testing.T) {
	e := newEnv(t)
	r := e.check(Request{Name: "www." + e.s.Zones.ServFail}, RuleLookupFailed)
	if q := r.Evidence.Queries[len(r.Evidence.Queries)-1]; q.Rcode != "SERVFAIL" {
		t.Errorf("last query %+v, want SERVFAIL", q)
	}
}

func TestIntegrationBogusZone(t *testing.T) {
	e := newEnv(t)
	// The bogus zone authorizes us; only validation stands in the way.
	name := testenv.DNSName(t, e.s.Zones.Bogus)
	e.set(name, "CAA", `0 issue "certdesk.example"`)
	r := e.check(Request{Name: name}, RuleLookupFailed)
	q := r.Evidence.Queries[0]
	if q.Rcode != "SERVFAIL" || q.DNSSEC != "" || len(q.EDE) == 0 || !strings.Contains(r.Reason, "DNSSEC Bogus") {
		t.Errorf("want SERVFAIL with the resolver's reason, got %+v (%s)", q, r.Reason)
	}
}

func TestIntegrationAccountURIMismatch(t *testing.T) {
	e := newEnv(t)
	name := testenv.DNSName(t, e.s.Zones.Signed)
	e.set(name, "CAA", `0 issue "certdesk.example; accounturi=https://certdesk.example/acct/1"`)
	e.check(Request{Name: name, AccountURI: "https://certdesk.example/acct/2"}, RuleAccountURIMismatch)
	e.check(Request{Name: name}, RuleAccountURIMismatch)
	e.check(Request{Name: name, AccountURI: "https://certdesk.example/acct/1"}, RuleAuthorized)
}

func TestIntegrationValidationMethodsMismatch(t *testing.T) {
	e := newEnv(t)
	name := testenv.DNSName(t, e.s.Zones.Signed)
	e.set(name, "CAA", `0 issue "certdesk.example; validationmethods=dns-01"`)
	e.check(Request{Name: name, Method: "http-01"}, RuleMethodMismatch)
	e.check(Request{Name: name, Method: "dns-01"}, RuleAuthorized)
}

func TestIntegrationUnsignedZoneIsInsecureNotFailed(t *testing.T) {
	e := newEnv(t)
	name := testenv.DNSName(t, e.s.Zones.Unsigned)
	e.set(name, "CAA", `0 issue "certdesk.example"`)
	r := e.check(Request{Name: name}, RuleAuthorized)
	if r.Evidence.Queries[0].DNSSEC != DNSSECInsecure {
		t.Errorf("DNSSEC %q, want insecure", r.Evidence.Queries[0].DNSSEC)
	}
}

func TestIntegrationIssuemail(t *testing.T) {
	e := newEnv(t)
	name := testenv.DNSName(t, e.s.Zones.Signed)
	e.set(name, "CAA", `0 issue "certdesk.example"`, `0 issuemail "other-ca.example"`)
	e.check(Request{Name: name, Mailbox: true}, RuleNotAuthorized)
	e.check(Request{Name: name}, RuleAuthorized)
	name2 := testenv.DNSName(t, e.s.Zones.Signed)
	e.set(name2, "CAA", `0 issue ";"`, `0 issuemail "certdesk.example"`)
	e.check(Request{Name: name2, Mailbox: true}, RuleAuthorized)
}

func TestIntegrationDNAME(t *testing.T) {
	e := newEnv(t)
	name := testenv.DNSName(t, e.s.Zones.Signed)
	target := testenv.DNSName(t, e.s.Zones.Signed)
	// Names below a DNAME are aliases (RFC 6672): the resolver synthesizes
	// the CNAME and CAA follows it like any alias.
	e.set("d."+name, "DNAME", target+".")
	e.set("www."+target, "CAA", `0 issue "other-ca.example"`)
	e.set(name, "CAA", `0 issue "certdesk.example"`)
	r := e.check(Request{Name: "www.d." + name}, RuleNotAuthorized)
	if r.RelevantName != "www.d."+name+"." || strings.Join(r.AliasChain, " ") != "www."+target+"." {
		t.Errorf("relevant %q via %v", r.RelevantName, r.AliasChain)
	}
}

func TestIntegrationAliasLoopRefuses(t *testing.T) {
	e := newEnv(t)
	name := testenv.DNSName(t, e.s.Zones.Signed)
	e.set(name, "CAA", `0 issue "certdesk.example"`)
	e.set("a."+name, "CNAME", "b."+name+".")
	e.set("b."+name, "CNAME", "a."+name+".")
	// The resolver gives up on the loop (SERVFAIL); a chain too long inside
	// one answer is refused by relevant() as well.
	e.check(Request{Name: "a." + name}, RuleLookupFailed)
}
