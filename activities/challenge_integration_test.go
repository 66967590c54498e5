//go:build integration

package activities

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"certdesk/internal/challenge"
	"certdesk/internal/mailer"
	"certdesk/internal/testenv"
)

// TestIssueChallengeRetrySendsTheSameValue: IssueChallenge run twice (a
// retry) stores one digest and sends one email; the value in it is checked
// by its digest, a wrong value is not, and the result holds no value.
func TestIssueChallengeRetrySendsTheSameValue(t *testing.T) {
	md := testenv.SharedMailDev(t)
	a := newActs(t, md)
	ctx := context.Background()
	tag := strconv.FormatInt(time.Now().UnixNano(), 36)
	addr := "challenge-" + tag + "@example.jp"
	verID := "ver-ch-" + tag
	in := ChallengeInput{VerificationID: verID, Attempt: 1, Kind: challenge.KindCode, Recipient: Recipient{Email: addr},
		ExpiresAt: time.Now().Add(10 * time.Minute), ExpiryMinutes: 10, MaxAttempts: 5,
		IdempotencyKey: mailer.Key("verification/"+verID, mailer.VerificationCode)}
	first, err := a.IssueChallenge(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	again, err := a.IssueChallenge(ctx, in)
	if err != nil || !again.ExpiresAt.Equal(first.ExpiresAt) {
		t.Fatalf("retry: %+v %v", again, err)
	}
	msgs := md.WaitFor(t, addr, 1, 30*time.Second)
	time.Sleep(time.Second) // a second email, if any, would be there by now
	if msgs, _ = md.MessagesTo(ctx, addr); len(msgs) != 1 {
		t.Fatalf("%d emails for one challenge", len(msgs))
	}
	var code string
	for _, f := range strings.Fields(msgs[0].Text) {
		if challenge.IsCode(f) {
			code = f
		}
	}
	if code == "" {
		t.Fatalf("no code in %q", msgs[0].Text)
	}
	var n int
	if err := a.Store.DB().Get(&n, `SELECT count(*) FROM verification_challenges WHERE verification_id = $1 AND value_digest <> $2`, verID, code); err != nil || n != 1 {
		t.Fatalf("%d challenge rows (%v)", n, err)
	}
	wrong := "000000"
	if code == wrong {
		wrong = "000001"
	}
	for v, want := range map[string]bool{code: true, wrong: false} {
		d, err := a.Store.ChallengeDigest(verID, challenge.KindCode, v)
		if err != nil {
			t.Fatal(err)
		}
		res, err := a.CheckChallenge(ctx, CheckChallengeInput{VerificationID: verID, Digest: d})
		if err != nil || res.Match != want {
			t.Fatalf("check %s: %+v %v, want match %v", v, res, err, want)
		}
	}
	if _, err := a.CheckChallenge(ctx, CheckChallengeInput{VerificationID: verID, Digest: code}); err == nil {
		t.Fatal("a value instead of a digest was accepted")
	}
}
