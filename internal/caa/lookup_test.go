package caa

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// table is a Resolver answering from canned responses keyed by query name;
// the climb and alias logic is tested here without DNS, the whole path in
// caa_integration_test.go against the real stack.
type table map[string]func(*dns.Msg) *dns.Msg

func (t table) Addr() string { return "table" }

func (t table) Exchange(_ context.Context, m *dns.Msg) (*dns.Msg, error) {
	f, ok := t[m.Question[0].Name]
	if !ok {
		r := new(dns.Msg)
		r.SetRcode(m, dns.RcodeNameError)
		return r, nil
	}
	if r := f(m); r != nil {
		return r, nil
	}
	return nil, errors.New("i/o timeout")
}

func answer(rcode int, ad bool, rrs ...string) func(*dns.Msg) *dns.Msg {
	return func(m *dns.Msg) *dns.Msg {
		r := new(dns.Msg)
		r.SetRcode(m, rcode)
		r.AuthenticatedData = ad
		for _, s := range rrs {
			rr, err := dns.NewRR(s)
			if err != nil {
				panic(err)
			}
			r.Answer = append(r.Answer, rr)
		}
		return r
	}
}

func check(t *testing.T, res table, req Request) Result {
	t.Helper()
	c := &Checker{Resolver: res, IssuerDomains: issuers, Now: func() time.Time { return time.Date(2026, 12, 4, 0, 0, 0, 0, time.UTC) }}
	r, err := c.Check(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestCheckClimbsToParent(t *testing.T) {
	r := check(t, table{
		"a.b.example.jp.": answer(dns.RcodeNameError, true),
		"b.example.jp.":   answer(dns.RcodeSuccess, true),
		"example.jp.":     answer(dns.RcodeSuccess, true, `example.jp. 300 IN CAA 0 issue "other-ca.example"`),
	}, Request{Name: "a.b.example.jp"})
	if r.Rule != RuleNotAuthorized || r.RelevantName != "example.jp." || len(r.Evidence.Queries) != 3 {
		t.Fatalf("got %+v", r)
	}
	if r.Evidence.Queries[2].DNSSEC != DNSSECSecure || !strings.Contains(r.Evidence.Queries[2].Answer[0], "other-ca.example") {
		t.Errorf("evidence %+v", r.Evidence.Queries[2])
	}
	if !r.Evidence.IssueBy.Equal(r.Evidence.CheckedAt.Add(MinValidity)) {
		t.Errorf("issue by %v", r.Evidence.IssueBy)
	}
}

func TestCheckNoCAAStopsBelowRoot(t *testing.T) {
	r := check(t, table{}, Request{Name: "*.www.example.jp"})
	if r.Rule != RuleNoCAA || !r.Permitted {
		t.Fatalf("got %+v", r)
	}
	var names []string
	for _, q := range r.Evidence.Queries {
		names = append(names, q.Name)
	}
	if strings.Join(names, " ") != "www.example.jp. example.jp. jp." {
		t.Errorf("queried %v", names)
	}
}

func TestCheckAliasTargetNotClimbed(t *testing.T) {
	// www is an alias to cdn.other.jp without CAA; other.jp forbids us, but
	// RFC 8659 climbs from www's parent, example.jp, which authorizes us.
	r := check(t, table{
		"www.example.jp.": answer(dns.RcodeSuccess, false, "www.example.jp. 60 IN CNAME cdn.other.jp."),
		"example.jp.":     answer(dns.RcodeSuccess, false, `example.jp. 60 IN CAA 0 issue "certdesk.example"`),
		"other.jp.":       answer(dns.RcodeSuccess, false, `other.jp. 60 IN CAA 0 issue ";"`),
	}, Request{Name: "www.example.jp"})
	if r.Rule != RuleAuthorized || r.RelevantName != "example.jp." {
		t.Fatalf("got %+v", r)
	}
	// ... while CAA at the alias target is the name's own RRset.
	r = check(t, table{
		"www.example.jp.": answer(dns.RcodeSuccess, false, "www.example.jp. 60 IN CNAME a.other.jp.", "a.other.jp. 60 IN CNAME b.other.jp.",
			`b.other.jp. 60 IN CAA 0 issue "other-ca.example"`),
		"example.jp.": answer(dns.RcodeSuccess, false, `example.jp. 60 IN CAA 0 issue "certdesk.example"`),
	}, Request{Name: "www.example.jp"})
	if r.Rule != RuleNotAuthorized || r.RelevantName != "www.example.jp." || strings.Join(r.AliasChain, " ") != "a.other.jp. b.other.jp." {
		t.Fatalf("got %+v", r)
	}
	if r.Evidence.Queries[0].DNSSEC != DNSSECInsecure {
		t.Errorf("evidence %+v", r.Evidence.Queries[0])
	}
}

func TestCheckFailuresRefuse(t *testing.T) {
	for name, f := range map[string]func(*dns.Msg) *dns.Msg{
		"SERVFAIL": answer(dns.RcodeServerFailure, false),
		"REFUSED":  answer(dns.RcodeRefused, false),
		"timeout":  func(*dns.Msg) *dns.Msg { return nil },
	} {
		r := check(t, table{"example.jp.": f, "jp.": answer(dns.RcodeSuccess, true)}, Request{Name: "www.example.jp"})
		if r.Permitted || r.Rule != RuleLookupFailed || len(r.Evidence.Queries) != 2 {
			t.Errorf("%s: got %+v", name, r)
		}
	}
}

func TestCheckLongTTLExtendsIssueBy(t *testing.T) {
	r := check(t, table{"example.jp.": answer(dns.RcodeSuccess, true, `example.jp. 86400 IN CAA 0 issue "certdesk.example"`)}, Request{Name: "example.jp"})
	if !r.Evidence.IssueBy.Equal(r.Evidence.CheckedAt.Add(24 * time.Hour)) {
		t.Errorf("issue by %v", r.Evidence.IssueBy)
	}
}

func TestCheckBadRequests(t *testing.T) {
	c := &Checker{Resolver: table{}, IssuerDomains: issuers}
	for _, req := range []Request{{Name: ""}, {Name: "jp"}, {Name: "example.jp."}, {Name: "a.*.example.jp"},
		{Name: "user@example.jp", Mailbox: true}, {Name: "*.example.jp", Mailbox: true}} {
		if _, err := c.Check(context.Background(), req); !errors.Is(err, ErrBadRequest) {
			t.Errorf("%+v: err %v, want ErrBadRequest", req, err)
		}
	}
	if _, err := (&Checker{Resolver: table{}}).Check(context.Background(), Request{Name: "example.jp"}); !errors.Is(err, ErrBadRequest) {
		t.Errorf("no issuer domains: err %v", err)
	}
}
