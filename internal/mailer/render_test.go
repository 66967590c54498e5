package mailer

import (
	"bytes"
	"encoding/json"
	"errors"
	"io/fs"
	"reflect"
	"strings"
	"testing"

	"certdesk/internal/product"
)

func TestEveryNoticeHasSampleAndTemplates(t *testing.T) {
	ss := samples(t)
	if len(ss) != len(Notices()) {
		t.Fatalf("%d samples for %d notices", len(ss), len(Notices()))
	}
	files, _ := fs.Glob(templateFS, "templates/*.tmpl")
	want := 2 + 3*len(Notices())
	if len(files) != want {
		t.Errorf("%d template files, want %d (3 per notice + 2 shared): %v", len(files), want, files)
	}
	for _, n := range Notices() {
		for _, part := range []string{"subject", "txt", "html"} {
			if _, err := fs.Stat(templateFS, "templates/"+string(n)+"."+part+".tmpl"); err != nil {
				t.Errorf("%s: %v", n, err)
			}
		}
	}
}

func TestRenderAllNotices(t *testing.T) {
	for n, s := range samples(t) {
		t.Run(string(n), func(t *testing.T) {
			r, err := Render(n, s.data)
			if err != nil {
				t.Fatal(err)
			}
			// Pointer data is accepted too.
			p := reflect.New(reflect.TypeOf(s.data))
			p.Elem().Set(reflect.ValueOf(s.data))
			if r2, err := Render(n, p.Interface()); err != nil || r2 != r {
				t.Fatalf("render via pointer: %v", err)
			}
			if !strings.HasPrefix(r.Subject, "【CertDesk") || !strings.Contains(r.Subject, "/ ") || strings.ContainsAny(r.Subject, "\r\n") {
				t.Errorf("subject %q", r.Subject)
			}
			ja, en := strings.Index(r.Subject, "【"), strings.Index(r.Subject, "/ ")
			if ja > en {
				t.Errorf("subject not Japanese first: %q", r.Subject)
			}
			for part, body := range map[string]string{"text": r.Text, "html": r.HTML} {
				jaAt, enAt := strings.Index(body, s.ja), strings.Index(body, s.en)
				if jaAt < 0 || enAt < 0 {
					t.Fatalf("%s lacks the Japanese (%d) or English (%d) sentence:\n%s", part, jaAt, enAt, body)
				}
				if jaAt > enAt {
					t.Errorf("%s: English before Japanese", part)
				}
				for _, bad := range []string{"<no value>", "%!", "0001-01-01", "map[", "{{"} {
					if strings.Contains(body, bad) {
						t.Errorf("%s contains %q:\n%s", part, bad, body)
					}
				}
			}
			if !strings.Contains(r.HTML, `<div lang="ja">`) || !strings.Contains(r.HTML, `<div lang="en">`) || !strings.HasSuffix(r.HTML, "</html>\n") {
				t.Errorf("html structure:\n%s", r.HTML)
			}
			if strings.Contains(r.Text, "\n\n\n") {
				t.Errorf("text has runs of blank lines")
			}
		})
	}
}

func TestRenderTimesInJSTAndUTC(t *testing.T) {
	r, err := Render(ApplicationReceived, ApplicationReceivedData{ApplicationID: "A", Product: product.ServerDV, ReceivedAt: t0})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"2026年10月5日（月）14:03（日本時間）／2026-10-05 05:03 UTC", "Mon 5 Oct 2026 14:03 JST (2026-10-05 05:03 UTC)", "ご担当者様", "Dear Customer,"} {
		if !strings.Contains(r.Text, want) || !strings.Contains(r.HTML, want) {
			t.Errorf("missing %q", want)
		}
	}
	// A UTC time late in the evening is the next day in Japan.
	late := t0.Add(12 * 60 * 60 * 1e9) // 17:03 UTC = 02:03 JST Tuesday
	r, _ = Render(ApplicationReceived, ApplicationReceivedData{ApplicationID: "A", Product: product.ServerDV, ReceivedAt: late})
	if !strings.Contains(r.Text, "2026年10月6日（火）02:03（日本時間）／2026-10-05 17:03 UTC") {
		t.Errorf("late time:\n%s", r.Text)
	}
}

func TestRenderWrongData(t *testing.T) {
	_, err := Render(ReviewIssued, ReviewRejectedData{ApplicationID: "x", Reason: "y"})
	if !errors.Is(err, ErrBadData) || !strings.Contains(err.Error(), "mailer.ReviewIssuedData") || !strings.Contains(err.Error(), "mailer.ReviewRejectedData") {
		t.Errorf("wrong type: %v", err)
	}
	if _, err := Render(ReviewIssued, nil); !errors.Is(err, ErrBadData) || !strings.Contains(err.Error(), "got nil") {
		t.Errorf("nil: %v", err)
	}
	if _, err := Render("no_such_notice", struct{}{}); !errors.Is(err, ErrBadData) || !strings.Contains(err.Error(), "unknown notice") {
		t.Errorf("unknown: %v", err)
	}
	cases := map[string]struct {
		n    Notice
		data any
		want string
	}{
		"code":     {VerificationCode, VerificationCodeData{Code: "12345a", ExpiryMinutes: 10}, "Code must be 6 digits"},
		"expiry":   {VerificationCode, VerificationCodeData{Code: "123456"}, "ExpiryMinutes"},
		"pem":      {ReviewIssued, ReviewIssuedData{ApplicationID: "a", Product: product.ServerDV, Serial: "01", NotAfter: t0, CertificatePEM: []byte("nope")}, "CertificatePEM"},
		"serial":   {RevocationDone, RevocationDoneData{Serial: "xyz", RevokedAt: t0}, "hex serial"},
		"reason":   {RevocationDone, RevocationDoneData{Serial: "01", Reason: 6, RevokedAt: t0}, "revocation reason 6 is not allowed"},
		"ground":   {DisclosureRefused, DisclosureRefusedData{RequestID: "r", Ground: 4}, "Art. 33(2)"},
		"url":      {DisclosureReady, DisclosureReadyData{RequestID: "r", DownloadURL: "javascript:alert(1)", ExpiresAt: t0}, "DownloadURL must be an http(s) URL"},
		"fields":   {CorrectionApplied, CorrectionAppliedData{CorrectionID: "c", Serial: "01", AppliedAt: t0}, "ChangedFields"},
		"product":  {ApplicationReceived, ApplicationReceivedData{ApplicationID: "a", Product: "server-ev", ReceivedAt: t0}, `Product "server-ev"`},
		"staffurl": {StaffReminder, StaffCaseData{CaseType: "x", CaseID: "y", WorkflowID: "z", DueAt: t0, Namespace: "default"}, "TemporalUIURL"},
	}
	for name, c := range cases {
		_, err := Render(c.n, c.data)
		if !errors.Is(err, ErrBadData) || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestRenderEscapesFreeTextInHTML(t *testing.T) {
	r, err := Render(InquiryAnswered, InquiryAnsweredData{InquiryID: "I-1", Answer: `<script>alert("x")</script> & 回答`})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(r.HTML, "<script>") || !strings.Contains(r.HTML, "&lt;script&gt;") {
		t.Errorf("html not escaped:\n%s", r.HTML)
	}
	if !strings.Contains(r.Text, `<script>alert("x")</script> & 回答`) {
		t.Errorf("text altered:\n%s", r.Text)
	}
}

func TestCorrectionNamesFieldsNotValues(t *testing.T) {
	r, err := Render(CorrectionApplied, CorrectionAppliedData{CorrectionID: "C", Serial: "01", AppliedAt: t0,
		ChangedFields: []string{"contact_phone", "postal_address", "custom_field"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"ご担当者電話番号", "住所", "contact telephone number", "postal address", "custom_field"} {
		if !strings.Contains(r.Text, want) || !strings.Contains(r.HTML, want) {
			t.Errorf("missing label %q", want)
		}
	}
}

func TestStaffLink(t *testing.T) {
	got := WorkflowURL("http://127.0.0.1:8233/", "default", "revocation/0A1B")
	if want := "http://127.0.0.1:8233/namespaces/default/workflows/revocation%2F0A1B"; got != want {
		t.Errorf("WorkflowURL = %q, want %q", got, want)
	}
	d := samples(t)[StaffEscalation].data.(StaffCaseData)
	got = d.URL()
	r, err := Render(StaffEscalation, d)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(r.Text, got) || !strings.Contains(r.HTML, `href="`+got+`"`) {
		t.Errorf("link missing:\n%s\n%s", r.Text, r.HTML)
	}
}

func TestMessageJSONRoundTrip(t *testing.T) {
	for n, s := range samples(t) {
		m := Message{To: "a@example.test", RecipientRef: "sub-1", Notice: n, Data: s.data, IdempotencyKey: Key("wf/1", n),
			Attachments: []Attachment{{Name: "x.txt", ContentType: "text/plain", Data: []byte("hi")}}}
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		var back Message
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("%s: %v", n, err)
		}
		r1, err1 := Render(n, m.Data)
		r2, err2 := Render(back.Notice, back.Data)
		if err1 != nil || err2 != nil || r1 != r2 {
			t.Errorf("%s: round trip changed the rendering (%v, %v)", n, err1, err2)
		}
		if back.To != m.To || back.IdempotencyKey != m.IdempotencyKey || len(back.Attachments) != 1 || !bytes.Equal(back.Attachments[0].Data, []byte("hi")) {
			t.Errorf("%s: fields lost: %+v", n, back)
		}
	}
	var m Message
	if err := json.Unmarshal([]byte(`{"Notice":"nope","Data":{}}`), &m); !errors.Is(err, ErrBadData) {
		t.Errorf("unknown notice: %v", err)
	}
}

func TestMessageIDDeterministic(t *testing.T) {
	s, err := NewSender(testOptions("127.0.0.1", 25))
	if err != nil {
		t.Fatal(err)
	}
	k := Key("revocation/0A1B", RevocationDone)
	if k != "revocation/0A1B|revocation_done" {
		t.Errorf("Key = %q", k)
	}
	id := s.MessageID(k)
	if id != s.MessageID(k) || id == s.MessageID(k+"x") || !strings.HasSuffix(id, "@certdesk.example>") || len(id) != len("<@certdesk.example>")+32 {
		t.Errorf("MessageID %q", id)
	}
	if s.MessageID("") == s.MessageID("") {
		t.Error("random Message-IDs repeat")
	}
}

func TestNewSenderValidates(t *testing.T) {
	for name, mod := range map[string]func(*Options){
		"host":    func(o *Options) { o.Host = "" },
		"port":    func(o *Options) { o.Port = 0 },
		"tls":     func(o *Options) { o.TLS = "sometimes" },
		"from":    func(o *Options) { o.From = "not an address" },
		"replyto": func(o *Options) { o.ReplyTo = "@@" },
	} {
		o := testOptions("127.0.0.1", 25)
		mod(&o)
		if _, err := NewSender(o); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestRedact(t *testing.T) {
	got := redact("550 5.1.1 <Bob@Example.test>: unknown; bob@example.TEST again", "bob@example.test")
	if got != "550 5.1.1 <[recipient]>: unknown; [recipient] again" {
		t.Errorf("redact = %q", got)
	}
}
