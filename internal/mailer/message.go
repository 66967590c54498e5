package mailer

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"

	mail "github.com/wneessen/go-mail"
)

// Attachment is a file attached to a message.
type Attachment struct {
	Name        string // file name shown to the recipient
	ContentType string // e.g. application/pdf; default application/octet-stream
	Data        []byte
}

// Message is one notice to one recipient.
//
// Message is safe to pass through Temporal payloads as JSON: UnmarshalJSON
// decodes Data into the notice's data type.
type Message struct {
	To           string // recipient address (the only place the clear address goes)
	RecipientRef string // opaque reference for the email log (e.g. subscriber ID), never the address
	Notice       Notice
	Data         any // the notice's data type, see DataType
	Attachments  []Attachment
	// IdempotencyKey identifies the send (see Key). Required by Outbox; when
	// set, the Message-ID is derived from it (see MessageIDFor).
	IdempotencyKey string
}

// UnmarshalJSON decodes a Message, decoding Data into the data type of its
// Notice so that Render accepts it.
func (m *Message) UnmarshalJSON(b []byte) error {
	type plain Message
	var raw struct {
		plain
		Data json.RawMessage
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	*m = Message(raw.plain)
	m.Data = nil
	if len(raw.Data) == 0 || string(raw.Data) == "null" {
		return nil
	}
	d, err := NewData(m.Notice)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(raw.Data, d); err != nil {
		return fmt.Errorf("mailer: decode data of %s: %w", m.Notice, err)
	}
	m.Data = d
	return nil
}

// Key builds an idempotency key: the workflow ID and the notice, plus any
// parts that tell several sends of the same notice by the same workflow
// apart (a reminder number, a serial in a mass revocation, a resend count).
func Key(workflowID string, n Notice, parts ...string) string {
	return strings.Join(append([]string{workflowID, string(n)}, parts...), "|")
}

// MessageIDFor is the Message-ID of the message with this idempotency key:
// "<" + hex(sha256(key))[:32] + "@" + domain + ">". It is deterministic, so a
// message sent again after a crash between the SMTP send and the email-log
// record carries the same Message-ID and receivers can drop the duplicate.
func MessageIDFor(key, domain string) string {
	sum := sha256.Sum256([]byte(key))
	return "<" + hex.EncodeToString(sum[:16]) + "@" + domain + ">"
}

func randomMessageID(domain string) string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return "<" + hex.EncodeToString(b[:]) + "@" + domain + ">"
}

var unsafeFileChars = regexp.MustCompile(`[^0-9A-Za-z._-]`)

// attachments returns the message's attachments plus the ones its notice
// implies (the certificate of review_issued).
func attachments(m Message, data any) []Attachment {
	out := append([]Attachment(nil), m.Attachments...)
	if d, ok := data.(ReviewIssuedData); ok {
		out = append(out, Attachment{
			Name:        unsafeFileChars.ReplaceAllString(d.Serial, "_") + ".pem",
			ContentType: "application/x-pem-file",
			Data:        d.CertificatePEM,
		})
	}
	return out
}

// prepared is a rendered message, ready to become a go-mail Msg any number
// of times (one per attempt: a Msg's attachment readers are not rewound after
// a failed write).
type prepared struct {
	to          string
	notice      Notice
	key         string
	messageID   string
	rendered    Rendered
	attachments []Attachment
}

func (s *Sender) prepare(m Message) (*prepared, error) {
	if m.To == "" {
		return nil, invalid(fmt.Errorf("%w: no recipient", ErrBadData))
	}
	if _, err := parseAddress(m.To); err != nil {
		return nil, invalid(fmt.Errorf("%w: recipient address: %v", ErrBadData, redact(err.Error(), m.To)))
	}
	d, err := checkData(m.Notice, m.Data)
	if err != nil {
		return nil, invalid(err)
	}
	r, err := Render(m.Notice, d)
	if err != nil {
		return nil, invalid(err)
	}
	for _, a := range m.Attachments {
		if a.Name == "" || strings.ContainsAny(a.Name, "/\\\r\n") {
			return nil, invalid(fmt.Errorf("%w: attachment name %q", ErrBadData, a.Name))
		}
	}
	id := s.MessageID(m.IdempotencyKey)
	return &prepared{to: m.To, notice: m.Notice, key: m.IdempotencyKey, messageID: id, rendered: r, attachments: attachments(m, d)}, nil
}

// MessageID is the Message-ID this sender gives a message with the key: see
// MessageIDFor (the domain is the From address's). An empty key gets a random
// Message-ID.
func (s *Sender) MessageID(key string) string {
	if key == "" {
		return randomMessageID(s.domain)
	}
	return MessageIDFor(key, s.domain)
}

// BuildMsg renders m and builds the go-mail message: UTF-8, base64 bodies and
// RFC 2047 B-encoded headers, multipart/alternative text and HTML (inside
// multipart/mixed when there are attachments), Message-ID and Date set,
// Auto-Submitted: auto-generated.
func (s *Sender) BuildMsg(m Message) (*mail.Msg, error) {
	p, err := s.prepare(m)
	if err != nil {
		return nil, err
	}
	return s.msg(p)
}

func (s *Sender) msg(p *prepared) (*mail.Msg, error) {
	msg := mail.NewMsg(mail.WithCharset(mail.CharsetUTF8), mail.WithEncoding(mail.EncodingB64), mail.WithNoDefaultUserAgent())
	if err := msg.From(s.opts.From); err != nil {
		return nil, invalid(fmt.Errorf("%w: From: %v", ErrBadData, err))
	}
	if s.opts.ReplyTo != "" {
		if err := msg.ReplyTo(s.opts.ReplyTo); err != nil {
			return nil, invalid(fmt.Errorf("%w: Reply-To: %v", ErrBadData, err))
		}
	}
	if err := msg.To(p.to); err != nil {
		return nil, invalid(fmt.Errorf("%w: recipient address: %v", ErrBadData, redact(err.Error(), p.to)))
	}
	msg.Subject(p.rendered.Subject)
	msg.SetMessageIDWithValue(strings.Trim(p.messageID, "<>"))
	msg.SetDateWithValue(s.now().In(JST))
	msg.SetGenHeader("Auto-Submitted", "auto-generated")
	msg.SetGenHeader("X-CertDesk-Notice", string(p.notice))
	msg.SetBodyString(mail.TypeTextPlain, p.rendered.Text)
	msg.AddAlternativeString(mail.TypeTextHTML, p.rendered.HTML)
	for _, a := range p.attachments {
		ct := a.ContentType
		if ct == "" {
			ct = "application/octet-stream"
		}
		if err := msg.AttachReader(a.Name, bytes.NewReader(a.Data), mail.WithFileContentType(mail.ContentType(ct))); err != nil {
			return nil, invalid(fmt.Errorf("%w: attachment %q: %v", ErrBadData, a.Name, err))
		}
	}
	return msg, nil
}
