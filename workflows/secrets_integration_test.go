//go:build integration

package workflows

import (
	"context"
	"encoding/base64"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"google.golang.org/protobuf/encoding/protojson"

	"certdesk/internal/challenge"
	"certdesk/internal/store"
)

var b64Run = regexp.MustCompile(`"([A-Za-z0-9+/]{8,}={0,2})"`)

// codeSubmission is what the starter sends for a value typed by the
// person: its keyed digest, never the value.
func codeSubmission(t *testing.T, st *store.Store, verificationID, value string) CodeSubmission {
	t.Helper()
	kind := challenge.KindCode
	if challenge.IsMailboxValue(value) {
		kind = challenge.KindMailbox
	}
	d, err := st.ChallengeDigest(verificationID, kind, value)
	if err != nil {
		t.Fatal(err)
	}
	return CodeSubmission{Digest: d}
}

// historyText is a workflow's whole history as JSON with every payload's
// data decoded too (these stacks use no codec: payloads are plain JSON).
func historyText(t *testing.T, tc client.Client, workflowID string) string {
	t.Helper()
	iter := tc.GetWorkflowHistory(context.Background(), workflowID, "", false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	var b strings.Builder
	for iter.HasNext() {
		e, err := iter.Next()
		if err != nil {
			t.Fatal(err)
		}
		js, err := protojson.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		b.Write(js)
		b.WriteByte('\n')
		for _, m := range b64Run.FindAllStringSubmatch(string(js), -1) {
			if d, err := base64.StdEncoding.DecodeString(m[1]); err == nil {
				b.Write(d)
				b.WriteByte('\n')
			}
		}
	}
	return b.String()
}

// assertNoSecrets fails the test if a workflow's history holds any of the
// secrets, and checks the decoding worked (known marks are found).
func assertNoSecrets(t *testing.T, tc client.Client, workflowID string, marks []string, secrets map[string]string) {
	t.Helper()
	h := historyText(t, tc, workflowID)
	for _, m := range marks {
		if !strings.Contains(h, m) {
			t.Fatalf("history of %s does not show %q: not decoded?", workflowID, m)
		}
	}
	for what, v := range secrets {
		if v == "" {
			t.Fatalf("no %s to look for", what)
		}
		if strings.Contains(h, v) {
			t.Errorf("the history of %s contains the %s %q", workflowID, what, v)
		}
	}
}

// TestSecretsOutOfHistoryOnRealStack: a disclosure with its identity
// verification on the real stack (a wrong code, then the code from
// MailDev; staff confirm; the package downloaded with the emailed token).
// Both histories, payloads decoded, hold neither the code nor the token.
func TestSecretsOutOfHistoryOnRealStack(t *testing.T) {
	s := newPDStack(t)
	ctx := context.Background()
	rs := s.reseller(t, "sec")
	email := "hanako-" + s.suffix + "@example.jp"
	s.certificate(t, rs, "app_sec_"+s.suffix, email, time.Now().Add(60*24*time.Hour))

	reqID := "dr_sec_" + s.suffix
	wfID := DisclosureWorkflowID(reqID)
	verID := DisclosureVerificationID(reqID)
	verWF := VerificationWorkflowID(verID)
	run := s.start(t, wfID, Disclosure, DisclosureInput{RequestID: reqID, Name: "山田 太郎", Email: email, Phone: "+81 3 0000 0000"})

	msgs := s.mail.WaitFor(t, email, 1, 60*time.Second)
	m := codeRE.FindStringSubmatch(msgs[0].Text)
	if m == nil || !challenge.IsCode(m[1]) {
		t.Fatalf("no code in %q", msgs[0].Text)
	}
	code := m[1]
	waitStatus(t, s.tc, verWF, func(v VerificationState) bool { return v.Status == VerAwaitingCode })
	wrong := "000000"
	if code == wrong {
		wrong = "000001"
	}
	var cr CodeResult
	update(t, s.tc, verWF, SubmitCodeUpdate, codeSubmission(t, s.store, verID, wrong), &cr)
	if cr.Accepted || cr.AttemptsLeft != CodeMaxAttempts-1 {
		t.Fatalf("wrong code: %+v", cr)
	}
	update(t, s.tc, verWF, SubmitCodeUpdate, codeSubmission(t, s.store, verID, code), &cr)
	if !cr.Accepted {
		t.Fatalf("code refused: %+v", cr)
	}
	// Only the keyed digest is stored.
	var stored string
	if err := s.pool.Get(&stored, `SELECT value_digest FROM verification_challenges WHERE verification_id = $1`, verID); err != nil ||
		strings.Contains(stored, code) || !challenge.IsDigest(stored) {
		t.Fatalf("stored challenge %q (%v)", stored, err)
	}
	var vs VerificationState
	update(t, s.tc, verWF, ConfirmIdentityUpdate, IdentityDecision{Decision: "confirm", Reviewer: "bob", Evidence: "運転免許証の写し"}, &vs)
	approvePackage(t, s.tc, wfID)
	if res := pdResult[DisclosureResult](t, run); res.Status != DiscDelivered || res.NothingHeld {
		t.Fatalf("result %+v", res)
	}

	var token string
	for _, m := range s.mail.WaitFor(t, email, 2, 30*time.Second) {
		if mm := downloadRE.FindStringSubmatch(m.Text); mm != nil {
			token = mm[1]
		}
	}
	if token == "" {
		t.Fatal("no download link emailed")
	}
	if _, err := s.store.ConsumeDisclosureDownload(ctx, token, time.Now()); err != nil {
		t.Fatalf("download with the emailed token: %v", err)
	}
	var linkHash string
	if err := s.pool.Get(&linkHash, `SELECT link_token_hash FROM disclosure_requests WHERE id = $1`, reqID); err != nil ||
		linkHash == store.HashLinkToken(token) {
		t.Fatalf("the link is stored by an unkeyed hash (%v)", err)
	}

	secrets := map[string]string{"one-time code": code, "download token": token}
	assertNoSecrets(t, s.tc, verWF, []string{email, verID}, secrets)
	assertNoSecrets(t, s.tc, wfID, []string{email, reqID}, secrets)
	recordHistory(t, s.tc, verWF, "verification-digest-code")
	recordHistory(t, s.tc, wfID, "disclosure-digest-link")
}
