//go:build integration

package workflows

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/client"

	"certdesk/activities"
	"certdesk/internal/caa"
	"certdesk/internal/dcv"
	"certdesk/internal/mpic"
	"certdesk/internal/product"
	"certdesk/internal/status"
	"certdesk/internal/store"
	"certdesk/internal/testenv"
)

// dnsCase runs one DV application by DNS TXT through the real DNS stack:
// the token is published with an RFC 2136 update (as a subscriber's
// nsupdate would) once the workflow shows it.
func dnsCase(t *testing.T, s *stack, reseller, domain string) ApplicationResult {
	return dnsCaseOpt(t, s, reseller, domain, true)
}

// dnsCaseOpt is dnsCase; publish false leaves the token unpublished (a
// bogus zone, whose records the resolver never returns).
func dnsCaseOpt(t *testing.T, s *stack, reseller, domain string, publish bool) ApplicationResult {
	t.Helper()
	ctx := context.Background()
	appID := "app_" + strings.NewReplacer(".", "_", "-", "_").Replace(domain)
	run, err := s.tc.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: ApplicationWorkflowID(appID), TaskQueue: TaskQueue}, Application, ApplicationInput{
		ApplicationID: appID, ResellerID: reseller, Product: product.ServerDV, CSRPEM: ecCSR(t), Domains: []string{domain}, ValidityDays: 90,
		Subscriber:  activities.SubscriberData{Name: "DNS Subscriber", Email: "dns@example.jp", Country: "JP"},
		Attestation: activities.Attestation{TermsVersion: "2026-01", Truthful: true}, DomainValidationMethod: dcv.MethodDNS,
	})
	if err != nil {
		t.Fatal(err)
	}
	st := waitStatus(t, s.tc, ApplicationWorkflowID(appID), func(a ApplicationState) bool { return len(a.DomainTokens) == 1 })
	dnsStack := testenv.DNS(t)
	if publish {
		if err := dnsStack.SetRecords(ctx, strings.TrimSuffix(dcv.DNSLabel(domain), "."), "TXT", `"`+st.DomainTokens[domain]+`"`); err != nil {
			t.Fatal(err)
		}
	}
	var res ApplicationResult
	gctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	if err := run.Get(gctx, &res); err != nil {
		t.Fatalf("%s: %v", domain, err)
	}
	return res
}

func fastRounds(t *testing.T) {
	oldP, oldR, oldC := DomainValidationPeriod, CorroborationRetryAfter, CAARetryAfter
	DomainValidationPeriod, CorroborationRetryAfter, CAARetryAfter = 200*time.Millisecond, time.Second, time.Second
	t.Cleanup(func() { DomainValidationPeriod, CorroborationRetryAfter, CAARetryAfter = oldP, oldR, oldC })
}

func newReseller(t *testing.T, s *stack, id string) {
	t.Helper()
	if err := s.store.CreateReseller(context.Background(), store.Reseller{ID: id, Name: id, APIKeyHash: strings.Repeat("e", 63) + strconv.Itoa(len(id)%10), APIKeyPrefix: "cdk_" + id[:2]}); err != nil {
		t.Fatal(err)
	}
}

// TestMPICOnRealDNS: the CA's resolver and four perspectives see the
// token; one perspective's resolver is hijacked and answers another TXT.
// One non-corroboration is within the BR §3.2.2.9 quorum: the certificate
// issues, and PostgreSQL holds the primary's and every remote
// perspective's determination.
func TestMPICOnRealDNS(t *testing.T) {
	fastRounds(t)
	d := testenv.DNS(t)
	one := testenv.DNSName(t, d.Zones.Unsigned)
	hijack := func(name string) string {
		return testenv.DNSHijack(t, d, strings.TrimSuffix(dcv.DNSLabel(name), "."), "TXT", `"attacker-value"`)
	}
	h1 := hijack(one)
	s := newStack(t, map[string]string{"TEST_RESOLVER_eu-west": h1})
	newReseller(t, s, "rs_mpic")
	res := dnsCase(t, s, "rs_mpic", one)
	if res.Status != status.AppIssued {
		t.Fatalf("one hijacked perspective: %+v", res)
	}
	rounds, err := s.store.ListCorroborations(context.Background(), "app_"+strings.NewReplacer(".", "_", "-", "_").Replace(one))
	if err != nil || len(rounds) != 2 {
		t.Fatalf("corroborations %+v %v", rounds, err)
	}
	var dets []mpic.Determination
	if err := json.Unmarshal(rounds[1].Determinations, &dets); err != nil || rounds[1].Check != CheckDCV {
		t.Fatalf("%s: %v", rounds[1].Check, err)
	}
	seen := map[string]string{}
	for _, d := range dets {
		seen[d.Perspective] = d.Outcome
	}
	if len(seen) != 1+len(mpic.Development) || seen["primary"] != activities.OutcomeValid || seen["eu-west"] != activities.OutcomeInvalid || !rounds[1].OK {
		t.Fatalf("stored DCV determinations %v (ok %v)", seen, rounds[1].OK)
	}
}

// TestMPICRefusesOnRealDNS: two of five perspectives see another TXT
// record: more non-corroborations than BR §3.2.2.9 allows, so the domain is
// refused naming the rule, and nothing is signed.
func TestMPICRefusesOnRealDNS(t *testing.T) {
	fastRounds(t)
	d := testenv.DNS(t)
	name := testenv.DNSName(t, d.Zones.Unsigned)
	label := strings.TrimSuffix(dcv.DNSLabel(name), ".")
	s := newStack(t, map[string]string{
		"TEST_RESOLVER_eu-west": testenv.DNSHijack(t, d, label, "TXT", `"attacker-value"`),
		"TEST_RESOLVER_us-east": testenv.DNSHijack(t, d, label, "TXT", `"attacker-value"`),
	})
	newReseller(t, s, "rs_mpic2")
	res := dnsCase(t, s, "rs_mpic2", name)
	if res.Status == status.AppIssued || res.CertificateSerial != "" || !strings.Contains(res.Reason, "BR §3.2.2.9") {
		t.Fatalf("two hijacked perspectives: %+v", res)
	}
}

// TestDVOnRealDNS: DNSSEC and CAA as the CA's validating resolver sees
// them. A signed zone with CAA for CertDesk issues (the check and its DNS
// evidence stored); CAA naming another CA refuses; a bogus-signed zone
// refuses with the DNSSEC reason.
func TestDVOnRealDNS(t *testing.T) {
	fastRounds(t)
	d := testenv.DNS(t)
	ctx := context.Background()
	s := newStack(t, nil)
	newReseller(t, s, "rs_dns")

	ok := testenv.DNSName(t, d.Zones.Signed)
	if err := d.SetRecords(ctx, ok, "CAA", `0 issue "certdesk.example"`); err != nil {
		t.Fatal(err)
	}
	res := dnsCase(t, s, "rs_dns", ok)
	if res.Status != status.AppIssued {
		t.Fatalf("signed zone, CAA for CertDesk: %+v", res)
	}
	checks, err := s.store.LatestCAAChecks(ctx, "app_"+strings.NewReplacer(".", "_", "-", "_").Replace(ok))
	if err != nil || len(checks) != 1 || !checks[0].Permitted || checks[0].Rule != "authorized" {
		t.Fatalf("stored CAA check %+v %v", checks, err)
	}
	var ev caa.Result
	if err := json.Unmarshal(checks[0].Evidence, &ev); err != nil || len(ev.Evidence.Queries) == 0 ||
		ev.Evidence.Queries[0].DNSSEC != caa.DNSSECSecure || ev.Evidence.Resolver != d.ResolverAddr || ev.Record != `0 issue "certdesk.example"` {
		t.Fatalf("stored CAA evidence %+v %v", ev, err)
	}

	other := testenv.DNSName(t, d.Zones.Signed)
	if err := d.SetRecords(ctx, other, "CAA", `0 issue "other-ca.example"`); err != nil {
		t.Fatal(err)
	}
	if res := dnsCase(t, s, "rs_dns", other); res.Status != status.AppRejected || !strings.Contains(res.Reason, "other-ca.example") {
		t.Fatalf("CAA for another CA: %+v", res)
	}

	bogus := testenv.DNSName(t, d.Zones.Bogus)
	if res := dnsCaseOpt(t, s, "rs_dns", bogus, false); res.Status == status.AppIssued || !strings.Contains(res.Reason, "DNSSEC") {
		t.Fatalf("bogus zone: %+v", res)
	}
}
