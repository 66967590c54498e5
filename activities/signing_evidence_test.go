package activities

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/temporal"

	"certdesk/internal/product"
	"certdesk/internal/store"
)

// evidenceStore holds the validation records a test gives the signer.
type evidenceStore struct {
	fakeSigningStore
	dvs  []store.DomainValidation
	caa  []store.CAACheck
	corr []store.Corroboration
}

func (e *evidenceStore) ListDomainValidations(context.Context, string) ([]store.DomainValidation, error) {
	return e.dvs, nil
}
func (e *evidenceStore) LatestCAAChecks(context.Context, string) ([]store.CAACheck, error) {
	return e.caa, nil
}
func (e *evidenceStore) ListCorroborations(context.Context, string) ([]store.Corroboration, error) {
	return e.corr, nil
}

func errType(err error) string {
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) {
		return appErr.Type()
	}
	return ""
}

// The signer reads the evidence itself: called for an application with no
// validation records it refuses and reserves no serial, whatever the
// workflow believes; each missing piece is named.
func TestIssueRefusesWithoutEvidence(t *testing.T) {
	now := time.Now()
	validated := now.Add(-time.Hour)
	fullDV := []store.DomainValidation{{Domain: "www.example.jp", Result: "valid", ValidatedAt: &validated}}
	okCorr := []store.Corroboration{{Domain: "www.example.jp", Check: "dcv", OK: true}, {Domain: "www.example.jp", Check: "caa", OK: true}}
	fresh := []store.CAACheck{{Name: "www.example.jp", Permitted: true, Rule: "no-caa", CheckedAt: now, IssueBy: now.Add(8 * time.Hour)}}
	for name, tc := range map[string]struct {
		st   *evidenceStore
		typ  string
		want string
	}{
		"nothing":              {&evidenceStore{}, ErrTypeCSRRejected, "no valid domain validation"},
		"dcv not corroborated": {&evidenceStore{dvs: fullDV}, ErrTypeCSRRejected, "not corroborated"},
		"no CAA":               {&evidenceStore{dvs: fullDV, corr: okCorr}, ErrTypeStaleEvidence, "no CAA check"},
		"CAA forbids": {&evidenceStore{dvs: fullDV, corr: okCorr, caa: []store.CAACheck{{Name: "www.example.jp", Permitted: false, Rule: "not-authorized",
			IssueBy: now.Add(time.Hour)}}}, ErrTypeCSRRejected, "CAA forbids"},
		"CAA stale": {&evidenceStore{dvs: fullDV, corr: okCorr, caa: []store.CAACheck{{Name: "www.example.jp", Permitted: true,
			CheckedAt: now.Add(-9 * time.Hour), IssueBy: now.Add(-time.Hour)}}}, ErrTypeStaleEvidence, "valid until"},
		"CAA not corroborated": {&evidenceStore{dvs: fullDV, corr: okCorr[:1], caa: fresh}, ErrTypeStaleEvidence, "CAA not corroborated"},
	} {
		s := &SigningActivities{Store: tc.st}
		_, err := s.IssueCertificate(context.Background(), issueIn())
		if errType(err) != tc.typ || !strings.Contains(err.Error(), tc.want) || tc.st.reserved != 0 {
			t.Errorf("%s: %v (type %q, reservations %d), want %s containing %q", name, err, errType(err), tc.st.reserved, tc.typ, tc.want)
		}
	}
	// With every record in place the check passes.
	if err := checkEvidence(context.Background(), &evidenceStore{dvs: fullDV, corr: okCorr, caa: fresh}, issueIn(), now); err != nil {
		t.Fatalf("complete evidence refused: %v", err)
	}
	// A client certificate needs CAA (issuemail) for its mailbox domain only.
	client := IssueInput{ApplicationID: "app_2", Product: product.ClientSign, Email: "taro@Example.JP"}
	if err := checkEvidence(context.Background(), &evidenceStore{}, client, now); errType(err) != ErrTypeStaleEvidence || !strings.Contains(err.Error(), "example.jp: no CAA") {
		t.Fatalf("client without CAA: %v", err)
	}
}

// notBefore stays within 48 hours of signing however long ago the serial
// was reserved (BR §7.1.2.7).
func TestNotBeforeWithin48Hours(t *testing.T) {
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	if nb := notBefore(now.Add(-time.Hour), now); !nb.Equal(now.Add(-time.Hour)) {
		t.Fatalf("recent reservation: %s", nb)
	}
	if nb := notBefore(now.Add(-72*time.Hour), now); now.Sub(nb) > 48*time.Hour {
		t.Fatalf("old reservation gives notBefore %s, %s before signing", nb, now.Sub(nb))
	}
}
