//go:build integration

package httpapi

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"certdesk/workflows"
)

var mailboxValueRE = regexp.MustCompile(`Verification code: ([A-Z2-7]{26})\b`)

// TestNoSecretInDecodedHistory: a client-sign verification (the mailbox
// Random Value), a disclosure's verification (a 6-digit code, a wrong one
// first) and the disclosure's download link, all through the API with the
// values read from MailDev. The flows complete (values accepted, package
// downloaded), and the histories decoded by the temporal CLI through the
// codec endpoint (what anyone with the staff codec token sees) contain
// neither the emailed values nor the download token.
func TestNoSecretInDecodedHistory(t *testing.T) {
	s := newStack(t)
	_, key := s.addReseller("Secrets")
	p := newPerson()
	_, csr := newCSR(t)
	appID, _ := s.issue(key, p, csr)

	var mailboxValue string
	msgs, _ := s.mail.MessagesTo(context.Background(), p.Email)
	for _, m := range msgs {
		if mm := mailboxValueRE.FindStringSubmatch(m.Text); mm != nil {
			mailboxValue = mm[1]
		}
	}
	if mailboxValue == "" {
		t.Fatal("no mailbox Random Value mailed")
	}

	before, _ := s.mail.MessagesTo(context.Background(), p.Email)
	r := s.do("POST", "/v1/disclosure-requests", "", map[string]string{"name": p.Name, "email": p.Email, "phone": p.Phone}, nil)
	var dr disclosureAccepted
	r.json(t, &dr)
	if r.code != 202 || dr.VerificationID == "" {
		t.Fatalf("disclosure request: %d %s", r.code, r.body)
	}
	msgs = s.mail.WaitFor(t, p.Email, len(before)+1, 60*time.Second)
	m := codeRE.FindStringSubmatch(msgs[len(msgs)-1].Text)
	if m == nil || len(m[1]) != 6 {
		t.Fatalf("no 6-digit code in %q", msgs[len(msgs)-1].Text)
	}
	code := m[1]
	wrong := "000000"
	if code == wrong {
		wrong = "000001"
	}
	r = s.do("POST", "/v1/verifications/"+dr.VerificationID+"/code", "", map[string]string{"code": wrong}, nil)
	if r.code != 422 {
		t.Fatalf("wrong code: %d %s", r.code, r.body)
	}
	r = s.do("POST", "/v1/verifications/"+dr.VerificationID+"/code", "", map[string]string{"code": code}, nil)
	var cr codeResponse
	r.json(t, &cr)
	if r.code != 200 || !cr.Accepted || cr.AttemptsLeft != workflows.CodeMaxAttempts-2 {
		t.Fatalf("right code: %d %s", r.code, r.body)
	}
	s.confirmIdentity(dr.VerificationID)
	s.approveDisclosure(dr.ID)
	link := regexp.MustCompile(regexp.QuoteMeta(s.url) + `/v1/disclosures/([A-Za-z0-9_-]+)`)
	var url, token string
	waitFor(t, "download link mailed", func() bool {
		all, _ := s.mail.MessagesTo(context.Background(), p.Email)
		for _, m := range all {
			if mm := link.FindStringSubmatch(m.Text); mm != nil {
				url, token = mm[0], mm[1]
				return true
			}
		}
		return false
	})
	r = doURL(t, "GET", url, "", nil, nil)
	if r.code != 200 || r.hdr.Get("Content-Type") != "application/zip" {
		t.Fatalf("download: %d %v %s", r.code, r.hdr, r.body)
	}
	waitWorkflowClosed(t, s, dr.WorkflowID)

	secrets := map[string]string{"mailbox Random Value": mailboxValue, "one-time code": code, "download token": token}
	for _, wid := range []string{
		workflows.VerificationWorkflowID("ver-" + appID),
		workflows.VerificationWorkflowID(dr.VerificationID),
		dr.WorkflowID,
	} {
		codec := []string{"--codec-endpoint", s.url + "/codec", "--codec-auth", "Bearer " + s.staffToken, "--codec-header", "X-Staff-Id=secrets.test"}
		text, err := s.temporalCLI(append([]string{"workflow", "show", "--workflow-id", wid, "--detailed"}, codec...)...)
		if err != nil {
			t.Fatalf("temporal workflow show %s: %v\n%s", wid, err, text)
		}
		js, err := s.temporalCLI(append([]string{"workflow", "show", "--workflow-id", wid, "--output", "json"}, codec...)...)
		if err != nil {
			t.Fatalf("temporal workflow show --output json %s: %v\n%s", wid, err, js)
		}
		all := text + "\n" + js + "\n" + decodeAllBase64(js)
		// The codec did decode: the workflow input's address is readable.
		if !strings.Contains(all, p.Email) {
			t.Fatalf("%s: the decoded history does not show the input's address; was it decoded?\n%s", wid, text)
		}
		for what, v := range secrets {
			if strings.Contains(all, v) {
				t.Errorf("the decoded history of %s contains the %s %q", wid, what, v)
			}
		}
	}
}
