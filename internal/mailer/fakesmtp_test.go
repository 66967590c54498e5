package mailer

import (
	"context"
	"errors"
	"net"
	"net/textproto"
	"strings"
	"sync"
	"testing"
)

// fakeSMTP is a tiny SMTP server whose replies a test chooses, for the
// failures MailDev cannot produce (5xx on RCPT TO, 4xx, 535, 554 after DATA).
type fakeSMTP struct {
	ln net.Listener
	// Replies; empty means success. rcpt gets the address.
	auth    string
	rcpt    func(addr string) string
	dataEnd string
	// hangUpAfterData: close the connection silently after each accepted
	// message, as a server ending an idle client does.
	hangUpAfterData bool

	mu        sync.Mutex
	conns     int      // connections accepted
	delivered []string // recipients of accepted messages
	wg        sync.WaitGroup
}

func newFakeSMTP(t *testing.T) *fakeSMTP {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeSMTP{ln: ln}
	f.wg.Add(1)
	go f.serve()
	t.Cleanup(func() { ln.Close(); f.wg.Wait() })
	return f
}

func (f *fakeSMTP) port() int { return f.ln.Addr().(*net.TCPAddr).Port }

func (f *fakeSMTP) sender(t *testing.T, mod func(*Options)) *Sender {
	t.Helper()
	o := testOptions("127.0.0.1", f.port())
	if mod != nil {
		mod(&o)
	}
	s, err := NewSender(o)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func (f *fakeSMTP) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.delivered)
}

func (f *fakeSMTP) serve() {
	defer f.wg.Done()
	for {
		c, err := f.ln.Accept()
		if err != nil {
			return
		}
		f.mu.Lock()
		f.conns++
		f.mu.Unlock()
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			defer c.Close()
			f.session(textproto.NewConn(c))
		}()
	}
}

func (f *fakeSMTP) session(tc *textproto.Conn) {
	reply := func(def, override string) error {
		if override == "" {
			override = def
		}
		return tc.PrintfLine("%s", override)
	}
	if tc.PrintfLine("220 fake.test ESMTP") != nil {
		return
	}
	var rcpts []string
	for {
		line, err := tc.ReadLine()
		if err != nil {
			return
		}
		verb := strings.ToUpper(strings.Fields(line + " x")[0])
		switch verb {
		case "EHLO":
			err = tc.PrintfLine("250-fake.test\r\n250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n250-AUTH PLAIN LOGIN\r\n250 SMTPUTF8")
		case "HELO":
			err = tc.PrintfLine("250 fake.test")
		case "AUTH":
			err = reply("235 2.7.0 Authentication successful", f.auth)
		case "MAIL":
			rcpts = nil
			err = tc.PrintfLine("250 2.1.0 Ok")
		case "RCPT":
			a := line[strings.Index(line, ":")+1:]
			a = strings.Trim(strings.Fields(a)[0], "<>")
			r := ""
			if f.rcpt != nil {
				r = f.rcpt(a)
			}
			if r == "" {
				rcpts = append(rcpts, a)
			}
			err = reply("250 2.1.5 Ok", r)
		case "DATA":
			if err = tc.PrintfLine("354 End data with <CR><LF>.<CR><LF>"); err != nil {
				return
			}
			if _, err = tc.ReadDotBytes(); err != nil {
				return
			}
			if f.dataEnd == "" {
				f.mu.Lock()
				f.delivered = append(f.delivered, rcpts...)
				f.mu.Unlock()
			}
			err = reply("250 2.0.0 Ok: queued", f.dataEnd)
			if f.hangUpAfterData {
				return
			}
		case "RSET", "NOOP":
			err = tc.PrintfLine("250 2.0.0 Ok")
		case "QUIT":
			_ = tc.PrintfLine("221 2.0.0 Bye")
			return
		default:
			err = tc.PrintfLine("502 5.5.2 Error: command not recognized")
		}
		if err != nil {
			return
		}
	}
}

func testMessage(t testing.TB, to string, key string) Message {
	return Message{To: to, RecipientRef: "ref-" + key, Notice: RevocationDone, Data: samples(t)[RevocationDone].data, IdempotencyKey: key}
}

func TestPermanentRecipientRejection(t *testing.T) {
	t.Parallel()
	f := newFakeSMTP(t)
	f.rcpt = func(a string) string {
		return "550 5.1.1 <" + a + ">: Recipient address rejected: User unknown in virtual mailbox table"
	}
	s := f.sender(t, nil)
	to := "Nobody.Here@example.test"

	_, err := s.Send(context.Background(), testMessage(t, to, "k"))
	var pe *PermanentError
	if !IsPermanent(err) || !errors.As(err, &pe) {
		t.Fatalf("want a permanent error, got %v", err)
	}
	if pe.Code != 550 || pe.Enhanced != "5.1.1" || pe.Command != "RCPT TO" {
		t.Errorf("PermanentError %+v", pe)
	}
	if !strings.Contains(pe.Text, "Recipient address rejected: User unknown in virtual mailbox table") || !strings.Contains(pe.Text, "550") {
		t.Errorf("server text not carried: %q", pe.Text)
	}
	if strings.Contains(strings.ToLower(err.Error()), "nobody.here") {
		t.Errorf("error leaks the address: %v", err)
	}

	// Through the Outbox: the failure is recorded, without the address.
	log := newMemLog()
	_, err = NewOutbox(s, log).Send(context.Background(), testMessage(t, to, "k2"))
	if !IsPermanent(err) {
		t.Fatalf("outbox: %v", err)
	}
	e := log.get("k2")
	if e.sent || len(e.failures) != 1 || !strings.Contains(e.failures[0], "550") || strings.Contains(strings.ToLower(e.failures[0]), "nobody.here") {
		t.Errorf("log entry %+v", e)
	}
	if e.recipientRef != "ref-k2" || e.notice != "revocation_done" {
		t.Errorf("reserve args %+v", e)
	}
}

func TestServerTextKeptVerbatim(t *testing.T) {
	t.Parallel()
	f := newFakeSMTP(t)
	f.rcpt = func(string) string {
		return `553 5.7.1 送信者のドメインは許可されていません "policy"`
	}
	_, err := f.sender(t, nil).Send(context.Background(), testMessage(t, "a@example.test", "k"))
	var pe *PermanentError
	if !errors.As(err, &pe) || pe.Text != `553 5.7.1 送信者のドメインは許可されていません "policy"` {
		t.Fatalf("got %#v (%v)", pe, err)
	}
}

func TestTransientAndSessionFailuresAreRetryable(t *testing.T) {
	t.Parallel()
	cases := map[string]struct {
		setup func(*fakeSMTP)
		opts  func(*Options)
		want  string
	}{
		"451 on RCPT": {setup: func(f *fakeSMTP) {
			f.rcpt = func(string) string { return "451 4.3.0 Temporary lookup failure" }
		}, want: "451 4.3.0 Temporary lookup failure"},
		"421 at end of DATA": {setup: func(f *fakeSMTP) { f.dataEnd = "421 4.3.2 Service shutting down" }, want: "421"},
		"535 on AUTH": {setup: func(f *fakeSMTP) { f.auth = "535 5.7.8 Error: authentication failed" },
			opts: func(o *Options) { o.Username, o.Password = "certdesk", "wrong" }, want: "535 5.7.8"},
		"no STARTTLS under mandatory": {setup: func(*fakeSMTP) {}, opts: func(o *Options) { o.TLS = TLSMandatory }, want: "STARTTLS"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			f := newFakeSMTP(t)
			c.setup(f)
			_, err := f.sender(t, c.opts).Send(context.Background(), testMessage(t, "a@example.test", "k"))
			if err == nil || IsPermanent(err) || !strings.Contains(err.Error(), c.want) {
				t.Errorf("want a retryable error mentioning %q, got %v", c.want, err)
			}
		})
	}
	t.Run("connection refused", func(t *testing.T) {
		t.Parallel()
		ln, _ := net.Listen("tcp", "127.0.0.1:0")
		port := ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		s, _ := NewSender(testOptions("127.0.0.1", port))
		_, err := s.Send(context.Background(), testMessage(t, "a@example.test", "k"))
		if err == nil || IsPermanent(err) || !strings.Contains(err.Error(), "refused") {
			t.Errorf("want a retryable refusal, got %v", err)
		}
	})
}

func TestPermanentAtEndOfData(t *testing.T) {
	t.Parallel()
	f := newFakeSMTP(t)
	f.dataEnd = "554 5.7.1 Message rejected as spam"
	_, err := f.sender(t, nil).Send(context.Background(), testMessage(t, "a@example.test", "k"))
	var pe *PermanentError
	if !errors.As(err, &pe) || pe.Code != 554 || pe.Command != "end of DATA" || !strings.Contains(pe.Text, "Message rejected as spam") {
		t.Fatalf("got %v", err)
	}
}

func TestAuthPlainSucceeds(t *testing.T) {
	t.Parallel()
	f := newFakeSMTP(t)
	s := f.sender(t, func(o *Options) { o.Username, o.Password = "certdesk", "secret" })
	if _, err := s.Send(context.Background(), testMessage(t, "a@example.test", "k")); err != nil {
		t.Fatal(err)
	}
	if f.count() != 1 {
		t.Errorf("%d delivered", f.count())
	}
}

func TestInvalidMessagesArePermanent(t *testing.T) {
	t.Parallel()
	f := newFakeSMTP(t)
	s := f.sender(t, nil)
	for name, m := range map[string]Message{
		"no recipient": {Notice: RevocationDone, Data: samples(t)[RevocationDone].data},
		"bad address":  {To: "not-an-address", Notice: RevocationDone, Data: samples(t)[RevocationDone].data},
		"wrong data":   {To: "a@example.test", Notice: RevocationDone, Data: DisclosureNothingData{RequestID: "x"}},
		"bad attach":   {To: "a@example.test", Notice: RevocationDone, Data: samples(t)[RevocationDone].data, Attachments: []Attachment{{Name: "../x"}}},
	} {
		_, err := s.Send(context.Background(), m)
		if !IsPermanent(err) || !errors.Is(err, ErrBadData) {
			t.Errorf("%s: %v", name, err)
		}
	}
	// The Outbox needs a key and reserves nothing for an invalid message.
	log := newMemLog()
	m := testMessage(t, "a@example.test", "")
	if _, err := NewOutbox(s, log).Send(context.Background(), m); !IsPermanent(err) || len(log.entries) != 0 {
		t.Errorf("no key: %v, %d entries", err, len(log.entries))
	}
	if f.count() != 0 {
		t.Errorf("%d delivered", f.count())
	}
}

func TestBulkContinuesPastPermanentFailure(t *testing.T) {
	t.Parallel()
	f := newFakeSMTP(t)
	f.rcpt = func(a string) string {
		if strings.HasPrefix(a, "bounce") {
			return "550 5.1.1 User unknown"
		}
		return ""
	}
	var msgs []Message
	for i := range 20 {
		to := "ok" + string(rune('a'+i)) + "@example.test"
		if i == 7 {
			to = "bounce@example.test"
		}
		msgs = append(msgs, testMessage(t, to, Key("mass-revocation/x", RevocationDone, string(rune('a'+i)))))
	}
	msgs[12].Data = nil // invalid: cannot be rendered
	log := newMemLog()
	var last int
	res, err := NewOutbox(f.sender(t, nil), log).SendBulk(context.Background(), msgs, BulkOptions{BatchSize: 5, Progress: func(d int) { last = d }})
	if err != nil {
		t.Fatal(err)
	}
	if res.Done != 20 || last != 20 || res.Sent != 18 || len(res.Failures) != 2 || res.Failures[0].Index != 7 || res.Failures[1].Index != 12 {
		t.Fatalf("result %+v (last progress %d)", res, last)
	}
	if !IsPermanent(res.Failures[0].Err) || !IsPermanent(res.Failures[1].Err) {
		t.Errorf("failures %v", res.Failures)
	}
	if f.count() != 18 {
		t.Errorf("%d delivered", f.count())
	}
}

// Single sends reuse one connection; a connection the server dropped while
// idle is replaced without failing the send or delivering twice.
func TestSendReusesConnections(t *testing.T) {
	ctx := context.Background()
	f := newFakeSMTP(t)
	s := f.sender(t, nil)
	defer s.Close()
	for i := 0; i < 5; i++ {
		if _, err := s.Send(ctx, testMessage(t, "reuse@example.jp", "reuse-"+string(rune('a'+i)))); err != nil {
			t.Fatal(err)
		}
	}
	f.mu.Lock()
	conns := f.conns
	f.mu.Unlock()
	if conns != 1 || f.count() != 5 {
		t.Fatalf("%d connections for %d delivered messages, want 1 for 5", conns, f.count())
	}

	g := newFakeSMTP(t)
	g.hangUpAfterData = true
	s2 := g.sender(t, nil)
	defer s2.Close()
	for i := 0; i < 3; i++ {
		if _, err := s2.Send(ctx, testMessage(t, "dropped@example.jp", "drop-"+string(rune('a'+i)))); err != nil {
			t.Fatalf("send %d after the server dropped the idle connection: %v", i, err)
		}
	}
	g.mu.Lock()
	conns = g.conns
	g.mu.Unlock()
	if g.count() != 3 || conns != 3 {
		t.Fatalf("%d delivered over %d connections, want 3 over 3", g.count(), conns)
	}
}
