// Package mailer renders and sends CertDesk's email notices over SMTP
// (go-mail). It has no Temporal dependency: activities wrap it.
//
// # Notices and templates
//
// Each Notice has one data type (DataType) and three embedded templates,
// templates/<notice>.subject.tmpl (text/template), .txt.tmpl (text/template)
// and .html.tmpl (html/template), plus the shared partials
// templates/_common.{txt,html}.tmpl. Every message is Japanese first, then
// English, in one message: multipart/alternative with a text and an HTML part
// (inside multipart/mixed when something is attached), UTF-8, base64 bodies,
// RFC 2047 encoded headers, a Message-ID and a Date. Times are shown in JST
// (a fixed +09:00 zone: Japan has no DST) and UTC.
//
// Personal data is kept to what each notice needs: subscribers are greeted by
// organisation name or not at all, never by a person's name; no telephone
// number or postal address is ever printed; correction notices list the
// names of changed fields only, never their values (the notice may reach an
// address that does not own every field, and email is not a protected
// channel); staff notices carry case types, IDs, due times and a Temporal UI
// link only. Free text written by staff (rejection reason, refusal
// explanation, inquiry answer) is shown as written, HTML-escaped.
//
// # Errors
//
// Send errors are either *PermanentError (IsPermanent: invalid message, or a
// 5xx reply to MAIL FROM, RCPT TO or DATA, with the server's text, the
// recipient address redacted) or retryable (everything else: refused
// connection, timeouts, 4xx, broken connection, and session-level refusals
// such as 535 on AUTH or a missing STARTTLS under the mandatory policy, which
// operators fix in the configuration or the server rather than in the
// message).
//
// # Exactly once
//
// Outbox wraps a Sender with a SendLog (implemented by the storage layer):
// reserve the idempotency key, send unless the key is already recorded as
// sent, then record the Message-ID (or the failure). The Message-ID is
// derived from the key (MessageIDFor), so the one remaining duplicate window,
// a crash or a failed MarkEmailSent between the server's acceptance and the
// log record, produces a second copy with the same Message-ID, which
// receivers can deduplicate. SendBulk sends many messages over one
// connection per batch, with a rate limit, skipping keys already sent and
// reporting progress so an interrupted run resumes where it stopped.
package mailer
