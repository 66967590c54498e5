package workflows

import (
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/testsuite"

	"certdesk/activities"
	"certdesk/internal/mailer"
)

// revokedOf returns the revocations recorded for serial, in order.
func revokedOf(rec *revRecorder, serial string) []activities.RevokeInput {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	var out []activities.RevokeInput
	for _, in := range rec.revoked {
		if in.Serial == serial {
			out = append(out, in)
		}
	}
	return out
}

// A proven keyCompromise on a certificate revoked earlier for another
// reason blocks the key, revokes the siblings and upgrades the reason.
func TestRevocationKeyCompromiseOnRevokedUpgrades(t *testing.T) {
	env, _ := newEnv(t)
	var rec revRecorder
	tg := testTarget
	tg.AlreadyRevoked, tg.RevokedAt = true, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	revMocks(env, &rec, tg, []string{"3c"})
	env.ExecuteWorkflow(Revocation, RevocationInput{Serial: "1a2b", Reason: "keyCompromise", Requester: Requester{Kind: RequesterSubscriber, ID: "key-proof:csr"}})
	r := revResult(t, env)
	if r.Status != RevRevoked {
		t.Fatalf("result %+v", r)
	}
	if own := revokedOf(&rec, "1a2b"); len(own) != 1 || own[0].ReasonCode != 1 {
		t.Fatalf("reason of 1a2b not upgraded to keyCompromise: revocations %+v", own)
	}
	if len(rec.blocked) == 0 || rec.blocked[0] != "aa" {
		t.Fatalf("key not blocked: blocked %v", rec.blocked)
	}
	if sib := revokedOf(&rec, "3c"); len(sib) != 1 || sib[0].ReasonCode != 1 {
		t.Fatalf("sibling 3c not revoked: %+v", sib)
	}
	if len(rec.published) == 0 || len(rec.ocsp) == 0 {
		t.Fatalf("CRL/OCSP not republished with the new reason: crl %v ocsp %v", rec.published, rec.ocsp)
	}
}

// A proven keyCompromise joining a running case upgrades it and cascades.
func TestRevocationKeyCompromiseJoiningUpgrades(t *testing.T) {
	env, _ := newEnv(t)
	rec := revRecorder{hold: time.Hour}
	revMocks(env, &rec, testTarget, []string{"3c"})
	env.RegisterDelayedCallback(func() {
		env.SignalWorkflow(RequestSignal, RevocationInput{Serial: "1a2b", Reason: "keyCompromise",
			Requester: Requester{Kind: RequesterSubscriber, ID: "key-proof:signature"}, RequestedAt: env.Now()})
	}, time.Minute)
	env.ExecuteWorkflow(Revocation, RevocationInput{Serial: "1a2b", Reason: "superseded", Requester: Requester{Kind: RequesterReseller, ID: "rs_a"}})
	revResult(t, env)
	own := revokedOf(&rec, "1a2b")
	if len(own) == 0 || own[len(own)-1].ReasonCode != 1 {
		t.Fatalf("running case not upgraded to keyCompromise: revocations of 1a2b %+v", own)
	}
	if len(rec.blocked) == 0 {
		t.Fatal("key not blocked after a proven keyCompromise joined the case")
	}
	if sib := revokedOf(&rec, "3c"); len(sib) != 1 || sib[0].ReasonCode != 1 {
		t.Fatalf("sibling 3c not revoked: %+v", sib)
	}
}

// A reseller's keyCompromise claim without key proof revokes only its own
// certificate and opens a staff task; the key is not blocked.
func TestRevocationUnprovenKeyCompromiseStaysLocal(t *testing.T) {
	env, sent := newEnv(t)
	var rec revRecorder
	revMocks(env, &rec, testTarget, []string{"3c"})
	env.ExecuteWorkflow(Revocation, RevocationInput{Serial: "1a2b", Reason: "keyCompromise", Requester: Requester{Kind: RequesterReseller, ID: "rs_a"}})
	revResult(t, env)
	if own := revokedOf(&rec, "1a2b"); len(own) != 1 || own[0].ReasonCode != 1 {
		t.Fatalf("own certificate: %+v", own)
	}
	if len(rec.blocked) != 0 || len(revokedOf(&rec, "3c")) != 0 {
		t.Fatalf("unproven claim cascaded: blocked %v, sibling revocations %+v", rec.blocked, revokedOf(&rec, "3c"))
	}
	var task bool
	for _, m := range sent.of(mailer.StaffEscalation) {
		if strings.Contains(m.Key, "confirm-key-compromise") {
			task = true
		}
	}
	if !task {
		t.Fatalf("no staff task to confirm the key compromise; staff notices %+v", sent.of(mailer.StaffEscalation))
	}
}

// Staff confirm an unproven keyCompromise claim with the
// confirm-key-compromise Update: then the key is blocked and the siblings
// revoked. A decision without a reviewer is rejected by the validator.
func TestRevocationStaffConfirmsKeyCompromise(t *testing.T) {
	env, _ := newEnv(t)
	var rec revRecorder
	revMocks(env, &rec, testTarget, []string{"3c"})
	var rejected, accepted bool
	env.RegisterDelayedCallback(func() {
		env.UpdateWorkflow("confirm-key-compromise", "no-reviewer", &testsuite.TestUpdateCallback{
			OnReject: func(error) { rejected = true }, OnAccept: func() {}, OnComplete: func(any, error) {},
		}, ReviewDecision{Decision: "confirm"})
		env.UpdateWorkflow("confirm-key-compromise", "alice", &testsuite.TestUpdateCallback{
			OnReject: func(err error) { t.Errorf("confirmation rejected: %v", err) }, OnAccept: func() { accepted = true }, OnComplete: func(any, error) {},
		}, ReviewDecision{Decision: "confirm", Reviewer: "alice", Reason: "key published on a paste site"})
	}, time.Hour)
	env.ExecuteWorkflow(Revocation, RevocationInput{Serial: "1a2b", Reason: "keyCompromise", Requester: Requester{Kind: RequesterReseller, ID: "rs_a"}})
	revResult(t, env)
	if !rejected || !accepted {
		t.Fatalf("update without reviewer rejected %v, confirmation accepted %v", rejected, accepted)
	}
	if len(rec.blocked) == 0 {
		t.Fatal("key not blocked after staff confirmed the compromise")
	}
	if sib := revokedOf(&rec, "3c"); len(sib) != 1 || sib[0].ReasonCode != 1 {
		t.Fatalf("sibling 3c not revoked after the confirmation: %+v", sib)
	}
}
