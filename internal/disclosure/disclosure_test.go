package disclosure

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"certdesk/internal/product"
	"certdesk/internal/revocation"
	"certdesk/internal/status"
	"certdesk/internal/store"
)

var t0 = time.Date(2026, 4, 1, 3, 0, 0, 0, time.UTC)

// fakeSource holds one person's records in memory. fail names a method
// that returns a database error instead.
type fakeSource struct {
	subs    []store.Subscriber
	apps    map[string][]store.Application
	verifs  map[string]store.Verification
	certs   map[string]store.Certificate // by serial; listed per subscriber
	revs    map[string]store.Revocation
	corrs   map[string][]store.Correction
	provs   map[string][]store.Provision
	access  map[string][]store.StaffAccess
	emails  []store.EmailLogEntry
	inqs    []store.Inquiry
	stops   map[string]store.ProvisionStop
	prev    []store.DisclosureRequest
	fail    string
	refsGot []string
}

var errDB = errors.New("connection reset by peer")

func (f *fakeSource) err(method string) error {
	if f.fail == method {
		return errDB
	}
	return nil
}

func (f *fakeSource) FindSubscribersByEmail(_ context.Context, email string) ([]store.Subscriber, error) {
	var out []store.Subscriber
	for _, s := range f.subs {
		if s.Email == email {
			out = append(out, s)
		}
	}
	return out, f.err("FindSubscribersByEmail")
}

func (f *fakeSource) ListApplicationsBySubscriber(_ context.Context, id string) ([]store.Application, error) {
	return f.apps[id], f.err("ListApplicationsBySubscriber")
}

func (f *fakeSource) GetVerification(_ context.Context, id string) (store.Verification, error) {
	if err := f.err("GetVerification"); err != nil {
		return store.Verification{}, err
	}
	v, ok := f.verifs[id]
	if !ok {
		return v, store.ErrNotFound
	}
	return v, nil
}

func (f *fakeSource) ListCertificatesBySubscriber(_ context.Context, id string) ([]store.CertificateRef, error) {
	var out []store.CertificateRef
	for _, c := range f.certs {
		if c.SubscriberID == id {
			ref := store.CertificateRef{Serial: c.Serial, Status: c.Status}
			if r, ok := f.revs[c.Serial]; ok {
				ref.RevokedAt = r.RevokedAt
			}
			out = append(out, ref)
		}
	}
	return out, f.err("ListCertificatesBySubscriber")
}

func (f *fakeSource) GetCertificate(_ context.Context, serial string) (store.Certificate, error) {
	if err := f.err("GetCertificate"); err != nil {
		return store.Certificate{}, err
	}
	c, ok := f.certs[serial]
	if !ok {
		return c, store.ErrNotFound
	}
	return c, nil
}

func (f *fakeSource) GetRevocation(_ context.Context, serial string) (store.Revocation, error) {
	if err := f.err("GetRevocation"); err != nil {
		return store.Revocation{}, err
	}
	r, ok := f.revs[serial]
	if !ok {
		return r, store.ErrNotFound
	}
	return r, nil
}

func (f *fakeSource) ListCorrectionsBySubscriber(_ context.Context, id string) ([]store.Correction, error) {
	return f.corrs[id], f.err("ListCorrectionsBySubscriber")
}

func (f *fakeSource) ListProvisionsByPerson(_ context.Context, ref string) ([]store.Provision, error) {
	return f.provs[ref], f.err("ListProvisionsByPerson")
}

func (f *fakeSource) ListStaffAccessByPerson(_ context.Context, ref string) ([]store.StaffAccess, error) {
	return f.access[ref], f.err("ListStaffAccessByPerson")
}

func (f *fakeSource) ListEmailsByRecipient(_ context.Context, refs ...string) ([]store.EmailLogEntry, error) {
	f.refsGot = refs
	var out []store.EmailLogEntry
	for _, e := range f.emails {
		for _, r := range refs {
			if e.RecipientRef == r {
				out = append(out, e)
			}
		}
	}
	return out, f.err("ListEmailsByRecipient")
}

func (f *fakeSource) ListInquiriesByEmail(context.Context, string) ([]store.Inquiry, error) {
	return f.inqs, f.err("ListInquiriesByEmail")
}

func (f *fakeSource) GetProvisionStop(_ context.Context, id string) (store.ProvisionStop, error) {
	if err := f.err("GetProvisionStop"); err != nil {
		return store.ProvisionStop{}, err
	}
	s, ok := f.stops[id]
	if !ok {
		return s, store.ErrNotFound
	}
	return s, nil
}

func (f *fakeSource) ListDisclosureRequestsByEmail(_ context.Context, _, except string) ([]store.DisclosureRequest, error) {
	var out []store.DisclosureRequest
	for _, r := range f.prev {
		if r.ID != except {
			out = append(out, r)
		}
	}
	return out, f.err("ListDisclosureRequestsByEmail")
}

const addr = "taro@example.jp"

// person is one subscriber with an application (verified), a revoked
// certificate, a correction, a provision, a staff access, two emails (one
// the request's own code), a stop inquiry and an earlier request.
func person() *fakeSource {
	revoked := t0.Add(48 * time.Hour)
	decided := t0.Add(time.Hour)
	return &fakeSource{
		subs: []store.Subscriber{{ID: "sub_1", ResellerID: "rs_1", Organization: "株式会社<テスト>", Name: "山田 太郎",
			Email: addr, Phone: "+81 3 1234 5678", Country: "JP", CreatedAt: t0, UpdatedAt: t0}},
		apps: map[string][]store.Application{"sub_1": {{ID: "app_1", ResellerID: "rs_1", Product: product.ClientSign,
			CSR: []byte{0x30, 0x00}, Status: status.AppIssued, VerificationID: "ver_1", CertificateSerial: "0a01", CreatedAt: t0}}},
		verifs: map[string]store.Verification{"ver_1": {ID: "ver_1", Method: "email-otp", Result: "passed", DecidedAt: &decided}},
		certs: map[string]store.Certificate{"0a01": {Serial: "0a01", Issuer: "client-2026", SubscriberID: "sub_1",
			Product: product.ClientSign, Status: status.CertRevoked, DER: []byte{0x30, 0x01}, NotBefore: t0, NotAfter: t0.AddDate(1, 0, 0)}},
		revs: map[string]store.Revocation{"0a01": {Serial: "0a01", ReasonCode: int(revocation.KeyCompromise),
			RequestedByKind: "subscriber", RequestedAt: t0.Add(47 * time.Hour), RevokedAt: &revoked}},
		corrs: map[string][]store.Correction{"sub_1": {{ID: "cor_1", Serial: "0a01", OldValues: map[string]string{"contact_phone": "03"},
			NewValues: map[string]string{"contact_phone": "+81 3 1234 5678"}, Classification: "contact", Status: "applied", CreatedAt: t0}}},
		provs: map[string][]store.Provision{"sub_1": {{ID: "pv_1", ProvidedAt: t0, RecipientKind: "reseller", RecipientRef: "rs_1",
			PersonRef: "sub_1", DataItems: []string{"name"}, LegalBasis: "consent"}}},
		access: map[string][]store.StaffAccess{"sub_1": {{StaffID: "st_1", PersonRef: "sub_1", Purpose: "review", Channel: "console", AccessedAt: t0}}},
		emails: []store.EmailLogEntry{
			{IdempotencyKey: "application/app_1|review_issued", Notice: "review_issued", RecipientRef: "subscriber:sub_1", Status: "sent", CreatedAt: t0},
			{IdempotencyKey: "disclosure/dr_2|verification_code", Notice: "verification_code", RecipientRef: "email-bidx:ab", Status: "sent", CreatedAt: t0},
		},
		inqs:  []store.Inquiry{{ID: "inq_1", Kind: store.InquiryKindStopProvision, Body: "止めてください", Status: "answered", CreatedAt: t0}},
		stops: map[string]store.ProvisionStop{"inq_1": {InquiryID: "inq_1", Status: "stopped"}},
		prev: []store.DisclosureRequest{{ID: "dr_1", Name: "山田太郎", Phone: "03-1234-5678", DeliveryMethod: "electronic",
			State: "delivered", ReceivedAt: t0}},
	}
}

func input() Input {
	return Input{Request: store.DisclosureRequest{ID: "dr_2", Name: "山田　太郎", Email: addr, Phone: "+81-3-1234-5678",
		ReceivedAt: t0.Add(72 * time.Hour)},
		EmailRef: "email-bidx:ab", ExcludeKeyPrefixes: []string{"disclosure/dr_2|"}, Now: t0.Add(73 * time.Hour)}
}

func TestCompileEverything(t *testing.T) {
	src := person()
	p, refs, err := Compile(context.Background(), src, input())
	if err != nil {
		t.Fatal(err)
	}
	if p.NothingHeld || p.StatementEN != allEN || len(refs) != 1 || refs[0] != "sub_1" {
		t.Fatalf("nothing held %v, refs %v", p.NothingHeld, refs)
	}
	want := map[string]int{ItemSubscribers: 1, ItemApplications: 1, ItemCertificates: 1, ItemCorrections: 1, ItemRevocations: 1,
		ItemEmails: 1, ItemProvisions: 1, ItemStaffAccess: 1, ItemDisclosureRequests: 0}
	for k, n := range want {
		if p.Counts()[k] != n {
			t.Errorf("%s: %d, want %d", k, p.Counts()[k], n)
		}
	}
	if len(p.DataItems()) != len(want)-1 {
		t.Errorf("data items %v", p.DataItems())
	}
	if p.Emails[0].Notice != "review_issued" {
		t.Errorf("the request's own code was disclosed: %+v", p.Emails)
	}
	if strings.Join(src.refsGot, ",") != "email-bidx:ab,subscriber:sub_1" {
		t.Errorf("emails looked up by %v", src.refsGot)
	}
	if r := p.Revocations[0]; r.Reason != "keyCompromise" || r.ReasonCode != 1 {
		t.Errorf("revocation %+v", r)
	}
	if a := p.Applications[0]; a.VerificationResult != "passed" || !strings.HasPrefix(a.CSRPEM, "-----BEGIN CERTIFICATE REQUEST-----") {
		t.Errorf("application %+v", a)
	}
	// The inquiry names only the address; the earlier request a national
	// phone number (not the same digits): both withheld, counted.
	if len(p.Inquiries) != 0 || p.Withheld[ItemInquiries] != 1 || p.Withheld[ItemDisclosureRequests] != 1 ||
		p.CompiledAt != t0.Add(73*time.Hour) {
		t.Errorf("inquiries %+v, withheld %v, compiled %v", p.Inquiries, p.Withheld, p.CompiledAt)
	}
}

// A database error anywhere fails the compilation: the package promises
// all data, so it is never returned partial.
func TestCompileFailsOnSourceError(t *testing.T) {
	for _, m := range []string{"FindSubscribersByEmail", "ListApplicationsBySubscriber", "GetVerification",
		"ListCertificatesBySubscriber", "GetCertificate", "GetRevocation", "ListCorrectionsBySubscriber",
		"ListProvisionsByPerson", "ListStaffAccessByPerson", "ListEmailsByRecipient", "ListInquiriesByEmail",
		"ListDisclosureRequestsByEmail"} {
		src := person()
		src.fail = m
		p, refs, err := Compile(context.Background(), src, input())
		if !errors.Is(err, errDB) || p != nil || refs != nil {
			t.Errorf("%s failing: package %v, refs %v, error %v", m, p != nil, refs, err)
		}
	}
}

// Absent optional rows (no verification, no revocation, no stop record)
// are not errors.
func TestCompileAbsentRows(t *testing.T) {
	src := person()
	src.verifs, src.revs, src.stops = nil, nil, nil
	p, _, err := Compile(context.Background(), src, input())
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Revocations) != 0 || p.Applications[0].VerificationResult != "" {
		t.Fatalf("%+v", p)
	}
	// A certificate listed but not readable is an error, not a gap.
	// (listed under another key, so GetCertificate("0b02") finds nothing)
	src.certs["listed-only"] = store.Certificate{Serial: "0b02", SubscriberID: "sub_1"}
	if _, _, err := Compile(context.Background(), src, input()); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unreadable certificate: %v", err)
	}
}

// A shared address (issue 17): only the record whose name and phone number
// both match the request is disclosed; the others are counted as withheld
// and appear nowhere in the package or its renderings.
func TestCompileSharedAddress(t *testing.T) {
	src := person()
	src.subs = append(src.subs,
		store.Subscriber{ID: "sub_2", ResellerID: "rs_1", Name: "山田 花子", Email: addr, Phone: "+81 3 1234 5678"}, // same phone, other name
		store.Subscriber{ID: "sub_3", ResellerID: "rs_2", Name: "山田太郎", Email: addr, Phone: "+81 90 0000 0000"}, // same name, other phone
		store.Subscriber{ID: "sub_4", ResellerID: "rs_2", Name: "山田太郎", Email: addr},                            // no phone on file
	)
	src.apps["sub_2"] = []store.Application{{ID: "app_hanako", ResellerID: "rs_1", Product: product.ClientSign, CSR: []byte{0x30, 0x00}}}
	src.prev = append(src.prev, store.DisclosureRequest{ID: "dr_0", Name: "山田 太郎", Phone: "+81312345678", State: "delivered", ReceivedAt: t0})
	p, refs, err := Compile(context.Background(), src, input())
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(refs, ",") != "sub_1" || len(p.Subscribers) != 1 || p.Subscribers[0].ID != "sub_1" || len(p.Applications) != 1 {
		t.Fatalf("disclosed %v: %+v", refs, p.Subscribers)
	}
	if p.Withheld[ItemSubscribers] != 3 || p.Withheld[ItemDisclosureRequests] != 1 || len(p.DisclosureRequests) != 1 ||
		p.DisclosureRequests[0].ID != "dr_0" {
		t.Errorf("withheld %v, earlier requests %+v", p.Withheld, p.DisclosureRequests)
	}
	if strings.Join(src.refsGot, ",") != "email-bidx:ab,subscriber:sub_1" {
		t.Errorf("emails looked up by %v (another person's emails)", src.refsGot)
	}
	j, err := Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	h, err := RenderHTML(p)
	if err != nil {
		t.Fatal(err)
	}
	for _, leak := range []string{"花子", "sub_2", "sub_3", "sub_4", "app_hanako", "withheld", "90 0000"} {
		if strings.Contains(string(j), leak) || strings.Contains(string(h), leak) {
			t.Errorf("package holds %q", leak)
		}
	}
	// No name or no phone number on the request: nothing matches.
	in := input()
	in.Request.Phone = ""
	if p, refs, err := Compile(context.Background(), src, in); err != nil || len(p.Subscribers) != 0 || refs != nil && refs[0] == "sub_1" {
		t.Errorf("without a phone number: %d records, refs %v, %v", len(p.Subscribers), refs, err)
	}
}

func TestMatches(t *testing.T) {
	for _, c := range []struct {
		name, phone, rname, rphone string
		want                       bool
	}{
		{"山田 太郎", "+81 3-1234-5678", "山田太郎", "+81312345678", true},
		{"Taro  YAMADA", "０３１２３４５６７８", "taro yamada", "03-1234-5678", true},
		{"山田 太郎", "+81 3-1234-5678", "山田 花子", "+81312345678", false},
		{"山田 太郎", "+81 3-1234-5678", "山田太郎", "0312345678", false},
		{"山田 太郎", "", "山田太郎", "", false},
		{"", "+81312345678", "", "+81312345678", false},
	} {
		if got := Matches(c.name, c.phone, c.rname, c.rphone); got != c.want {
			t.Errorf("Matches(%q, %q, %q, %q) = %v", c.name, c.phone, c.rname, c.rphone, got)
		}
	}
}

func TestCompileNothingHeld(t *testing.T) {
	p, refs, err := Compile(context.Background(), &fakeSource{}, input())
	if err != nil {
		t.Fatal(err)
	}
	if !p.NothingHeld || refs != nil || p.StatementJA != nothingJA || len(p.DataItems()) != 0 {
		t.Fatalf("%+v %v", p, refs)
	}
	j, err := Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(j, &m); err != nil {
		t.Fatal(err)
	}
	// Every category is present, as an empty list: absence is explicit.
	for _, k := range []string{ItemSubscribers, ItemApplications, ItemCertificates, ItemCorrections, ItemRevocations,
		ItemEmails, ItemProvisions, ItemStaffAccess, ItemInquiries, ItemDisclosureRequests} {
		if v, ok := m[k].([]any); !ok || len(v) != 0 {
			t.Errorf("%s: %v", k, m[k])
		}
	}
	if m["format"] != Format || m["nothing_held"] != true {
		t.Errorf("%v", m)
	}
	h, err := RenderHTML(p)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(h), "<h2>") || !strings.Contains(string(h), nothingJA) {
		t.Errorf("nothing-held summary lists sections or lacks the statement:\n%s", h)
	}
}

// Only emails whose reference matched come back: an email to the email
// reference alone makes the person known by it.
func TestCompileEmailOnly(t *testing.T) {
	src := &fakeSource{emails: []store.EmailLogEntry{{IdempotencyKey: "inquiry/inq_9|inquiry_acknowledged",
		Notice: "inquiry_acknowledged", RecipientRef: "email-bidx:ab", Status: "sent", CreatedAt: t0}}}
	p, refs, err := Compile(context.Background(), src, input())
	if err != nil {
		t.Fatal(err)
	}
	if p.NothingHeld || len(refs) != 1 || refs[0] != "email-bidx:ab" {
		t.Fatalf("refs %v", refs)
	}
}

func TestMarshalAndRender(t *testing.T) {
	p, _, err := Compile(context.Background(), person(), input())
	if err != nil {
		t.Fatal(err)
	}
	// Compile withholds inquiries (they name only an address); the
	// rendering of one is still checked.
	p.Inquiries = []Inquiry{{ID: "inq_1", Kind: store.InquiryKindStopProvision, Body: "止めてください", Status: "answered",
		StopStatus: "stopped", CreatedAt: t0}}
	j, err := Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(string(j), "}\n") || !strings.Contains(string(j), `"organization": "株式会社<テスト>"`) {
		t.Errorf("JSON not indented with HTML left unescaped:\n%s", j)
	}
	if len(DigestOf(j)) != 64 || DigestOf(j) != DigestOf(append([]byte{}, j...)) {
		t.Error("digest")
	}
	h, err := RenderHTML(p)
	if err != nil {
		t.Fatal(err)
	}
	html := string(h)
	for _, w := range []string{
		"<title>保有個人データの開示 / Disclosure of retained personal data — dr_2</title>",
		"受付日時 / Received: 2026-04-04 12:00 JST", // times in JST
		"<h2>加入者情報 / Subscriber records (1)</h2>",
		"<td>株式会社&lt;テスト&gt;</td>", // personal data escaped
		"<td>keyCompromise (1)</td>",
		"<td>contact_phone: 03</td><td>contact_phone: &#43;81 3 1234 5678</td>",
		"<td>stop_provision</td>",
		"<td>2026-04-01 12:00 JST – 2027-04-01 12:00 JST</td>",
		"openssl cms -verify",
	} {
		if !strings.Contains(html, w) {
			t.Errorf("summary lacks %q", w)
		}
	}
	if strings.Count(html, "<h2>") != 10 {
		t.Errorf("%d sections, want 10", strings.Count(html, "<h2>"))
	}
}
