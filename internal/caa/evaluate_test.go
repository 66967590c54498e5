package caa

import (
	"fmt"
	"testing"

	"github.com/miekg/dns"
)

var issuers = []string{"certdesk.example", "certdesk.jp"}

func caaSet(t *testing.T, lines ...string) []*dns.CAA {
	t.Helper()
	var out []*dns.CAA
	for _, l := range lines {
		rr, err := dns.NewRR("example.jp. 300 IN CAA " + l)
		if err != nil {
			t.Fatalf("%s: %v", l, err)
		}
		out = append(out, rr.(*dns.CAA))
	}
	return out
}

func TestEvaluate(t *testing.T) {
	const acct = "https://certdesk.example/acct/42"
	cases := []struct {
		name   string
		req    Request
		rrset  []string
		rule   Rule
		record string
	}{
		{"no CAA", Request{Name: "example.jp"}, nil, RuleNoCAA, ""},
		{"issue for us", Request{Name: "example.jp"}, []string{`0 issue "certdesk.example"`}, RuleAuthorized, `0 issue "certdesk.example"`},
		{"issue for our second name, any case", Request{Name: "example.jp"}, []string{`0 issue "CertDesk.JP"`}, RuleAuthorized, `0 issue "CertDesk.JP"`},
		{"issue for another CA only", Request{Name: "example.jp"}, []string{`0 issue "other-ca.example"`}, RuleNotAuthorized, `0 issue "other-ca.example"`},
		{"one of several CAs", Request{Name: "example.jp"}, []string{`0 issue "other-ca.example"`, `0 issue "certdesk.example"`}, RuleAuthorized, `0 issue "certdesk.example"`},
		{"issue ;", Request{Name: "example.jp"}, []string{`0 issue ";"`}, RuleForbidden, `0 issue ";"`},
		{"issue empty", Request{Name: "example.jp"}, []string{`0 issue ""`}, RuleForbidden, `0 issue ""`},
		{"malformed issue restricts", Request{Name: "example.jp"}, []string{`0 issue "certdesk.example; accounturi"`}, RuleNotAuthorized, `0 issue "certdesk.example; accounturi"`},
		{"tag case-insensitive", Request{Name: "example.jp"}, []string{`0 ISSUE "other-ca.example"`}, RuleNotAuthorized, `0 ISSUE "other-ca.example"`},
		{"only iodef", Request{Name: "example.jp"}, []string{`0 iodef "mailto:sec@example.jp"`}, RuleUnrestricted, ""},
		{"issuewild does not restrict a plain name", Request{Name: "www.example.jp"}, []string{`0 issuewild ";"`}, RuleUnrestricted, ""},
		{"wildcard uses issuewild over issue", Request{Name: "*.example.jp"}, []string{`0 issue "certdesk.example"`, `0 issuewild "other-ca.example"`}, RuleNotAuthorized, `0 issuewild "other-ca.example"`},
		{"wildcard authorized by issuewild", Request{Name: "*.example.jp"}, []string{`0 issue ";"`, `0 issuewild "certdesk.example"`}, RuleAuthorized, `0 issuewild "certdesk.example"`},
		{"plain name ignores issuewild", Request{Name: "www.example.jp"}, []string{`0 issue ";"`, `0 issuewild "certdesk.example"`}, RuleForbidden, `0 issue ";"`},
		{"wildcard falls back to issue", Request{Name: "*.example.jp"}, []string{`0 issue "certdesk.example"`}, RuleAuthorized, `0 issue "certdesk.example"`},
		{"unknown critical tag", Request{Name: "example.jp"}, []string{`0 issue "certdesk.example"`, `128 tbs "x"`}, RuleCriticalUnknown, `128 tbs "x"`},
		{"unknown non-critical tag", Request{Name: "example.jp"}, []string{`0 issue "certdesk.example"`, `0 tbs "x"`}, RuleAuthorized, `0 issue "certdesk.example"`},
		{"critical known tag", Request{Name: "example.jp"}, []string{`128 issue "certdesk.example"`}, RuleAuthorized, `128 issue "certdesk.example"`},
		{"accounturi matches", Request{Name: "example.jp", AccountURI: acct}, []string{`0 issue "certdesk.example; accounturi=` + acct + `"`}, RuleAuthorized, ""},
		{"accounturi differs", Request{Name: "example.jp", AccountURI: acct + "3"}, []string{`0 issue "certdesk.example; accounturi=` + acct + `"`}, RuleAccountURIMismatch, ""},
		{"accounturi but request has none", Request{Name: "example.jp"}, []string{`0 issue "certdesk.example; accounturi=` + acct + `"`}, RuleAccountURIMismatch, ""},
		{"accounturi mismatch beats another CA", Request{Name: "example.jp"}, []string{`0 issue "other-ca.example"`, `0 issue "certdesk.example;accounturi=` + acct + `"`}, RuleAccountURIMismatch, ""},
		{"validationmethods matches", Request{Name: "example.jp", Method: "dns-01"}, []string{`0 issue "certdesk.example; validationmethods=http-01,dns-01"`}, RuleAuthorized, ""},
		{"validationmethods differs", Request{Name: "example.jp", Method: "http-01"}, []string{`0 issue "certdesk.example; validationmethods=dns-01"`}, RuleMethodMismatch, ""},
		{"validationmethods but no method", Request{Name: "example.jp"}, []string{`0 issue "certdesk.example; validationmethods=dns-01"`}, RuleMethodMismatch, ""},
		{"unknown parameter ignored", Request{Name: "example.jp"}, []string{`0 issue "certdesk.example; policy=ev"`}, RuleAuthorized, ""},
		{"one matching record of two", Request{Name: "example.jp", Method: "http-01"}, []string{`0 issue "certdesk.example; validationmethods=dns-01"`, `0 issue "certdesk.example"`}, RuleAuthorized, `0 issue "certdesk.example"`},
		{"mailbox: no issuemail is unrestricted", Request{Name: "example.jp", Mailbox: true}, []string{`0 issue ";"`}, RuleUnrestricted, ""},
		{"mailbox: issuemail for us", Request{Name: "example.jp", Mailbox: true}, []string{`0 issue ";"`, `0 issuemail "certdesk.example"`}, RuleAuthorized, `0 issuemail "certdesk.example"`},
		{"mailbox: issuemail for another CA", Request{Name: "example.jp", Mailbox: true}, []string{`0 issue "certdesk.example"`, `0 issuemail "other-ca.example"`}, RuleNotAuthorized, `0 issuemail "other-ca.example"`},
		{"mailbox: issuemail ;", Request{Name: "example.jp", Mailbox: true}, []string{`0 issuemail ";"`}, RuleForbidden, ""},
		{"mailbox: unknown critical tag", Request{Name: "example.jp", Mailbox: true}, []string{`128 future "x"`}, RuleCriticalUnknown, ""},
		{"TLS ignores issuemail", Request{Name: "example.jp"}, []string{`0 issuemail ";"`}, RuleUnrestricted, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := Evaluate(caaSet(t, c.rrset...), c.req, issuers)
			if d.Rule != c.rule || d.Permitted != c.rule.Permits() {
				t.Fatalf("got %s (permitted %v): %s; want %s", d.Rule, d.Permitted, d.Reason, c.rule)
			}
			if c.record != "" && d.Record != c.record {
				t.Errorf("record %q, want %q", d.Record, c.record)
			}
			if d.Reason == "" {
				t.Error("no reason")
			}
		})
	}
}

func TestEvaluateRecordsIodef(t *testing.T) {
	d := Evaluate(caaSet(t, `0 issue "other-ca.example"`, `0 iodef "mailto:sec@example.jp"`, `0 iodef "https://example.jp/caa"`), Request{Name: "example.jp"}, issuers)
	if d.Permitted || fmt.Sprint(d.Iodef) != "[mailto:sec@example.jp https://example.jp/caa]" {
		t.Fatalf("got %+v", d)
	}
}

func TestParseIssueValue(t *testing.T) {
	cases := []struct {
		in     string
		issuer string
		params string
		bad    bool
	}{
		{"certdesk.example", "certdesk.example", "map[]", false},
		{"  certdesk.example  ", "certdesk.example", "map[]", false},
		{";", "", "map[]", false},
		{"", "", "map[]", false},
		{"certdesk.example;", "certdesk.example", "map[]", false},
		{"certdesk.example; AccountURI = https://x/1 ; validationmethods=dns-01,http-01", "certdesk.example",
			"map[accounturi:https://x/1 validationmethods:dns-01,http-01]", false},
		{"; a=b", "", "map[a:b]", false},
		{"-bad.example", "", "", true},
		{"bad..example", "", "", true},
		{"certdesk.example; a", "", "", true},
		{"certdesk.example; a=b;;c=d", "", "", true},
		{"certdesk.example; a=b; a=c", "", "", true},
		{"certdesk.example; a=b c", "", "", true},
		{"certdesk.example; validationmethods=dns-01,", "", "", true},
		{"certdesk.example; validationmethods=dns_01", "", "", true},
		{"certdesk example", "", "", true},
	}
	for _, c := range cases {
		issuer, params, err := ParseIssueValue(c.in)
		if (err != nil) != c.bad {
			t.Errorf("%q: err %v, want bad=%v", c.in, err, c.bad)
			continue
		}
		if !c.bad && (issuer != c.issuer || fmt.Sprint(params) != c.params) {
			t.Errorf("%q: got %q %v, want %q %s", c.in, issuer, params, c.issuer, c.params)
		}
	}
}
