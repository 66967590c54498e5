package mailer

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	netmail "net/mail"
	"strconv"
	"strings"
	"sync"
	"time"

	mail "github.com/wneessen/go-mail"

	"certdesk/internal/config"
)

// TLSPolicy is how the connection to the SMTP server is protected (STARTTLS).
type TLSPolicy string

// TLS policies, as in CERTDESK_SMTP_TLS.
const (
	// TLSMandatory refuses to send unless the server offers STARTTLS and the
	// handshake (with certificate verification) succeeds.
	TLSMandatory TLSPolicy = "mandatory"
	// TLSOpportunistic uses STARTTLS when offered and sends in clear otherwise.
	TLSOpportunistic TLSPolicy = "opportunistic"
	// TLSNone never uses STARTTLS.
	TLSNone TLSPolicy = "none"
)

// Options configure a Sender.
type Options struct {
	Host string
	Port int
	TLS  TLSPolicy
	// TLSConfig overrides the TLS client configuration (e.g. extra roots);
	// nil: system roots, ServerName = Host, TLS 1.2 or later.
	TLSConfig *tls.Config

	// Username, when not empty, turns on SMTP AUTH: PLAIN if the server
	// offers it, else LOGIN, else the strongest mechanism go-mail supports.
	// PLAIN and LOGIN are refused over an unencrypted connection except to
	// localhost, so a password is never sent in clear over the network.
	Username string
	Password string

	From    string // From header, e.g. "CertDesk <noreply@certdesk.example>"
	ReplyTo string // optional Reply-To address

	DialTimeout    time.Duration // TCP connect; default 15s
	CommandTimeout time.Duration // each SMTP command and the message transfer; default 15s

	// HELO is the name sent in EHLO; default the host name.
	HELO string
	// Now is the clock for the Date header; default time.Now.
	Now func() time.Time
}

// FromConfig takes the SMTP settings of the CertDesk configuration
// (CERTDESK_SMTP_*, CERTDESK_MAIL_FROM, CERTDESK_MAIL_REPLY_TO). The one
// configured timeout is used for both dialing and commands.
func FromConfig(c *config.Config) Options {
	return Options{
		Host:           c.SMTPHost,
		Port:           c.SMTPPort,
		TLS:            TLSPolicy(c.SMTPTLSPolicy),
		Username:       c.SMTPUsername,
		Password:       c.SMTPPassword,
		From:           c.MailFrom,
		ReplyTo:        c.MailReplyTo,
		DialTimeout:    c.SMTPTimeout,
		CommandTimeout: c.SMTPTimeout,
	}
}

// Sender sends notices over SMTP with go-mail. It is safe for concurrent use;
// each Send or Session uses its own connection.
type Sender struct {
	opts   Options
	domain string // of the From address, for Message-IDs

	// idle holds connections left open by earlier single sends. Opening one
	// costs a TCP and SMTP handshake and whatever greeting delay the server
	// keeps (MailDev about 100 ms, against 2 ms for a message).
	idleMu sync.Mutex
	idle   []idleSession
}

// idleSession is a connection waiting for the next single send.
type idleSession struct {
	sess  *Session
	since time.Time
}

// Idle connections are kept for less time than SMTP servers commonly allow
// an idle client (RFC 5321 4.5.3.2.7: five minutes; relays often less).
const (
	maxIdleSessions    = 8
	idleSessionTimeout = 15 * time.Second
)

// NewSender checks the options and returns a Sender. It does not connect.
func NewSender(o Options) (*Sender, error) {
	if o.Host == "" {
		return nil, errors.New("mailer: SMTP host is empty")
	}
	if o.Port < 1 || o.Port > 65535 {
		return nil, fmt.Errorf("mailer: SMTP port %d is out of range", o.Port)
	}
	switch o.TLS {
	case TLSMandatory, TLSOpportunistic, TLSNone:
	case "":
		o.TLS = TLSMandatory
	default:
		return nil, fmt.Errorf("mailer: TLS policy %q is not mandatory, opportunistic or none", o.TLS)
	}
	from, err := parseAddress(o.From)
	if err != nil {
		return nil, fmt.Errorf("mailer: From %q: %v", o.From, err)
	}
	if o.ReplyTo != "" {
		if _, err := parseAddress(o.ReplyTo); err != nil {
			return nil, fmt.Errorf("mailer: Reply-To %q: %v", o.ReplyTo, err)
		}
	}
	if o.DialTimeout <= 0 {
		o.DialTimeout = 15 * time.Second
	}
	if o.CommandTimeout <= 0 {
		o.CommandTimeout = 15 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	domain := from.Address[strings.LastIndexByte(from.Address, '@')+1:]
	return &Sender{opts: o, domain: strings.ToLower(domain)}, nil
}

func parseAddress(s string) (*netmail.Address, error) {
	a, err := netmail.ParseAddress(s)
	if err != nil {
		return nil, err
	}
	if !strings.Contains(a.Address, "@") {
		return nil, errors.New("no domain")
	}
	return a, nil
}

func (s *Sender) now() time.Time { return s.opts.Now() }

// Addr is host:port of the SMTP server.
func (s *Sender) Addr() string { return net.JoinHostPort(s.opts.Host, strconv.Itoa(s.opts.Port)) }

// Send delivers one message and returns its
// Message-ID. Errors: *PermanentError (IsPermanent) for an invalid message or
// a 5xx reply to the message's transaction; anything else is retryable.
func (s *Sender) Send(ctx context.Context, m Message) (messageID string, err error) {
	p, err := s.prepare(m)
	if err != nil {
		return "", err
	}
	if err := s.sendPooled(ctx, p); err != nil {
		return "", err
	}
	return p.messageID, nil
}

// sendPooled sends p over a connection left open by an earlier send, or a
// new one, and keeps the connection for the next send. A kept connection the
// server has closed meanwhile fails at MAIL FROM without a reply, before any
// of the message went out, so that case alone is retried on a new connection.
func (s *Sender) sendPooled(ctx context.Context, p *prepared) error {
	if sess := s.takeIdle(); sess != nil {
		err := sess.send(ctx, p)
		if err == nil {
			s.putIdle(sess)
			return nil
		}
		_ = sess.Close()
		if !sess.stale {
			return err
		}
	}
	sess, err := s.Dial(ctx)
	if err != nil {
		return err
	}
	if err := sess.send(ctx, p); err != nil {
		_ = sess.Close()
		return err
	}
	s.putIdle(sess)
	return nil
}

func (s *Sender) takeIdle() *Session {
	var expired []*Session
	defer func() {
		for _, e := range expired {
			_ = e.Close()
		}
	}()
	s.idleMu.Lock()
	defer s.idleMu.Unlock()
	for len(s.idle) > 0 {
		last := s.idle[len(s.idle)-1]
		s.idle = s.idle[:len(s.idle)-1]
		if time.Since(last.since) < idleSessionTimeout && !last.sess.Broken() {
			return last.sess
		}
		expired = append(expired, last.sess)
	}
	return nil
}

func (s *Sender) putIdle(sess *Session) {
	s.idleMu.Lock()
	if len(s.idle) < maxIdleSessions && !sess.Broken() {
		s.idle = append(s.idle, idleSession{sess: sess, since: time.Now()})
		sess = nil
	}
	s.idleMu.Unlock()
	if sess != nil {
		_ = sess.Close()
	}
}

// Close ends the connections kept for later sends.
func (s *Sender) Close() error {
	s.idleMu.Lock()
	idle := s.idle
	s.idle = nil
	s.idleMu.Unlock()
	for _, i := range idle {
		_ = i.sess.Close()
	}
	return nil
}

// Session is one SMTP connection over which any number of messages are sent
// one after the other: the batch API. It is not safe for concurrent use.
// After a retryable error the connection is considered broken (Broken
// reports true) and the session must be closed and a new one dialled.
type Session struct {
	s      *Sender
	client *mail.Client

	mu     sync.Mutex
	conn   net.Conn
	broken bool
	// stale: the last send failed at MAIL FROM with no reply (the server
	// had dropped the connection): nothing of the message was sent.
	stale bool
}

// Dial opens a session: TCP connect, EHLO, STARTTLS per the TLS policy,
// AUTH if configured. Every failure here is retryable: a refused connection
// or timeout is transient, and a refused greeting, STARTTLS or AUTH (even
// 5xx, e.g. 535 bad credentials) is a server or configuration problem that
// operators fix, not a reason to give up on the message.
func (s *Sender) Dial(ctx context.Context) (*Session, error) {
	sess := &Session{s: s}
	opts := []mail.Option{
		mail.WithPort(s.opts.Port),
		mail.WithTimeout(s.opts.CommandTimeout),
		mail.WithDialContextFunc(sess.dial),
		mail.WithoutNoop(), // a dead connection shows at MAIL FROM, which is safe to retry
		mail.WithoutRset(), // nothing to reset after a completed transaction
	}
	switch s.opts.TLS {
	case TLSMandatory:
		opts = append(opts, mail.WithTLSPolicy(mail.TLSMandatory))
	case TLSOpportunistic:
		opts = append(opts, mail.WithTLSPolicy(mail.TLSOpportunistic))
	case TLSNone:
		opts = append(opts, mail.WithTLSPolicy(mail.NoTLS))
	}
	if s.opts.TLSConfig != nil {
		opts = append(opts, mail.WithTLSConfig(s.opts.TLSConfig))
	} else {
		opts = append(opts, mail.WithTLSConfig(&tls.Config{ServerName: s.opts.Host, MinVersion: tls.VersionTLS12}))
	}
	if s.opts.HELO != "" {
		opts = append(opts, mail.WithHELO(s.opts.HELO))
	}
	if s.opts.Username != "" {
		opts = append(opts, mail.WithOpportunisticSMTPAuth(mail.SMTPAuthPlain, mail.SMTPAuthLogin),
			mail.WithUsername(s.opts.Username), mail.WithPassword(s.opts.Password))
	}
	c, err := mail.NewClient(s.opts.Host, opts...)
	if err != nil {
		return nil, fmt.Errorf("mailer: SMTP client: %w", err)
	}
	stop := context.AfterFunc(ctx, sess.abort)
	defer stop()
	if err := c.DialWithContext(ctx); err != nil {
		sess.abort()
		if ctx.Err() != nil {
			return nil, fmt.Errorf("mailer: connect to %s: %w", s.Addr(), ctx.Err())
		}
		return nil, &dialError{addr: s.Addr(), err: err}
	}
	sess.client = c
	return sess, nil
}

func (sess *Session) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	d := net.Dialer{Timeout: sess.s.opts.DialTimeout}
	conn, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	sess.mu.Lock()
	sess.conn = conn
	sess.mu.Unlock()
	return conn, nil
}

// abort breaks the connection so a blocked SMTP exchange returns at once;
// used when the context is cancelled.
func (sess *Session) abort() {
	sess.mu.Lock()
	defer sess.mu.Unlock()
	sess.broken = true
	if sess.conn != nil {
		_ = sess.conn.Close()
	}
}

// Broken reports whether the connection failed and the session must be
// replaced.
func (sess *Session) Broken() bool {
	sess.mu.Lock()
	defer sess.mu.Unlock()
	return sess.broken
}

// Send delivers one message on the session's connection and returns its
// Message-ID. Errors are classified as by Sender.Send. A cancelled ctx stops
// Send before the SMTP transaction starts, not during it (which is bounded by
// CommandTimeout).
func (sess *Session) Send(ctx context.Context, m Message) (messageID string, err error) {
	p, err := sess.s.prepare(m)
	if err != nil {
		return "", err
	}
	if err := sess.send(ctx, p); err != nil {
		return "", err
	}
	return p.messageID, nil
}

func (sess *Session) send(ctx context.Context, p *prepared) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("mailer: send: %w", err)
	}
	if sess.Broken() {
		return errors.New("mailer: send: session is broken; dial a new one")
	}
	msg, err := sess.s.msg(p)
	if err != nil {
		return err
	}
	// Cancellation is not applied to a transaction in flight: aborting after
	// the end of DATA but before the server's reply would leave a message
	// delivered yet recorded as failed. The transaction is bounded by
	// CommandTimeout instead; ctx is checked before it starts.
	err = sess.client.Send(msg)
	if err == nil {
		return nil
	}
	var se *mail.SendError
	sess.stale = errors.As(err, &se) && se.Reason == mail.ErrSMTPMailFrom && se.ErrorCode() == 0
	err = classify(err, p.to)
	if !IsPermanent(err) {
		sess.mu.Lock()
		sess.broken = true
		sess.mu.Unlock()
	}
	return err
}

// Close ends the session with QUIT (or just closes a broken connection).
// A failed QUIT does not undo messages already accepted by the server.
func (sess *Session) Close() error {
	var err error
	if !sess.Broken() {
		err = sess.client.Close()
	}
	sess.abort()
	return err
}

// dialError is a failure to open a session; its text shows server replies
// unquoted. Always retryable.
type dialError struct {
	addr string
	err  error
}

func (e *dialError) Error() string {
	return "mailer: connect to " + e.addr + ": " + unquoteReplies(e.err.Error())
}

func (e *dialError) Unwrap() error { return e.err }
