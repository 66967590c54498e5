package acmeorders

import (
	"context"
	"errors"
	"testing"

	"certdesk/internal/store"
	"certdesk/starter/acme"
)

// TestAllow: only server-dv is offered through ACME for now, with a clear
// ACME error for the others; names the TLS profile forbids are
// rejectedIdentifier.
func TestAllow(t *testing.T) {
	b := &Backend{}
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
	for _, tc := range []struct {
		profile string
		names   []string
		typ     string
	}{
		{"server-ov", []string{"www.example.jp"}, "unauthorized"},
		{"client-sign", []string{"www.example.jp"}, "unauthorized"},
		{"server-dv", []string{"host.internal"}, "rejectedIdentifier"},
		{"server-dv", []string{"127.0.0.1"}, "rejectedIdentifier"},
		{"server-dv", []string{"jp"}, "rejectedIdentifier"},
	} {
		err := b.Allow(context.Background(), store.ACMEAccount{}, tc.profile, ids(tc.names...))
		var ae *acme.Error
		if !errors.As(err, &ae) || ae.Type != tc.typ || ae.Detail == "" {
			t.Errorf("%s %v: %v, want %s", tc.profile, tc.names, err, tc.typ)
		}
	}
	if got := ApplicationID("ord_AbC-1"); got != "app_acme_AbC-1" {
		t.Fatalf("ApplicationID = %s", got)
	}
}
