package workflows

import (
	"errors"
	"fmt"
	"net/mail"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"certdesk/activities"
	"certdesk/internal/cases"
	"certdesk/internal/mailer"
)

// Inquiry statuses (also the CaseStatus search attribute).
const (
	InqReceived       = "received"
	InqAwaitingAnswer = "awaiting_answer"
	InqAnswered       = "answered"
)

// AnswerUpdate is how staff answer an inquiry.
const AnswerUpdate = "answer"

// Inquiry timing: staff are reminded after 3 days and the case escalates
// at 5 (the answer date given in the acknowledgement), with a last alert
// at 14.
var (
	InquiryReminderAfter   = 3 * 24 * time.Hour
	InquiryEscalationAfter = 5 * 24 * time.Hour
	InquiryAlertAfter      = 14 * 24 * time.Hour
)

// InquiryWorkflowID is the workflow ID of inquiry id.
func InquiryWorkflowID(id string) string { return cases.TypeInquiry + "/" + id }

// InquiryInput is an inquiry, complaint or request to stop provision to
// third parties (O9), as received.
type InquiryInput struct {
	InquiryID  string
	Kind       string // inquiry, complaint or stop_provision
	Contact    string // an email address, or other contact details staff use
	Body       string
	ReceivedAt time.Time // default the workflow's start
}

// InquiryAnswer is the body of the answer Update.
type InquiryAnswer struct {
	Answer   string `json:"answer"`
	Reviewer string `json:"reviewer"`
	// Decision is required for stop_provision and only there: "stop"
	// (provision to third parties is stopped) or "refuse" (it continues,
	// the answer says why; APPI Art. 35).
	Decision string `json:"decision,omitempty"`
}

// InquiryState is what the status query returns. No personal data: not
// the contact, the text or the answer.
type InquiryState struct {
	InquiryID    string
	Kind         string
	Status       string
	ReceivedAt   time.Time
	DueAt        time.Time
	EmailContact bool // notices go by email; otherwise staff answer by other means
	Reviewer     string
	Decision     string
	AnsweredAt   time.Time
}

// InquiryResult is the workflow's outcome.
type InquiryResult struct {
	Status     string
	Decision   string
	AnsweredAt time.Time
}

// Inquiry tracks an inquiry, a complaint or a request to stop provision to
// third parties from receipt to an answer (workflow 7, O9): acknowledgement,
// staff answer (Update answer) with reminder and escalation, the answer
// emailed. A stop request is registered on receipt and staff's decision on
// it recorded with the answer (the provision_stops register).
func Inquiry(ctx workflow.Context, in InquiryInput) (InquiryResult, error) {
	w := &inquiry{in: in}
	if err := w.setup(ctx); err != nil {
		return InquiryResult{}, err
	}
	return w.run(ctx)
}

type inquiry struct {
	in     InquiryInput
	state  InquiryState
	answer *InquiryAnswer
}

func (w *inquiry) setup(ctx workflow.Context) error {
	switch w.in.Kind {
	case activities.InquiryKindInquiry, activities.InquiryKindComplaint, activities.InquiryKindStopProvision:
	default:
		return temporal.NewNonRetryableApplicationError(fmt.Sprintf("inquiry: kind %q is not inquiry, complaint or stop_provision", w.in.Kind), activities.ErrTypeInvalid, nil)
	}
	if strings.TrimSpace(w.in.InquiryID) == "" || strings.TrimSpace(w.in.Contact) == "" || strings.TrimSpace(w.in.Body) == "" {
		return temporal.NewNonRetryableApplicationError("inquiry: InquiryID, Contact and Body are required", activities.ErrTypeInvalid, nil)
	}
	if w.in.ReceivedAt.IsZero() {
		w.in.ReceivedAt = workflow.GetInfo(ctx).WorkflowStartTime
	}
	addr, err := mail.ParseAddress(strings.TrimSpace(w.in.Contact))
	w.state = InquiryState{InquiryID: w.in.InquiryID, Kind: w.in.Kind, Status: InqReceived, ReceivedAt: w.in.ReceivedAt,
		DueAt: w.in.ReceivedAt.Add(InquiryEscalationAfter), EmailContact: err == nil && addr.Name == ""}
	if err := workflow.UpsertTypedSearchAttributes(ctx,
		cases.CaseType.ValueSet(cases.TypeInquiry),
		cases.CaseStatus.ValueSet(InqReceived),
		cases.DueAt.ValueSet(w.state.DueAt),
	); err != nil {
		return err
	}
	if err := workflow.SetQueryHandler(ctx, StatusQuery, func() (InquiryState, error) { return w.state, nil }); err != nil {
		return err
	}
	return workflow.SetUpdateHandlerWithOptions(ctx, AnswerUpdate,
		func(ctx workflow.Context, a InquiryAnswer) (InquiryState, error) {
			w.answer = &a
			w.state.Reviewer, w.state.Decision = a.Reviewer, a.Decision
			return w.state, nil
		},
		workflow.UpdateHandlerOptions{Validator: func(ctx workflow.Context, a InquiryAnswer) error {
			if w.state.Status != InqAwaitingAnswer || w.answer != nil {
				return fmt.Errorf("inquiry %s is %s, not awaiting an answer", w.in.InquiryID, w.state.Status)
			}
			if strings.TrimSpace(a.Reviewer) == "" {
				return errors.New("reviewer is required: say who answers")
			}
			if strings.TrimSpace(a.Answer) == "" {
				return errors.New("the answer is empty")
			}
			if len([]rune(a.Answer)) > 20000 {
				return errors.New("the answer is longer than 20,000 characters")
			}
			if w.in.Kind == activities.InquiryKindStopProvision {
				if a.Decision != "stop" && a.Decision != "refuse" {
					return errors.New(`a request to stop provision needs a decision: "stop" or "refuse" (say why in the answer)`)
				}
			} else if a.Decision != "" {
				return fmt.Errorf("a decision is only given on a stop_provision request, not on a %s", w.in.Kind)
			}
			return nil
		}})
}

func (w *inquiry) run(ctx workflow.Context) (InquiryResult, error) {
	ctx = workflow.WithActivityOptions(ctx, defaultActivityOptions())
	var a *activities.Activities
	wfID := workflow.GetInfo(ctx).WorkflowExecution.ID

	if err := workflow.ExecuteActivity(ctx, a.RecordInquiry, activities.RecordInquiryInput{
		InquiryID: w.in.InquiryID, Kind: w.in.Kind, Contact: w.in.Contact, Body: w.in.Body,
		ReceivedAt: w.in.ReceivedAt, DueAt: w.state.DueAt, WorkflowID: wfID,
	}).Get(ctx, nil); err != nil {
		return InquiryResult{}, err
	}
	to := activities.Recipient{Email: strings.TrimSpace(w.in.Contact)}
	if w.state.EmailContact {
		if err := notify(ctx, to, mailer.InquiryAcknowledged, mailer.InquiryAcknowledgedData{
			InquiryID: w.in.InquiryID, ReceivedAt: w.in.ReceivedAt, AnswerBy: w.state.DueAt,
		}); err != nil {
			return InquiryResult{}, err
		}
	}
	if err := w.setStatus(ctx, InqAwaitingAnswer, "in_progress", "waiting for the staff answer Update"); err != nil {
		return InquiryResult{}, err
	}
	stop := startDeadlineWatch(ctx, deadlineWatch{caseType: cases.TypeInquiry, stage: InqAwaitingAnswer, start: w.in.ReceivedAt,
		reminders: []time.Duration{InquiryReminderAfter}, escalation: InquiryEscalationAfter, alerts: []time.Duration{InquiryAlertAfter}})
	if err := workflow.Await(ctx, func() bool { return w.answer != nil }); err != nil {
		stop()
		return InquiryResult{}, err
	}
	stop()

	now := workflow.Now(ctx)
	if err := workflow.ExecuteActivity(ctx, a.AnswerInquiry, activities.AnswerInquiryInput{
		InquiryID: w.in.InquiryID, Kind: w.in.Kind, Answer: w.answer.Answer, Reviewer: w.answer.Reviewer,
		Decision: w.answer.Decision, AnsweredAt: now,
	}).Get(ctx, nil); err != nil {
		return InquiryResult{}, err
	}
	w.state.AnsweredAt = now
	if w.state.EmailContact {
		if err := notify(ctx, to, mailer.InquiryAnswered, mailer.InquiryAnsweredData{
			InquiryID: w.in.InquiryID, Answer: w.answer.Answer,
		}); err != nil {
			return InquiryResult{}, err
		}
	}
	details := "answered"
	if w.answer.Decision != "" {
		details += "; provision to third parties: " + w.answer.Decision
	}
	w.state.Status = InqAnswered
	if err := setStatus(ctx, InqAnswered, details); err != nil {
		return InquiryResult{}, err
	}
	return InquiryResult{Status: InqAnswered, Decision: w.answer.Decision, AnsweredAt: now}, nil
}

// setStatus moves the case and the inquiry's row.
func (w *inquiry) setStatus(ctx workflow.Context, status, rowStatus, details string) error {
	w.state.Status = status
	if err := setStatus(ctx, status, details); err != nil {
		return err
	}
	var a *activities.Activities
	return workflow.ExecuteActivity(ctx, a.SetInquiryStatus, activities.InquiryStatusInput{
		InquiryID: w.in.InquiryID, Status: rowStatus,
	}).Get(ctx, nil)
}
