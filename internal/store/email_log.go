package store

import (
	"context"
	"fmt"
	"regexp"
	"time"
)

// EmailLogEntry is one keyed notice in the email log.
type EmailLogEntry struct {
	IdempotencyKey string     `db:"idempotency_key"` // workflow id + notice
	Notice         string     `db:"notice"`
	RecipientRef   string     `db:"recipient_ref"` // subscriber id, blind index or role; never an address
	Status         string     `db:"status"`        // pending, sent or failed
	Attempts       int        `db:"attempts"`
	MessageID      string     `db:"message_id"`
	LastError      string     `db:"last_error"`
	CreatedAt      time.Time  `db:"created_at"`
	UpdatedAt      time.Time  `db:"updated_at"`
	SentAt         *time.Time `db:"sent_at"`
}

// ReserveEmail records key as pending before a send, counting the attempt,
// in one atomic statement. alreadySent is true if a send under key was
// recorded as sent: the mailer must then not send again. A pending or
// failed key is reserved again (a crash between send and MarkEmailSent can
// still send twice: that window is the one at-least-once cannot close).
func (s *Store) ReserveEmail(ctx context.Context, key, notice, recipientRef string) (alreadySent bool, err error) {
	var status string
	err = s.db.GetContext(ctx, &status, `
		INSERT INTO email_log (idempotency_key, notice, recipient_ref, status, attempts)
		VALUES ($1, $2, $3, 'pending', 1)
		ON CONFLICT (idempotency_key) DO UPDATE SET
			status = CASE WHEN email_log.status = 'sent' THEN 'sent' ELSE 'pending' END,
			attempts = email_log.attempts + CASE WHEN email_log.status = 'sent' THEN 0 ELSE 1 END,
			updated_at = now()
		RETURNING status`, key, notice, recipientRef)
	if err != nil {
		return false, fmt.Errorf("store: reserve email %s: %w", key, err)
	}
	return status == "sent", nil
}

// MarkEmailSent records a successful send. Idempotent: the first message id
// and time stay.
func (s *Store) MarkEmailSent(ctx context.Context, key, messageID string) error {
	res, err := s.db.ExecContext(ctx, `UPDATE email_log SET status = 'sent', last_error = '',
			message_id = CASE WHEN status = 'sent' THEN message_id ELSE $2 END,
			sent_at = COALESCE(sent_at, now()), updated_at = now()
		WHERE idempotency_key = $1`, key, messageID)
	return oneRow(res, err, "email log entry %s (call ReserveEmail first)", key)
}

// MarkEmailFailed records a failed attempt. Addresses in errText are
// replaced by "<address>" (SMTP errors quote them) and it is cut to 1,000
// bytes. A sent entry stays sent.
func (s *Store) MarkEmailFailed(ctx context.Context, key, errText string) error {
	res, err := s.db.ExecContext(ctx, `UPDATE email_log SET last_error = $2,
			status = CASE WHEN status = 'sent' THEN 'sent' ELSE 'failed' END, updated_at = now()
		WHERE idempotency_key = $1`, key, ScrubAddresses(errText, 1000))
	return oneRow(res, err, "email log entry %s (call ReserveEmail first)", key)
}

// GetEmailLog reads one entry.
func (s *Store) GetEmailLog(ctx context.Context, key string) (EmailLogEntry, error) {
	var e EmailLogEntry
	err := s.db.GetContext(ctx, &e, `SELECT idempotency_key, notice, recipient_ref, status, attempts, message_id,
		last_error, created_at, updated_at, sent_at FROM email_log WHERE idempotency_key = $1`, key)
	return e, notFoundOrNil(err, "email log entry %s", key)
}

// ListEmailsByRecipient lists notices sent or attempted to any of refs
// (disclosure compilation: "emails sent").
func (s *Store) ListEmailsByRecipient(ctx context.Context, refs ...string) ([]EmailLogEntry, error) {
	var out []EmailLogEntry
	err := s.db.SelectContext(ctx, &out, `SELECT idempotency_key, notice, recipient_ref, status, attempts, message_id,
		last_error, created_at, updated_at, sent_at FROM email_log WHERE recipient_ref = ANY($1) ORDER BY created_at, idempotency_key`,
		stringArray(refs))
	if err != nil {
		return nil, fmt.Errorf("store: list emails: %w", err)
	}
	return out, nil
}

var addressPattern = regexp.MustCompile(`[^\s<>"'(),;:@]+@[^\s<>"'(),;:@]+`)

// ScrubAddresses replaces email addresses in s with "<address>" and cuts it
// to max bytes (on a rune boundary), so error texts can be stored and logged
// without personal data.
func ScrubAddresses(s string, max int) string {
	s = addressPattern.ReplaceAllString(s, "<address>")
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !isRuneStart(s[cut]) {
		cut--
	}
	return s[:cut]
}

func isRuneStart(b byte) bool { return b&0xC0 != 0x80 }
