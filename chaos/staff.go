package main

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"certdesk/internal/cases"
	"certdesk/internal/challenge"
	"certdesk/internal/testenv"
	"certdesk/workflows"
)

// staffStats counts what staff actions went through.
type staffStats struct {
	updates    atomic.Int64 // Updates that ended applied
	firstTry   atomic.Int64 // … on the first attempt
	transient  atomic.Int64 // attempts that timed out or failed for want of a worker, Temporal or PostgreSQL
	rejected   atomic.Int64 // attempts the validator refused
	recognised atomic.Int64 // retries found already applied (refused as a repeat, or the workflow moved on)
	codes      atomic.Int64 // one-time codes read from MailDev

	// A second click: the same decision sent again under a new UpdateID
	// after the first was applied.
	repeatRefused  atomic.Int64 // refused by the validator, the first recognised as applied
	repeatClosed   atomic.Int64 // the case had already closed
	repeatAccepted atomic.Int64 // applied a second time: a violation
	repeatErrors   []string
	mu             sync.Mutex
}

// Per-attempt timeouts: generous, because the machine is shared and the
// worker may be dead for a while; the case deadline bounds the whole.
const (
	updateAttemptTimeout = 45 * time.Second
	rpcTimeout           = 15 * time.Second
	statePoll            = 3 * time.Second
)

// update sends a staff decision as a Temporal Update and retries it until
// it is applied. Every attempt carries the same UpdateID, so Temporal
// deduplicates an attempt that was accepted although the answer was lost
// (a killed worker, a restarting server). An attempt that fails — a
// timeout, an unavailable server, or a refusal by the validator — is
// followed by a look at the workflow's state: applied reports whether the
// decision is already in (the validator refuses a repeat because the
// workflow has moved on), and then the Update counts as done.
func (h *harness) update(ctx context.Context, wid, name string, arg any, applied func(context.Context) bool) error {
	id := "chaos/" + name + "/" + wid
	var last error
	for attempt := 1; time.Now().Before(h.deadline); attempt++ {
		err := h.sendUpdate(ctx, wid, id, name, arg)
		if err == nil {
			h.stats.updates.Add(1)
			if attempt == 1 {
				h.stats.firstTry.Add(1)
			}
			return nil
		}
		last = err
		var appErr *temporal.ApplicationError
		if errors.As(err, &appErr) {
			h.stats.rejected.Add(1)
		} else {
			h.stats.transient.Add(1)
		}
		if ctx.Err() != nil {
			break
		}
		if applied(ctx) {
			h.stats.updates.Add(1)
			h.stats.recognised.Add(1)
			return nil
		}
		if !sleepCtx(ctx, 2*time.Second) {
			break
		}
	}
	return fmt.Errorf("update %s on %s not applied before the deadline: %v", name, wid, last)
}

// sendUpdate sends one Update and waits for its outcome, for at most
// updateAttemptTimeout.
func (h *harness) sendUpdate(ctx context.Context, wid, id, name string, arg any) error {
	uctx, cancel := context.WithTimeout(ctx, updateAttemptTimeout)
	defer cancel()
	hd, err := h.s.TC.UpdateWorkflow(uctx, client.UpdateWorkflowOptions{
		UpdateID: id, WorkflowID: wid, UpdateName: name, Args: []any{arg},
		WaitForStage: client.WorkflowUpdateStageCompleted,
	})
	if err != nil {
		return err
	}
	return hd.Get(uctx, nil)
}

// repeat sends an applied decision again under a new UpdateID, as staff
// clicking twice in the UI would: the validator must refuse it (the case is
// past the decision), or the case has closed. Transient failures are
// retried.
func (h *harness) repeat(ctx context.Context, wid, name string, arg any, applied func(context.Context) bool) {
	id := "chaos/" + name + "/" + wid + "/again"
	for time.Now().Before(h.deadline) {
		err := h.sendUpdate(ctx, wid, id, name, arg)
		var appErr *temporal.ApplicationError
		switch {
		case err == nil:
			h.stats.repeatAccepted.Add(1)
			h.stats.mu.Lock()
			h.stats.repeatErrors = append(h.stats.repeatErrors, wid+" "+name+": applied twice")
			h.stats.mu.Unlock()
			return
		case errors.As(err, &appErr) && applied(ctx):
			h.stats.repeatRefused.Add(1)
			return
		case errors.As(err, &appErr):
			// Refused, yet the first is not visible as applied: look again.
		default:
			if running, _, derr := h.describe(ctx, wid); derr == nil && !running {
				h.stats.repeatClosed.Add(1)
				return
			}
		}
		if !sleepCtx(ctx, 2*time.Second) {
			return
		}
	}
	h.stats.mu.Lock()
	h.stats.repeatErrors = append(h.stats.repeatErrors, wid+" "+name+": no answer before the deadline")
	h.stats.mu.Unlock()
}

// describe returns whether the workflow runs and its CaseStatus. Neither
// needs a worker.
func (h *harness) describe(ctx context.Context, wid string) (running bool, status string, err error) {
	dctx, cancel := context.WithTimeout(ctx, rpcTimeout)
	defer cancel()
	d, err := h.s.TC.DescribeWorkflow(dctx, wid, "")
	if err != nil {
		return false, "", err
	}
	status, _ = d.TypedSearchAttributes.GetKeyword(cases.CaseStatus)
	return d.Status == enums.WORKFLOW_EXECUTION_STATUS_RUNNING, status, nil
}

// applied reports whether a staff decision is in: the workflow closed
// (it can only have closed past the decision, which the end-state checks
// confirm) or its status query satisfies pred.
func applied[T any](ctx context.Context, h *harness, wid string, pred func(T) bool) bool {
	running, _, err := h.describe(ctx, wid)
	if err != nil {
		return false
	}
	if !running {
		return true
	}
	qctx, cancel := context.WithTimeout(ctx, rpcTimeout)
	defer cancel()
	v, err := h.s.TC.QueryWorkflow(qctx, wid, "", workflows.StatusQuery)
	if err != nil {
		return false
	}
	var st T
	if err := v.Get(&st); err != nil {
		return false
	}
	return pred(st)
}

// waitCaseStatus waits until the workflow's CaseStatus is one of want.
func (h *harness) waitCaseStatus(ctx context.Context, wid string, want ...string) error {
	last := ""
	for time.Now().Before(h.deadline) {
		running, st, err := h.describe(ctx, wid)
		if err == nil {
			last = st
			for _, w := range want {
				if st == w {
					return nil
				}
			}
			if !running {
				return fmt.Errorf("%s closed in %q before reaching %v", wid, st, want)
			}
		}
		if !sleepCtx(ctx, statePoll) {
			break
		}
	}
	return fmt.Errorf("%s never reached %v (last %q)", wid, want, last)
}

// result waits for a workflow's result, across Temporal restarts.
func (h *harness) result(ctx context.Context, wid string, out any) error {
	var last error
	for time.Now().Before(h.deadline) {
		gctx, cancel := context.WithTimeout(ctx, time.Minute)
		err := h.s.TC.GetWorkflow(gctx, wid, "").Get(gctx, out)
		cancel()
		if err == nil {
			return nil
		}
		last = err
		// A failed workflow has a final answer: do not wait for another.
		var appErr *temporal.ApplicationError
		var termErr *temporal.TerminatedError
		var toErr *temporal.TimeoutError
		if errors.As(err, &appErr) || errors.As(err, &termErr) || (errors.As(err, &toErr) && ctx.Err() == nil && gctx.Err() == nil) {
			return fmt.Errorf("%s: %w", wid, err)
		}
		if !sleepCtx(ctx, 2*time.Second) {
			break
		}
	}
	return fmt.Errorf("%s: no result before the deadline: %v", wid, last)
}

// verifyIdentity plays the person (the one-time code from MailDev, sent as
// submit-code) and staff (confirm-identity once the documents are checked).
func (h *harness) verifyIdentity(ctx context.Context, verWID, email string) error {
	code, err := h.mail.code(ctx, email, h.deadline)
	if err != nil {
		return fmt.Errorf("%s: %w", verWID, err)
	}
	h.stats.codes.Add(1)
	// As the starter does: the Update carries the keyed digest, never the
	// value (it would stay in workflow history).
	kind := challenge.KindCode
	if challenge.IsMailboxValue(code) {
		kind = challenge.KindMailbox
	}
	digest, err := h.s.Store.ChallengeDigest(strings.TrimPrefix(verWID, cases.TypeVerification+"/"), kind, code)
	if err != nil {
		return err
	}
	err = h.update(ctx, verWID, workflows.SubmitCodeUpdate, workflows.CodeSubmission{Digest: digest},
		func(ctx context.Context) bool {
			return applied(ctx, h, verWID, func(st workflows.VerificationState) bool {
				switch st.Status {
				case workflows.VerRegistry, workflows.VerAwaitingStaff, workflows.VerVerified:
					return true
				}
				return false
			})
		})
	if err != nil {
		return err
	}
	if err := h.waitCaseStatus(ctx, verWID, workflows.VerAwaitingStaff); err != nil {
		return fmt.Errorf("confirm-identity: %w", err)
	}
	return h.update(ctx, verWID, workflows.ConfirmIdentityUpdate,
		workflows.IdentityDecision{Decision: "confirm", Reviewer: "chaos-staff", Evidence: "運転免許証の写し (chaos)"},
		func(ctx context.Context) bool {
			return applied(ctx, h, verWID, func(st workflows.VerificationState) bool { return st.Decision != nil })
		})
}

// ---------------------------------------------------------------------------
// MailDev, read through its filtering REST API.

type mailbox struct {
	md *testenv.MailDev

	mu      sync.Mutex
	fetched time.Time
	codes   map[string]string // address -> one-time code
}

func newMailbox(md *testenv.MailDev) *mailbox {
	return &mailbox{md: md, codes: map[string]string{}}
}

// query lists the messages matching a MailDev filter, bounded at 30 s.
func (m *mailbox) query(ctx context.Context, q string) ([]testenv.Email, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return m.md.Query(ctx, q)
}

var codeRE = regexp.MustCompile(`\b([0-9]{6}|[A-Z2-7]{26})\b`)

// code waits for the one-time code sent to addr. One poller serves every
// waiting case: it lists the verification_code messages at most every few
// seconds.
func (m *mailbox) code(ctx context.Context, addr string, deadline time.Time) (string, error) {
	addr = strings.ToLower(addr)
	for time.Now().Before(deadline) {
		m.mu.Lock()
		if c, ok := m.codes[addr]; ok {
			m.mu.Unlock()
			return c, nil
		}
		if time.Since(m.fetched) >= statePoll {
			msgs, err := m.query(ctx, "headers.x-certdesk-notice=verification_code")
			if err == nil {
				m.fetched = time.Now()
				for _, e := range msgs {
					c := codeRE.FindString(e.Text)
					for _, to := range e.To {
						if a := strings.ToLower(to.Address); c != "" && m.codes[a] == "" {
							m.codes[a] = c
						}
					}
				}
			}
			if c, ok := m.codes[addr]; ok {
				m.mu.Unlock()
				return c, nil
			}
		}
		m.mu.Unlock()
		if !sleepCtx(ctx, statePoll) {
			break
		}
	}
	return "", fmt.Errorf("no one-time code emailed to the case's address before the deadline")
}
