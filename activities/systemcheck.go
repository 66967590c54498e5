package activities

import (
	"context"
	"errors"
	"fmt"

	"certdesk/internal/mailer"
)

// SystemCheckInput identifies one system check.
type SystemCheckInput struct {
	CheckID    string
	WorkflowID string
}

// RecordSystemCheck writes the check's row; a retry finds it already there.
func (a *Activities) RecordSystemCheck(ctx context.Context, in SystemCheckInput) error {
	return a.Store.RecordSystemCheck(ctx, in.CheckID, in.WorkflowID)
}

// SendSystemCheckEmail emails the staff mailbox that the check passed. It
// goes straight through the SMTP sender, not the email log: the check
// proves the mail path itself. The Message-ID is derived from the check,
// so a retried send is recognisable.
func (a *Activities) SendSystemCheckEmail(ctx context.Context, in SystemCheckInput) (string, error) {
	sender, done, err := a.systemCheckSender()
	if err != nil {
		return "", nonRetryable("config", "system check email: "+err.Error(), nil)
	}
	defer done()
	id, err := sender.Send(ctx, mailer.Message{
		To: a.Config.StaffEmail, RecipientRef: "staff", Notice: mailer.SystemCheck,
		Data:           mailer.SystemCheckData{CheckID: in.CheckID, WorkflowID: in.WorkflowID},
		IdempotencyKey: "system-check/" + in.CheckID,
	})
	if err != nil {
		if errors.Is(err, mailer.ErrBadData) {
			// A bad CERTDESK_MAIL_FROM or CERTDESK_STAFF_EMAIL.
			return "", nonRetryable("config", "system check email: "+err.Error(), err)
		}
		return "", fmt.Errorf("send system check email: %w", err)
	}
	return id, nil
}

// systemCheckSender is the outbox's sender, or one built from the
// configuration (and closed by done) when the activities were wired
// without an outbox.
func (a *Activities) systemCheckSender() (s *mailer.Sender, done func(), err error) {
	if a.Outbox != nil {
		return a.Outbox.Sender(), func() {}, nil
	}
	s, err = mailer.NewSender(mailer.FromConfig(a.Config))
	if err != nil {
		return nil, nil, err
	}
	return s, func() { _ = s.Close() }, nil
}
