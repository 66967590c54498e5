package activities

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	"github.com/wneessen/go-mail"
	"go.temporal.io/sdk/temporal"
)

// SystemCheckInput identifies one system check.
type SystemCheckInput struct {
	CheckID    string
	WorkflowID string
}

// RecordSystemCheck writes the check's row; a retry finds it already there.
func (a *Activities) RecordSystemCheck(ctx context.Context, in SystemCheckInput) error {
	_, err := a.DB.ExecContext(ctx,
		`INSERT INTO system_checks (check_id, workflow_id) VALUES ($1, $2) ON CONFLICT (check_id) DO NOTHING`,
		in.CheckID, in.WorkflowID)
	return err
}

// SendSystemCheckEmail emails the staff mailbox that the check passed. The
// Message-ID is derived from the check, so a retried send is recognisable.
func (a *Activities) SendSystemCheckEmail(ctx context.Context, in SystemCheckInput) (string, error) {
	cfg := a.Config
	sum := sha256.Sum256([]byte("system-check/" + in.CheckID))
	msgID := hex.EncodeToString(sum[:12]) + "@certdesk"
	m := mail.NewMsg()
	if err := m.From(cfg.MailFrom); err != nil {
		return "", temporal.NewNonRetryableApplicationError("bad CERTDESK_MAIL_FROM", "config", err)
	}
	if err := m.To(cfg.StaffEmail); err != nil {
		return "", temporal.NewNonRetryableApplicationError("bad CERTDESK_STAFF_EMAIL", "config", err)
	}
	m.SetMessageIDWithValue(msgID)
	m.SetDate()
	m.Subject("CertDesk system check " + in.CheckID)
	m.SetBodyString(mail.TypeTextPlain, fmt.Sprintf("システムチェック %s は正常に完了しました。\nSystem check %s passed (workflow %s).\n", in.CheckID, in.CheckID, in.WorkflowID))
	policy := map[string]mail.TLSPolicy{"mandatory": mail.TLSMandatory, "opportunistic": mail.TLSOpportunistic, "none": mail.NoTLS}[cfg.SMTPTLSPolicy]
	opts := []mail.Option{mail.WithPort(cfg.SMTPPort), mail.WithTLSPolicy(policy), mail.WithTimeout(cfg.SMTPTimeout)}
	if cfg.SMTPUsername != "" {
		opts = append(opts, mail.WithSMTPAuth(mail.SMTPAuthAutoDiscover), mail.WithUsername(cfg.SMTPUsername), mail.WithPassword(cfg.SMTPPassword))
	}
	c, err := mail.NewClient(cfg.SMTPHost, opts...)
	if err != nil {
		return "", err
	}
	if err := c.DialAndSendWithContext(ctx, m); err != nil {
		return "", fmt.Errorf("send system check email: %w", err)
	}
	return msgID, nil
}
