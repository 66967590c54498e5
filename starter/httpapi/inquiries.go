package httpapi

import (
	"fmt"
	"net/http"
	"strings"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"certdesk/internal/cases"
	"certdesk/workflows"
)

type inquiryAccepted struct {
	ID         string `json:"id"`
	WorkflowID string `json:"workflow_id"`
	Status     string `json:"status"`
}

// createInquiry starts inquiry/<id> for an inquiry, a complaint or a request
// to stop provision of personal data to third parties (O9, APPI Art. 35 and
// 40): acknowledged by email, answered by staff, tracked to the answer.
func (s *Server) createInquiry(w http.ResponseWriter, r *http.Request) {
	var req inquiryRequest
	if !s.decodeValid(w, r, &req) {
		return
	}
	id := "inq_" + randomID(10)
	wid := workflows.InquiryWorkflowID(id)
	_, err := s.tc.ExecuteWorkflow(r.Context(), client.StartWorkflowOptions{
		ID:                       wid,
		TaskQueue:                workflows.TaskQueue,
		WorkflowIDConflictPolicy: enums.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
		StaticSummary:            fmt.Sprintf("Inquiry %s (%s)", id, req.Kind),
		StaticDetails:            fmt.Sprintf("Received through the public API (request %s). Staff: send the answer Update.", requestIDOf(r)),
		TypedSearchAttributes: temporal.NewSearchAttributes(
			cases.CaseType.ValueSet(cases.TypeInquiry),
			cases.CaseStatus.ValueSet(workflows.InqReceived),
		),
	}, workflows.Inquiry, workflows.InquiryInput{
		InquiryID: id, Kind: req.Kind, Contact: strings.TrimSpace(req.Contact), Body: req.Body, ReceivedAt: s.now().UTC(),
	})
	if err != nil {
		s.temporalError(w, r, "start inquiry", err)
		return
	}
	writeJSON(w, http.StatusAccepted, inquiryAccepted{ID: id, WorkflowID: wid, Status: workflows.InqReceived})
}
