package httpapi

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"certdesk/internal/api"
	"certdesk/internal/challenge"
	"certdesk/workflows"
)

// codeResponse is the answer to an accepted code.
type codeResponse struct {
	Accepted     bool `json:"accepted"`
	AttemptsLeft int  `json:"attempts_left"`
	Locked       bool `json:"locked"`
	Expired      bool `json:"expired"`
}

// submitCode sends a one-time code to verification/<id> as the submit-code
// Update. The workflow counts attempts and locks after five wrong codes; the
// per-address limit (codeLimit) stops guessing across many verifications.
//
//	200 accepted · 422 wrong code (attempts_left) · 423 locked · 410 expired ·
//	409 not waiting for a code · 404 no such verification
func (s *Server) submitCode(w http.ResponseWriter, r *http.Request) {
	var req codeRequest
	if !s.decodeValid(w, r, &req) {
		return
	}
	id := r.PathValue("id")
	if !idPattern.MatchString(id) {
		s.problem(w, r, api.New(http.StatusNotFound, api.TypeNotFound, "no such verification"))
		return
	}
	wid := workflows.VerificationWorkflowID(id)

	// The state first: a locked or expired case answers without an attempt.
	qctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	var st workflows.VerificationState
	val, err := s.tc.QueryWorkflow(qctx, wid, "", workflows.StatusQuery)
	if err == nil {
		err = val.Get(&st)
	}
	var nf *serviceerror.NotFound
	if errors.As(err, &nf) {
		s.problem(w, r, api.New(http.StatusNotFound, api.TypeNotFound, "no such verification"))
		return
	}
	if err != nil {
		s.temporalError(w, r, "query verification", err)
		return
	}
	if p := verificationStateProblem(st.Status); p != nil {
		s.problem(w, r, p)
		return
	}
	// The wrong kind of value is a typo, not a guess: refused, not counted.
	if st.MailboxControl != challenge.IsMailboxValue(req.Code) {
		var v api.Validation
		if st.MailboxControl {
			v.Add("code", "invalid", "this verification proves control of a mailbox: send the 26-character value from the email")
		} else {
			v.Add("code", "invalid", "send the 6-digit code from the email")
		}
		s.problem(w, r, v.Problem())
		return
	}

	// The Update's argument stays in workflow history: a verification
	// that takes digests gets the keyed digest of the value, never the
	// value (older ones still take the value).
	sub := workflows.CodeSubmission{Code: req.Code}
	if st.DigestOnly {
		kind := challenge.KindCode
		if st.MailboxControl {
			kind = challenge.KindMailbox
		}
		d, err := s.st.ChallengeDigest(id, kind, req.Code)
		if err != nil {
			s.internalError(w, r, "challenge digest", err)
			return
		}
		sub = workflows.CodeSubmission{Digest: d}
	}

	uctx, cancel2 := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel2()
	var res workflows.CodeResult
	h, err := s.tc.UpdateWorkflow(uctx, client.UpdateWorkflowOptions{
		WorkflowID:   wid,
		UpdateName:   workflows.SubmitCodeUpdate,
		Args:         []any{sub},
		WaitForStage: client.WorkflowUpdateStageCompleted,
	})
	if err == nil {
		err = h.Get(uctx, &res)
	}
	var appErr *temporal.ApplicationError
	switch {
	case errors.As(err, &nf):
		s.problem(w, r, api.New(http.StatusConflict, api.TypeVerificationDone, "the verification is closed"))
		return
	case errors.As(err, &appErr):
		// The validator refused: the state changed since the query.
		msg := appErr.Message()
		switch {
		case strings.Contains(msg, "("+workflows.VerLocked+")"):
			s.problem(w, r, verificationStateProblem(workflows.VerLocked))
		case strings.Contains(msg, "("+workflows.VerCodeExpired+")"):
			s.problem(w, r, verificationStateProblem(workflows.VerCodeExpired))
		default:
			s.problem(w, r, api.New(http.StatusConflict, api.TypeVerificationDone, "the verification is not waiting for a code"))
		}
		return
	case err != nil:
		s.temporalError(w, r, "submit code", err)
		return
	}
	switch {
	case res.Accepted:
		writeJSON(w, http.StatusOK, codeResponse{Accepted: true, AttemptsLeft: res.AttemptsLeft})
	case res.Expired:
		s.problem(w, r, verificationStateProblem(workflows.VerCodeExpired))
	case res.Locked:
		s.problem(w, r, verificationStateProblem(workflows.VerLocked))
	default:
		s.problem(w, r, api.New(http.StatusUnprocessableEntity, api.TypeCodeIncorrect, "the code is not correct").
			With("attempts_left", res.AttemptsLeft).With("accepted", false).With("locked", false).With("expired", false))
	}
}

// verificationStateProblem is the answer for a verification not waiting
// for a code, or nil when it is.
func verificationStateProblem(status string) *api.Problem {
	switch status {
	case workflows.VerAwaitingCode:
		return nil
	case workflows.VerLocked:
		return api.New(http.StatusLocked, api.TypeVerificationLock,
			"too many wrong codes: the verification is locked; ask for a new application or request").
			With("attempts_left", 0).With("accepted", false).With("locked", true).With("expired", false)
	case workflows.VerCodeExpired:
		return api.New(http.StatusGone, api.TypeCodeExpired, "the code has expired; ask for a new application or request").
			With("attempts_left", 0).With("accepted", false).With("locked", false).With("expired", true)
	}
	return api.New(http.StatusConflict, api.TypeVerificationDone, "the verification is not waiting for a code")
}
