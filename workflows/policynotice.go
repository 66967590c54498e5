package workflows

import (
	"fmt"
	"net/url"
	"regexp"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"certdesk/activities"
	"certdesk/internal/cases"
	"certdesk/internal/mailer"
)

// Policy notice statuses.
const (
	PolicySending = "sending"
	PolicyDone    = "done"
)

// Policy notice defaults.
const (
	DefaultPolicyNoticePageSize = 500
	// policyPagesPerRun bounds the history of one run; the next run goes on
	// from the cursor.
	policyPagesPerRun = 50
)

// PolicyNoticeWorkflowID is the workflow ID of the notice of version.
func PolicyNoticeWorkflowID(version string) string { return cases.TypePolicyNotice + "/" + version }

// PolicyNoticeInput is what staff start (`temporal workflow start --type
// PolicyNotice --workflow-id policy-notice/<version> --input
// '{"version":"2026.2","effective_date":"2026-04-01","url":"https://…"}'`).
type PolicyNoticeInput struct {
	Version       string `json:"version"`
	EffectiveDate string `json:"effective_date"` // YYYY-MM-DD (JST) or RFC 3339
	URL           string `json:"url"`
	Document      string `json:"document,omitempty"`    // Japanese title; default 証明書情報等の取扱いについて
	DocumentEN    string `json:"document_en,omitempty"` // English title
	PageSize      int    `json:"page_size,omitempty"`
	// Progress is carried across continue-as-new; leave it empty.
	Progress *PolicyNoticeProgress `json:"progress,omitempty"`
}

// PolicyNoticeProgress is the state of a policy notice; the progress and
// status queries return it. No personal data: the cursor is a blind index.
type PolicyNoticeProgress struct {
	Status        string
	Version       string
	EffectiveDate time.Time
	ValidAt       time.Time // subscribers with a certificate valid then are told
	Cursor        string
	Pages         int
	Recipients    int64
	Sent          int64
	Skipped       int64
	Failed        int64
	Runs          int
	StartedAt     time.Time
	FinishedAt    time.Time
}

var policyVersionRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// parseEffectiveDate accepts a date (midnight JST) or an RFC 3339 time.
func parseEffectiveDate(s string) (time.Time, error) {
	if t, err := time.ParseInLocation(time.DateOnly, s, mailer.JST); err == nil {
		return t, nil
	}
	return time.Parse(time.RFC3339, s)
}

// PolicyNotice announces a new version of the rules for handling
// certificate information to every subscriber with a valid certificate
// (O10; seed §12): one policy_revision per address through the bulk
// sender, a page per activity with heartbeated progress, continue-as-new
// for large populations. Resumable: a retried page starts after what it
// handled, and the email log never sends an address twice.
func PolicyNotice(ctx workflow.Context, in PolicyNoticeInput) (PolicyNoticeProgress, error) {
	invalid := func(msg string) (PolicyNoticeProgress, error) {
		return PolicyNoticeProgress{}, temporal.NewNonRetryableApplicationError("policy notice: "+msg, activities.ErrTypeInvalid, nil)
	}
	if !policyVersionRE.MatchString(in.Version) {
		return invalid("version must be 1-64 letters, digits, dots, dashes or underscores")
	}
	effective, err := parseEffectiveDate(in.EffectiveDate)
	if err != nil {
		return invalid("effective_date must be YYYY-MM-DD or an RFC 3339 time")
	}
	if u, err := url.Parse(in.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return invalid("url must be the http(s) address of the revised text")
	}
	if in.PageSize <= 0 {
		in.PageSize = DefaultPolicyNoticePageSize
	}
	p := in.Progress
	if p == nil {
		now := workflow.Now(ctx)
		p = &PolicyNoticeProgress{Status: PolicySending, Version: in.Version, EffectiveDate: effective, ValidAt: now, StartedAt: now}
	}
	p.Runs++
	if err := workflow.SetQueryHandler(ctx, ProgressQuery, func() (PolicyNoticeProgress, error) { return *p, nil }); err != nil {
		return *p, err
	}
	if err := workflow.SetQueryHandler(ctx, StatusQuery, func() (PolicyNoticeProgress, error) { return *p, nil }); err != nil {
		return *p, err
	}
	if err := workflow.UpsertTypedSearchAttributes(ctx,
		cases.CaseType.ValueSet(cases.TypePolicyNotice),
		cases.CaseStatus.ValueSet(p.Status),
		cases.DueAt.ValueSet(effective),
	); err != nil {
		return *p, err
	}
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 30 * time.Minute,
		HeartbeatTimeout:    time.Minute,
		RetryPolicy: &temporal.RetryPolicy{InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: time.Minute,
			NonRetryableErrorTypes: []string{activities.ErrTypeInvalid}},
	})
	var a *activities.Activities
	wfID := PolicyNoticeWorkflowID(in.Version)
	record := func(event string) error {
		return workflow.ExecuteActivity(ctx, a.RecordPolicyNotice, activities.PolicyNoticeRecord{
			WorkflowID: wfID, Version: in.Version, Event: event, EffectiveDate: effective, URL: in.URL,
			Recipients: p.Recipients, Sent: p.Sent, Failed: p.Failed,
		}).Get(ctx, nil)
	}
	if p.Runs == 1 {
		if err := record("started"); err != nil {
			return *p, err
		}
	}

	for page := 0; ; page++ {
		if page >= policyPagesPerRun || workflow.GetInfo(ctx).GetContinueAsNewSuggested() {
			in.Progress = p
			return *p, workflow.NewContinueAsNewError(ctx, PolicyNotice, in)
		}
		if err := setStatus(ctx, PolicySending, fmt.Sprintf("version %s: %d addresses told in %d pages", in.Version, p.Recipients, p.Pages)); err != nil {
			return *p, err
		}
		var r activities.PolicyNoticePageResult
		if err := workflow.ExecuteActivity(ctx, a.SendPolicyNotice, activities.PolicyNoticePageInput{
			WorkflowID: wfID, Version: in.Version, EffectiveDate: effective, URL: in.URL, Document: in.Document,
			DocumentEN: in.DocumentEN, ValidAt: p.ValidAt, After: p.Cursor, Limit: in.PageSize,
		}).Get(ctx, &r); err != nil {
			return *p, err
		}
		if r.Count == 0 {
			break
		}
		p.Cursor = r.Last
		p.Pages++
		p.Recipients += int64(r.Count)
		p.Sent += int64(r.Sent)
		p.Skipped += int64(r.Skipped)
		p.Failed += int64(r.Failed)
	}
	if err := record("done"); err != nil {
		return *p, err
	}
	p.Status, p.FinishedAt = PolicyDone, workflow.Now(ctx)
	return *p, setStatus(ctx, PolicyDone, fmt.Sprintf("version %s: %d addresses told (%d sent, %d already sent, %d undeliverable) in %d pages",
		in.Version, p.Recipients, p.Sent, p.Skipped, p.Failed, p.Pages))
}
