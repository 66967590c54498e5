package activities

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"certdesk/internal/caa"
	"certdesk/internal/config"
	"certdesk/internal/dnsclient"
	"certdesk/internal/mpic"
	"certdesk/internal/store"
)

// CAA outcomes of a determination (the primary's and each perspective's).
const (
	OutcomePermit = "permit"
	OutcomeForbid = "forbid"
)

// PerspectiveCheckCAAName is the CAA activity a remote perspective runs.
const PerspectiveCheckCAAName = "PerspectiveCheckCAA"

// NewCAAChecker checks CAA for cfg's issuer domain names through cfg's
// validating resolver.
func NewCAAChecker(cfg *config.Config) *caa.Checker {
	return &caa.Checker{Resolver: &dnsclient.Client{Address: cfg.DCVResolver}, IssuerDomains: cfg.CAADomains}
}

// CAARequest is one name to check. Mailbox: the name is the domain of a
// client-sign mailbox (issuemail, RFC 9495). AccountURI and Method are the
// RFC 8657 parameters' values for this request, empty when it has none.
type CAARequest struct {
	Name       string
	Mailbox    bool
	AccountURI string
	Method     string
}

func (r CAARequest) caa() caa.Request {
	return caa.Request{Name: r.Name, Mailbox: r.Mailbox, AccountURI: r.AccountURI, Method: r.Method}
}

// CAAInput is one CAA check of an application: every name, under CheckID
// (the workflow's check number; a retry writes the same rows).
type CAAInput struct {
	ApplicationID string
	CheckID       string
	Requests      []CAARequest
}

// CAAOutcome is one name's decision, for the workflow and staff.
type CAAOutcome struct {
	Name      string
	Permitted bool
	Rule      string
	Reason    string
	Record    string `json:",omitempty"`
	IssueBy   time.Time
}

// CheckCAA checks every name of the application from the primary
// perspective and stores each result with its DNS evidence. A refusal is an
// outcome, not an error: the workflow decides.
func (a *Activities) CheckCAA(ctx context.Context, in CAAInput) ([]CAAOutcome, error) {
	out := make([]CAAOutcome, 0, len(in.Requests))
	for _, r := range in.Requests {
		res, err := a.CAA.Check(ctx, r.caa())
		if errors.Is(err, caa.ErrBadRequest) {
			return nil, nonRetryable(ErrTypeInvalid, err.Error(), nil)
		} else if err != nil {
			return nil, err
		}
		ev, err := json.Marshal(res)
		if err != nil {
			return nil, nonRetryable(ErrTypeInvalid, "CAA evidence: "+err.Error(), nil)
		}
		if err := a.Store.RecordCAACheck(ctx, store.CAACheck{
			ApplicationID: in.ApplicationID, Name: r.Name, CheckID: in.CheckID, Permitted: res.Permitted,
			Rule: string(res.Rule), Reason: res.Reason, Record: res.Record, Evidence: ev,
			CheckedAt: res.Evidence.CheckedAt, IssueBy: res.Evidence.IssueBy,
		}); err != nil {
			return nil, storeErr(err, "CAA check")
		}
		out = append(out, CAAOutcome{Name: r.Name, Permitted: res.Permitted, Rule: string(res.Rule), Reason: res.Reason,
			Record: res.Record, IssueBy: res.Evidence.IssueBy})
	}
	return out, nil
}

// CheckCAA repeats one name's CAA check from this remote perspective.
func (p *Perspective) CheckCAA(ctx context.Context, r CAARequest) (mpic.Determination, error) {
	res, err := p.CAA.Check(ctx, r.caa())
	if ctx.Err() != nil {
		return mpic.Determination{}, ctx.Err()
	}
	d := mpic.Determination{Perspective: p.Name, RIR: p.RIR, At: time.Now().UTC()}
	switch {
	case err != nil:
		d.Outcome, d.Detail = OutcomeError, err.Error()
	case res.Permitted:
		d.Outcome, d.Detail = OutcomePermit, string(res.Rule)
	default:
		d.Outcome, d.Detail = OutcomeForbid, string(res.Rule)+": "+res.Reason
	}
	return d, nil
}
