package workflows

import (
	"fmt"
	"strings"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"certdesk/activities"
	"certdesk/internal/config"
	"certdesk/internal/mpic"
)

// PerspectiveTaskQueuePrefix starts the task queue of every remote network
// perspective: certdesk-perspective-<name>.
const PerspectiveTaskQueuePrefix = "certdesk-perspective-"

// PerspectiveTaskQueue is the task queue the perspective name polls.
func PerspectiveTaskQueue(name string) string { return PerspectiveTaskQueuePrefix + name }

// PerspectiveName is the inverse of PerspectiveTaskQueue.
func PerspectiveName(taskQueue string) (string, bool) {
	name, ok := strings.CutPrefix(taskQueue, PerspectiveTaskQueuePrefix)
	return name, ok && name != ""
}

// mpicChange is the workflow.GetVersion change ID under which applications
// corroborate each domain validation from the remote perspectives.
const mpicChange = "application-mpic"

// Corroboration timing. Variables only so tests can read them.
var (
	// PerspectiveAnswerTimeout bounds how long a round waits for one
	// perspective; one that has not answered by then does not corroborate.
	PerspectiveAnswerTimeout = 5 * time.Minute
	// CorroborationRounds is how many rounds are tried before the domain is
	// refused (BR §3.2.2.9 allows immediate retries; a round never reuses an
	// earlier round's corroborations).
	CorroborationRounds = 3
	// CorroborationRetryAfter is the pause between rounds.
	CorroborationRetryAfter = time.Minute
)

// Corroboration is what staff see of one name's corroboration for one
// check: the last round's determinations and verdict.
type Corroboration struct {
	Check          string // dcv or caa
	Name           string
	Round          int
	Determinations []mpic.Determination
	Decision       mpic.Decision
}

// Checks that are corroborated.
const (
	CheckDCV = "dcv"
	CheckCAA = "caa"
)

// perspectiveCheck is one check to repeat from every remote perspective: the
// activity the perspectives run, its input, and the primary's outcome they
// must match.
type perspectiveCheck struct {
	check    string
	name     string
	activity string
	input    any
	outcome  string
}

// corroborate repeats the primary's determination of c from every remote
// perspective and applies the BR §3.2.2.9 quorum at the workflow's current
// time. A quorum not met after CorroborationRounds rounds refuses the name.
func (w *application) corroborate(ctx workflow.Context, c perspectiveCheck) error {
	if w.perspectives == nil {
		lctx := workflow.WithLocalActivityOptions(ctx, localActivityOptions())
		var a *activities.Activities
		if err := workflow.ExecuteLocalActivity(lctx, a.ListPerspectives).Get(ctx, &w.perspectives); err != nil {
			return err
		}
		if w.perspectives == nil {
			w.perspectives = []mpic.Perspective{}
		}
	}
	var last mpic.Decision
	for round := 1; round <= CorroborationRounds; round++ {
		primary := mpic.Determination{Perspective: "primary", Outcome: c.outcome, At: workflow.Now(ctx)}
		dets := w.askPerspectives(ctx, c)
		last = mpic.Corroborate(primary, dets, workflow.Now(ctx))
		if w.state.Corroborations == nil {
			w.state.Corroborations = map[string]Corroboration{}
		}
		w.state.Corroborations[c.check+":"+c.name] = Corroboration{Check: c.check, Name: c.name, Round: round, Determinations: dets, Decision: last}
		var a *activities.Activities
		if err := w.exec(ctx, a.RecordCorroboration, activities.CorroborationInput{
			ApplicationID: w.in.ApplicationID, Domain: c.name, Check: c.check, Round: round,
			Primary: primary, Determinations: dets, Decision: last,
		}, nil); err != nil {
			return err
		}
		if last.OK {
			workflow.SetCurrentDetails(ctx, c.check+" "+c.name+": "+last.Reason)
			return nil
		}
		if round < CorroborationRounds {
			workflow.SetCurrentDetails(ctx, fmt.Sprintf("%s %s: round %d not corroborated (%s); retrying", c.check, c.name, round, last.Reason))
			if err := workflow.Sleep(ctx, CorroborationRetryAfter); err != nil {
				return err
			}
		}
	}
	return &rejection{reason: c.check + " of " + c.name + " not corroborated: " + last.Reason}
}

// askPerspectives runs one check on every remote perspective at once. A
// perspective that fails or does not answer in time counts as used and not
// corroborating ("error: …").
func (w *application) askPerspectives(ctx workflow.Context, c perspectiveCheck) []mpic.Determination {
	futures := make([]workflow.Future, len(w.perspectives))
	for i, p := range w.perspectives {
		pctx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
			TaskQueue:              PerspectiveTaskQueue(p.Name),
			ScheduleToCloseTimeout: PerspectiveAnswerTimeout,
			StartToCloseTimeout:    time.Minute,
			RetryPolicy:            &temporal.RetryPolicy{InitialInterval: 5 * time.Second, MaximumAttempts: 3},
		})
		futures[i] = workflow.ExecuteActivity(pctx, c.activity, c.input)
	}
	out := make([]mpic.Determination, len(w.perspectives))
	for i, f := range futures {
		var d mpic.Determination
		if err := f.Get(ctx, &d); err != nil {
			d = mpic.Determination{Perspective: w.perspectives[i].Name, RIR: w.perspectives[i].RIR,
				Outcome: activities.OutcomeError, Detail: "no answer: " + err.Error(), At: workflow.Now(ctx)}
		}
		// The quorum counts the perspective the workflow asked, whatever
		// the worker on that queue calls itself.
		d.Perspective, d.RIR = w.perspectives[i].Name, w.perspectives[i].RIR
		out[i] = d
	}
	return out
}

// ActivityRegistry is what RegisterPerspective needs of a worker.
type ActivityRegistry interface {
	RegisterActivityWithOptions(a interface{}, options activity.RegisterOptions)
}

// RegisterPerspective registers a remote perspective's check on its worker,
// which must poll PerspectiveTaskQueue(p.Name) and nothing else.
func RegisterPerspective(r ActivityRegistry, p *activities.Perspective) {
	r.RegisterActivityWithOptions(p.CheckDomain, activity.RegisterOptions{Name: activities.PerspectiveCheckDomainName})
	r.RegisterActivityWithOptions(p.CheckCAA, activity.RegisterOptions{Name: activities.PerspectiveCheckCAAName})
}

// NewPerspectiveWorkers makes one worker per remote perspective of cfg, each
// polling its own task queue with its own validator and CAA checker, for
// stacks that run every perspective in one process (tests, benchmarks).
// resolver(name), when it returns an address, gives that perspective its
// own resolver (a simulated hijack); nil keeps cfg's for all.
func NewPerspectiveWorkers(c client.Client, cfg *config.Config, resolver func(name string) string, opts worker.Options) ([]worker.Worker, error) {
	var out []worker.Worker
	for _, p := range cfg.Perspectives {
		pcfg := *cfg
		if resolver != nil {
			if r := resolver(p.Name); r != "" {
				pcfg.DCVResolver = r
			}
		}
		pa, err := activities.NewPerspective(&pcfg, p.Name, p.RIR)
		if err != nil {
			return nil, err
		}
		w := worker.New(c, PerspectiveTaskQueue(p.Name), opts)
		RegisterPerspective(w, pa)
		out = append(out, w)
	}
	return out, nil
}
