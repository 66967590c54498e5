package testenv

import (
	"context"
	"net/smtp"
	"strconv"
	"testing"
	"time"
)

func TestMain(m *testing.M) { Main(m) }

func TestNewDatabaseIsMigratedAndPrivate(t *testing.T) {
	a, _ := NewDatabase(t)
	b, _ := NewDatabase(t)
	if _, err := a.Exec(`INSERT INTO system_checks (check_id, workflow_id) VALUES ('x', 'w')`); err != nil {
		t.Fatalf("schema missing in fresh database: %v", err)
	}
	var n int
	if err := b.Get(&n, `SELECT count(*) FROM system_checks`); err != nil || n != 0 {
		t.Fatalf("databases are not isolated: n=%d err=%v", n, err)
	}
}

func TestMailDevRoundTrip(t *testing.T) {
	m := SharedMailDev(t)
	msg := "To: probe@example.test\r\nFrom: t@example.test\r\nSubject: probe\r\n\r\nhello\r\n"
	if err := smtp.SendMail(m.SMTPHost()+":"+strconv.Itoa(m.SMTPPort), nil, "t@example.test", []string{"probe@example.test"}, []byte(msg)); err != nil {
		t.Fatal(err)
	}
	got := m.WaitFor(t, "probe@example.test", 1, 10*time.Second)
	if got[0].Subject != "probe" {
		t.Fatalf("subject %q", got[0].Subject)
	}
	src, err := m.Source(context.Background(), got[0].ID)
	if err != nil || len(src) == 0 {
		t.Fatalf("source: %v", err)
	}
}
