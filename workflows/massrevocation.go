package workflows

import (
	"fmt"
	"sort"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"certdesk/activities"
	"certdesk/internal/cases"
)

// Mass revocation statuses.
const (
	MassCounting = "counting"
	MassDryRun   = "dry_run_done"
	// MassRenewalWindow: the ARI renewal windows of the selected ACME
	// certificates are being moved to now; MassRenewalGrace: waiting the
	// renewal grace for their clients to renew before revoking.
	MassRenewalWindow = "renewal_window"
	MassRenewalGrace  = "renewal_grace"
	MassRevoking      = "revoking"
	MassNotices       = "notifying"
	MassDone          = "done"
)

// ProgressQuery returns a mass revocation's progress.
const ProgressQuery = "progress"

// Mass revocation defaults.
const (
	DefaultMassBatchSize = 5000
	DefaultCRLEvery      = 20
	// batchesPerRun bounds the history of one run; the next run continues
	// from the cursor.
	batchesPerRun = 100
	// pipelinedChange is the workflow.GetVersion change ID of the pipelined
	// revocation loop: each page's OCSP answers are signed by the signing
	// worker (SignRevokedOCSP) while the next page is revoked, intermediate
	// CRLs are published while revocation goes on, and nothing re-scans
	// every certificate for OCSP (RefreshOCSP) at each CRL publication.
	pipelinedChange = "mass-revocation-pipelined"
	// ocspInFlight bounds the OCSP signing activities running behind the
	// revocation cursor.
	ocspInFlight = 2
	// statusEvery batches the pipelined loop updates the CaseStatus search
	// attribute and the details (each update is a visibility write).
	statusEvery = 10
	// ariChange is the workflow.GetVersion change ID of the ARI step: a
	// mass revocation (dry run off) first moves the ARI renewal window
	// (RFC 9773) of every selected ACME certificate to now, optionally
	// waits RenewalGraceSeconds for the clients to renew, and counts the
	// renewals (MassProgress.Renewed).
	ariChange = "mass-revocation-ari"
	// ariPollEvery is how often the renewals are counted during the grace.
	ariPollEvery = 5 * time.Minute
	// MaxRenewalGrace bounds RenewalGraceSeconds: the shortest revocation
	// deadline of BR 4.9.1.1 is 24 hours.
	MaxRenewalGrace = 12 * time.Hour
)

// MassRevocationWorkflowID is the workflow ID of incident.
func MassRevocationWorkflowID(incident string) string {
	return cases.TypeMassRevocation + "/" + incident
}

// MassRevocationInput is what staff start (`temporal workflow start --type
// MassRevocation ...`, see the README).
type MassRevocationInput struct {
	Incident string              `json:"incident"`
	Selector activities.Selector `json:"selector"`
	Reason   string              `json:"reason"` // keyCompromise, cessationOfOperation, superseded, privilegeWithdrawn, affiliationChanged
	// DryRun defaults to true: count and sample, change nothing. Set
	// "dry_run": false to revoke.
	DryRun    *bool `json:"dry_run,omitempty"`
	BatchSize int   `json:"batch_size,omitempty"`
	// CRLEvery regenerates the touched CRL shards every N batches.
	CRLEvery int  `json:"crl_every,omitempty"`
	Notify   bool `json:"notify,omitempty"`
	// RenewalGraceSeconds, with dry run off, waits that long between moving
	// the ARI renewal windows to now and the first revocation, so ACME
	// clients renew first (at most MaxRenewalGrace; 0 revokes at once).
	RenewalGraceSeconds int `json:"renewal_grace_seconds,omitempty"`
	// Progress is carried across continue-as-new; leave it empty.
	Progress *MassProgress `json:"progress,omitempty"`
}

// MassProgress is the state of a mass revocation; the progress query returns it.
type MassProgress struct {
	Status       string
	Matched      int64    // dry run: how many certificates the selector matches
	Sample       []string // dry run: a few matching serials
	Cursor       string   // last serial handled
	Revoked      int64
	Batches      int
	Runs         int
	Shards       []activities.ShardRef // every shard touched
	Pending      []activities.ShardRef // touched since the last CRL
	CRLs         int
	NoticeCursor string
	Notified     int64
	// Pipelined: this incident's OCSP answers are signed page by page
	// (OCSPCursor: every page up to it is signed). LegacyOCSP: an earlier
	// run revoked pages without that, so the end refreshes OCSP as before.
	Pipelined  bool   `json:",omitempty"`
	OCSPCursor string `json:",omitempty"`
	LegacyOCSP bool   `json:",omitempty"`
	// ARI: the renewal windows of this incident's ACME certificates were
	// moved to now (RenewalWindows of them) before anything was revoked;
	// Renewed of them have been replaced by an ACME renewal so far
	// (counted during the grace and after the revocation).
	ARI               bool      `json:",omitempty"`
	RenewalWindows    int64     `json:",omitempty"`
	Renewed           int64     `json:",omitempty"`
	RenewalGraceUntil time.Time `json:",omitempty"`
	StartedAt         time.Time
	FinishedAt        time.Time
}

// MassRevocation revokes every certificate a selector matches, in database
// batches, for CA key compromise, end of service or a mis-issuance incident
// (workflow 6). One workflow, never one per certificate; continue-as-new
// keeps its history small.
func MassRevocation(ctx workflow.Context, in MassRevocationInput) (MassProgress, error) {
	code, _, err := RevocationPolicy(in.Reason, RequesterStaff, "")
	if err != nil {
		return MassProgress{}, temporal.NewNonRetryableApplicationError(err.Error(), activities.ErrTypeInvalid, nil)
	}
	if in.Incident == "" {
		return MassProgress{}, temporal.NewNonRetryableApplicationError("incident is required", activities.ErrTypeInvalid, nil)
	}
	if in.BatchSize <= 0 {
		in.BatchSize = DefaultMassBatchSize
	}
	if in.CRLEvery <= 0 {
		in.CRLEvery = DefaultCRLEvery
	}
	p := in.Progress
	if p == nil {
		p = &MassProgress{StartedAt: workflow.Now(ctx)}
	}
	p.Runs++
	if err := workflow.SetQueryHandler(ctx, ProgressQuery, func() (MassProgress, error) { return *p, nil }); err != nil {
		return *p, err
	}
	if err := workflow.SetQueryHandler(ctx, StatusQuery, func() (MassProgress, error) { return *p, nil }); err != nil {
		return *p, err
	}
	if err := workflow.UpsertTypedSearchAttributes(ctx, cases.CaseType.ValueSet(cases.TypeMassRevocation)); err != nil {
		return *p, err
	}
	if in.Selector.ResellerID != "" {
		if err := workflow.UpsertTypedSearchAttributes(ctx, cases.ResellerID.ValueSet(in.Selector.ResellerID)); err != nil {
			return *p, err
		}
	}
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 5 * time.Minute,
		HeartbeatTimeout:    time.Minute,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: time.Second, MaximumInterval: time.Minute, NonRetryableErrorTypes: []string{activities.ErrTypeInvalid}},
	})
	var a *activities.Activities

	if in.DryRun == nil || *in.DryRun {
		p.Status = MassCounting
		var c activities.CountResult
		if err := workflow.ExecuteActivity(ctx, a.CountCertificates, in.Selector).Get(ctx, &c); err != nil {
			return *p, err
		}
		p.Matched, p.Sample, p.Status, p.FinishedAt = c.Count, c.Sample, MassDryRun, workflow.Now(ctx)
		return *p, setStatus(ctx, MassDryRun, fmt.Sprintf("dry run: %d certificates match; nothing changed", c.Count))
	}

	if in.RenewalGraceSeconds < 0 || time.Duration(in.RenewalGraceSeconds)*time.Second > MaxRenewalGrace {
		return *p, temporal.NewNonRetryableApplicationError(fmt.Sprintf("renewal_grace_seconds must be between 0 and %d", int(MaxRenewalGrace.Seconds())), activities.ErrTypeInvalid, nil)
	}
	if p.Status == "" && workflow.GetVersion(ctx, ariChange, workflow.DefaultVersion, 1) == 1 {
		if err := massRenewalWindows(ctx, in, p); err != nil {
			return *p, err
		}
	}

	if p.Status == "" || p.Status == MassRevoking || p.Status == MassRenewalWindow || p.Status == MassRenewalGrace {
		p.Status = MassRevoking
		revoke := massRevokeSequential
		if workflow.GetVersion(ctx, pipelinedChange, workflow.DefaultVersion, 1) == 1 {
			revoke = massRevokePipelined
		}
		if err := revoke(ctx, in, p, code); err != nil {
			return *p, err // a failure, or continue-as-new
		}
		if p.ARI && p.RenewalWindows > 0 {
			if err := countRenewed(ctx, in, p); err != nil {
				return *p, err
			}
		}
		p.Status = MassNotices
	}

	if in.Notify {
		if err := setStatus(ctx, MassNotices, fmt.Sprintf("revoked %d; sending notices", p.Revoked)); err != nil {
			return *p, err
		}
		for {
			var r activities.NotifyRevokedResult
			if err := workflow.ExecuteActivity(ctx, a.NotifyRevoked, activities.NotifyRevokedInput{
				WorkflowID: MassRevocationWorkflowID(in.Incident), After: p.NoticeCursor, Limit: in.BatchSize,
			}).Get(ctx, &r); err != nil {
				return *p, err
			}
			if r.Count == 0 && r.Last == "" {
				break
			}
			p.NoticeCursor, p.Notified = r.Last, p.Notified+int64(r.Count)
			if workflow.GetInfo(ctx).GetContinueAsNewSuggested() {
				in.Progress = p
				return *p, workflow.NewContinueAsNewError(ctx, MassRevocation, in)
			}
		}
	}
	p.Status, p.FinishedAt = MassDone, workflow.Now(ctx)
	done := fmt.Sprintf("revoked %d certificates in %d batches; %d CRL publications", p.Revoked, p.Batches, p.CRLs)
	if p.ARI {
		done += fmt.Sprintf("; %d of %d ACME certificates renewed (ARI)", p.Renewed, p.RenewalWindows)
	}
	return *p, setStatus(ctx, MassDone, done)
}

// massRenewalWindows is the ARI step of a mass revocation (ariChange): it
// moves the renewal window of every selected ACME certificate to now, then
// waits the renewal grace, counting the renewals every ariPollEvery.
func massRenewalWindows(ctx workflow.Context, in MassRevocationInput, p *MassProgress) error {
	var a *activities.Activities
	p.ARI, p.Status = true, MassRenewalWindow
	if err := setStatus(ctx, MassRenewalWindow, "moving the ARI renewal windows of the selected ACME certificates to now"); err != nil {
		return err
	}
	var r activities.RenewalWindowsResult
	if err := workflow.ExecuteActivity(ctx, a.SetRenewalWindows, activities.RenewalWindowsInput{Selector: in.Selector, Limit: in.BatchSize}).Get(ctx, &r); err != nil {
		return err
	}
	p.RenewalWindows = r.Windows
	grace := time.Duration(in.RenewalGraceSeconds) * time.Second
	if grace <= 0 || r.Windows == 0 {
		return nil
	}
	p.Status, p.RenewalGraceUntil = MassRenewalGrace, workflow.Now(ctx).Add(grace)
	if err := setStatus(ctx, MassRenewalGrace, fmt.Sprintf("ARI renewal window of %d ACME certificates moved to now; revoking after %s",
		r.Windows, p.RenewalGraceUntil.UTC().Format(time.RFC3339))); err != nil {
		return err
	}
	for {
		if err := countRenewed(ctx, in, p); err != nil {
			return err
		}
		left := p.RenewalGraceUntil.Sub(workflow.Now(ctx))
		if left <= 0 {
			return nil
		}
		if err := workflow.Sleep(ctx, min(left, ariPollEvery)); err != nil {
			return err
		}
	}
}

// countRenewed updates p.Renewed: how many selected certificates an ACME
// renewal has replaced.
func countRenewed(ctx workflow.Context, in MassRevocationInput, p *MassProgress) error {
	var a *activities.Activities
	return workflow.ExecuteActivity(ctx, a.CountRenewed, activities.RenewalWindowsInput{Selector: in.Selector, Limit: in.BatchSize}).Get(ctx, &p.Renewed)
}

// massRevokeSequential is the revocation loop of incidents started before
// pipelinedChange: one page at a time, and every CRLEvery pages the CRLs
// and a RefreshOCSP over every certificate. It returns a continue-as-new
// error when the run has done batchesPerRun pages.
func massRevokeSequential(ctx workflow.Context, in MassRevocationInput, p *MassProgress, code int) error {
	for batch := 0; ; batch++ {
		if batch >= batchesPerRun || workflow.GetInfo(ctx).GetContinueAsNewSuggested() {
			in.Progress = p
			return workflow.NewContinueAsNewError(ctx, MassRevocation, in)
		}
		if err := setStatus(ctx, MassRevoking, fmt.Sprintf("revoked %d in %d batches", p.Revoked, p.Batches)); err != nil {
			return err
		}
		r, err := revokePage(ctx, in, p, code)
		if err != nil {
			return err
		}
		if r.Count == 0 && r.Last == "" {
			break
		}
		p.Cursor = r.Last
		p.Revoked += int64(r.Count)
		p.Batches++
		p.Shards = mergeShards(p.Shards, r.Shards)
		p.Pending = mergeShards(p.Pending, r.Shards)
		if p.Batches%in.CRLEvery == 0 {
			if err := massPublish(ctx, p); err != nil {
				return err
			}
		}
	}
	if err := massPublish(ctx, p); err != nil {
		return err
	}
	return nil
}

// massRevokePipelined revokes page after page on the worker while the
// signing worker signs the "revoked" OCSP answers of the pages just revoked
// (at most ocspInFlight pages behind the cursor) and publishes the
// intermediate CRLs (every CRLEvery pages, one publication at a time): two
// task queues, both cores busy. Every activity is idempotent and a run
// waits for everything it started before it continues as new or returns,
// so a crash or a kill -9 anywhere resumes from history with nothing lost:
// a page is revoked in one statement, and an OCSP range is simply re-signed
// when its activity is retried. The last CRL publication covers every shard
// touched since the previous one and completes before the revocation phase
// ends (O14: a CRL within 24 h of a revocation).
func massRevokePipelined(ctx workflow.Context, in MassRevocationInput, p *MassProgress, code int) error {
	var sa *activities.SigningActivities
	if !p.Pipelined {
		// Pages revoked by a run of the older version have their OCSP
		// answers signed only by the RefreshOCSP that run would have done.
		p.Pipelined, p.LegacyOCSP = true, p.Batches > 0
		p.OCSPCursor = p.Cursor
	}
	sctx := workflow.WithActivityOptions(ctx, signingActivityOptions())
	sctx = workflow.WithStartToCloseTimeout(sctx, 10*time.Minute)
	octx := workflow.WithHeartbeatTimeout(sctx, 2*time.Minute)

	type ocspRange struct {
		f       workflow.Future
		through string
	}
	var ocsp []ocspRange
	var crl workflow.Future
	waitOCSP := func(keep int) error { // oldest first, until keep remain
		for len(ocsp) > keep {
			if err := ocsp[0].f.Get(ctx, nil); err != nil {
				return err
			}
			p.OCSPCursor, ocsp = ocsp[0].through, ocsp[1:]
		}
		return nil
	}
	waitCRL := func() error {
		if crl == nil {
			return nil
		}
		f := crl
		crl = nil
		return f.Get(ctx, nil)
	}
	drain := func() error {
		if err := waitOCSP(0); err != nil {
			return err
		}
		return waitCRL()
	}
	for batch := 0; ; batch++ {
		if batch >= batchesPerRun || workflow.GetInfo(ctx).GetContinueAsNewSuggested() {
			if err := drain(); err != nil {
				return err
			}
			in.Progress = p
			return workflow.NewContinueAsNewError(ctx, MassRevocation, in)
		}
		if batch%statusEvery == 0 {
			if err := setStatus(ctx, MassRevoking, fmt.Sprintf("revoked %d in %d batches", p.Revoked, p.Batches)); err != nil {
				return err
			}
		}
		r, err := revokePage(ctx, in, p, code)
		if err != nil {
			return err
		}
		if r.Count == 0 && r.Last == "" {
			break
		}
		ocsp = append(ocsp, ocspRange{through: r.Last, f: workflow.ExecuteActivity(octx, sa.SignRevokedOCSP,
			activities.SignRevokedOCSPInput{Selector: in.Selector, After: p.Cursor, Through: r.Last})})
		p.Cursor = r.Last
		p.Revoked += int64(r.Count)
		p.Batches++
		p.Shards = mergeShards(p.Shards, r.Shards)
		p.Pending = mergeShards(p.Pending, r.Shards)
		if err := waitOCSP(ocspInFlight); err != nil {
			return err
		}
		if p.Batches%in.CRLEvery == 0 {
			// One publication at a time, so a later CRL number never
			// carries fewer entries.
			if err := waitCRL(); err != nil {
				return err
			}
			crl = workflow.ExecuteActivity(sctx, sa.PublishCRLs, activities.PublishCRLsInput{Shards: p.Pending})
			p.Pending = nil
			p.CRLs++
		}
	}
	if err := drain(); err != nil {
		return err
	}
	if len(p.Pending) > 0 {
		if err := workflow.ExecuteActivity(sctx, sa.PublishCRLs, activities.PublishCRLsInput{Shards: p.Pending}).Get(ctx, nil); err != nil {
			return err
		}
		p.Pending = nil
		p.CRLs++
	}
	if p.LegacyOCSP {
		if err := workflow.ExecuteActivity(sctx, sa.RefreshOCSP, activities.RefreshOCSPInput{}).Get(ctx, nil); err != nil {
			return err
		}
		p.LegacyOCSP = false
	}
	return nil
}

// massPublish regenerates the pending CRL shards and refreshes the OCSP
// answers of everything revoked so far.
func massPublish(ctx workflow.Context, p *MassProgress) error {
	if len(p.Pending) == 0 {
		return nil
	}
	sctx := workflow.WithActivityOptions(ctx, signingActivityOptions())
	sctx = workflow.WithStartToCloseTimeout(sctx, 10*time.Minute)
	var sa *activities.SigningActivities
	if err := workflow.ExecuteActivity(sctx, sa.PublishCRLs, activities.PublishCRLsInput{Shards: p.Pending}).Get(ctx, nil); err != nil {
		return err
	}
	if err := workflow.ExecuteActivity(sctx, sa.RefreshOCSP, activities.RefreshOCSPInput{}).Get(ctx, nil); err != nil {
		return err
	}
	p.Pending = nil
	p.CRLs++
	return nil
}

func mergeShards(have, add []activities.ShardRef) []activities.ShardRef {
	seen := make(map[activities.ShardRef]bool, len(have))
	for _, s := range have {
		seen[s] = true
	}
	for _, s := range add {
		if !seen[s] {
			seen[s] = true
			have = append(have, s)
		}
	}
	sort.Slice(have, func(i, j int) bool {
		if have[i].Issuer != have[j].Issuer {
			return have[i].Issuer < have[j].Issuer
		}
		return have[i].Shard < have[j].Shard
	})
	return have
}

// revokePage revokes the page after p.Cursor (both loops, old and new).
func revokePage(ctx workflow.Context, in MassRevocationInput, p *MassProgress, code int) (activities.RevokeBatchResult, error) {
	var a *activities.Activities
	var r activities.RevokeBatchResult
	err := workflow.ExecuteActivity(ctx, a.RevokeBatch, activities.RevokeBatchInput{
		Selector: in.Selector, After: p.Cursor, Limit: in.BatchSize, ReasonCode: code,
		WorkflowID: MassRevocationWorkflowID(in.Incident), RequestedBy: "mass-revocation:" + in.Incident,
	}).Get(ctx, &r)
	return r, err
}
