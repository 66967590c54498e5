//go:build integration

package httpapi

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/client"

	"certdesk/workflows"
)

// TestInquiryThroughTheAPI: a complaint sent to POST /v1/inquiries is
// acknowledged by email, answered by staff with the answer Update, and the
// answer is emailed (O9).
func TestInquiryThroughTheAPI(t *testing.T) {
	s := newStack(t)
	addr := "complainant-" + strconv.FormatInt(time.Now().UnixNano(), 36) + "@example.jp"
	r := s.do("POST", "/v1/inquiries", "", map[string]string{"kind": "complaint", "contact": addr, "body": "証明書の発行が遅れています。"}, nil)
	if r.code != 202 {
		t.Fatalf("POST /v1/inquiries: %d %s", r.code, r.body)
	}
	var acc inquiryAccepted
	if err := json.Unmarshal(r.body, &acc); err != nil || !strings.HasPrefix(acc.WorkflowID, "inquiry/inq_") {
		t.Fatalf("answer %s", r.body)
	}
	if bad := s.do("POST", "/v1/inquiries", "", map[string]string{"kind": "gossip", "contact": addr, "body": "x"}, nil); bad.code != 422 {
		t.Fatalf("unknown kind: %d", bad.code)
	}
	s.mail.WaitFor(t, addr, 1, 30*time.Second) // acknowledgement

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var h client.WorkflowUpdateHandle
	var err error
	for i := 0; i < 50; i++ { // until the workflow waits for the answer
		h, err = s.tc.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{WorkflowID: acc.WorkflowID, UpdateName: workflows.AnswerUpdate,
			Args:         []any{workflows.InquiryAnswer{Answer: "ご不便をおかけし申し訳ございません。本日発行いたしました。", Reviewer: "alice"}},
			WaitForStage: client.WorkflowUpdateStageCompleted})
		if err == nil {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("answer Update: %v", err)
	}
	if err := h.Get(ctx, nil); err != nil {
		t.Fatalf("answer Update: %v", err)
	}
	msgs := s.mail.WaitFor(t, addr, 2, 30*time.Second)
	found := false
	for _, m := range msgs {
		found = found || strings.Contains(m.Text, "本日発行いたしました")
	}
	if !found {
		t.Fatal("the answer was not emailed")
	}
}
