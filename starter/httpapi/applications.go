package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

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
	"certdesk/internal/store"
	"certdesk/workflows"
)

// applicationRequest is the body of POST /v1/applications.
type applicationRequest struct {
	Product                string          `json:"product"`
	CSR                    string          `json:"csr"`
	Domains                []string        `json:"domains"`
	ValidityDays           int             `json:"validity_days"`
	Subscriber             subscriberJSON  `json:"subscriber"`
	Attestation            attestationJSON `json:"attestation"`
	DomainValidationMethod string          `json:"domain_validation_method"`
}

type subscriberJSON struct {
	Organization string `json:"organization"`
	Name         string `json:"name"`
	Email        string `json:"email"`
	Phone        string `json:"phone"`
	Address      string `json:"address"`
	Country      string `json:"country"`
	Locality     string `json:"locality"`
	Province     string `json:"province"`
}

type attestationJSON struct {
	TermsVersion string `json:"terms_version"`
	Truthful     *bool  `json:"truthful"`
}

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

var (
	idPattern       = regexp.MustCompile(`^[A-Za-z0-9_-]{1,100}$`)
	countryPattern  = regexp.MustCompile(`^[A-Z]{2}$`)
	phonePattern    = regexp.MustCompile(`^\+?[0-9][0-9 ()-]{5,24}$`)
	versionPattern  = regexp.MustCompile(`^[A-Za-z0-9._-]{1,32}$`)
	products        = []string{workflows.ProductServerDV, workflows.ProductServerOV, workflows.ProductClientSign}
	maxDomainsInAPI = 100
)

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
			cases.CaseStatus.ValueSet(workflows.AppReceived),
		),
	}, workflows.Application, in)
	if err != nil {
		s.temporalError(w, r, "start application workflow", err)
		return
	}
	w.Header().Set("Location", "/v1/applications/"+id)
	writeJSON(w, http.StatusAccepted, applicationResponse{ID: id, WorkflowID: wid, Status: workflows.AppReceived, Product: in.Product})
}

// validateApplication checks every field and returns the workflow input,
// or a 422 listing every invalid field. The CSR and key checks are the
// workflow's own (pki), run here too so a bad CSR is refused at once.
func (s *Server) validateApplication(ctx context.Context, req *applicationRequest) (workflows.ApplicationInput, *api.Problem) {
	var v api.Validation
	sub := req.Subscriber
	prof, perr := s.profiles.Get(req.Product)
	if v.Required("product", req.Product == "") && (perr != nil || !contains(products, req.Product)) {
		v.Add("product", "one_of", "must be one of "+strings.Join(products, ", "))
		prof = nil
	}
	tls := req.Product == workflows.ProductServerDV || req.Product == workflows.ProductServerOV

	// Domains.
	domains := make([]string, 0, len(req.Domains))
	for _, d := range req.Domains {
		domains = append(domains, strings.TrimSuffix(strings.ToLower(strings.TrimSpace(d)), "."))
	}
	switch {
	case tls && len(domains) == 0:
		v.Add("domains", "required", "TLS certificates need at least one domain name")
	case !tls && len(domains) > 0 && req.Product != "":
		v.Add("domains", "not_allowed", "client certificates carry no domain names")
	case len(domains) > maxDomainsInAPI:
		v.Add("domains", "too_many", fmt.Sprintf("at most %d names", maxDomainsInAPI))
	case tls:
		for i, d := range domains {
			if err := pki.CheckDomain(d); err != nil {
				v.Add(fmt.Sprintf("domains[%d]", i), problem.CodeOf(err), err.Error())
			}
		}
		if v.OK() {
			if err := pki.CheckDomains(domains); err != nil {
				v.Add("domains", problem.CodeOf(err), err.Error())
			}
		}
	}
	switch req.DomainValidationMethod {
	case "", dcv.MethodHTTP, dcv.MethodDNS:
		if req.DomainValidationMethod != "" && !tls {
			v.Add("domain_validation_method", "not_allowed", "only TLS products validate domains")
		}
	default:
		v.Add("domain_validation_method", "one_of", "must be http-01 or dns-txt")
	}

	// Validity.
	if prof != nil {
		maxDays := int(prof.MaxValidityAt(s.now()) / pki.Day)
		if req.ValidityDays == 0 {
			req.ValidityDays = int(prof.DefaultValidity / pki.Day)
			if req.ValidityDays == 0 || req.ValidityDays > maxDays {
				req.ValidityDays = maxDays
			}
		}
		if req.ValidityDays < 1 || req.ValidityDays > maxDays {
			v.Add("validity_days", "out_of_range", fmt.Sprintf("must be between 1 and %d days for %s", maxDays, req.Product))
		}
	}

	// Subscriber.
	text := func(field, val string, max int, required bool) {
		if required && !v.Required(field, strings.TrimSpace(val) == "") {
			return
		}
		if !utf8.ValidString(val) || strings.IndexFunc(val, unicode.IsControl) >= 0 {
			v.Add(field, "invalid_characters", "control characters are not allowed")
		} else if utf8.RuneCountInString(val) > max {
			v.Add(field, "too_long", fmt.Sprintf("at most %d characters", max))
		}
	}
	text("subscriber.name", sub.Name, 64, true)
	text("subscriber.organization", sub.Organization, 64, req.Product == workflows.ProductServerOV)
	text("subscriber.address", sub.Address, 200, false)
	text("subscriber.locality", sub.Locality, 128, false)
	text("subscriber.province", sub.Province, 128, false)
	if v.Required("subscriber.email", sub.Email == "") {
		if len(sub.Email) > 254 {
			v.Add("subscriber.email", "too_long", "at most 254 characters")
		} else if err := pki.CheckEmail(sub.Email); err != nil {
			v.Add("subscriber.email", "email-invalid", "not a valid email address")
		}
	}
	if sub.Phone != "" && !phonePattern.MatchString(sub.Phone) {
		v.Add("subscriber.phone", "invalid", "digits, spaces, ()- and an optional leading +")
	}
	if sub.Country != "" && !countryPattern.MatchString(sub.Country) {
		v.Add("subscriber.country", "invalid", "ISO 3166-1 alpha-2 code in capitals, e.g. JP")
	} else if sub.Country == "" && req.Product == workflows.ProductServerOV {
		v.Add("subscriber.country", "required", "OV certificates print the country")
	}

	// Attestation (O1).
	if v.Required("attestation.terms_version", req.Attestation.TermsVersion == "") && !versionPattern.MatchString(req.Attestation.TermsVersion) {
		v.Add("attestation.terms_version", "invalid", "letters, digits, '.', '_' or '-', at most 32")
	}
	if req.Attestation.Truthful == nil || !*req.Attestation.Truthful {
		v.Add("attestation.truthful", "must_be_true", "the applicant must attest that the application is true (a false application is punishable)")
	}

	// CSR: parse first, then the product's full checks once the rest is sound.
	if v.Required("csr", strings.TrimSpace(req.CSR) == "") {
		if _, err := pki.ParseCSR([]byte(req.CSR)); err != nil {
			v.Add("csr", problem.CodeOf(err), err.Error())
		}
	}
	subscriber := activities.SubscriberData{
		Organization: sub.Organization, Name: sub.Name, Email: sub.Email, Phone: sub.Phone,
		Address: sub.Address, Country: sub.Country, Locality: sub.Locality, Province: sub.Province,
	}
	if v.OK() {
		preq := &pki.Request{Profile: req.Product, CSR: []byte(req.CSR), Domains: domains,
			Subject: activities.SubjectFrom(subscriber, req.Product)}
		if req.Product == workflows.ProductClientSign {
			preq.Email = sub.Email
		}
		if _, err := s.profiles.CheckCSR(ctx, preq, blockedKeys{s.st}); err != nil {
			code := problem.CodeOf(err)
			if code == "" {
				return workflows.ApplicationInput{}, api.New(http.StatusServiceUnavailable, api.TypeUnavailable, "the key checks could not run; retry")
			}
			field, typ := csrRefusalField(code)
			v.Add(field, code, err.Error())
			p := v.Problem()
			p.Type, p.Title = typ, ""
			if typ == api.TypeCSRRejected {
				p.Detail = err.Error()
			}
			return workflows.ApplicationInput{}, p.With("code", code)
		}
	}
	if !v.OK() {
		return workflows.ApplicationInput{}, v.Problem()
	}
	return workflows.ApplicationInput{
		Product: req.Product, CSRPEM: req.CSR, Domains: domains, ValidityDays: req.ValidityDays,
		Subscriber: subscriber,
		Attestation: activities.Attestation{
			TermsVersion: req.Attestation.TermsVersion, Truthful: true,
		},
		DomainValidationMethod: req.DomainValidationMethod,
	}, nil
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

func contains(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
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
			res.Status, res.Reason = workflows.AppFailed, "the application did not complete"
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

// withdrawRequest is the optional body of POST …/withdraw.
type withdrawRequest struct {
	Reason string `json:"reason"`
}

// withdrawApplication signals the workflow; once signing has started the
// application can no longer be withdrawn (409).
func (s *Server) withdrawApplication(w http.ResponseWriter, r *http.Request) {
	var req withdrawRequest
	if p := api.DecodeJSON(bodyOf(r), &req, true); p != nil {
		s.problem(w, r, p)
		return
	}
	if len(req.Reason) > 500 || strings.IndexFunc(req.Reason, unicode.IsControl) >= 0 {
		var v api.Validation
		v.Add("reason", "invalid", "at most 500 characters, no control characters")
		s.problem(w, r, v.Problem())
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
		if st.Status == workflows.AppIssuing || st.Status == workflows.AppIssued {
			s.problem(w, r, api.New(http.StatusConflict, api.TypeConflict, "signing has started: the application can no longer be withdrawn; revoke the certificate instead"))
			return
		}
	}
	if err := s.tc.SignalWorkflow(r.Context(), wid, "", workflows.WithdrawSignal, nil); err != nil {
		s.temporalError(w, r, "signal withdraw", err)
		return
	}
	writeJSON(w, http.StatusAccepted, applicationResponse{ID: id, WorkflowID: wid, Status: "withdrawal_requested"})
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
