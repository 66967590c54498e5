package correction

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"certdesk/internal/mailer"
	"certdesk/internal/product"
)

// Every field is one the notices can label.
func TestFieldsHaveLabels(t *testing.T) {
	for _, f := range Fields() {
		if _, ok := mailer.FieldLabels[f]; !ok {
			t.Errorf("%s has no label in mailer.FieldLabels", f)
		}
	}
	for _, p := range product.All() {
		if len(held[p]) == 0 || len(printed[p]) == 0 {
			t.Errorf("%s: no held or printed fields", p)
		}
		for f := range printed[p] {
			if !Held(p, f) {
				t.Errorf("%s prints %s without holding it", p, f)
			}
		}
	}
}

func TestCanonical(t *testing.T) {
	for _, c := range []struct{ key, prod, want string }{
		{" Email ", product.ServerDV, FieldContactEmail},
		{"org", product.ServerOV, FieldOrganization},
		{"state", product.ServerOV, FieldProvince},
		{"telephone", product.ClientSign, FieldContactPhone},
		{"name", product.ClientSign, FieldSubscriberName},
		{"contact_name", product.ClientSign, FieldSubscriberName},
		{"name", product.ServerDV, FieldContactName},
		{"subscriber_name", product.ServerOV, FieldContactName},
		{"favourite_colour", product.ServerDV, "favourite_colour"},
	} {
		if got := Canonical(c.key, c.prod); got != c.want {
			t.Errorf("Canonical(%q, %s) = %q, want %q", c.key, c.prod, got, c.want)
		}
	}
}

func TestNormalise(t *testing.T) {
	for _, c := range []struct{ field, in, want string }{
		{FieldCountry, " jp ", "JP"},
		{FieldDomains, "WWW.Example.JP., example.jp\nwww.example.jp", "www.example.jp,example.jp"},
		{FieldContactPhone, "", ""},
		{FieldContactPhone, "+81 (3) 1234-5678", "+81 (3) 1234-5678"},
		{FieldPostalAddress, "  ", ""},
		{FieldContactEmail, "hanako@example.jp", "hanako@example.jp"},
		{FieldOrganization, " 株式会社サンプル ", "株式会社サンプル"},
	} {
		got, err := Normalise(c.field, c.in)
		if err != nil || got != c.want {
			t.Errorf("Normalise(%s, %q) = %q, %v; want %q", c.field, c.in, got, err, c.want)
		}
	}
	for _, c := range []struct{ field, in string }{
		{FieldCountry, "JPN"},
		{FieldContactEmail, "Hanako <hanako@example.jp>"},
		{FieldContactEmail, "not-an-address"},
		{FieldContactPhone, "call me"},
		{FieldContactPhone, "12345"}, // shorter than 7 characters
		{FieldDomains, " , "},
		{FieldOrganization, ""},
		{FieldOrganization, strings.Repeat("あ", 257)},
		{FieldContactName, "a\x00b"},
	} {
		if _, err := Normalise(c.field, c.in); err == nil || !strings.Contains(err.Error(), c.field) {
			t.Errorf("Normalise(%s, %q) accepted or error does not name the field: %v", c.field, c.in, err)
		}
	}
}

func ovCert() Certificate {
	return Certificate{Serial: "0a01", Product: product.ServerOV, Valid: true, Held: Values{
		Organization: "株式会社サンプル", Name: "山田 太郎", Country: "JP", Locality: "千代田区", Province: "東京都",
		Domains: []string{"www.example.jp"}, Email: "taro@example.jp", Phone: "03-1234-5678"}}
}

func TestCheckContactOnly(t *testing.T) {
	plan, err := Check(ovCert(), map[string]string{"phone": "03-9999-0000", "email": "hanako@example.jp", "country": "jp"})
	if err != nil {
		t.Fatal(err)
	}
	want := Plan{Changes: map[string]string{FieldContactPhone: "03-9999-0000", FieldContactEmail: "hanako@example.jp"},
		ChangedFields: []string{FieldContactEmail, FieldContactPhone}, Classification: Contact, EmailChanged: true}
	if !reflect.DeepEqual(plan, want) {
		t.Fatalf("plan\n%+v\nwant\n%+v", plan, want)
	}
}

func TestCheckPrinted(t *testing.T) {
	plan, err := Check(ovCert(), map[string]string{"organization": "株式会社新社名", "phone": "03-9999-0000"})
	if err != nil {
		t.Fatal(err)
	}
	if plan.Classification != Printed || !plan.ReviewRequired || !reflect.DeepEqual(plan.PrintedFields, []string{FieldOrganization}) {
		t.Fatalf("%+v", plan)
	}
	// DV: domains are printed, but the domain is validated, not a person:
	// no review.
	dv := ovCert()
	dv.Product = product.ServerDV
	plan, err = Check(dv, map[string]string{"domains": "new.example.jp"})
	if err != nil || plan.Classification != Printed || plan.ReviewRequired {
		t.Fatalf("%+v %v", plan, err)
	}
	// A client certificate prints the mailbox.
	cs := ovCert()
	cs.Product = product.ClientSign
	plan, err = Check(cs, map[string]string{"email": "hanako@example.jp"})
	if err != nil || plan.Classification != Printed || !plan.ReviewRequired || !plan.EmailChanged {
		t.Fatalf("%+v %v", plan, err)
	}
	// A printed change on a certificate no longer valid is refused.
	old := ovCert()
	old.Valid = false
	if _, err := Check(old, map[string]string{"organization": "株式会社新社名"}); !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "no longer valid") {
		t.Fatalf("expired: %v", err)
	}
	// A contact change on it is fine.
	if _, err := Check(old, map[string]string{"phone": "03-9999-0000"}); err != nil {
		t.Fatal(err)
	}
}

func TestCheckRefusals(t *testing.T) {
	dv := ovCert()
	dv.Product = product.ServerDV
	for name, c := range map[string]struct {
		cert    Certificate
		changes map[string]string
		want    []string
	}{
		"not held":  {dv, map[string]string{"locality": "港区", "colour": "blue"}, []string{`"colour" is not held`, `"locality" is not held for a server-dv`}},
		"bad value": {ovCert(), map[string]string{"country": "Japan", "email": "x"}, []string{"country:", "contact_email:"}},
		"twice":     {ovCert(), map[string]string{"phone": "03-1111-1111", "telephone": "03-2222-2222"}, []string{"given twice"}},
		"no change": {ovCert(), map[string]string{"Organization": " 株式会社サンプル", "domains": "WWW.EXAMPLE.JP"}, []string{"nothing to correct"}},
	} {
		_, err := Check(c.cert, c.changes)
		if !errors.Is(err, ErrRefused) {
			t.Errorf("%s: %v", name, err)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: %q lacks %q", name, err, w)
			}
		}
	}
}

func TestValuesApply(t *testing.T) {
	v := ovCert().Held
	v.Apply(map[string]string{FieldDomains: "a.example.jp,b.example.jp", FieldContactName: "鈴木 花子", FieldPostalAddress: ""})
	if v.Get(FieldDomains) != "a.example.jp,b.example.jp" || v.Name != "鈴木 花子" || v.Get(FieldSubscriberName) != "鈴木 花子" || v.Address != "" {
		t.Fatalf("%+v", v)
	}
	if v.Get("unknown") != "" {
		t.Fatal("unknown field has a value")
	}
}
