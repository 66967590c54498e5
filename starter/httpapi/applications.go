package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"certdesk/activities"
	"certdesk/internal/api"
	"certdesk/internal/cases"
	"certdesk/internal/dcv"
	"certdesk/internal/pki"
	"certdesk/internal/pki/problem"
	"certdesk/internal/product"
	"certdesk/internal/status"
	"certdesk/internal/store"
	"certdesk/workflows"
)

// statusWithdrawalRequested is the API's answer to a withdrawal: the
// workflow has the signal; GET shows withdrawn once it has acted on it.
const statusWithdrawalRequested = "withdrawal_requested"

// applicationResponse is the answer of POST and GET /v1/applications.
type applicationResponse struct {
	ID                string                      `json:"id"`
	WorkflowID        string                      `json:"workflow_id"`
	Status            string                      `json:"status"`
	Reason            string                      `json:"reason,omitempty"`
	Product           string                      `json:"product,omitempty"`
	VerificationID    string                      `json:"verification_id,omitempty"`
	CertificateSerial string                      `json:"certificate_serial,omitempty"`
	DueAt             *time.Time                  `json:"due_at,omitempty"`
	DomainValidation  map[string]domainValidation `json:"domain_validation,omitempty"`
}

type domainValidation struct {
	Token    string `json:"token"`
	HTTPPath string `json:"http_path"`
	DNSName  string `json:"dns_name"`
	Result   string `json:"result,omitempty"`
}

// createApplication validates an application and starts its workflow.
func (s *Server) createApplication(w http.ResponseWriter, r *http.Request) {
	var req applicationRequest
	if p := api.DecodeJSON(bodyOf(r), &req, false); p != nil {
		s.problem(w, r, p)
		return
	}
	in, p := s.validateApplication(r.Context(), &req)
	if p != nil {
		s.problem(w, r, p)
		return
	}
	reseller := resellerOf(r)
	id := "app_" + randomID(10)
	in.ApplicationID, in.ResellerID = id, reseller
	in.Attestation.AttestedAt = s.now().UTC()
	wid := workflows.ApplicationWorkflowID(id)
	_, err := s.tc.ExecuteWorkflow(r.Context(), client.StartWorkflowOptions{
		ID:                       wid,
		TaskQueue:                workflows.TaskQueue,
		WorkflowIDConflictPolicy: enums.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
		StaticSummary:            fmt.Sprintf("Application %s: %s certificate for reseller %s", id, in.Product, reseller),
		StaticDetails: fmt.Sprintf("Product: %s\nReseller: %s\nDomains: %d\nValidity: %d days\nTerms version: %s\nSubmitted through the reseller API (request %s).",
			in.Product, reseller, len(in.Domains), in.ValidityDays, in.Attestation.TermsVersion, r.Context().Value(ctxRequestID)),
		TypedSearchAttributes: temporal.NewSearchAttributes(
			cases.CaseType.ValueSet(cases.TypeApplication),
			cases.ResellerID.ValueSet(reseller),
			cases.CaseStatus.ValueSet(status.AppReceived),
		),
	}, workflows.Application, in)
	if err != nil {
		s.temporalError(w, r, "start application workflow", err)
		return
	}
	w.Header().Set("Location", "/v1/applications/"+id)
	writeJSON(w, http.StatusAccepted, applicationResponse{ID: id, WorkflowID: wid, Status: status.AppReceived, Product: in.Product})
}

// validateApplication checks every field and returns the workflow input,
// or a 422 listing every invalid field. The CSR and key checks are the
// workflow's own (pki), run here too so a bad CSR is refused at once.
func (s *Server) validateApplication(ctx context.Context, req *applicationRequest) (workflows.ApplicationInput, *api.Problem) {
	if v := req.Validate(s.profiles, s.now()); !v.OK() {
		return workflows.ApplicationInput{}, v.Problem()
	}
	if p := s.checkCSR(ctx, req); p != nil {
		return workflows.ApplicationInput{}, p
	}
	in := req.input()
	in.WithoutCT = s.cfg.WithoutCT && product.TLS(in.Product)
	return in, nil
}

// checkCSR runs the product's CSR and key checks on a valid request,
// blocked keys included: a 422 naming the field a refusal is about, or 503
// when the checks could not run.
func (s *Server) checkCSR(ctx context.Context, req *applicationRequest) *api.Problem {
	preq := &pki.Request{Profile: req.Product, CSR: []byte(req.CSR), Domains: req.Domains,
		Subject: activities.SubjectFrom(req.subscriber(), req.Product)}
	if product.Client(req.Product) {
		preq.Email = req.Subscriber.Email
	}
	_, err := s.profiles.CheckCSR(ctx, preq, blockedKeys{s.st})
	if err == nil {
		return nil
	}
	code := problem.CodeOf(err)
	if code == "" {
		return api.New(http.StatusServiceUnavailable, api.TypeUnavailable, "the key checks could not run; retry")
	}
	field, typ := csrRefusalField(code)
	var v api.Validation
	v.Add(field, code, err.Error())
	p := v.Problem()
	p.Type, p.Title = typ, ""
	if typ == api.TypeCSRRejected {
		p.Detail = err.Error()
	}
	return p.With("code", code)
}

// csrRefusalField names the request field a pki refusal is about.
func csrRefusalField(code string) (string, string) {
	switch {
	case strings.HasPrefix(code, "name-"), code == "no-names", code == "too-many-names", code == "duplicate-name",
		code == "wildcard-invalid", code == "names-not-accepted":
		return "domains", api.TypeValidation
	case code == "email-invalid":
		return "subscriber.email", api.TypeValidation
	case code == "subject-invalid":
		return "subscriber", api.TypeValidation
	case code == "validity-not-allowed":
		return "validity_days", api.TypeValidation
	}
	return "csr", api.TypeCSRRejected
}

// applicationCase finds an application's workflow and checks the caller's
// reseller manages it; another reseller's (or no) application is 404.
func (s *Server) applicationCase(w http.ResponseWriter, r *http.Request) (id string, desc *client.WorkflowExecutionDescription, ok bool) {
	id = r.PathValue("id")
	if !idPattern.MatchString(id) {
		s.notFound(w, r, "application")
		return "", nil, false
	}
	desc, err := s.tc.DescribeWorkflow(r.Context(), workflows.ApplicationWorkflowID(id), "")
	var nf *serviceerror.NotFound
	if errors.As(err, &nf) {
		return id, nil, true // maybe a recorded application whose history is gone: the table decides
	}
	if err != nil {
		s.temporalError(w, r, "describe application", err)
		return "", nil, false
	}
	owner, _ := desc.TypedSearchAttributes.GetKeyword(cases.ResellerID)
	if owner != resellerOf(r) {
		s.notFound(w, r, "application")
		return "", nil, false
	}
	return id, desc, true
}

// getApplication answers an application's status: from the workflow's
// status query while it runs, from the applications table afterwards.
func (s *Server) getApplication(w http.ResponseWriter, r *http.Request) {
	id, desc, ok := s.applicationCase(w, r)
	if !ok {
		return
	}
	wid := workflows.ApplicationWorkflowID(id)
	if desc != nil && desc.Status == enums.WORKFLOW_EXECUTION_STATUS_RUNNING {
		var st workflows.ApplicationState
		qctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
		defer cancel()
		val, err := s.tc.QueryWorkflow(qctx, wid, "", workflows.StatusQuery)
		if err == nil {
			err = val.Get(&st)
		}
		if err != nil {
			s.temporalError(w, r, "query application", err)
			return
		}
		resp := applicationResponse{ID: id, WorkflowID: wid, Status: st.Status, Reason: st.Reason, Product: st.Product,
			VerificationID: st.VerificationID, CertificateSerial: st.CertificateSerial}
		if !st.DueAt.IsZero() {
			due := st.DueAt.UTC()
			resp.DueAt = &due
		}
		if len(st.DomainTokens) > 0 {
			resp.DomainValidation = map[string]domainValidation{}
			for d, tok := range st.DomainTokens {
				resp.DomainValidation[d] = domainValidation{Token: tok, HTTPPath: dcv.HTTPPath(tok), DNSName: dcv.DNSLabel(d)}
			}
		}
		writeJSON(w, http.StatusOK, resp)
		return
	}
	app, err := s.st.GetApplicationForReseller(r.Context(), id, resellerOf(r))
	switch {
	case errors.Is(err, store.ErrNotFound) && desc != nil:
		// Closed before it was recorded (a CSR refused at the first step):
		// the workflow's result says why.
		var res workflows.ApplicationResult
		if err := s.tc.GetWorkflow(r.Context(), wid, "").Get(r.Context(), &res); err != nil {
			res.Status, res.Reason = status.AppFailed, "the application did not complete"
		}
		writeJSON(w, http.StatusOK, applicationResponse{ID: id, WorkflowID: wid, Status: res.Status, Reason: res.Reason})
		return
	case errors.Is(err, store.ErrNotFound):
		s.notFound(w, r, "application")
		return
	case err != nil:
		s.internalError(w, r, "read application", err)
		return
	}
	resp := applicationResponse{ID: app.ID, WorkflowID: wid, Status: app.Status, Reason: app.StatusReason, Product: app.Product,
		VerificationID: app.VerificationID, CertificateSerial: app.CertificateSerial, DueAt: app.DueAt}
	if app.WorkflowID != "" {
		resp.WorkflowID = app.WorkflowID
	}
	if dvs, err := s.st.ListDomainValidations(r.Context(), app.ID); err == nil && len(dvs) > 0 {
		resp.DomainValidation = map[string]domainValidation{}
		for _, d := range dvs {
			resp.DomainValidation[d.Domain] = domainValidation{Token: d.Token, HTTPPath: dcv.HTTPPath(d.Token), DNSName: dcv.DNSLabel(d.Domain), Result: d.Result}
		}
	}
	writeJSON(w, http.StatusOK, resp)
}

// withdrawApplication signals the workflow; once signing has started the
// application can no longer be withdrawn (409).
func (s *Server) withdrawApplication(w http.ResponseWriter, r *http.Request) {
	var req withdrawRequest
	if p := api.DecodeJSON(bodyOf(r), &req, true); p != nil {
		s.problem(w, r, p)
		return
	}
	if p := req.Validate().Problem(); p != nil {
		s.problem(w, r, p)
		return
	}
	id, desc, ok := s.applicationCase(w, r)
	if !ok {
		return
	}
	if desc == nil {
		if _, err := s.st.GetApplicationForReseller(r.Context(), id, resellerOf(r)); err != nil {
			s.notFound(w, r, "application")
			return
		}
	}
	wid := workflows.ApplicationWorkflowID(id)
	if desc == nil || desc.Status != enums.WORKFLOW_EXECUTION_STATUS_RUNNING {
		s.problem(w, r, api.New(http.StatusConflict, api.TypeConflict, "the application is already closed"))
		return
	}
	var st workflows.ApplicationState
	qctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	if val, err := s.tc.QueryWorkflow(qctx, wid, "", workflows.StatusQuery); err == nil && val.Get(&st) == nil {
		if st.Status == status.AppIssuing || st.Status == status.AppIssued {
			s.problem(w, r, api.New(http.StatusConflict, api.TypeConflict, "signing has started: the application can no longer be withdrawn; revoke the certificate instead"))
			return
		}
	}
	if err := s.tc.SignalWorkflow(r.Context(), wid, "", workflows.WithdrawSignal, nil); err != nil {
		s.temporalError(w, r, "signal withdraw", err)
		return
	}
	writeJSON(w, http.StatusAccepted, applicationResponse{ID: id, WorkflowID: wid, Status: statusWithdrawalRequested})
}

func (s *Server) notFound(w http.ResponseWriter, r *http.Request, what string) {
	s.problem(w, r, api.New(http.StatusNotFound, api.TypeNotFound, "no such "+what+" managed by this reseller"))
}

// temporalError maps a Temporal client error to a problem.
func (s *Server) temporalError(w http.ResponseWriter, r *http.Request, what string, err error) {
	var nf *serviceerror.NotFound
	var unavailable *serviceerror.Unavailable
	switch {
	case errors.As(err, &nf):
		s.problem(w, r, api.New(http.StatusNotFound, api.TypeNotFound, "no such case"))
	case errors.As(err, &unavailable), errors.Is(err, context.DeadlineExceeded), errors.Is(err, errTemporalUnavailable):
		s.log.Warn(what, "error", err, "request_id", r.Context().Value(ctxRequestID))
		w.Header().Set("Retry-After", "5")
		s.problem(w, r, api.New(http.StatusServiceUnavailable, api.TypeUnavailable, "the case service is not answering; retry shortly"))
	default:
		s.internalError(w, r, what, err)
	}
}

// blockedKeys is the pki.BlockedKeys lookup over the store: a CSR whose key
// was reported compromised is refused at once, as the workflow would.
type blockedKeys struct{ st Store }

func (b blockedKeys) IsBlocked(ctx context.Context, spki [32]byte) (bool, error) {
	_, blocked, err := b.st.IsKeyBlocked(ctx, spki[:])
	return blocked, err
}
