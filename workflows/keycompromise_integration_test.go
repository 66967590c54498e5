//go:build integration

package workflows

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"math/big"
	"strconv"
	"testing"
	"time"

	"go.temporal.io/sdk/client"

	"certdesk/internal/pki"
	"certdesk/internal/product"
	"certdesk/internal/revocation"
	"certdesk/internal/status"
	"certdesk/internal/store"
)

// TestKeyCompromiseScopeOnStack: one key in certificates of two resellers.
// Reseller A's keyCompromise claim without proof revokes only A's
// certificate and waits for staff, leaving the key unblocked and reseller
// B's certificates alone, also once staff reject the claim; a proven
// keyCompromise on the (now revoked) certificate then blocks the key,
// revokes B's valid certificate and upgrades B's certificate revoked earlier
// as superseded.
func TestKeyCompromiseScopeOnStack(t *testing.T) {
	s := newStack(t, nil)
	ctx := context.Background()
	issuer, err := s.sign.CA.IssuerFor(product.ServerDV)
	if err != nil {
		t.Fatal(err)
	}
	tag := strconv.FormatInt(time.Now().UnixNano(), 36)
	key := sha256.Sum256([]byte("shared key " + tag))
	n := 0
	issue := func(rs string) string {
		t.Helper()
		n++
		id := "app_kc_" + tag + "_" + strconv.Itoa(n)
		sub := "sb_" + rs + "_" + tag
		if err := s.store.UpsertSubscriber(ctx, store.Subscriber{ID: sub, ResellerID: rs, Name: "n", Email: sub + "@certdesk.test", Country: "JP"}); err != nil {
			t.Fatal(err)
		}
		if err := s.store.CreateApplication(ctx, store.Application{ID: id, ResellerID: rs, SubscriberID: sub, Product: product.ServerDV,
			Domains: []string{"www.example.jp"}, CSR: []byte("csr"), SPKISHA256: key[:], ValidityDays: 90,
			AttestationTermsVersion: "2026-01", AttestationTruthful: true, AttestedAt: time.Now(), WorkflowID: "application/" + id}); err != nil {
			t.Fatal(err)
		}
		if err := s.store.SetApplicationStatus(ctx, id, status.AppIssuing, ""); err != nil {
			t.Fatal(err)
		}
		b := make([]byte, 16)
		_, _ = rand.Read(b)
		b[0] = b[0]&0x7f | 0x40
		res, err := s.store.ReserveSerial(ctx, id, new(big.Int).SetBytes(b).Text(16))
		if err != nil {
			t.Fatal(err)
		}
		nb := time.Now().Add(-time.Hour)
		sn, _ := new(big.Int).SetString(res.Serial, 16)
		if err := s.store.StoreCertificate(ctx, store.Certificate{Serial: res.Serial, Issuer: issuer.ID(), DER: []byte("der"), NotBefore: nb,
			NotAfter: nb.Add(90 * 24 * time.Hour), SPKISHA256: key[:], ResellerID: rs, SubscriberID: sub, ApplicationID: id,
			Product: product.ServerDV, CRLShard: pki.ShardFor(sn, issuer.CRLShards())}); err != nil {
			t.Fatal(err)
		}
		return res.Serial
	}
	for i, rs := range []string{"rs_ka", "rs_kb"} {
		if err := s.store.CreateReseller(ctx, store.Reseller{ID: rs, Name: rs, APIKeyHash: fixedHash[:63] + strconv.Itoa(i),
			APIKeyPrefix: "cdk_" + rs, ContactEmail: rs + "@certdesk.test"}); err != nil {
			t.Fatal(err)
		}
	}
	reported, validB, supersededB := issue("rs_ka"), issue("rs_kb"), issue("rs_kb")
	if _, err := s.store.RevokeBatch(ctx, []string{supersededB}, store.RevokeBatch{ReasonCode: store.ReasonSuperseded,
		RequestedByKind: "reseller", RequestedByRef: "rs_kb", RevokedAt: time.Now().Truncate(time.Second)}); err != nil {
		t.Fatal(err)
	}
	start := func(r Requester) client.WorkflowRun {
		t.Helper()
		run, err := s.tc.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: RevocationWorkflowID(reported), TaskQueue: TaskQueue}, Revocation,
			RevocationInput{Serial: reported, Reason: revocation.KeyCompromise.String(), Requester: r})
		if err != nil {
			t.Fatal(err)
		}
		return run
	}
	wait := func(run client.WorkflowRun) {
		t.Helper()
		gctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
		defer cancel()
		var res RevocationResult
		if err := run.Get(gctx, &res); err != nil || res.Status != RevRevoked {
			if d, derr := s.tc.DescribeWorkflowExecution(ctx, run.GetID(), run.GetRunID()); derr == nil {
				for _, pa := range d.PendingActivities {
					t.Logf("pending %s attempt %d: %v", pa.ActivityType.GetName(), pa.Attempt, pa.LastFailure)
				}
			}
			t.Fatalf("revocation %s: %+v %v", run.GetID(), res, err)
		}
	}
	reason := func(serial string) (string, int) {
		t.Helper()
		ref, err := s.store.GetCertificateRef(ctx, serial)
		if err != nil {
			t.Fatal(err)
		}
		code := -1
		if ref.ReasonCode != nil {
			code = *ref.ReasonCode
		}
		return ref.Status, code
	}

	// Unproven: reseller A's word only. The case revokes A's certificate
	// and waits for staff.
	run := start(Requester{Kind: RequesterReseller, ID: "rs_ka"})
	deadline := time.Now().Add(3 * time.Minute)
	for {
		var st RevocationState
		if v, err := s.tc.QueryWorkflow(ctx, run.GetID(), run.GetRunID(), StatusQuery); err == nil && v.Get(&st) == nil && st.Status == RevConfirming {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the unproven claim never reached the staff confirmation")
		}
		time.Sleep(300 * time.Millisecond)
	}
	if st, code := reason(reported); st != status.CertRevoked || code != int(revocation.KeyCompromise) {
		t.Fatalf("reported certificate %s reason %d", st, code)
	}
	if _, ok, err := s.store.IsKeyBlocked(ctx, key[:]); err != nil || ok {
		t.Fatalf("an unproven reseller claim blocked the key (err %v)", err)
	}
	if st, _ := reason(validB); st != status.CertValid {
		t.Fatalf("an unproven claim of reseller A revoked reseller B's certificate %s: %s", validB, st)
	}
	// Staff reject the claim: nothing more happens.
	var after RevocationState
	update(t, s.tc, run.GetID(), ConfirmKeyCompromiseUpdate, ReviewDecision{Decision: "reject", Reviewer: "staff_a", Reason: "no evidence"}, &after)
	wait(run)
	if _, ok, err := s.store.IsKeyBlocked(ctx, key[:]); err != nil || ok {
		t.Fatalf("a rejected claim blocked the key (err %v)", err)
	}
	if st, _ := reason(validB); st != status.CertValid {
		t.Fatalf("a rejected claim revoked %s: %s", validB, st)
	}

	// Proven (the key holder) on the now revoked certificate: the whole key goes.
	wait(start(Requester{Kind: RequesterSubscriber, ID: "key-proof:csr"}))
	if _, ok, err := s.store.IsKeyBlocked(ctx, key[:]); err != nil || !ok {
		t.Fatalf("a proven keyCompromise on a revoked certificate did not block the key (err %v)", err)
	}
	deadline = time.Now().Add(3 * time.Minute)
	for {
		sb, cb := reason(validB)
		ss, cs := reason(supersededB)
		if sb == status.CertRevoked && cb == 1 && ss == status.CertRevoked && cs == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("siblings after a proven compromise: %s %s reason %d; %s %s reason %d; want both revoked for keyCompromise",
				validB, sb, cb, supersededB, ss, cs)
		}
		time.Sleep(500 * time.Millisecond)
	}
}
