package httpapi

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"slices"
	"strings"
	"testing"
	"time"

	"certdesk/internal/api"
	"certdesk/internal/pki"
	"certdesk/internal/product"
	"certdesk/internal/revocation"
	"certdesk/workflows"
)

// fields lists the fields v reports, in order.
func fields(v *api.Validation) []string {
	var out []string
	for _, e := range v.Errors {
		out = append(out, e.Field)
	}
	return out
}

func TestRevocationRequestReasons(t *testing.T) {
	for _, r := range revocation.ResellerAllowed() {
		if v := (&revocationRequest{Reason: r.String()}).Validate(); !v.OK() {
			t.Errorf("%s refused: %+v", r, v.Errors)
		}
	}
	for _, bad := range []string{"", revocation.PrivilegeWithdrawn.String(), "KeyCompromise", "keyCompromise'; --"} {
		v := (&revocationRequest{Reason: bad}).Validate()
		if got := fields(v); !slices.Equal(got, []string{"reason"}) {
			t.Errorf("reason %q: fields %v", bad, got)
		}
		if bad != "" && strings.Contains(v.Errors[0].Detail, bad) {
			t.Errorf("the refusal quotes the submitted value: %q", v.Errors[0].Detail)
		}
	}
	if got := fields((&revocationRequest{Reason: "superseded", Comment: "a\x00b"}).Validate()); !slices.Equal(got, []string{"comment"}) {
		t.Errorf("control character in comment: %v", got)
	}
}

func TestApplicationRequestValidate(t *testing.T) {
	profiles, err := pki.NewProfileSet(pki.ProfileOptions{})
	if err != nil {
		t.Fatal(err)
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
	csr := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))
	yes := true
	valid := func() applicationRequest {
		return applicationRequest{
			Product: product.ServerDV, CSR: csr, Domains: []string{" WWW.Example.JP. "},
			Subscriber:  subscriberJSON{Name: "山田太郎", Email: "taro@example.jp", Phone: "+81 3 1234 5678", Country: "JP"},
			Attestation: attestationJSON{TermsVersion: "2026-04", Truthful: &yes},
		}
	}
	now := time.Now()

	r := valid()
	if v := r.Validate(profiles, now); !v.OK() {
		t.Fatalf("valid request refused: %+v", v.Errors)
	}
	if !slices.Equal(r.Domains, []string{"www.example.jp"}) || r.ValidityDays < 1 {
		t.Fatalf("not normalised: domains %q, validity %d", r.Domains, r.ValidityDays)
	}
	in := r.input()
	if in.Product != product.ServerDV || !in.Attestation.Truthful || in.Subscriber.Email != "taro@example.jp" ||
		!slices.Equal(in.Domains, r.Domains) || in.ValidityDays != r.ValidityDays {
		t.Fatalf("workflow input %+v", in)
	}

	for _, tc := range []struct {
		name string
		mod  func(*applicationRequest)
		want []string
	}{
		{"unknown product", func(r *applicationRequest) { r.Product, r.Domains = "server-ev", nil }, []string{"product"}},
		{"client product with domains", func(r *applicationRequest) { r.Product = product.ClientSign }, []string{"domains"}},
		{"OV without organisation and country", func(r *applicationRequest) {
			r.Product, r.Subscriber.Country = product.ServerOV, ""
		}, []string{"subscriber.organization", "subscriber.country"}},
		{"phone with letters", func(r *applicationRequest) { r.Subscriber.Phone = "call me" }, []string{"subscriber.phone"}},
		{"lower-case country", func(r *applicationRequest) { r.Subscriber.Country = "jp" }, []string{"subscriber.country"}},
		{"display-name email", func(r *applicationRequest) { r.Subscriber.Email = "Taro <taro@example.jp>" }, []string{"subscriber.email"}},
		{"name too long", func(r *applicationRequest) { r.Subscriber.Name = strings.Repeat("名", 65) }, []string{"subscriber.name"}},
		{"untruthful", func(r *applicationRequest) { r.Attestation.Truthful = nil }, []string{"attestation.truthful"}},
		{"no CSR", func(r *applicationRequest) { r.CSR = " " }, []string{"csr"}},
	} {
		r := valid()
		tc.mod(&r)
		if got := fields(r.Validate(profiles, now)); !slices.Equal(got, tc.want) {
			t.Errorf("%s: fields %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestSmallRequestsValidate(t *testing.T) {
	d := disclosureRequest{Name: "山田", Email: "taro@example.jp", Phone: "+81 3-1234-5678"}
	if v := d.Validate(); !v.OK() || d.Delivery != workflows.DeliveryElectronic {
		t.Fatalf("disclosure: %+v, delivery %q", v.Errors, d.Delivery)
	}
	for _, tc := range []struct {
		name string
		v    *api.Validation
		want []string
	}{
		{"paper disclosure without address", (&disclosureRequest{Name: "x", Email: "x@example.jp", Phone: "0312345678", Delivery: workflows.DeliveryPaper}).Validate(), []string{"postal_address"}},
		{"disclosure with a bad email", (&disclosureRequest{Name: "x", Email: "x@", Phone: "0312345678"}).Validate(), []string{"email"}},
		// Issue 17: the email alone does not identify a person.
		{"disclosure without a phone number", (&disclosureRequest{Name: "x", Email: "x@example.jp"}).Validate(), []string{"phone"}},
		{"disclosure with a bad phone number", (&disclosureRequest{Name: "x", Email: "x@example.jp", Phone: "call me"}).Validate(), []string{"phone"}},
		{"inquiry of an unknown kind", (&inquiryRequest{Kind: "gossip", Contact: "x", Body: "y"}).Validate(), []string{"kind"}},
		{"inquiry body may span lines", (&inquiryRequest{Kind: "complaint", Contact: "x", Body: "line 1\nline 2"}).Validate(), nil},
		{"five-digit code", (&codeRequest{Code: "12345"}).Validate(), []string{"code"}},
		{"six-digit code", (&codeRequest{Code: "123456"}).Validate(), nil},
		{"correction without changes", (&correctionRequest{}).Validate(), []string{"changes"}},
		{"correction of a field with quotes", (&correctionRequest{Changes: map[string]string{"phone'": "1"}}).Validate(), []string{"changes"}},
		{"withdraw with a control character", (&withdrawRequest{Reason: "\x07"}).Validate(), []string{"reason"}},
		{"key proof without proof", (&keyProofRequest{Certificate: "x"}).Validate(), []string{"certificate", "signature"}},
	} {
		if got := fields(tc.v); !slices.Equal(got, tc.want) {
			t.Errorf("%s: fields %v, want %v", tc.name, got, tc.want)
		}
	}
}
