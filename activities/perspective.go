package activities

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"certdesk/internal/caa"
	"certdesk/internal/config"
	"certdesk/internal/dcv"
	"certdesk/internal/mpic"
	"certdesk/internal/store"
)

// Outcomes of a domain validation determination (the primary's and each
// remote perspective's).
const (
	OutcomeValid   = "valid"
	OutcomeInvalid = "invalid"
	OutcomeError   = "error"
)

// PerspectiveCheckDomainName is the activity a remote network perspective
// runs; each perspective's worker registers it on its own task queue.
const PerspectiveCheckDomainName = "PerspectiveCheckDomain"

// Perspective is a remote network perspective (BR §3.2.2.9): a worker that
// repeats domain validation from its own network with its own resolver. It
// holds no database, CA key or mail credentials; its answer goes back to the
// workflow, which records it through the primary's activities.
type Perspective struct {
	Name string
	RIR  string
	DCV  *dcv.Validator
	CAA  *caa.Checker
}

// PerspectiveCheckInput is one domain validation to repeat.
type PerspectiveCheckInput struct {
	ApplicationID string
	Domain        string
	Method        string
	Token         string
}

// CheckDomain repeats one domain validation and returns this perspective's
// determination. Only a cancelled context is an activity error: "not found"
// and "refused" are determinations the quorum rule weighs.
func (p *Perspective) CheckDomain(ctx context.Context, in PerspectiveCheckInput) (mpic.Determination, error) {
	err := p.DCV.Validate(ctx, in.Method, in.Domain, in.Token)
	if ctx.Err() != nil {
		return mpic.Determination{}, ctx.Err()
	}
	d := mpic.Determination{Perspective: p.Name, RIR: p.RIR, Outcome: OutcomeValid, At: time.Now().UTC()}
	var ref *dcv.Refusal
	switch {
	case err == nil:
	case errors.Is(err, dcv.ErrNotYet), errors.As(err, &ref):
		d.Outcome, d.Detail = OutcomeInvalid, err.Error()
	default:
		d.Outcome, d.Detail = OutcomeError, err.Error()
	}
	return d, nil
}

// ListPerspectives returns the remote perspectives this deployment
// corroborates with (CERTDESK_PERSPECTIVES). An activity, not a workflow
// constant, so configuration changes reach new cases and recorded cases
// replay with the list they used.
func (a *Activities) ListPerspectives(context.Context) ([]mpic.Perspective, error) {
	return a.Config.Perspectives, nil
}

// CorroborationInput is one corroboration round to record.
type CorroborationInput struct {
	ApplicationID  string
	Domain         string
	Check          string // dcv or caa
	Round          int
	Primary        mpic.Determination
	Determinations []mpic.Determination
	Decision       mpic.Decision
}

// RecordCorroboration stores one round's determinations and verdict, the
// evidence an auditor reads. Insert-once per round.
func (a *Activities) RecordCorroboration(ctx context.Context, in CorroborationInput) error {
	dets, err := json.Marshal(append([]mpic.Determination{in.Primary}, in.Determinations...))
	if err != nil {
		return nonRetryable(ErrTypeInvalid, "corroboration: "+err.Error(), nil)
	}
	dec, err := json.Marshal(in.Decision)
	if err != nil {
		return nonRetryable(ErrTypeInvalid, "corroboration: "+err.Error(), nil)
	}
	return storeErr(a.Store.RecordCorroboration(ctx, store.Corroboration{
		ApplicationID: in.ApplicationID, Domain: in.Domain, Check: in.Check, Round: in.Round,
		PrimaryOutcome: in.Primary.Outcome, OK: in.Decision.OK, Reason: in.Decision.Reason,
		Determinations: dets, Decision: dec, DecidedAt: in.Primary.At,
	}), "corroboration")
}

// NewPerspective builds remote perspective name in RIR from cfg: its own
// validator with this process's resolver (CERTDESK_DCV_RESOLVER).
func NewPerspective(cfg *config.Config, name, rir string) (*Perspective, error) {
	if !mpic.ValidRIR(rir) {
		return nil, fmt.Errorf("perspective %s: RIR %q is not one of %s", name, rir, strings.Join(mpic.RIRs, ", "))
	}
	v := &dcv.Validator{HTTPPort: cfg.DCVHTTPPort, Resolver: cfg.DCVResolver, DevNetworks: cfg.DCVDevNetworks}
	if err := v.Check(); err != nil {
		return nil, err
	}
	return &Perspective{Name: name, RIR: rir, DCV: v, CAA: NewCAAChecker(cfg)}, nil
}
