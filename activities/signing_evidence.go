package activities

import (
	"context"
	"fmt"
	"strings"
	"time"

	"certdesk/internal/product"
	"certdesk/internal/store"
)

// ErrTypeStaleEvidence: the validation evidence the signer reads is missing
// or too old (a CAA check past its IssueBy); the workflow checks again and
// retries signing.
const ErrTypeStaleEvidence = "StaleEvidence"

// EvidenceStore is what the signer reads to check, not trust, that an
// application was validated.
type EvidenceStore interface {
	ListDomainValidations(ctx context.Context, applicationID string) ([]store.DomainValidation, error)
	LatestCAAChecks(ctx context.Context, applicationID string) ([]store.CAACheck, error)
	ListCorroborations(ctx context.Context, applicationID string) ([]store.Corroboration, error)
}

// DCVReuse is how old a domain validation may be at signing (BR §4.2.1:
// 398 days for domain validations).
const DCVReuse = 398 * 24 * time.Hour

// checkEvidence refuses to sign unless PostgreSQL shows, for every name of
// in, what the BR require before issuance: a valid domain validation (TLS),
// a corroborated one (BR §3.2.2.9), and a CAA check that permits issuance,
// was corroborated and still covers now (BR §3.2.2.8: 8 hours at least).
// The workflow's word is not enough: a call without these records is
// refused.
func checkEvidence(ctx context.Context, st EvidenceStore, in IssueInput, now time.Time) error {
	names := caaNames(in)
	if len(names) == 0 {
		return nil // internal profiles (not through applications)
	}
	corr, err := st.ListCorroborations(ctx, in.ApplicationID)
	if err != nil {
		return err
	}
	corroborated := map[string]bool{}
	for _, c := range corr {
		if c.OK {
			corroborated[c.Check+":"+c.Domain] = true
		}
	}
	var missing []string
	if product.TLS(in.Product) {
		dvs, err := st.ListDomainValidations(ctx, in.ApplicationID)
		if err != nil {
			return err
		}
		valid := map[string]bool{}
		for _, d := range dvs {
			if d.Result == "valid" && d.ValidatedAt != nil && now.Sub(*d.ValidatedAt) < DCVReuse {
				valid[d.Domain] = true
			}
		}
		for _, n := range in.Domains {
			n = strings.ToLower(n)
			if !valid[n] {
				missing = append(missing, n+": no valid domain validation")
			} else if !corroborated["dcv:"+n] {
				missing = append(missing, n+": domain validation not corroborated by the remote perspectives")
			}
		}
		if len(missing) > 0 {
			return nonRetryable(ErrTypeCSRRejected, "not signed: "+strings.Join(missing, "; "), nil)
		}
	}
	checks, err := st.LatestCAAChecks(ctx, in.ApplicationID)
	if err != nil {
		return err
	}
	byName := map[string]store.CAACheck{}
	for _, c := range checks {
		byName[c.Name] = c
	}
	var stale []string
	for _, n := range names {
		c, ok := byName[n]
		switch {
		case !ok:
			stale = append(stale, n+": no CAA check")
		case !c.Permitted:
			return nonRetryable(ErrTypeCSRRejected, fmt.Sprintf("not signed: CAA forbids %s (%s)", n, c.Rule), nil)
		case !now.Before(c.IssueBy):
			stale = append(stale, fmt.Sprintf("%s: CAA checked %s, valid until %s", n, c.CheckedAt.Format(time.RFC3339), c.IssueBy.Format(time.RFC3339)))
		case !corroborated["caa:"+n]:
			stale = append(stale, n+": CAA not corroborated by the remote perspectives")
		}
	}
	if len(stale) > 0 {
		return nonRetryable(ErrTypeStaleEvidence, "not signed until CAA is checked again: "+strings.Join(stale, "; "), nil)
	}
	return nil
}

// caaNames are the names whose CAA the signer requires: the domains of a
// TLS certificate, the mailbox domain of a client certificate.
func caaNames(in IssueInput) []string {
	if product.TLS(in.Product) {
		out := make([]string, len(in.Domains))
		for i, d := range in.Domains {
			out[i] = strings.ToLower(d)
		}
		return out
	}
	if product.Client(in.Product) && strings.Contains(in.Email, "@") {
		return []string{strings.ToLower(in.Email[strings.LastIndexByte(in.Email, '@')+1:])}
	}
	return nil
}
