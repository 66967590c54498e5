package httpapi

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"certdesk/internal/api"
	"certdesk/internal/cases"
	"certdesk/internal/store"
	"certdesk/workflows"
)

type disclosureAccepted struct {
	ID             string `json:"id"`
	WorkflowID     string `json:"workflow_id"`
	Status         string `json:"status"`
	VerificationID string `json:"verification_id"`
	Delivery       string `json:"delivery"`
}

// createDisclosureRequest starts disclosure/<id> for a data subject (O6).
// The answer is the same whether or not CertDesk holds anything about the
// person: a one-time code goes to the address given, and only after the
// identity is verified does anything depend on the data held.
func (s *Server) createDisclosureRequest(w http.ResponseWriter, r *http.Request) {
	var req disclosureRequest
	if !s.decodeValid(w, r, &req) {
		return
	}
	id := "dr_" + randomID(10)
	wid := workflows.DisclosureWorkflowID(id)
	_, err := s.tc.ExecuteWorkflow(r.Context(), client.StartWorkflowOptions{
		ID:                       wid,
		TaskQueue:                workflows.TaskQueue,
		WorkflowIDConflictPolicy: enums.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
		StaticSummary:            fmt.Sprintf("Disclosure request %s (%s delivery)", id, req.Delivery),
		StaticDetails: fmt.Sprintf("Data subject's request for disclosure (APPI Art. 33, O6).\nDelivery: %s\nTarget: 7 days, alert at 14.\nReceived through the public API (request %s).",
			req.Delivery, requestIDOf(r)),
		TypedSearchAttributes: temporal.NewSearchAttributes(
			cases.CaseType.ValueSet(cases.TypeDisclosure),
			cases.CaseStatus.ValueSet(workflows.DiscReceived),
		),
	}, workflows.Disclosure, workflows.DisclosureInput{
		RequestID: id, Name: strings.TrimSpace(req.Name), Email: req.Email, Phone: strings.TrimSpace(req.Phone), Delivery: req.Delivery,
		PostalAddress: strings.TrimSpace(req.PostalAddress), ReceivedAt: s.now().UTC(),
	})
	if err != nil {
		s.temporalError(w, r, "start disclosure", err)
		return
	}
	writeJSON(w, http.StatusAccepted, disclosureAccepted{ID: id, WorkflowID: wid, Status: workflows.DiscReceived,
		VerificationID: workflows.DisclosureVerificationID(id), Delivery: req.Delivery})
}

var linkTokenPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{20,128}$`)

var disclosureIDPattern = regexp.MustCompile(`^dr_[A-Za-z0-9_-]{1,64}$`)

// getDisclosureDraft shows staff the compiled, not yet signed package of a
// disclosure request (the readable summary, or the JSON with ?format=json)
// so they can check it holds only the requester's data before sending
// approve-disclosure (issue 17). X-Package-SHA256 is the digest to name in
// the decision. Each view is recorded in the staff access log (O8).
func (s *Server) getDisclosureDraft(w http.ResponseWriter, r *http.Request) {
	staff, _ := r.Context().Value(ctxStaff).(string)
	id := r.PathValue("id")
	if !disclosureIDPattern.MatchString(id) || staff == "" {
		s.problem(w, r, api.New(http.StatusNotFound, api.TypeNotFound, "no compiled package waits for a check under this id"))
		return
	}
	d, err := s.st.GetDisclosureDraft(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		s.problem(w, r, api.New(http.StatusNotFound, api.TypeNotFound, "no compiled package waits for a check under this id (not compiled yet, or already signed)"))
		return
	}
	if err != nil {
		s.internalError(w, r, "disclosure draft", err)
		return
	}
	// Logged under the request and every subscriber record in the package,
	// so the access shows in those people's next disclosure (O8).
	refs := []string{"disclosure:" + id}
	var held struct {
		Subscribers []struct {
			ID string `json:"id"`
		} `json:"subscriber_records"`
	}
	_ = json.Unmarshal(d.JSON, &held)
	for _, sub := range held.Subscribers {
		if sub.ID != "" {
			refs = append(refs, sub.ID)
		}
	}
	now := s.now()
	for _, ref := range refs {
		if err := s.st.RecordStaffAccess(r.Context(), store.StaffAccess{StaffID: staff, PersonRef: ref,
			Channel: "staff disclosure check", AccessedAt: now,
			Purpose: "checked the compiled disclosure package " + id + " before approve-disclosure (request " + requestIDOf(r) + ")"}); err != nil {
			s.internalError(w, r, "record staff access", err)
			return
		}
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Package-SHA256", d.SHA256)
	if r.URL.Query().Get("format") == "json" {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(d.JSON)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
	_, _ = w.Write(d.HTML)
}

// getDisclosure serves a disclosure package through its emailed link while
// the link is valid (7 days, a few downloads): a ZIP with the readable
// summary (package.html), the signed JSON (package.json), its detached CMS
// signature (package.json.p7s) and the root certificate to check it with.
// Each GET spends one download; HEAD is refused so link checkers do not.
func (s *Server) getDisclosure(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodHead {
		w.Header().Set("Allow", "GET")
		s.problem(w, r, api.New(http.StatusMethodNotAllowed, api.TypeMethodNotAllowed, "GET the link to download (each GET counts)"))
		return
	}
	token := r.PathValue("token")
	gone := api.New(http.StatusNotFound, api.TypeNotFound, "this download link is unknown, expired or used up; ask for a new disclosure")
	if !linkTokenPattern.MatchString(token) {
		s.problem(w, r, gone)
		return
	}
	pkg, err := s.st.ConsumeDisclosureDownload(r.Context(), token, s.now())
	if errors.Is(err, store.ErrLinkUnavailable) || errors.Is(err, store.ErrNotFound) {
		s.problem(w, r, gone)
		return
	}
	if err != nil {
		s.internalError(w, r, "disclosure download", err)
		return
	}
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	files := []struct {
		name string
		data []byte
	}{
		{"package.html", pkg.HTML},
		{"package.json", pkg.JSON},
		{"package.json.p7s", pkg.SignatureDER},
	}
	if s.repo != nil {
		files = append(files, struct {
			name string
			data []byte
		}{"root.pem", pemCertBytes(s.repo.certs[s.repo.rootID].Raw)})
	}
	for _, f := range files {
		fw, err := zw.CreateHeader(&zip.FileHeader{Name: f.name, Method: zip.Deflate, Modified: pkg.CreatedAt})
		if err == nil {
			_, err = fw.Write(f.data)
		}
		if err != nil {
			s.internalError(w, r, "disclosure zip", err)
			return
		}
	}
	if err := zw.Close(); err != nil {
		s.internalError(w, r, "disclosure zip", err)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/zip")
	h.Set("Content-Disposition", `attachment; filename="certdesk-disclosure-`+safeName(pkg.RequestID)+`.zip"`)
	h.Set("Cache-Control", "no-store")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(buf.Bytes())
}

var unsafeNameChars = regexp.MustCompile(`[^A-Za-z0-9._-]`)

func safeName(s string) string { return unsafeNameChars.ReplaceAllString(s, "_") }
