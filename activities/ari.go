package activities

import (
	"context"

	"go.temporal.io/sdk/activity"
)

// ariPage is how many certificates one store call of the ARI activities
// handles.
const ariPage = 5000

// RenewalWindowsInput names the certificates of a mass revocation whose ARI
// renewal window (RFC 9773) moves to now, or whose renewals are counted.
type RenewalWindowsInput struct {
	Selector Selector
	// Limit is the page size (default 5000).
	Limit int
}

// RenewalWindowsResult says how many certificates the selector matched and
// how many of them, issued through ACME, got the urgent window.
type RenewalWindowsResult struct {
	Selected int64
	Windows  int64
}

// SetRenewalWindows moves the ARI renewal window of every valid certificate
// the selector matches that was issued through ACME to [now, now+1h]
// (store.SetRenewalWindowNow), page by page, so ACME clients polling
// renewalInfo renew before a mass revocation lands. It is idempotent: a
// retry resumes from the page it had reached (heartbeat) and setting a
// window again only moves it to the new now.
func (a *Activities) SetRenewalWindows(ctx context.Context, in RenewalWindowsInput) (RenewalWindowsResult, error) {
	var b struct {
		After string
		Res   RenewalWindowsResult
	}
	if activity.HasHeartbeatDetails(ctx) {
		_ = activity.GetHeartbeatDetails(ctx, &b)
	}
	err := a.ariPages(ctx, in, false, b.After, func(serials []string) error {
		n, err := a.Store.SetRenewalWindowNow(ctx, serials)
		if err != nil {
			return err
		}
		b.Res.Selected += int64(len(serials))
		b.Res.Windows += n
		b.After = serials[len(serials)-1]
		activity.RecordHeartbeat(ctx, b)
		return nil
	})
	return b.Res, err
}

// CountRenewed counts the certificates the selector matches, valid or
// revoked, that an ACME order has replaced (RFC 9773 "replaces",
// store.CountACMEReplaced): how many clients renewed during an incident.
// A retry resumes from the page it had reached (heartbeat), so a count over
// millions of certificates outlasting one attempt still finishes.
func (a *Activities) CountRenewed(ctx context.Context, in RenewalWindowsInput) (int64, error) {
	var b struct {
		After string
		N     int64
	}
	if activity.HasHeartbeatDetails(ctx) {
		_ = activity.GetHeartbeatDetails(ctx, &b)
	}
	err := a.ariPages(ctx, in, true, b.After, func(serials []string) error {
		c, err := a.Store.CountACMEReplaced(ctx, serials)
		if err != nil {
			return err
		}
		b.N += c
		b.After = serials[len(serials)-1]
		activity.RecordHeartbeat(ctx, b)
		return nil
	})
	return b.N, err
}

// ariPages calls do with each page of serials after the cursor that the
// selector matches.
func (a *Activities) ariPages(ctx context.Context, in RenewalWindowsInput, includeRevoked bool, after string, do func([]string) error) error {
	if err := checkSelector(in.Selector); err != nil {
		return err
	}
	limit := in.Limit
	if limit <= 0 {
		limit = ariPage
	}
	sel := in.Selector.store()
	sel.IncludeRevoked = includeRevoked
	for {
		refs, err := a.Store.SelectCertificates(ctx, sel, after, limit)
		if err != nil {
			return storeErr(err, "selector")
		}
		if len(refs) == 0 {
			return nil
		}
		serials := make([]string, len(refs))
		for i, r := range refs {
			serials[i] = r.Serial
		}
		if err := do(serials); err != nil {
			return storeErr(err, "ARI renewal windows")
		}
		after = serials[len(serials)-1]
	}
}
