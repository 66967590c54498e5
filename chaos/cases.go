package main

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"time"

	"certdesk/activities"
	"certdesk/bench/stack"
	"certdesk/internal/product"
	"certdesk/internal/revocation"
	"certdesk/internal/status"
	"certdesk/workflows"
)

// Case kinds.
const (
	kindDV         = "dv"
	kindRevoke     = "revoke"
	kindWithdraw   = "withdraw"
	kindOV         = "ov"
	kindClient     = "client"
	kindDisclosure = "disclosure"
)

var kinds = []string{kindDV, kindRevoke, kindWithdraw, kindOV, kindClient, kindDisclosure}

// mixPattern is the order of kinds in every 20 cases: 8 dv (40%), 3 revoke
// (15%), 2 withdraw (10%), 3 ov (15%), 2 client (10%), 2 disclosure (10%),
// spread so that every stretch of the run has each kind.
var mixPattern = [20]string{
	kindDV, kindOV, kindRevoke, kindDV, kindClient, kindDisclosure, kindDV, kindWithdraw, kindOV, kindDV,
	kindRevoke, kindDV, kindClient, kindOV, kindDV, kindDisclosure, kindRevoke, kindDV, kindWithdraw, kindDV,
}

// Disclosure variants, in turn.
const (
	discHeldDocs = "held+documents" // an earlier DV subject; staff pause for documents first
	discNone     = "nothing-held"   // an address nothing is held about
	discHeld     = "held"           // an earlier DV subject; the package is downloaded
	discPaper    = "paper"          // paper delivery, staff send paper-sent
)

var discVariants = []string{discHeldDocs, discNone, discHeld, discPaper}

// chaosSubscriber is the name on every chaos application but the client
// ones; held disclosures ask with it.
const chaosSubscriber = "Chaos Taro"

// The OV organisation is in dev/registry.json (active).
const (
	ovOrganization = "株式会社サンプル商事"
	ovCountry      = "JP"
)

type kase struct {
	i       int
	kind    string
	variant string // disclosure
	domain  string
	email   string // the subscriber's or the data subject's address
	phone   string // the subscriber's phone; a held disclosure gives it with the name (issue 17)

	// Written by the case's goroutine; read after wg.Wait.
	id     string // application id or disclosure request id
	wid    string // its workflow
	verWID string // identity verification workflow (ov, client, disclosure)
	serial string
	status string // application status or disclosure status, as last seen
	revWID string
	revSt  string
	pkgOK  bool // held disclosure: the downloaded package lists the held application
	note   string
	done   bool

	// held is the DV case whose subject a held disclosure is about;
	// recorded is closed once this case's application is recorded.
	held        *kase
	recorded    chan struct{}
	recOnce     sync.Once
	wasRecorded bool // set before recorded is closed
}

// markRecorded tells a disclosure about this case's subject whether the
// application was recorded (ok) or never will be.
func (k *kase) markRecorded(ok bool) {
	k.recOnce.Do(func() {
		k.wasRecorded = ok
		close(k.recorded)
	})
}

func (k *kase) issuedKind() bool {
	return k.kind == kindDV || k.kind == kindRevoke || k.kind == kindOV || k.kind == kindClient
}

// wantStatus is the end state a case must reach.
func (k *kase) wantStatus() string {
	switch k.kind {
	case kindWithdraw:
		return status.AppWithdrawn
	case kindDisclosure:
		return workflows.DiscDelivered
	}
	return status.AppIssued
}

func makeCases(n int, tag, zone string) []*kase {
	ks := make([]*kase, n)
	var lastDV *kase
	nDisc := 0
	for i := range ks {
		k := &kase{i: i, kind: mixPattern[i%len(mixPattern)], recorded: make(chan struct{})}
		prefix := "c"
		if k.kind == kindWithdraw {
			prefix = "hold" // the loopback file server never validates these
		}
		k.domain = fmt.Sprintf("%s%04d-%s.%s", prefix, i, tag, zone)
		k.email = fmt.Sprintf("sub%04d-%s@chaos.certdesk.jp", i, tag)
		k.phone = fmt.Sprintf("+81 3 5555 %04d", i)
		if k.kind == kindDisclosure {
			k.variant = discVariants[nDisc%len(discVariants)]
			nDisc++
			if (k.variant == discHeld || k.variant == discHeldDocs || k.variant == discPaper) && lastDV != nil {
				k.held = lastDV
				k.email, k.phone = lastDV.email, lastDV.phone
				lastDV = nil // one disclosure per subject
			} else if k.variant != discNone {
				k.variant = discNone
			}
		}
		if k.kind == kindDV {
			lastDV = k
		}
		ks[i] = k
	}
	return ks
}

type harness struct {
	s        *stack.Stack
	api      *apiClient
	mail     *mailbox
	stats    *staffStats
	deadline time.Time
}

func (h *harness) runCase(ctx context.Context, k *kase) {
	defer k.markRecorded(false) // never leave a disclosure waiting on a case that gave up
	var err error
	if k.kind == kindDisclosure {
		err = h.runDisclosure(ctx, k)
	} else {
		err = h.runApplication(ctx, k)
	}
	if err != nil {
		k.note = err.Error()
		return
	}
	k.done = true
}

type appStatus struct {
	ID                string `json:"id"`
	WorkflowID        string `json:"workflow_id"`
	Status            string `json:"status"`
	Reason            string `json:"reason"`
	CertificateSerial string `json:"certificate_serial"`
}

func ecCSR() string {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, k)
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))
}

// rsaCSR: client-sign keys are RSA only (O11).
func rsaCSR() (string, error) {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return "", err
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "ignored"}}, k)
	if err != nil {
		return "", err
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})), nil
}

func isTerminalApp(st string) bool {
	switch st {
	case status.AppIssued, status.AppRejected, status.AppFailed, status.AppWithdrawn, status.AppExpired:
		return true
	}
	return false
}

func (h *harness) runApplication(ctx context.Context, k *kase) error {
	body := map[string]any{
		"subscriber":  map[string]any{"name": chaosSubscriber, "email": k.email, "phone": k.phone, "country": "JP"},
		"attestation": map[string]any{"terms_version": "2026-01", "truthful": true},
	}
	switch k.kind {
	case kindOV:
		body["product"] = product.ServerOV
		body["csr"] = ecCSR()
		body["domains"] = []string{k.domain}
		body["subscriber"] = map[string]any{"name": chaosSubscriber, "email": k.email, "phone": k.phone, "organization": ovOrganization,
			"country": ovCountry, "locality": "Chiyoda-ku", "province": "Tokyo"}
	case kindClient:
		csr, err := rsaCSR()
		if err != nil {
			return err
		}
		body["product"] = product.ClientSign
		body["csr"] = csr
		body["subscriber"] = map[string]any{"name": "山田 太郎", "email": k.email, "organization": ovOrganization, "country": "JP"}
	default:
		body["product"] = product.ServerDV
		body["csr"] = ecCSR()
		body["domains"] = []string{k.domain}
	}
	code, b, err := h.api.do(ctx, http.MethodPost, "/v1/applications", body, "chaos-app-"+k.domain, h.deadline)
	if err != nil || code != http.StatusAccepted {
		return fmt.Errorf("submit: %d %v %s", code, err, firstLine(string(b)))
	}
	var st appStatus
	_ = json.Unmarshal(b, &st)
	k.id, k.wid = st.ID, st.WorkflowID
	if k.kind == kindOV || k.kind == kindClient {
		k.verWID = workflows.VerificationWorkflowID("ver-" + k.id)
	}

	poll := func(pred func(appStatus) bool) bool {
		for time.Now().Before(h.deadline) {
			code, b, err := h.api.do(ctx, http.MethodGet, "/v1/applications/"+k.id, nil, "", h.deadline)
			if err == nil && code == 200 {
				var s appStatus
				if json.Unmarshal(b, &s) == nil {
					k.status, k.serial = s.Status, s.CertificateSerial
					if s.Status != "" && s.Status != status.AppReceived {
						k.markRecorded(true)
					}
					if pred(s) {
						return true
					}
				}
			}
			if !sleepCtx(ctx, 2*time.Second) {
				return false
			}
		}
		return false
	}
	terminal := func(s appStatus) bool { return isTerminalApp(s.Status) }

	switch k.kind {
	case kindWithdraw:
		if !poll(func(s appStatus) bool { return s.Status == status.AppValidating || terminal(s) }) {
			return fmt.Errorf("never reached %s (last %q)", status.AppValidating, k.status)
		}
		code, b, err := h.api.do(ctx, http.MethodPost, "/v1/applications/"+k.id+"/withdraw", map[string]any{"reason": "chaos"}, "chaos-wd-"+k.domain, h.deadline)
		if err != nil || (code != 202 && code != 200 && code != 409) {
			return fmt.Errorf("withdraw: %d %v %s", code, err, firstLine(string(b)))
		}
	case kindOV, kindClient:
		// The subscriber types the code from the email; staff check the
		// documents, then review the application.
		if err := h.verifyIdentity(ctx, k.verWID, k.email); err != nil {
			return err
		}
		if err := h.waitCaseStatus(ctx, k.wid, status.AppAwaitingReview); err != nil {
			return fmt.Errorf("review: %w", err)
		}
		decision := workflows.ReviewDecision{Decision: "approve", Reviewer: "chaos-reviewer"}
		reviewed := func(ctx context.Context) bool {
			return applied(ctx, h, k.wid, func(st workflows.ApplicationState) bool { return st.Review != nil })
		}
		if err := h.update(ctx, k.wid, workflows.ReviewUpdate, decision, reviewed); err != nil {
			return err
		}
		// Staff click again: the second approval must not be applied.
		h.repeat(ctx, k.wid, workflows.ReviewUpdate, decision, reviewed)
	}
	if !poll(terminal) {
		return fmt.Errorf("never closed (last %q)", k.status)
	}
	if k.status != k.wantStatus() {
		return fmt.Errorf("ended %s, want %s", k.status, k.wantStatus())
	}
	if k.kind != kindRevoke {
		return nil
	}

	// The reseller revokes for key compromise; wait for the revocation.
	code, b, err = h.api.do(ctx, http.MethodPost, "/v1/certificates/"+k.serial+"/revocation", map[string]any{"reason": revocation.KeyCompromise.String(), "comment": "chaos"}, "chaos-rv-"+k.domain, h.deadline)
	if err != nil || code >= 300 {
		return fmt.Errorf("revocation: %d %v %s", code, err, firstLine(string(b)))
	}
	var rv struct {
		WorkflowID string `json:"workflow_id"`
	}
	_ = json.Unmarshal(b, &rv)
	k.revWID = rv.WorkflowID
	// A reseller's keyCompromise is a claim without proof of possession:
	// the case revokes the reseller's certificate and waits for staff to
	// confirm before it blocks the key (issue 17); staff confirm.
	if err := h.waitCaseStatus(ctx, k.revWID, workflows.RevConfirming); err != nil {
		return fmt.Errorf("revocation: %w", err)
	}
	confirm := workflows.ReviewDecision{Decision: "confirm", Reviewer: "chaos-reviewer"}
	confirmed := func(ctx context.Context) bool {
		return applied(ctx, h, k.revWID, func(st workflows.RevocationState) bool { return st.Status != workflows.RevConfirming })
	}
	if err := h.update(ctx, k.revWID, workflows.ConfirmKeyCompromiseUpdate, confirm, confirmed); err != nil {
		return err
	}
	var res workflows.RevocationResult
	if err := h.result(ctx, k.revWID, &res); err != nil {
		return fmt.Errorf("revocation: %w", err)
	}
	k.revSt = res.Status
	if res.Status != workflows.RevRevoked {
		return fmt.Errorf("revocation ended %s (%s)", res.Status, res.Refusal)
	}
	return nil
}

type disclosureAccepted struct {
	ID             string `json:"id"`
	WorkflowID     string `json:"workflow_id"`
	VerificationID string `json:"verification_id"`
}

func (h *harness) runDisclosure(ctx context.Context, k *kase) error {
	if k.held != nil {
		// Ask about someone CertDesk holds data about: wait until the
		// earlier case's application is recorded.
		select {
		case <-k.held.recorded:
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Until(h.deadline)):
		}
		if !k.held.wasRecorded {
			return fmt.Errorf("the held subject's application (#%d) was never recorded", k.held.i)
		}
	}
	// A held subject gives the name and phone number of the application
	// (records match by email, name and phone); nothing is held about the
	// others.
	body := map[string]any{"name": "Chaos Hanako", "email": k.email, "phone": k.phone}
	if k.held != nil {
		body["name"] = chaosSubscriber
	}
	if k.variant == discPaper {
		body["delivery"] = workflows.DeliveryPaper
		body["postal_address"] = "東京都千代田区1-1"
	}
	code, b, err := h.api.do(ctx, http.MethodPost, "/v1/disclosure-requests", body, fmt.Sprintf("chaos-dr-%04d-%s", k.i, k.email), h.deadline)
	if err != nil || code != http.StatusAccepted {
		return fmt.Errorf("disclosure request: %d %v %s", code, err, firstLine(string(b)))
	}
	var acc disclosureAccepted
	_ = json.Unmarshal(b, &acc)
	k.id, k.wid, k.verWID = acc.ID, acc.WorkflowID, workflows.VerificationWorkflowID(acc.VerificationID)
	k.status = workflows.DiscReceived

	if k.variant == discHeldDocs {
		// Staff ask for identity documents (the O6 clock stops), then
		// record that they came (it runs again).
		if err := h.waitCaseStatus(ctx, k.wid, workflows.DiscVerifyingIdentity); err != nil {
			return fmt.Errorf("request-documents: %w", err)
		}
		if err := h.update(ctx, k.wid, workflows.RequestDocumentsUpdate,
			workflows.DocumentsRequest{Reviewer: "chaos-staff", Reason: "本人確認書類の写しの提出を依頼"},
			func(ctx context.Context) bool {
				return applied(ctx, h, k.wid, func(st workflows.DisclosureState) bool { return len(st.Pauses) > 0 })
			}); err != nil {
			return err
		}
		if err := h.update(ctx, k.wid, workflows.DocumentsReceivedUpdate,
			workflows.DocumentsReceived{Reviewer: "chaos-staff", Note: "郵送で受領"},
			func(ctx context.Context) bool {
				return applied(ctx, h, k.wid, func(st workflows.DisclosureState) bool { return len(st.Pauses) > 0 && !st.Paused })
			}); err != nil {
			return err
		}
	}
	if err := h.verifyIdentity(ctx, k.verWID, k.email); err != nil {
		return err
	}
	if k.variant != discPaper {
		// Staff check the compiled package before it is sent (issue 17),
		// and a second click is refused.
		if err := h.waitCaseStatus(ctx, k.wid, workflows.DiscAwaitingApproval); err != nil {
			return fmt.Errorf("approve-disclosure: %w", err)
		}
		approve := workflows.PackageDecision{Reviewer: "chaos-reviewer", Decision: "approve"}
		approved := func(ctx context.Context) bool {
			return applied(ctx, h, k.wid, func(st workflows.DisclosureState) bool { return len(st.Decisions) > 0 })
		}
		if err := h.update(ctx, k.wid, workflows.ApproveDisclosureUpdate, approve, approved); err != nil {
			return err
		}
		h.repeat(ctx, k.wid, workflows.ApproveDisclosureUpdate, approve, approved)
	}
	if k.variant == discPaper {
		if err := h.waitCaseStatus(ctx, k.wid, workflows.DiscAwaitingPaper); err != nil {
			return fmt.Errorf("paper-sent: %w", err)
		}
		if err := h.update(ctx, k.wid, workflows.PaperSentUpdate,
			workflows.PaperSent{Reviewer: "chaos-staff", Reference: fmt.Sprintf("REG-%06d", k.i)},
			func(ctx context.Context) bool {
				return applied(ctx, h, k.wid, func(st workflows.DisclosureState) bool { return st.PaperSent != nil })
			}); err != nil {
			return err
		}
	}
	var res workflows.DisclosureResult
	if err := h.result(ctx, k.wid, &res); err != nil {
		return fmt.Errorf("disclosure: %w", err)
	}
	k.status = res.Status
	if res.Status != workflows.DiscDelivered {
		return fmt.Errorf("disclosure ended %s (%s)", res.Status, res.Reason)
	}
	if held := k.held != nil; res.NothingHeld == held {
		return fmt.Errorf("disclosure delivered with nothing_held=%v for a subject with data held=%v", res.NothingHeld, held)
	}
	if k.variant == discHeld {
		if err := h.downloadPackage(ctx, k); err != nil {
			return err
		}
		k.pkgOK = true
	}
	return nil
}

var downloadRE = regexp.MustCompile(`/v1/disclosures/([A-Za-z0-9_-]{20,})`)

// downloadPackage follows the emailed link as the data subject would and
// checks the package lists the subject's application.
func (h *harness) downloadPackage(ctx context.Context, k *kase) error {
	var token string
	for time.Now().Before(h.deadline) && token == "" {
		msgs, err := h.mail.query(ctx, "to.address="+url.QueryEscape(k.email)+"&headers.x-certdesk-notice=disclosure_ready")
		if err == nil {
			for _, m := range msgs {
				if mm := downloadRE.FindStringSubmatch(m.Text); mm != nil {
					token = mm[1]
				}
			}
		}
		if token == "" && !sleepCtx(ctx, 3*time.Second) {
			break
		}
	}
	if token == "" {
		return fmt.Errorf("no download link emailed")
	}
	code, b, err := h.api.do(ctx, http.MethodGet, "/v1/disclosures/"+token, nil, "", h.deadline)
	if err != nil || code != 200 {
		return fmt.Errorf("download: %d %v %s", code, err, firstLine(string(b)))
	}
	zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		return fmt.Errorf("download: %w", err)
	}
	for _, f := range zr.File {
		if f.Name != "package.json" {
			continue
		}
		rc, err := f.Open()
		if err != nil {
			return err
		}
		raw, _ := io.ReadAll(rc)
		rc.Close()
		var pkg activities.DisclosurePackage
		if err := json.Unmarshal(raw, &pkg); err != nil {
			return fmt.Errorf("package.json: %w", err)
		}
		for _, a := range pkg.Applications {
			if a.ID == k.held.id {
				return nil
			}
		}
		return fmt.Errorf("the package lists %d applications, not %s", len(pkg.Applications), k.held.id)
	}
	return fmt.Errorf("no package.json in the download")
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}
