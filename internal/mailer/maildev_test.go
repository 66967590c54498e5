package mailer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"certdesk/internal/testenv"
)

// Integration tests against MailDev (testenv). Every test uses its own
// recipient addresses, so the shared MailDev serves them in parallel.

func header(e testenv.Email, name string) string {
	if v, ok := e.Headers[name].(string); ok {
		return v
	}
	return ""
}

func TestTemplatesArriveInMailDev(t *testing.T) {
	t.Parallel()
	md := testenv.SharedMailDev(t)
	s := mailDevSender(t, md)
	for n, sample := range samples(t) {
		t.Run(string(n), func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			to := addr(t, "rcpt")
			r, err := Render(n, sample.data)
			if err != nil {
				t.Fatal(err)
			}
			id, err := s.Send(ctx, Message{To: to, Notice: n, Data: sample.data, IdempotencyKey: Key("test/"+to, n)})
			if err != nil {
				t.Fatal(err)
			}
			got := md.WaitFor(t, to, 1, 20*time.Second)
			if len(got) != 1 {
				t.Fatalf("%d messages", len(got))
			}
			e := got[0]
			if e.Subject != r.Subject {
				t.Errorf("subject %q, want %q", e.Subject, r.Subject)
			}
			if len(e.To) != 1 || e.To[0].Address != to {
				t.Errorf("to %+v", e.To)
			}
			if len(e.From) != 1 || e.From[0].Address != "noreply@certdesk.example" || len(e.ReplyTo) != 1 || e.ReplyTo[0].Address != "support@certdesk.example" {
				t.Errorf("from %+v reply-to %+v", e.From, e.ReplyTo)
			}
			// The Japanese survives the round trip: the decoded text part is
			// the rendered text, and the decoded HTML has the same sentences.
			if strings.TrimSpace(e.Text) != strings.TrimSpace(r.Text) {
				t.Errorf("text changed in transit:\n%s\n---- want ----\n%s", e.Text, r.Text)
			}
			if !strings.Contains(e.Text, sample.ja) || !strings.Contains(e.HTML, sample.ja) || !strings.Contains(e.HTML, sample.en) {
				t.Errorf("sentences missing from decoded parts")
			}
			if header(e, "message-id") != id || header(e, "date") == "" || header(e, "auto-submitted") != "auto-generated" {
				t.Errorf("headers %v (id %s)", e.Headers, id)
			}

			src, err := md.Source(ctx, e.ID)
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range src {
				if c >= 0x80 {
					t.Fatalf("raw message is not 7-bit: headers and bodies must be encoded")
				}
			}
			hdr, _, _ := bytes.Cut(src, []byte("\r\n\r\n"))
			for _, want := range []string{"Subject: =?UTF-8?", "+0900", "Message-ID: " + id} {
				if !bytes.Contains(bytes.ReplaceAll(hdr, []byte("\r\n "), []byte(" ")), []byte(want)) {
					t.Errorf("header lacks %q:\n%s", want, hdr)
				}
			}
			for _, want := range []string{"multipart/alternative", "Content-Type: text/plain; charset=UTF-8", "Content-Type: text/html; charset=UTF-8"} {
				if !bytes.Contains(src, []byte(want)) {
					t.Errorf("source lacks %q", want)
				}
			}
			if n != ReviewIssued {
				if len(e.Attachments) != 0 {
					t.Errorf("unexpected attachments %+v", e.Attachments)
				}
				return
			}
			if len(e.Attachments) != 1 || e.Attachments[0].FileName != "0A1B2C3D.pem" || e.Attachments[0].ContentType != "application/x-pem-file" {
				t.Fatalf("attachments %+v", e.Attachments)
			}
			if !bytes.Contains(src, []byte("multipart/mixed")) {
				t.Errorf("attachment not in multipart/mixed")
			}
			b, err := md.Attachment(ctx, e.ID, e.Attachments[0].Generated)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(b, certPEM(t)) {
				t.Errorf("attachment differs from the certificate PEM:\n%s", b)
			}
		})
	}
}

func TestGeneralAttachments(t *testing.T) {
	t.Parallel()
	md := testenv.SharedMailDev(t)
	to := addr(t, "a")
	data := bytes.Repeat([]byte{0, 1, 2, 0xff}, 5000)
	_, err := mailDevSender(t, md).Send(context.Background(), Message{To: to, Notice: DisclosureNothing, Data: DisclosureNothingData{RequestID: "D"},
		Attachments: []Attachment{{Name: "evidence.bin", Data: data}, {Name: "note.txt", ContentType: "text/plain", Data: []byte("メモ")}}})
	if err != nil {
		t.Fatal(err)
	}
	e := md.WaitFor(t, to, 1, 20*time.Second)[0]
	if len(e.Attachments) != 2 {
		t.Fatalf("attachments %+v", e.Attachments)
	}
	for _, a := range e.Attachments {
		b, err := md.Attachment(context.Background(), e.ID, a.Generated)
		if err != nil {
			t.Fatal(err)
		}
		switch a.FileName {
		case "evidence.bin":
			if a.ContentType != "application/octet-stream" || !bytes.Equal(b, data) {
				t.Errorf("evidence.bin: %s, %d bytes", a.ContentType, len(b))
			}
		case "note.txt":
			if string(b) != "メモ" {
				t.Errorf("note.txt %q", b)
			}
		default:
			t.Errorf("unexpected %q", a.FileName)
		}
	}
}

func TestMandatoryTLSWithoutSTARTTLS(t *testing.T) {
	t.Parallel()
	md := testenv.SharedMailDev(t)
	o := testOptions(md.SMTPHost(), md.SMTPPort)
	o.TLS = TLSMandatory
	s, err := NewSender(o)
	if err != nil {
		t.Fatal(err)
	}
	to := addr(t, "x")
	_, err = s.Send(context.Background(), testMessage(t, to, "k"))
	if err == nil || IsPermanent(err) || !strings.Contains(err.Error(), "STARTTLS") {
		t.Fatalf("want a retryable STARTTLS error, got %v", err)
	}
	// Opportunistic falls back to plain text with MailDev.
	o.TLS = TLSOpportunistic
	s, _ = NewSender(o)
	if _, err := s.Send(context.Background(), testMessage(t, to, "k")); err != nil {
		t.Fatal(err)
	}
	md.WaitFor(t, to, 1, 20*time.Second)
}

func TestOutboxRetryAfterSuccessSendsOnce(t *testing.T) {
	t.Parallel()
	md := testenv.SharedMailDev(t)
	ob := NewOutbox(mailDevSender(t, md), newMemLog())
	to := addr(t, "x")
	m := testMessage(t, to, Key("revocation/0A1B2C3D", RevocationDone))
	r1, err := ob.Send(context.Background(), m)
	if err != nil || r1.AlreadySent {
		t.Fatal(r1, err)
	}
	r2, err := ob.Send(context.Background(), m) // the activity retried after success
	if err != nil || !r2.AlreadySent || r2.MessageID != r1.MessageID {
		t.Fatal(r2, err)
	}
	md.WaitFor(t, to, 1, 20*time.Second)
	time.Sleep(300 * time.Millisecond)
	if got, _ := md.MessagesTo(context.Background(), to); len(got) != 1 {
		t.Fatalf("%d messages, want 1", len(got))
	}
}

// The documented at-least-once window: the message is accepted but the log
// cannot record it; the retry sends again, with the same Message-ID.
func TestOutboxUnrecordedSendRepeatsWithSameMessageID(t *testing.T) {
	t.Parallel()
	md := testenv.SharedMailDev(t)
	log := newMemLog()
	log.failMarkSent = true
	ob := NewOutbox(mailDevSender(t, md), log)
	to := addr(t, "x")
	m := testMessage(t, to, Key("revocation/0A1B2C3D", RevocationDone))
	if _, err := ob.Send(context.Background(), m); err == nil || IsPermanent(err) {
		t.Fatalf("want a retryable error when the log fails, got %v", err)
	}
	log.failMarkSent = false
	if _, err := ob.Send(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	got := md.WaitFor(t, to, 2, 20*time.Second)
	if header(got[0], "message-id") != header(got[1], "message-id") || header(got[0], "message-id") != ob.Sender().MessageID(m.IdempotencyKey) {
		t.Errorf("Message-IDs differ: %q %q", header(got[0], "message-id"), header(got[1], "message-id"))
	}
}

func TestOutboxSMTPDownThenBack(t *testing.T) {
	t.Parallel()
	md := testenv.NewMailDev(t)
	log := newMemLog()
	ob := NewOutbox(mailDevSender(t, md), log)
	to := addr(t, "x")
	m := testMessage(t, to, Key("revocation/0A1B2C3D", RevocationDone))

	md.Stop()
	_, err := ob.Send(context.Background(), m)
	if err == nil || IsPermanent(err) {
		t.Fatalf("want a retryable error with SMTP down, got %v", err)
	}
	if e := log.get(m.IdempotencyKey); e.sent || len(e.failures) != 1 {
		t.Errorf("log %+v", e)
	}
	if err := md.Start(); err != nil {
		t.Fatal(err)
	}
	r, err := ob.Send(context.Background(), m)
	if err != nil || r.AlreadySent {
		t.Fatal(r, err)
	}
	if r, err := ob.Send(context.Background(), m); err != nil || !r.AlreadySent {
		t.Fatal(r, err)
	}
	md.WaitFor(t, to, 1, 20*time.Second)
	time.Sleep(300 * time.Millisecond)
	if got, _ := md.MessagesTo(context.Background(), to); len(got) != 1 {
		t.Fatalf("%d messages, want 1", len(got))
	}
}

// bulkMessages makes n policy notices to n distinct addresses at domain.
func bulkMessages(t testing.TB, n int, domain string) []Message {
	data := PolicyRevisionData{Version: "2.0", EffectiveDate: t0.AddDate(0, 1, 0), URL: "https://certdesk.example/repository/handling-2.0.html"}
	msgs := make([]Message, n)
	for i := range msgs {
		msgs[i] = Message{
			To:             fmt.Sprintf("subscriber-%05d@%s", i, domain),
			RecipientRef:   fmt.Sprintf("sub-%d", i),
			Notice:         PolicyRevision,
			Data:           data,
			IdempotencyKey: Key("policy-notice/2.0", PolicyRevision, fmt.Sprint(i)),
		}
	}
	return msgs
}

// arrived waits until MailDev holds want messages to domain and returns the
// number per recipient and per Message-ID.
func arrived(t testing.TB, md *testenv.MailDev, domain string, want int, timeout time.Duration) (byRcpt, byID map[string]int) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		all, err := md.Messages(context.Background())
		byRcpt, byID = map[string]int{}, map[string]int{}
		n := 0
		for _, e := range all {
			if len(e.To) == 1 && strings.HasSuffix(e.To[0].Address, "@"+domain) {
				n++
				byRcpt[e.To[0].Address]++
				byID[header(e, "message-id")]++
			}
		}
		if err == nil && n >= want {
			return byRcpt, byID
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d messages arrived within %s (last error %v)", n, want, timeout, err)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func checkExactlyOnce(t testing.TB, msgs []Message, s *Sender, byRcpt, byID map[string]int) {
	t.Helper()
	if len(byRcpt) != len(msgs) || len(byID) != len(msgs) {
		t.Errorf("%d recipients and %d Message-IDs, want %d", len(byRcpt), len(byID), len(msgs))
	}
	for _, m := range msgs {
		if byRcpt[m.To] != 1 || byID[s.MessageID(m.IdempotencyKey)] != 1 {
			t.Fatalf("%s: %d messages, Message-ID seen %d times", m.To, byRcpt[m.To], byID[s.MessageID(m.IdempotencyKey)])
		}
	}
}

func TestBulk2000ExactlyOnce(t *testing.T) {
	t.Parallel()
	md := testenv.SharedMailDev(t)
	domain := "bulk-" + uniq() + ".test"
	msgs := bulkMessages(t, 2000, domain)
	log := newMemLog()
	ob := NewOutbox(mailDevSender(t, md), log)
	last, monotonic := 0, true
	start := time.Now()
	res, err := ob.SendBulk(context.Background(), msgs, BulkOptions{BatchSize: 250, Connections: 2, Progress: func(d int) {
		monotonic = monotonic && d > last
		last = d
	}})
	elapsed := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	if res.Done != 2000 || res.Sent != 2000 || res.Skipped != 0 || len(res.Failures) != 0 || last != 2000 || !monotonic {
		t.Fatalf("result %+v, last progress %d, monotonic %v", res, last, monotonic)
	}
	t.Logf("2000 messages sent in %s (%.0f msgs/s, 2 connections, other tests running)", elapsed.Round(time.Millisecond), 2000/elapsed.Seconds())
	byRcpt, byID := arrived(t, md, domain, 2000, 60*time.Second)
	checkExactlyOnce(t, msgs, ob.Sender(), byRcpt, byID)
	if e := log.get(msgs[1999].IdempotencyKey); !e.sent || e.messageID != ob.Sender().MessageID(msgs[1999].IdempotencyKey) || e.recipientRef != "sub-1999" {
		t.Errorf("log entry %+v", e)
	}
	// A rerun of the whole batch (the activity retried from scratch) sends nothing.
	res, err = ob.SendBulk(context.Background(), msgs, BulkOptions{})
	if err != nil || res.Skipped != 2000 || res.Sent != 0 {
		t.Fatalf("rerun: %+v %v", res, err)
	}
}

func TestBulkResumeAfterInterruption(t *testing.T) {
	t.Parallel()
	for _, conns := range []int{1, 3} {
		t.Run(fmt.Sprintf("connections=%d", conns), func(t *testing.T) {
			t.Parallel()
			md := testenv.SharedMailDev(t)
			domain := "resume-" + uniq() + ".test"
			msgs := bulkMessages(t, 300, domain)
			log := newMemLog()
			ob := NewOutbox(mailDevSender(t, md), log)

			// First attempt: the activity is cancelled once 120 messages are
			// handled. Messages in flight complete; the heartbeat is the prefix.
			ctx, cancel := context.WithCancel(context.Background())
			heartbeat, cancelledAt := 0, 0
			res, err := ob.SendBulk(ctx, msgs, BulkOptions{BatchSize: 50, Connections: conns, RatePerSecond: 2000, Progress: func(d int) {
				heartbeat = d
				if d >= 120 && cancelledAt == 0 {
					// Done is a prefix: with several connections it can
					// jump past 120 when earlier messages finish last.
					cancelledAt = d
					cancel()
				}
			}})
			// After the cancel only messages already in flight complete, and
			// they can extend the prefix further than one per connection
			// (others may have finished out of order), so the bound is the end.
			if !errors.Is(err, context.Canceled) || res.Done != heartbeat || cancelledAt < 120 || heartbeat < cancelledAt || res.Done == 300 {
				t.Fatalf("interrupted run: %+v, heartbeat %d (cancelled at %d), err %v", res, heartbeat, cancelledAt, err)
			}
			first := res.Sent
			// The retry resumes from the heartbeat details.
			res, err = ob.SendBulk(context.Background(), msgs, BulkOptions{BatchSize: 50, Connections: conns, StartAt: heartbeat, Progress: func(d int) { heartbeat = d }})
			if err != nil || res.Done != 300 || heartbeat != 300 || first+res.Sent != 300 {
				t.Fatalf("resumed run: %+v (first run sent %d), heartbeat %d, err %v", res, first, heartbeat, err)
			}
			// A retry from a stale heartbeat (progress lagging behind the log)
			// sends nothing twice either.
			res, err = ob.SendBulk(context.Background(), msgs, BulkOptions{StartAt: 100, Connections: conns})
			if err != nil || res.Sent != 0 || res.Skipped != 200 {
				t.Fatalf("stale restart: %+v %v", res, err)
			}
			arrived(t, md, domain, 300, 30*time.Second)
			time.Sleep(300 * time.Millisecond) // anything extra would show now
			byRcpt, byID := arrived(t, md, domain, 300, 30*time.Second)
			checkExactlyOnce(t, msgs, ob.Sender(), byRcpt, byID)
		})
	}
}

func TestBulkReconnectsWhenServerRestarts(t *testing.T) {
	t.Parallel()
	md := testenv.NewMailDev(t)
	domain := "reconnect-" + uniq() + ".test"
	msgs := bulkMessages(t, 60, domain)
	ob := NewOutbox(mailDevSender(t, md), newMemLog())
	var once sync.Once
	// The rate limit leaves the connection idle between messages, where the
	// restart breaks it; Attempts covers MailDev's start-up time.
	res, err := ob.SendBulk(context.Background(), msgs, BulkOptions{BatchSize: 1000, RatePerSecond: 30, Attempts: 8, Progress: func(d int) {
		if d == 20 {
			once.Do(func() {
				md.Stop()
				if err := md.Start(); err != nil {
					t.Error(err)
				}
			})
		}
	}})
	if err != nil || res.Sent != 60 {
		t.Fatalf("%+v %v", res, err)
	}
	// The restarted MailDev starts empty: it holds the messages after the
	// restart (message 20 may have gone to the old one), each once.
	arrived(t, md, domain, 39, 30*time.Second)
	time.Sleep(300 * time.Millisecond)
	byRcpt, byID := arrived(t, md, domain, 39, 30*time.Second)
	for i, m := range msgs {
		n := byRcpt[m.To]
		if (i < 20 && n != 0) || (i > 20 && n != 1) || n > 1 {
			t.Errorf("message %d arrived %d times", i, n)
		}
	}
	for id, n := range byID {
		if n != 1 {
			t.Errorf("Message-ID %s seen %d times", id, n)
		}
	}
}

func TestRateLimit(t *testing.T) {
	t.Parallel()
	md := testenv.SharedMailDev(t)
	domain := "rate-" + uniq() + ".test"
	msgs := bulkMessages(t, 30, domain)
	start := time.Now()
	res, err := NewOutbox(mailDevSender(t, md), newMemLog()).SendBulk(context.Background(), msgs, BulkOptions{RatePerSecond: 50})
	if err != nil || res.Sent != 30 {
		t.Fatal(res, err)
	}
	if el := time.Since(start); el < 500*time.Millisecond {
		t.Errorf("30 messages at 50/s took %s", el)
	}
}

// BenchmarkBulkToMailDev measures SendBulk (with an in-memory log) to a
// private MailDev, with one and with four SMTP connections:
// go test -run '^$' -bench BulkToMailDev -benchtime 2000x ./internal/mailer
func BenchmarkBulkToMailDev(b *testing.B) {
	for _, conns := range []int{1, 4} {
		b.Run(fmt.Sprintf("connections=%d", conns), func(b *testing.B) {
			md := testenv.NewMailDev(b)
			msgs := bulkMessages(b, b.N, "bench-"+uniq()+".test")
			ob := NewOutbox(mailDevSender(b, md), newMemLog())
			b.ResetTimer()
			res, err := ob.SendBulk(context.Background(), msgs, BulkOptions{BatchSize: 200, Connections: conns})
			b.StopTimer()
			if err != nil || res.Sent != b.N {
				b.Fatal(res, err)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}
