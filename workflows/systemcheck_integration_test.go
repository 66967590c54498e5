//go:build integration

package workflows

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"

	"certdesk/activities"
	"certdesk/internal/cases"
	"certdesk/internal/config"
	"certdesk/internal/store"
	"certdesk/internal/testenv"
)

// TestSystemCheckOnRealStack runs the SystemCheck workflow on the real
// Temporal dev server; its activities write to a real PostgreSQL database and
// send through go-mail to a real MailDev, and the test reads both back.
const testKey = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=" // 32 bytes, base64

func TestSystemCheckOnRealStack(t *testing.T) {
	pool, dbURL := testenv.NewDatabase(t)
	mail := testenv.SharedMailDev(t)
	tc := testenv.TemporalClient(t, client.Options{})

	staff := "staff-" + time.Now().Format("150405.000000") + "@certdesk.test"
	cfg, err := config.LoadFrom(func(k string) (string, bool) {
		v, ok := map[string]string{
			"DATABASE_URL":         dbURL,
			"CERTDESK_SMTP_HOST":   mail.SMTPHost(),
			"CERTDESK_SMTP_PORT":   strconv.Itoa(mail.SMTPPort),
			"CERTDESK_SMTP_TLS":    "none",
			"CERTDESK_STAFF_EMAIL": staff,
			// The system check touches no personal data; the keys are required config.
			"CERTDESK_PII_KEYS":        "k1:" + testKey,
			"CERTDESK_BLIND_INDEX_KEY": testKey,
		}[k]
		return v, ok
	})
	if err != nil {
		t.Fatal(err)
	}
	queue := "systemcheck-" + t.Name()
	w := worker.New(tc, queue, worker.Options{DeadlockDetectionTimeout: 30 * time.Second})
	w.RegisterWorkflow(SystemCheck)
	w.RegisterActivity(&activities.Activities{Store: store.New(pool, nil, nil), Config: cfg})
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	defer w.Stop()

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	id := "it-" + time.Now().Format("150405.000000")
	run, err := tc.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:        SystemCheckWorkflowID(id),
		TaskQueue: queue,
	}, SystemCheck, SystemCheckInput{CheckID: id})
	if err != nil {
		t.Fatal(err)
	}
	var res SystemCheckResult
	if err := run.Get(ctx, &res); err != nil {
		t.Fatal(err)
	}

	var wfID string
	if err := pool.Get(&wfID, `SELECT workflow_id FROM system_checks WHERE check_id = $1`, id); err != nil {
		t.Fatalf("row not written: %v", err)
	}
	if wfID != SystemCheckWorkflowID(id) {
		t.Fatalf("workflow_id %q", wfID)
	}
	msgs := mail.WaitFor(t, staff, 1, 30*time.Second)
	if len(msgs) != 1 || !strings.Contains(msgs[0].Subject, id) || !strings.Contains(msgs[0].Text, "システムチェック") {
		t.Fatalf("email: %+v", msgs)
	}

	desc, err := tc.DescribeWorkflow(ctx, run.GetID(), run.GetRunID())
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := desc.TypedSearchAttributes.GetKeyword(cases.CaseStatus); v != "done" {
		t.Fatalf("CaseStatus %q, want done", v)
	}
}
