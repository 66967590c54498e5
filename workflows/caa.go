package workflows

import (
	"fmt"
	"strings"
	"time"

	"go.temporal.io/sdk/workflow"

	"certdesk/activities"
	"certdesk/internal/dcv"
	"certdesk/internal/product"
)

// caaChange is the workflow.GetVersion change ID under which applications
// check CAA, corroborated from the remote perspectives, before signing.
const caaChange = "application-caa"

// CAA timing. Variables only so tests can read them.
var (
	// CAAAttempts is how many checks a lookup failure gets before the
	// application is refused (a refusal by the records is final at once).
	CAAAttempts = 3
	// CAARetryAfter is the pause between those checks.
	CAARetryAfter = time.Minute
)

// caaRequests are the names CAA is checked for: every domain of a TLS
// certificate (the wildcard as such: issuewild), the mailbox domain of a
// client certificate (issuemail, RFC 9495).
func (w *application) caaRequests() []activities.CAARequest {
	if product.Client(w.in.Product) {
		at := strings.LastIndexByte(w.in.Subscriber.Email, '@')
		return []activities.CAARequest{{Name: strings.ToLower(w.in.Subscriber.Email[at+1:]), Mailbox: true}}
	}
	out := make([]activities.CAARequest, len(w.in.Domains))
	for i, d := range w.in.Domains {
		out[i] = activities.CAARequest{Name: strings.ToLower(d), Method: dcv.CAAMethod(w.in.DomainValidationMethod)}
		if w.acme != nil {
			// RFC 8657: the ACME account URL and the challenge type that
			// validated the name.
			out[i].AccountURI, out[i].Method = w.in.ACME.AccountURI, dcv.CAAMethod(w.acme.methods[d])
		}
	}
	return out
}

// checkCAA checks CAA for every name from the primary perspective (stored
// with its DNS evidence), then corroborates each permission from the remote
// perspectives (O18, O19). It runs right before signing: the signer refuses
// once the check is older than its IssueBy (8 hours at least), and the
// workflow then checks again.
func (w *application) checkCAA(ctx workflow.Context) error {
	reqs := w.caaRequests()
	var outs []activities.CAAOutcome
	for attempt := 1; ; attempt++ {
		w.caaChecks++
		var a *activities.Activities
		if err := w.exec(ctx, a.CheckCAA, activities.CAAInput{
			ApplicationID: w.in.ApplicationID, CheckID: fmt.Sprint(w.caaChecks), Requests: reqs,
		}, &outs); err != nil {
			if reason, ok := applicationErrorOf(err, activities.ErrTypeInvalid); ok {
				return &rejection{reason: "CAA: " + reason, acmeType: "caa"}
			}
			return err
		}
		w.state.CAA = outs
		refused, lookupFailed := "", false
		for _, o := range outs {
			if !o.Permitted {
				refused = fmt.Sprintf("CAA (BR §3.2.2.8) forbids %s: %s (%s)", o.Name, o.Reason, o.Rule)
				if o.Record != "" {
					refused += ", record " + o.Record
				}
				lookupFailed = lookupFailed || o.Rule == "lookup-failed"
				break
			}
		}
		if refused == "" {
			break
		}
		if !lookupFailed || attempt >= CAAAttempts {
			return &rejection{reason: refused, acmeType: "caa"}
		}
		workflow.SetCurrentDetails(ctx, refused+"; checking again")
		if err := workflow.Sleep(ctx, CAARetryAfter); err != nil {
			return err
		}
	}
	for _, r := range reqs {
		if err := w.corroborate(ctx, perspectiveCheck{check: CheckCAA, name: r.Name, activity: activities.PerspectiveCheckCAAName,
			input: r, outcome: activities.OutcomePermit}); err != nil {
			return err
		}
	}
	return nil
}
