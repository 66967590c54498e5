package workflows

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/testsuite"

	"certdesk/internal/product"
	"certdesk/internal/status"
)

// TestReviewRefusesInactiveReviewer: a review Update naming a reviewer who
// is not an active staff member (CheckStaff refuses it: unknown or
// disabled) fails for its caller and decides nothing; an active reviewer's
// decision afterwards goes through.
func TestReviewRefusesInactiveReviewer(t *testing.T) {
	for _, reviewer := range []string{"nobody", "st_disabled"} {
		t.Run(reviewer, func(t *testing.T) {
			env, _ := newEnv(t)
			var statuses []string
			appMocks(env, &statuses)
			env.OnWorkflow(Verification, mock.Anything, mock.Anything).Return(verified(true, ""))
			var refused error
			env.RegisterDelayedCallback(func() {
				env.UpdateWorkflow(ReviewUpdate, "bad-review", &testsuite.TestUpdateCallback{
					OnReject: func(err error) { refused = err },
					OnAccept: func() {},
					OnComplete: func(_ any, err error) {
						if err != nil {
							refused = err
						}
					},
				}, ReviewDecision{Decision: "reject", Reviewer: reviewer, Reason: "forged"})
			}, time.Hour)
			sendReview(env, 2*time.Hour, ReviewDecision{Decision: "approve", Reviewer: "alice"}, nil)
			env.ExecuteWorkflow(Application, appInput(product.ClientSign))
			if refused == nil || !strings.Contains(refused.Error(), "not an active staff member") {
				t.Fatalf("review by %s: %v, want refused", reviewer, refused)
			}
			r := result(t, env)
			if r.Status != status.AppIssued {
				t.Fatalf("result %+v: the refused decision was taken", r)
			}
			// Only the accepted decision is audited, under its reviewer.
			if len(staffDecisions) != 1 || staffDecisions[0].Reviewer != "alice" || staffDecisions[0].Decision != "approve" || staffDecisions[0].Update != ReviewUpdate {
				t.Fatalf("audited decisions %+v", staffDecisions)
			}
		})
	}
}
