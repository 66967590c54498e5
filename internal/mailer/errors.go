package mailer

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	mail "github.com/wneessen/go-mail"
)

// PermanentError is a failure that retrying the same message will not fix:
// the SMTP server answered a 5xx reply to the message's own transaction
// (MAIL FROM, RCPT TO, DATA or the end of DATA), or the message itself is
// invalid (unknown notice, wrong data, bad address). Callers wrapping the
// mailer in a Temporal activity turn it into a non-retryable application
// error; use IsPermanent.
//
// Text never contains the recipient's address: the address is replaced by
// "[recipient]" so the error can be logged, stored in the email log and kept
// in workflow history.
type PermanentError struct {
	// Code is the SMTP reply code (e.g. 550), 0 for a local validation error.
	Code int
	// Enhanced is the RFC 3463 enhanced status code (e.g. "5.1.1") when the
	// server announced ENHANCEDSTATUSCODES, else "".
	Enhanced string
	// Command is the SMTP command the server refused ("RCPT TO", ...), or
	// "" for a local error.
	Command string
	// Text is the server's reply (code included) or the local error text.
	Text string

	err error
}

func (e *PermanentError) Error() string {
	if e.Code == 0 {
		return "mailer: invalid message: " + e.Text
	}
	return fmt.Sprintf("mailer: permanent SMTP failure at %s: %s", e.Command, e.Text)
}

// Unwrap returns the underlying local error (for errors.Is on validation
// errors such as ErrBadData); nil for server replies.
func (e *PermanentError) Unwrap() error { return e.err }

// IsPermanent reports whether err (or any error it wraps) is a
// *PermanentError. Every other error from this package is retryable:
// connection refused or reset, timeouts, 4xx replies, and session-level
// failures (greeting, EHLO, STARTTLS, AUTH) which are server or
// configuration problems rather than problems of the message.
func IsPermanent(err error) bool {
	var p *PermanentError
	return errors.As(err, &p)
}

// ErrBadData is wrapped by every validation error of notice data, so callers
// can tell a programming or input error from an SMTP failure.
var ErrBadData = errors.New("bad notice data")

func invalid(err error) *PermanentError {
	return &PermanentError{Text: err.Error(), err: err}
}

// classify turns a go-mail send error into a *PermanentError (5xx reply to the
// message's transaction, or an unusable address) or a retryable error.
func classify(err error, rcpt string) error {
	if err == nil {
		return nil
	}
	var se *mail.SendError
	if !errors.As(err, &se) {
		return fmt.Errorf("mailer: send: %s", redact(unquoteReplies(err.Error()), rcpt))
	}
	text := serverText(se, rcpt)
	switch se.Reason {
	case mail.ErrGetSender, mail.ErrGetRcpts:
		return invalid(fmt.Errorf("%w: %s", ErrBadData, text))
	case mail.ErrSMTPMailFrom, mail.ErrSMTPRcptTo, mail.ErrSMTPData, mail.ErrSMTPDataClose:
		if code := se.ErrorCode(); code >= 500 && code <= 599 {
			return &PermanentError{Code: code, Enhanced: se.EnhancedStatusCode(), Command: command(se.Reason), Text: text}
		}
	}
	// 4xx replies, I/O errors on a broken connection, timeouts: retry.
	return fmt.Errorf("mailer: transient failure at %s: %s", command(se.Reason), text)
}

func command(r mail.SendErrReason) string {
	switch r {
	case mail.ErrSMTPMailFrom:
		return "MAIL FROM"
	case mail.ErrSMTPRcptTo:
		return "RCPT TO"
	case mail.ErrSMTPData:
		return "DATA"
	case mail.ErrSMTPDataClose:
		return "end of DATA"
	case mail.ErrWriteContent:
		return "message content"
	case mail.ErrSMTPReset:
		return "RSET"
	case mail.ErrConnCheck:
		return "connection check"
	}
	return r.String()
}

// serverText extracts the server's reply from a SendError, whose Error()
// reads "<reason>: <reply>[, <reply>...][, affected recipient(s): ...][,
// affected message ID: ...]"; go-mail keeps the reply list private.
func serverText(se *mail.SendError, rcpt string) string {
	s := se.Error()
	s = strings.TrimPrefix(s, se.Reason.String())
	s = strings.TrimPrefix(s, ":")
	if i := strings.Index(s, ", affected recipient(s): "); i >= 0 {
		s = s[:i]
	}
	if i := strings.Index(s, ", affected message ID: "); i >= 0 {
		s = s[:i]
	}
	return redact(unquoteReplies(strings.TrimSpace(s)), rcpt)
}

var quotedReply = regexp.MustCompile(`\b([2-5][0-9][0-9]) ("(?:[^"\\]|\\.)*")`)

// unquoteReplies turns `550 "5.1.1 text"` (net/textproto.Error since Go 1.26
// quotes the server's message) back into the server's own `550 5.1.1 text`.
func unquoteReplies(s string) string {
	return quotedReply.ReplaceAllStringFunc(s, func(m string) string {
		code, q := m[:3], m[4:]
		if u, err := strconv.Unquote(q); err == nil {
			return code + " " + u
		}
		return m
	})
}

// redact removes the recipient address from s (case-insensitively).
func redact(s, rcpt string) string {
	if rcpt == "" {
		return s
	}
	lower, lr := asciiLower(s), asciiLower(rcpt)
	var b strings.Builder
	for {
		i := strings.Index(lower, lr)
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		b.WriteString(s[:i])
		b.WriteString("[recipient]")
		s, lower = s[i+len(rcpt):], lower[i+len(lr):]
	}
}

// asciiLower lowers ASCII letters only, so byte offsets stay valid.
func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}
