//go:build integration

package httpapi

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.temporal.io/api/enums/v1"
	"golang.org/x/crypto/ocsp"
	"google.golang.org/protobuf/encoding/protojson"

	commonpb "go.temporal.io/api/common/v1"

	"certdesk/internal/api"
	"certdesk/internal/status"
	"certdesk/internal/store"
	"certdesk/workflows"
)

// TestResellerAPIOnRealStack drives CertDesk through its HTTP API only, on
// real PostgreSQL, Temporal, MailDev, workers and CA: issuance, revocation
// by the reseller and by key-compromise proof, CRL and OCSP fetched from the
// URLs in the certificate, history encryption, brute-force lockout,
// idempotency, rate limits and a table of hostile requests.
func TestResellerAPIOnRealStack(t *testing.T) {
	s := newStack(t)
	resA, keyA := s.addReseller("Acme")
	_, keyB := s.addReseller("Bravo")

	// The key is stored only as its SHA-256.
	var stored string
	if err := s.pool.Get(&stored, `SELECT api_key_hash FROM resellers WHERE id = $1`, resA); err != nil || stored != store.HashAPIKey(keyA) {
		t.Fatalf("stored key hash %q (%v)", stored, err)
	}
	var leaks int
	_ = s.pool.Get(&leaks, `SELECT count(*) FROM resellers WHERE api_key_hash = $1 OR api_key_prefix = $1`, keyA)
	if leaks != 0 {
		t.Fatal("the API key is stored in clear")
	}

	alice := newPerson()
	keyAlice, csrAlice := newCSR(t)
	var appA string
	var certA, issuer *x509.Certificate

	t.Run("issue through the API, revoke, CRL and OCSP say revoked", func(t *testing.T) {
		s.t = t
		// Idempotency: the same key and body give the same answer.
		body := alice.application(csrAlice)
		idem := map[string]string{"Idempotency-Key": "apply-" + randomID(8)}
		r1 := s.do("POST", "/v1/applications", keyA, body, idem)
		r2 := s.do("POST", "/v1/applications", keyA, body, idem)
		if r1.code != 202 || r2.code != 202 || !bytes.Equal(r1.body, r2.body) || r2.hdr.Get("Idempotent-Replayed") != "true" {
			t.Fatalf("idempotent apply: %d %s / %d %s %v", r1.code, r1.body, r2.code, r2.body, r2.hdr)
		}
		var first applicationResponse
		r1.json(t, &first)
		if !strings.HasPrefix(first.ID, "app_") || first.WorkflowID != workflows.ApplicationWorkflowID(first.ID) || first.Status != "received" {
			t.Fatalf("apply answer %+v", first)
		}
		r3 := s.do("POST", "/v1/applications", keyA, alice.application(csrFor(t, keyAlice, "other")), idem)
		if r3.code != 422 || r3.problemType() != api.TypeIdempotencyReused {
			t.Fatalf("same key, other body: %d %s", r3.code, r3.body)
		}
		// Another reseller sees nothing of it.
		if r := s.do("GET", "/v1/applications/"+first.ID, keyB, nil, nil); r.code != 404 || r.problemType() != api.TypeNotFound {
			t.Fatalf("other reseller: %d %s", r.code, r.body)
		}
		// The search attributes and summary carry no personal data.
		desc, err := s.tc.DescribeWorkflow(context.Background(), first.WorkflowID, "")
		if err != nil {
			t.Fatal(err)
		}
		summary, _ := desc.GetStaticSummary()
		if !strings.Contains(summary, first.ID) || strings.Contains(summary, alice.Name) {
			t.Fatalf("summary %q", summary)
		}
		// Withdraw the duplicate-free first application? No: take it to issuance.
		s.waitApp(keyA, first.ID, func(a applicationResponse) bool { return a.Status == status.AppVerifyingIdentity })
		// A wrong code first: 422 with attempts left.
		app := s.waitApp(keyA, first.ID, func(a applicationResponse) bool { return a.VerificationID != "" })
		code := s.codeFor(alice.Email)
		if len(code) != 26 {
			t.Fatalf("client-sign mailbox value %q: want the 26-character Random Value", code)
		}
		// The wrong kind of value is refused without counting an attempt.
		if r := s.do("POST", "/v1/verifications/"+app.VerificationID+"/code", "", map[string]string{"code": "123456"}, nil); r.code != 400 && r.code != 422 {
			t.Fatalf("a 6-digit code for a mailbox verification: %d %s", r.code, r.body)
		}
		wrong := strings.Repeat("A", 26)
		if code == wrong {
			wrong = strings.Repeat("B", 26)
		}
		r := s.do("POST", "/v1/verifications/"+app.VerificationID+"/code", "", map[string]string{"code": wrong}, nil)
		var prob map[string]any
		r.json(t, &prob)
		if r.code != 422 || r.problemType() != api.TypeCodeIncorrect || prob["attempts_left"] != float64(4) {
			t.Fatalf("wrong code: %d %s", r.code, r.body)
		}
		r = s.do("POST", "/v1/verifications/"+app.VerificationID+"/code", "", map[string]string{"code": code}, nil)
		var cr codeResponse
		r.json(t, &cr)
		if r.code != 200 || !cr.Accepted || cr.Locked || cr.Expired {
			t.Fatalf("right code: %d %s", r.code, r.body)
		}
		s.confirmIdentity(app.VerificationID)
		s.waitApp(keyA, first.ID, func(a applicationResponse) bool { return a.Status == status.AppAwaitingReview })
		if out, err := s.temporalCLI("workflow", "update", "execute", "--workflow-id", first.WorkflowID,
			"--name", "review", "--input", `{"decision":"approve","reviewer":"alice"}`,
			"--codec-endpoint", s.url+"/codec", "--codec-auth", "Bearer "+s.staffToken); err != nil {
			t.Fatalf("review from the CLI: %v\n%s", err, out)
		}
		app = s.waitApp(keyA, first.ID, func(a applicationResponse) bool { return a.Status == status.AppIssued && a.CertificateSerial != "" })
		appA = app.ID

		r = s.do("GET", "/v1/certificates/"+app.CertificateSerial, keyA, nil, nil)
		var c certificateResponse
		r.json(t, &c)
		if r.code != 200 || c.Status != "valid" || c.Product != "client-sign" || !strings.Contains(c.Subject, alice.Name) {
			t.Fatalf("certificate: %d %s", r.code, r.body)
		}
		// Client certificates are not logged: no SCTs, no poison.
		if c.CTState != "none" || len(c.SCTs) != 0 {
			t.Fatalf("client certificate CT state %q, %d SCTs", c.CTState, len(c.SCTs))
		}
		certA = parsePEMCert(t, c.PEM)
		for _, e := range certA.Extensions {
			if e.Id.String() == "1.3.6.1.4.1.11129.2.4.3" || e.Id.String() == "1.3.6.1.4.1.11129.2.4.2" {
				t.Fatalf("client certificate carries CT extension %s", e.Id)
			}
		}
		if certA.Subject.CommonName != alice.Name || certA.SerialNumber.Text(16) != app.CertificateSerial {
			t.Fatalf("certificate subject %v serial %x", certA.Subject, certA.SerialNumber)
		}
		// The read of personal data is in the provision ledger (O3, O7).
		provs, err := s.st.ListProvisionsByPerson(context.Background(), "sub_"+appA)
		if err != nil || len(provs) != 1 || provs[0].RecipientRef != resA || provs[0].LegalBasis != LegalBasisEntrustment ||
			!strings.Contains(strings.Join(provs[0].DataItems, ","), "name") {
			t.Fatalf("provision ledger: %+v %v", provs, err)
		}
		if r := s.do("GET", "/v1/certificates/"+app.CertificateSerial, keyB, nil, nil); r.code != 404 {
			t.Fatalf("other reseller reads the certificate: %d", r.code)
		}

		// The repository, at the URLs printed in the certificate.
		if len(certA.IssuingCertificateURL) != 1 || len(certA.OCSPServer) != 1 || len(certA.CRLDistributionPoints) != 1 {
			t.Fatalf("certificate URLs: %v %v %v", certA.IssuingCertificateURL, certA.OCSPServer, certA.CRLDistributionPoints)
		}
		r = doURL(t, "GET", certA.IssuingCertificateURL[0], "", nil, nil)
		if r.code != 200 || r.hdr.Get("Content-Type") != "application/pkix-cert" {
			t.Fatalf("caIssuers: %d %s", r.code, r.hdr)
		}
		issuer, err = x509.ParseCertificate(r.body)
		if err != nil || certA.CheckSignatureFrom(issuer) != nil {
			t.Fatalf("issuer certificate: %v", err)
		}
		r = doURL(t, "GET", strings.TrimSuffix(certA.IssuingCertificateURL[0], ".der")+".pem", "", nil, nil)
		if r.code != 200 || strings.Count(string(r.body), "BEGIN CERTIFICATE") != 2 || strings.Contains(string(r.body), "PRIVATE") {
			t.Fatalf("chain PEM: %d %s", r.code, r.body)
		}
		if st := ocspStatus(t, certA, issuer, false); st.Status != ocsp.Good {
			t.Fatalf("OCSP before revocation: %v", st.Status)
		}

		r = s.do("POST", "/v1/certificates/"+app.CertificateSerial+"/revocation", keyA,
			map[string]string{"reason": "superseded", "comment": "replaced by a new key"}, nil)
		var rev revocationResponse
		r.json(t, &rev)
		if r.code != 202 || rev.WorkflowID != workflows.RevocationWorkflowID(app.CertificateSerial) ||
			rev.Deadline.Sub(time.Now()) < 23*time.Hour || rev.Deadline.Sub(time.Now()) > 25*time.Hour {
			t.Fatalf("revocation: %d %s", r.code, r.body)
		}
		waitFor(t, "OCSP says revoked", func() bool { return ocspStatus(t, certA, issuer, false).Status == ocsp.Revoked })
		st := ocspStatus(t, certA, issuer, true) // POST as well as GET
		if st.Status != ocsp.Revoked || st.RevocationReason != ocsp.Superseded {
			t.Fatalf("OCSP POST: %v reason %d", st.Status, st.RevocationReason)
		}
		waitFor(t, "CRL lists the serial", func() bool { return crlHas(t, certA, issuer) })
		// OpenSSL agrees, through the README's commands.
		dir := t.TempDir()
		issuerPEM := writeTemp(t, dir, "issuer.pem", pemCert(issuer))
		certPEM := writeTemp(t, dir, "cert.pem", pemCert(certA))
		out, err := execCommand(context.Background(), "openssl", "ocsp", "-issuer", issuerPEM, "-cert", certPEM,
			"-url", certA.OCSPServer[0], "-CAfile", issuerPEM, "-partial_chain", "-resp_text")
		if err != nil || !strings.Contains(out, certPEM+": revoked") || !strings.Contains(out, "Reason: superseded") ||
			!strings.Contains(out, "Response verify OK") {
			t.Fatalf("openssl ocsp: %v\n%s", err, out)
		}
		crlFile := writeTemp(t, dir, "crl.der", doURL(t, "GET", certA.CRLDistributionPoints[0], "", nil, nil).body)
		out, err = execCommand(context.Background(), "openssl", "crl", "-inform", "DER", "-in", crlFile, "-noout", "-text")
		if err != nil || !strings.Contains(strings.ToLower(out), strings.ToLower(certA.SerialNumber.Text(16))) {
			t.Fatalf("openssl crl: %v\n%s", err, out)
		}
		r = s.do("GET", "/v1/certificates/"+app.CertificateSerial, keyA, nil, nil)
		r.json(t, &c)
		if c.Status != "revoked" || c.RevokedAt == nil || c.RevocationReason != "superseded" {
			t.Fatalf("certificate after revocation: %s", r.body)
		}
		waitWorkflowClosed(t, s, rev.WorkflowID)
	})
	if certA == nil {
		t.FailNow()
	}

	t.Run("the client generated from /openapi.yaml reads what the server sends", func(t *testing.T) {
		s.t = t
		generatedClient(t, s, keyA, keyB, appA, certA)
	})

	t.Run("workflow history holds no personal data; the codec endpoint decodes it", func(t *testing.T) {
		s.t = t
		wid := workflows.ApplicationWorkflowID(appA)
		verWID := workflows.VerificationWorkflowID("ver-" + appA)
		secrets := []string{alice.Email, alice.Name, alice.Phone, alice.Address, alice.Organization}
		for _, id := range []string{wid, verWID} {
			text, err := s.temporalCLI("workflow", "show", "--workflow-id", id, "--detailed")
			if err != nil {
				t.Fatalf("temporal workflow show %s: %v\n%s", id, err, text)
			}
			js, err := s.temporalCLI("workflow", "show", "--workflow-id", id, "--output", "json")
			if err != nil {
				t.Fatalf("temporal workflow show --output json: %v", err)
			}
			decoded := decodeAllBase64(js)
			for _, secret := range secrets {
				if strings.Contains(text, secret) || strings.Contains(js, secret) || strings.Contains(decoded, secret) {
					t.Errorf("%s history shows %q in clear", id, secret)
				}
			}
			if !strings.Contains(decoded, "binary/encrypted") {
				t.Errorf("%s history has no encrypted payloads", id)
			}
		}
		// Through the codec endpoint, the CLI shows the data.
		text, err := s.temporalCLI("workflow", "show", "--workflow-id", wid, "--detailed",
			"--codec-endpoint", s.url+"/codec", "--codec-auth", "Bearer "+s.staffToken, "--codec-header", "X-Staff-Id=cli.staff")
		if err != nil || !strings.Contains(text, alice.Email) {
			t.Fatalf("show with the codec: %v\n%s", err, text)
		}

		// The remote codec protocol directly: the first event's input.
		iter := s.tc.GetWorkflowHistory(context.Background(), wid, "", false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
		ev, err := iter.Next()
		if err != nil {
			t.Fatal(err)
		}
		in := ev.GetWorkflowExecutionStartedEventAttributes().GetInput()
		body, _ := protojson.Marshal(in)
		if bytes.Contains(body, []byte(alice.Email)) {
			t.Fatal("raw history input in clear")
		}
		// Personal staff tokens (`starter staff add`); a claimed X-Staff-Id
		// is ignored, the access log names the token's owner.
		aliceTok, _ := store.GenerateStaffToken()
		carolTok, _ := store.GenerateStaffToken()
		if err := s.st.CreateStaff(context.Background(), "st_alice.staff", "Alice", aliceTok); err != nil {
			t.Fatal(err)
		}
		if err := s.st.CreateStaff(context.Background(), "st_carol.staff", "Carol", carolTok); err != nil {
			t.Fatal(err)
		}
		hdr := map[string]string{"Content-Type": "application/json", "X-Staff-Id": "mallory.staff", "X-Namespace": "default"}
		r := s.do("POST", "/codec/decode", aliceTok, body, hdr)
		if r.code != 200 {
			t.Fatalf("decode: %d %s", r.code, r.body)
		}
		var out commonpb.Payloads
		if err := protojson.Unmarshal(r.body, &out); err != nil || len(out.Payloads) != 1 || !bytes.Contains(out.Payloads[0].Data, []byte(alice.Email)) {
			t.Fatalf("decoded %s (%v)", r.body, err)
		}
		// Encode then decode is the identity.
		r = s.do("POST", "/codec/encode", s.staffToken, r.body, hdr)
		if r.code != 200 || bytes.Contains(r.body, []byte(alice.Email)) {
			t.Fatalf("encode: %d %s", r.code, r.body)
		}
		// The decode is in the staff access log, without personal data (O8).
		acc, err := s.st.ListStaffAccessByPerson(context.Background(), "sub_"+appA)
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, a := range acc {
			found = found || a.StaffID == "st_alice.staff"
			if a.StaffID == "mallory.staff" {
				t.Errorf("a self-asserted X-Staff-Id is in the access log: %+v", a)
			}
			for _, secret := range secrets {
				if strings.Contains(a.Purpose+a.Channel+a.PersonRef, secret) {
					t.Errorf("staff access log row holds %q", secret)
				}
			}
		}
		if !found {
			t.Fatalf("decode not in the staff access log: %+v", acc)
		}
		// CORS: the UI's origin only.
		r = s.do("OPTIONS", "/codec/decode", "", nil, map[string]string{"Origin": "http://127.0.0.1:8233", "Access-Control-Request-Method": "POST"})
		if r.code != 204 || r.hdr.Get("Access-Control-Allow-Origin") != "http://127.0.0.1:8233" {
			t.Fatalf("preflight: %d %v", r.code, r.hdr)
		}

		// The Web UI's way in: a session cookie from the sign-in form.
		form := map[string]string{"Content-Type": "application/x-www-form-urlencoded"}
		if r := s.do("POST", "/codec/session", "", "staff_id=carol.staff&token=wrong-token-0123456789", form); r.code != 401 {
			t.Fatalf("session with a wrong token: %d %s", r.code, r.body)
		}
		if r := s.do("POST", "/codec/session", "", "staff_id=carol.staff&token="+url.QueryEscape(s.staffToken), form); r.code != 401 {
			t.Fatalf("session with the shared token and a claimed id: %d %s", r.code, r.body)
		}
		r = s.do("POST", "/codec/session", "", "token="+url.QueryEscape(carolTok), form)
		cookie := r.hdr.Get("Set-Cookie")
		if r.code != 200 || !strings.Contains(cookie, "HttpOnly") || !strings.Contains(cookie, "SameSite=Lax") || !strings.Contains(cookie, "Path=/codec") {
			t.Fatalf("session: %d %s %q", r.code, r.body, cookie)
		}
		cookie = strings.SplitN(cookie, ";", 2)[0]
		ui := map[string]string{"Content-Type": "application/json", "Origin": "http://127.0.0.1:8233", "Cookie": cookie}
		r = s.do("POST", "/codec/decode", "", body, ui)
		if r.code != 200 || r.hdr.Get("Access-Control-Allow-Origin") != "http://127.0.0.1:8233" || r.hdr.Get("Access-Control-Allow-Credentials") != "true" {
			t.Fatalf("decode with the session: %d %v %s", r.code, r.hdr, r.body)
		}
		ui["Cookie"] = cookie[:len(cookie)-2] + "AA"
		if r := s.do("POST", "/codec/decode", "", body, ui); r.code != 401 {
			t.Fatalf("tampered session: %d", r.code)
		}
		acc, _ = s.st.ListStaffAccessByPerson(context.Background(), "sub_"+appA)
		found = false
		for _, a := range acc {
			found = found || (a.StaffID == "st_carol.staff" && strings.Contains(a.Channel, "Web UI"))
		}
		if !found {
			t.Fatalf("UI decode not logged under the session's staff id: %+v", acc)
		}
	})

	bob := newPerson()
	keyBob, csrBob := newCSR(t)
	t.Run("revocation by proof of key possession blocks the key", func(t *testing.T) {
		s.t = t
		_, certBob := s.issue(keyA, bob, csrBob)
		serial := certBob.SerialNumber.Text(16)
		pemBob := string(pemCert(certBob))
		// A signature by another key is refused.
		other, _ := rsa.GenerateKey(rand.Reader, 2048)
		r := s.do("POST", "/v1/revocations", "", map[string]string{"certificate": pemBob, "signature": signChallenge(t, other, serial)}, nil)
		if r.code != 403 || r.problemType() != api.TypeKeyProofInvalid {
			t.Fatalf("wrong key: %d %s", r.code, r.body)
		}
		// A CSR by the key with another subject is refused too.
		r = s.do("POST", "/v1/revocations", "", map[string]string{"certificate": pemBob, "csr": csrFor(t, keyBob, "not the challenge")}, nil)
		if r.code != 403 || r.problemType() != api.TypeKeyProofInvalid {
			t.Fatalf("CSR without the challenge: %d %s", r.code, r.body)
		}
		// The valid proof is made the README's way, with openssl.
		dir := t.TempDir()
		keyFile := writeTemp(t, dir, "subscriber.key", pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(keyBob)}))
		sig, err := execCommand(context.Background(), "sh", "-c",
			`printf 'certdesk-revoke:%s' "$1" | openssl dgst -sha256 -sign "$2" | base64 -w0`, "sh", serial, keyFile)
		if err != nil {
			t.Fatalf("openssl dgst: %v %s", err, sig)
		}
		r = s.do("POST", "/v1/revocations", "", map[string]string{"certificate": pemBob, "signature": strings.TrimSpace(sig)}, nil)
		if r.code != 202 {
			t.Fatalf("key proof: %d %s", r.code, r.body)
		}
		waitFor(t, "OCSP says keyCompromise", func() bool {
			st := ocspStatus(t, certBob, issuer, false)
			return st.Status == ocsp.Revoked && st.RevocationReason == ocsp.KeyCompromise
		})
		waitFor(t, "CRL lists the serial", func() bool { return crlHas(t, certBob, issuer) })
		// The key is blocked: a new application with it is refused at once.
		waitFor(t, "key blocked", func() bool {
			sum := sha256.Sum256(certBob.RawSubjectPublicKeyInfo)
			_, blocked, _ := s.st.IsKeyBlocked(context.Background(), sum[:])
			return blocked
		})
		r = s.do("POST", "/v1/applications", keyA, newPerson().application(csrFor(t, keyBob, "again")), nil)
		var p map[string]any
		r.json(t, &p)
		if r.code != 422 || r.problemType() != api.TypeCSRRejected || p["code"] != "key-blocked" {
			t.Fatalf("blocked key: %d %s", r.code, r.body)
		}
		// The CSR form of the proof is accepted for an already revoked
		// certificate (the case joins the closed revocation).
		r = s.do("POST", "/v1/revocations", "", map[string]string{"certificate": pemBob, "csr": csrFor(t, keyBob, KeyProofChallenge(serial))}, nil)
		if r.code != 202 {
			t.Fatalf("CSR proof: %d %s", r.code, r.body)
		}
		waitWorkflowClosed(t, s, workflows.RevocationWorkflowID(serial))
	})

	t.Run("a key is reported by proof of possession alone", func(t *testing.T) {
		s.t = t
		// The challenge as the OpenAPI document states it.
		keyChallenge := func(sum []byte) string { return "certdesk-revoke-key:" + hex.EncodeToString(sum) }
		// A key with a CertDesk certificate: no certificate is sent, only a
		// CSR made with the key whose CN is the key challenge.
		keyDan, csrDan := newCSR(t)
		_, certDan := s.issue(keyA, newPerson(), csrDan)
		sumDan := sha256.Sum256(certDan.RawSubjectPublicKeyInfo)
		r := s.do("POST", "/v1/key-compromises", "", map[string]string{"csr": csrFor(t, keyDan, "not the challenge")}, nil)
		if r.code != 403 || r.problemType() != api.TypeKeyProofInvalid {
			t.Fatalf("CSR without the key challenge: %d %s", r.code, r.body)
		}
		r = s.do("POST", "/v1/key-compromises", "", map[string]string{"csr": csrFor(t, keyDan, keyChallenge(sumDan[:]))}, nil)
		var acc struct {
			SPKISHA256  string               `json:"spki_sha256"`
			Blocked     bool                 `json:"blocked"`
			Revocations []revocationResponse `json:"revocations"`
		}
		r.json(t, &acc)
		if r.code != 202 || !acc.Blocked || acc.SPKISHA256 != hex.EncodeToString(sumDan[:]) || len(acc.Revocations) != 1 ||
			acc.Revocations[0].Serial != certDan.SerialNumber.Text(16) {
			t.Fatalf("key-only report of a certified key: %d %s", r.code, r.body)
		}
		waitFor(t, "OCSP says keyCompromise", func() bool {
			st := ocspStatus(t, certDan, issuer, false)
			return st.Status == ocsp.Revoked && st.RevocationReason == ocsp.KeyCompromise
		})

		// A key CertDesk never certified, by a signature over the challenge
		// with the public key sent along: blocked at once, nothing to revoke.
		keyEve, _ := rsa.GenerateKey(rand.Reader, 2048)
		spkiEve, err := x509.MarshalPKIXPublicKey(&keyEve.PublicKey)
		if err != nil {
			t.Fatal(err)
		}
		sumEve := sha256.Sum256(spkiEve)
		digest := sha256.Sum256([]byte(keyChallenge(sumEve[:])))
		sig, err := rsa.SignPKCS1v15(rand.Reader, keyEve, crypto.SHA256, digest[:])
		if err != nil {
			t.Fatal(err)
		}
		pubPEM := string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: spkiEve}))
		r = s.do("POST", "/v1/key-compromises", "", map[string]string{"public_key": pubPEM, "signature": base64.StdEncoding.EncodeToString(sig)}, nil)
		r.json(t, &acc)
		if r.code != 202 || !acc.Blocked || len(acc.Revocations) != 0 {
			t.Fatalf("key-only report of an uncertified key: %d %s", r.code, r.body)
		}
		if _, blocked, err := s.st.IsKeyBlocked(context.Background(), sumEve[:]); err != nil || !blocked {
			t.Fatalf("uncertified key not blocked: %v", err)
		}
		r = s.do("POST", "/v1/applications", keyA, newPerson().application(csrFor(t, keyEve, "later")), nil)
		var p map[string]any
		r.json(t, &p)
		if r.code != 422 || p["code"] != "key-blocked" {
			t.Fatalf("application with the reported key: %d %s", r.code, r.body)
		}
		waitWorkflowClosed(t, s, workflows.RevocationWorkflowID(certDan.SerialNumber.Text(16)))
	})

	carol := newPerson()
	_, csrCarol := newCSR(t)
	var lockedVer, openApp string
	t.Run("five wrong codes lock the verification", func(t *testing.T) {
		s.t = t
		r := s.do("POST", "/v1/applications", keyA, carol.application(csrCarol), nil)
		var app applicationResponse
		r.json(t, &app)
		app = s.waitApp(keyA, app.ID, func(a applicationResponse) bool {
			return a.Status == status.AppVerifyingIdentity && a.VerificationID != ""
		})
		right := s.codeFor(carol.Email)
		// Wrong guesses of the right kind: 26-character mailbox values.
		guess := 0
		for i := 4; i >= 0; i-- {
			g := strings.Repeat("A", 24) + string(rune('B'+guess)) + "Z"
			guess++
			if g == right {
				g = strings.Repeat("A", 24) + string(rune('B'+guess)) + "Z"
				guess++
			}
			r = s.do("POST", "/v1/verifications/"+app.VerificationID+"/code", "", map[string]string{"code": g}, nil)
			var p map[string]any
			r.json(t, &p)
			if i > 0 && (r.code != 422 || p["attempts_left"] != float64(i)) {
				t.Fatalf("wrong code %d: %d %s", 5-i, r.code, r.body)
			}
			if i == 0 && (r.code != 423 || r.problemType() != api.TypeVerificationLock) {
				t.Fatalf("fifth wrong code: %d %s", r.code, r.body)
			}
		}
		r = s.do("POST", "/v1/verifications/"+app.VerificationID+"/code", "", map[string]string{"code": right}, nil)
		if r.code != 423 || r.problemType() != api.TypeVerificationLock {
			t.Fatalf("right code after the lock: %d %s", r.code, r.body)
		}
		s.waitApp(keyA, app.ID, func(a applicationResponse) bool { return a.Status == status.AppRejected })
		lockedVer = app.VerificationID
	})

	t.Run("withdraw", func(t *testing.T) {
		s.t = t
		r := s.do("POST", "/v1/applications", keyA, newPerson().application(csrFor(t, keyBob, "x")), nil)
		if r.code != 422 { // the blocked key again
			t.Fatalf("blocked key: %d", r.code)
		}
		dave := newPerson()
		_, csr := newCSR(t)
		r = s.do("POST", "/v1/applications", keyA, dave.application(csr), nil)
		var app applicationResponse
		r.json(t, &app)
		s.waitApp(keyA, app.ID, func(a applicationResponse) bool { return a.Status == status.AppVerifyingIdentity })
		if r := s.do("POST", "/v1/applications/"+app.ID+"/withdraw", keyB, nil, nil); r.code != 404 {
			t.Fatalf("other reseller withdraws: %d", r.code)
		}
		r = s.do("POST", "/v1/applications/"+app.ID+"/withdraw", keyA, nil, nil)
		if r.code != 202 {
			t.Fatalf("withdraw: %d %s", r.code, r.body)
		}
		s.waitApp(keyA, app.ID, func(a applicationResponse) bool { return a.Status == status.AppWithdrawn })
		waitWorkflowClosed(t, s, workflows.ApplicationWorkflowID(app.ID))
		r = s.do("POST", "/v1/applications/"+app.ID+"/withdraw", keyA, map[string]string{}, nil)
		if r.code != 409 || r.problemType() != api.TypeConflict {
			t.Fatalf("withdraw twice: %d %s", r.code, r.body)
		}
		openApp = app.ID
	})

	t.Run("contact-only correction is applied", func(t *testing.T) {
		s.t = t
		erin := newPerson()
		_, csr := newCSR(t)
		_, cert := s.issue(keyA, erin, csr)
		serial := cert.SerialNumber.Text(16)
		body := map[string]any{"changes": map[string]string{"phone": "+81 3 1234 5678", "address": "2-3-4 Minato, Tokyo"}, "reason": "office moved"}
		if r := s.do("POST", "/v1/certificates/"+serial+"/corrections", keyB, body, nil); r.code != 404 {
			t.Fatalf("other reseller corrects: %d %s", r.code, r.body)
		}
		r := s.do("POST", "/v1/certificates/"+serial+"/corrections", keyA, body, nil)
		var acc correctionAccepted
		r.json(t, &acc)
		if r.code != 202 || !strings.HasPrefix(acc.WorkflowID, "correction/corr_") {
			t.Fatalf("correction: %d %s", r.code, r.body)
		}
		var res workflows.CorrectionResult
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := s.tc.GetWorkflow(ctx, acc.WorkflowID, "").Get(ctx, &res); err != nil || res.Status != workflows.CorrApplied {
			t.Fatalf("correction result %+v %v", res, err)
		}
		var appID string
		_ = s.pool.Get(&appID, `SELECT application_id FROM certificates WHERE serial = $1`, serial)
		sub, err := s.st.GetSubscriber(context.Background(), "sub_"+appID)
		if err != nil || sub.Phone != "+81 3 1234 5678" {
			t.Fatalf("subscriber after correction: %+v %v", sub, err)
		}
	})

	t.Run("disclosure: request, code, staff check, signed package by link", func(t *testing.T) {
		s.t = t
		before, _ := s.mail.MessagesTo(context.Background(), alice.Email)
		r := s.do("POST", "/v1/disclosure-requests", "", map[string]string{"name": alice.Name, "email": alice.Email, "phone": alice.Phone}, nil)
		var dr disclosureAccepted
		r.json(t, &dr)
		if r.code != 202 || dr.VerificationID == "" || dr.Delivery != "electronic" {
			t.Fatalf("disclosure request: %d %s", r.code, r.body)
		}
		msgs := s.mail.WaitFor(t, alice.Email, len(before)+1, 30*time.Second)
		code := codeRE.FindStringSubmatch(msgs[len(msgs)-1].Text)
		if code == nil {
			t.Fatalf("no code in %q", msgs[len(msgs)-1].Text)
		}
		if r := s.do("POST", "/v1/verifications/"+dr.VerificationID+"/code", "", map[string]string{"code": code[1]}, nil); r.code != 200 {
			t.Fatalf("code: %d %s", r.code, r.body)
		}
		s.confirmIdentity(dr.VerificationID)
		// Staff read the compiled package before approving it; the view is
		// in the staff access log, and nobody else gets it.
		if r := s.do("GET", "/staff/disclosure-drafts/"+dr.ID, "", nil, nil); r.code != 401 {
			t.Fatalf("draft without a staff token: %d", r.code)
		}
		var draft reply
		waitFor(t, "compiled package", func() bool {
			draft = s.do("GET", "/staff/disclosure-drafts/"+dr.ID, s.staffToken, nil, nil)
			return draft.code == 200
		})
		if len(draft.hdr.Get("X-Package-SHA256")) != 64 || !bytes.Contains(draft.body, []byte(alice.Email)) ||
			!strings.HasPrefix(draft.hdr.Get("Content-Type"), "text/html") {
			t.Fatalf("draft: %v %.200s", draft.hdr, draft.body)
		}
		var views int
		if err := s.pool.Get(&views, `SELECT count(*) FROM staff_access_log WHERE person_ref IN ($1, $2) AND channel = 'staff disclosure check'`,
			"disclosure:"+dr.ID, "sub_"+appA); err != nil || views < 2 {
			t.Fatalf("draft views logged: %d (%v)", views, err)
		}
		s.approveDisclosure(dr.ID)
		link := regexp.MustCompile(regexp.QuoteMeta(s.url) + `/v1/disclosures/[A-Za-z0-9_-]+`)
		var url string
		waitFor(t, "download link mailed", func() bool {
			all, _ := s.mail.MessagesTo(context.Background(), alice.Email)
			for _, m := range all {
				if u := link.FindString(m.Text); u != "" {
					url = u
					return true
				}
			}
			return false
		})
		r = doURL(t, "GET", url, "", nil, nil)
		if r.code != 200 || r.hdr.Get("Content-Type") != "application/zip" {
			t.Fatalf("download: %d %v %s", r.code, r.hdr, r.body)
		}
		zr, err := zip.NewReader(bytes.NewReader(r.body), int64(len(r.body)))
		if err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		for _, f := range zr.File {
			rc, _ := f.Open()
			b, _ := io.ReadAll(rc)
			rc.Close()
			writeTemp(t, dir, f.Name, b)
		}
		js, _ := os.ReadFile(filepath.Join(dir, "package.json"))
		if !bytes.Contains(js, []byte(alice.Email)) || !bytes.Contains(js, []byte("sub_"+appA)) {
			t.Fatalf("package.json does not hold Alice's records:\n%s", js)
		}
		var pkg struct {
			Certificates []struct {
				Serial string `json:"serial"`
			} `json:"certificates"`
			Provisions []struct {
				LegalBasis string `json:"legal_basis"`
			} `json:"third_party_provisions"`
		}
		if err := json.Unmarshal(js, &pkg); err != nil {
			t.Fatal(err)
		}
		// The certificate, and the reseller's earlier read of it (APPI Art. 29 record).
		if len(pkg.Certificates) == 0 || pkg.Certificates[0].Serial != certA.SerialNumber.Text(16) || len(pkg.Provisions) == 0 {
			t.Fatalf("package lists certificates %+v and provisions %+v", pkg.Certificates, pkg.Provisions)
		}
		out, err := execCommand(context.Background(), "openssl", "cms", "-verify", "-binary", "-inform", "DER",
			"-in", filepath.Join(dir, "package.json.p7s"), "-content", filepath.Join(dir, "package.json"),
			"-CAfile", filepath.Join(dir, "root.pem"), "-purpose", "any", "-out", os.DevNull)
		if err != nil || !strings.Contains(out, "Verification successful") {
			t.Fatalf("openssl cms -verify: %v\n%s", err, out)
		}
		// Three downloads, then the link is spent.
		for i := 0; i < 2; i++ {
			if r := doURL(t, "GET", url, "", nil, nil); r.code != 200 {
				t.Fatalf("download %d: %d", i+2, r.code)
			}
		}
		if r := doURL(t, "GET", url, "", nil, nil); r.code != 404 || r.problemType() != api.TypeNotFound {
			t.Fatalf("fourth download: %d %s", r.code, r.body)
		}
		waitWorkflowClosed(t, s, dr.WorkflowID)
	})

	t.Run("hostile requests are refused and write nothing", func(t *testing.T) {
		s.t = t
		hostile(t, s, hostileFixture{keyA: keyA, keyB: keyB, appA: appA, serialA: certA.SerialNumber.Text(16),
			certA: certA, issuer: issuer, lockedVer: lockedVer, closedApp: openApp})
	})

	t.Run("rate limits answer 429 with Retry-After", func(t *testing.T) {
		s.t = t
		lim := DefaultLimits()
		lim.ResellerRate, lim.ResellerBurst = 0.5, 2
		lim.CodeRate, lim.CodeBurst = 0.01, 3
		slow := mustServer(t, Deps{Config: ConfigFrom(s.cfg), DB: s.pool, Store: s.st, Temporal: s.tc, Log: s.srv.log, Limits: lim})
		h := slow.Handler()
		codes := func(n int, req func() reply) []int {
			var out []int
			for i := 0; i < n; i++ {
				out = append(out, req().code)
			}
			return out
		}
		ts := startServer(t, h)
		got := codes(3, func() reply { return doURL(t, "GET", ts+"/v1/applications/"+appA, keyA, nil, nil) })
		if got[0] != 200 || got[1] != 200 || got[2] != 429 {
			t.Fatalf("reseller limit: %v", got)
		}
		r := doURL(t, "GET", ts+"/v1/applications/"+appA, keyA, nil, nil)
		if r.code != 429 || r.hdr.Get("Retry-After") == "" || r.problemType() != api.TypeRateLimited {
			t.Fatalf("429: %d %v", r.code, r.hdr)
		}
		// Another reseller has its own bucket.
		if r := doURL(t, "GET", ts+"/v1/applications/"+appA, keyB, nil, nil); r.code != 404 {
			t.Fatalf("reseller B limited by A's traffic: %d", r.code)
		}
		got = codes(4, func() reply {
			return doURL(t, "POST", ts+"/v1/verifications/"+lockedVer+"/code", "", map[string]string{"code": "123456"}, nil)
		})
		if got[0] != 423 || got[3] != 429 {
			t.Fatalf("code limit per address: %v", got)
		}
	})

	t.Run("OCSP pre-signed path throughput (measured, not asserted)", func(t *testing.T) {
		req, err := ocsp.CreateRequest(certA, issuer, nil)
		if err != nil {
			t.Fatal(err)
		}
		u := certA.OCSPServer[0] + "/" + url.PathEscape(base64.StdEncoding.EncodeToString(req))
		tr := &http.Transport{MaxIdleConnsPerHost: 8}
		defer tr.CloseIdleConnections()
		c := &http.Client{Transport: tr}
		const n, workers = 4000, 8
		start := time.Now()
		errc := make(chan error, workers)
		for w := 0; w < workers; w++ {
			go func() {
				for i := 0; i < n/workers; i++ {
					resp, err := c.Get(u)
					if err != nil {
						errc <- err
						return
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 200 {
						errc <- fmt.Errorf("status %d", resp.StatusCode)
						return
					}
				}
				errc <- nil
			}()
		}
		for w := 0; w < workers; w++ {
			if err := <-errc; err != nil {
				t.Fatal(err)
			}
		}
		d := time.Since(start)
		t.Logf("%d OCSP GETs over %d connections in %v: %.0f/s (client and server on the same 2 cores)", n, workers, d, n/d.Seconds())
	})

	t.Run("metrics count requests by route pattern", func(t *testing.T) {
		s.t = t
		r := s.do("GET", "/metrics", "", nil, nil)
		body := string(r.body)
		if r.code != 200 || !strings.Contains(body, `certdesk_http_requests_total{code="202",route="POST /v1/applications"}`) ||
			!strings.Contains(body, `certdesk_http_request_duration_seconds_bucket{route="GET /v1/applications/{id}"`) ||
			strings.Contains(body, appA) {
			t.Fatalf("metrics:\n%s", body)
		}
	})
}

func startServer(t *testing.T, h http.Handler) string {
	t.Helper()
	ts := httptest.NewServer(h)
	t.Cleanup(ts.Close)
	return ts.URL
}

func pemBlock(t *testing.T, s string) []byte {
	t.Helper()
	b, _ := pem.Decode([]byte(s))
	if b == nil {
		t.Fatalf("no PEM block in %q", s)
	}
	return b.Bytes
}

func pemCert(c *x509.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
}

func parsePEMCert(t *testing.T, s string) *x509.Certificate {
	t.Helper()
	c, err := x509.ParseCertificate(pemBlock(t, s))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// signChallenge signs the key-compromise challenge like
// `printf 'certdesk-revoke:%s' $serial | openssl dgst -sha256 -sign key.pem | base64`.
func signChallenge(t *testing.T, k *rsa.PrivateKey, serial string) string {
	t.Helper()
	sum := sha256.Sum256([]byte(KeyProofChallenge(serial)))
	sig, err := rsa.SignPKCS1v15(rand.Reader, k, crypto.SHA256, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(sig)
}

// ocspStatus asks the responder named in the certificate, by GET or POST,
// and verifies the response against the issuer.
func ocspStatus(t *testing.T, cert, issuer *x509.Certificate, post bool) *ocsp.Response {
	t.Helper()
	req, err := ocsp.CreateRequest(cert, issuer, nil)
	if err != nil {
		t.Fatal(err)
	}
	var r reply
	if post {
		r = doURL(t, "POST", cert.OCSPServer[0], "", req, map[string]string{"Content-Type": "application/ocsp-request"})
	} else {
		r = doURL(t, "GET", cert.OCSPServer[0]+"/"+url.PathEscape(base64.StdEncoding.EncodeToString(req)), "", nil, nil)
	}
	if r.code != 200 || r.hdr.Get("Content-Type") != "application/ocsp-response" {
		t.Fatalf("OCSP: %d %v %s", r.code, r.hdr, r.body)
	}
	resp, err := ocsp.ParseResponseForCert(r.body, cert, issuer)
	var re ocsp.ResponseError
	if errors.As(err, &re) && re.Status == ocsp.TryLater {
		return &ocsp.Response{Status: ocsp.Unknown} // being re-signed (revoked, not yet published)
	}
	if err != nil {
		t.Fatalf("OCSP response: %v", err)
	}
	if resp.Status == ocsp.Good || resp.Status == ocsp.Revoked {
		if !strings.Contains(r.hdr.Get("Cache-Control"), "max-age=") || r.hdr.Get("ETag") == "" || r.hdr.Get("Last-Modified") == "" {
			t.Fatalf("RFC 5019 cache headers missing: %v", r.hdr)
		}
	}
	return resp
}

// crlHas fetches the CRL named in the certificate and reports whether it
// lists the certificate; the CRL must verify against the issuer.
func crlHas(t *testing.T, cert, issuer *x509.Certificate) bool {
	t.Helper()
	r := doURL(t, "GET", cert.CRLDistributionPoints[0], "", nil, nil)
	if r.code == 404 {
		return false
	}
	if r.code != 200 || r.hdr.Get("Content-Type") != "application/pkix-crl" || r.hdr.Get("Last-Modified") == "" {
		t.Fatalf("CRL: %d %v", r.code, r.hdr)
	}
	crl, err := x509.ParseRevocationList(r.body)
	if err != nil || crl.CheckSignatureFrom(issuer) != nil {
		t.Fatalf("CRL does not parse or verify: %v", err)
	}
	for _, e := range crl.RevokedCertificateEntries {
		if e.SerialNumber.Cmp(cert.SerialNumber) == 0 {
			return true
		}
	}
	return false
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting: %s", what)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func waitWorkflowClosed(t *testing.T, s *stack, wid string) {
	t.Helper()
	waitFor(t, wid+" closed", func() bool {
		d, err := s.tc.DescribeWorkflow(context.Background(), wid, "")
		return err == nil && d.Status != enums.WORKFLOW_EXECUTION_STATUS_RUNNING
	})
}

var b64Run = regexp.MustCompile(`"([A-Za-z0-9+/]{8,}={0,2})"`)

// decodeAllBase64 decodes every base64 string of a JSON document (payload
// data and metadata in `temporal … --output json`), so a clear-text payload
// hidden in base64 is found too.
func decodeAllBase64(js string) string {
	var b strings.Builder
	for _, m := range b64Run.FindAllStringSubmatch(js, -1) {
		if d, err := base64.StdEncoding.DecodeString(m[1]); err == nil {
			b.Write(d)
			b.WriteByte('\n')
		}
	}
	return b.String()
}

func writeTemp(t *testing.T, dir, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
