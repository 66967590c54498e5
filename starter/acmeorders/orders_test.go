package acmeorders

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"certdesk/internal/store"
	"certdesk/starter/acme"
)

// orgStore is a Store whose EAB credential eab_bound is bound to a
// verified organisation; eab_stale's verification no longer holds.
type orgStore struct{ Store }

func (orgStore) EABOrganization(_ context.Context, kid string) (store.VerifiedOrganization, error) {
	switch kid {
	case "eab_bound":
		return store.VerifiedOrganization{ApplicationID: "app_ov", VerificationID: "ver-app_ov", Organization: "Example K.K.", Country: "JP"}, nil
	case "eab_stale":
		return store.VerifiedOrganization{}, fmt.Errorf("%w: the identity verification of application app_ov is older than 825 days (BR §4.2.1)", store.ErrNotVerified)
	}
	return store.VerifiedOrganization{}, fmt.Errorf("%w: EAB credential %s is not bound to an organisation", store.ErrNotVerified, kid)
}

// TestAllow: server-dv is offered through ACME, server-ov only to accounts
// whose EAB is bound to a verified organisation, client-sign not at all,
// each refusal a clear ACME error; names the TLS profile forbids are
// rejectedIdentifier.
func TestAllow(t *testing.T) {
	b := &Backend{Store: orgStore{}}
	ids := func(v ...string) []store.ACMEIdentifier {
		var out []store.ACMEIdentifier
		for _, s := range v {
			out = append(out, store.ACMEIdentifier{Type: "dns", Value: s})
		}
		return out
	}
	if err := b.Allow(context.Background(), store.ACMEAccount{}, "server-dv", ids("www.example.jp", "*.example.com")); err != nil {
		t.Fatalf("server-dv: %v", err)
	}
	bound := store.ACMEAccount{ID: "acct_b", EABKID: "eab_bound"}
	if err := b.Allow(context.Background(), bound, "server-ov", ids("www.example.jp")); err != nil {
		t.Fatalf("server-ov with a bound organisation: %v", err)
	}
	for _, tc := range []struct {
		kid, profile string
		names        []string
		typ, detail  string
	}{
		{"eab_plain", "server-ov", []string{"www.example.jp"}, "unauthorized", "not bound to an organisation"},
		{"eab_stale", "server-ov", []string{"www.example.jp"}, "unauthorized", "older than 825 days"},
		{"eab_bound", "server-ov", []string{"host.internal"}, "rejectedIdentifier", "internal"},
		{"eab_bound", "client-sign", []string{"www.example.jp"}, "unauthorized", "S/MIME"},
		{"eab_plain", "server-dv", []string{"host.internal"}, "rejectedIdentifier", "internal"},
		{"eab_plain", "server-dv", []string{"127.0.0.1"}, "rejectedIdentifier", ""},
		{"eab_plain", "server-dv", []string{"jp"}, "rejectedIdentifier", ""},
	} {
		err := b.Allow(context.Background(), store.ACMEAccount{EABKID: tc.kid}, tc.profile, ids(tc.names...))
		var ae *acme.Error
		if !errors.As(err, &ae) || ae.Type != tc.typ || ae.Detail == "" || !strings.Contains(ae.Detail, tc.detail) {
			t.Errorf("%s %s %v: %v, want %s", tc.kid, tc.profile, tc.names, err, tc.typ)
		}
	}
	if got := ApplicationID("ord_AbC-1"); got != "app_acme_AbC-1" {
		t.Fatalf("ApplicationID = %s", got)
	}
}
