//go:build integration

package activities

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strconv"
	"testing"
	"time"

	"go.temporal.io/sdk/temporal"

	"certdesk/internal/config"
	"certdesk/internal/mailer"
	"certdesk/internal/pii"
	"certdesk/internal/store"
	"certdesk/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func newActs(t *testing.T, md *testenv.MailDev) *Activities {
	t.Helper()
	pool, dbURL := testenv.NewDatabase(t)
	k, _ := pii.GenerateKey()
	b, _ := pii.GenerateKey()
	env := map[string]string{"DATABASE_URL": dbURL, "CERTDESK_SMTP_HOST": md.SMTPHost(), "CERTDESK_SMTP_PORT": strconv.Itoa(md.SMTPPort),
		"CERTDESK_SMTP_TLS": "none", "CERTDESK_SMTP_TIMEOUT": "3s", "CERTDESK_PII_KEYS": "k:" + k, "CERTDESK_BLIND_INDEX_KEY": b}
	cfg, err := config.LoadFrom(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	st, bidx, err := OpenStore(cfg, pool)
	if err != nil {
		t.Fatal(err)
	}
	a, err := New(cfg, pool, st, bidx, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func notice(key string) NotifyInput {
	return NotifyInput{Recipient: Recipient{SubscriberID: "sub_n1"}, Message: mailer.Message{
		Notice: mailer.ApplicationReceived, IdempotencyKey: key,
		Data: mailer.ApplicationReceivedData{ApplicationID: "app_n1", Product: "server-dv", ReceivedAt: time.Now()},
	}}
}

// TestNotifyActivityExactlyOnce: the Notify activity retried after success
// leaves one message; with SMTP down it fails retryably and succeeds once
// MailDev is back, one message in all.
func TestNotifyActivityExactlyOnce(t *testing.T) {
	md := testenv.NewMailDev(t)
	a := newActs(t, md)
	ctx := context.Background()
	addr := "notify-" + strconv.FormatInt(time.Now().UnixNano(), 36) + "@example.jp"
	if err := a.Store.CreateReseller(ctx, store.Reseller{ID: "rs_n", Name: "N", APIKeyHash: "00000000000000000000000000000000000000000000000000000000000000cd", APIKeyPrefix: "cdk_n"}); err != nil {
		t.Fatal(err)
	}
	if err := a.Store.UpsertSubscriber(ctx, store.Subscriber{ID: "sub_n1", ResellerID: "rs_n", Name: "山田 花子", Email: addr, Country: "JP"}); err != nil {
		t.Fatal(err)
	}
	first, err := a.Notify(ctx, notice("application/app_n1|application_received"))
	if err != nil || first.AlreadySent {
		t.Fatalf("first send: %+v %v", first, err)
	}
	again, err := a.Notify(ctx, notice("application/app_n1|application_received"))
	if err != nil || !again.AlreadySent || again.MessageID != first.MessageID {
		t.Fatalf("retry after success: %+v %v", again, err)
	}
	md.WaitFor(t, addr, 1, 10*time.Second)

	md.Stop()
	_, err = a.Notify(ctx, notice("application/app_n1|application_received|2"))
	var appErr *temporal.ApplicationError
	if err == nil {
		t.Fatal("send with SMTP down succeeded")
	}
	if errors.As(err, &appErr) && appErr.NonRetryable() {
		t.Fatalf("SMTP down must be retryable: %v", err)
	}
	if err := md.Start(); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Notify(ctx, notice("application/app_n1|application_received|2")); err != nil {
		t.Fatalf("after MailDev is back: %v", err)
	}
	got := md.WaitFor(t, addr, 1, 10*time.Second)
	if len(got) != 1 {
		t.Fatalf("%d messages after the restart, want 1 (MailDev forgets on restart)", len(got))
	}
	entry, err := a.Store.GetEmailLog(ctx, "application/app_n1|application_received|2")
	if err != nil || entry.Status != "sent" {
		t.Fatalf("email log %+v %v", entry, err)
	}
}
