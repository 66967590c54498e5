//go:build integration

package httpapi

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	openapi_types "github.com/oapi-codegen/runtime/types"

	"certdesk/internal/api"
	"certdesk/internal/product"
	"certdesk/internal/revocation"
	"certdesk/internal/status"
	"certdesk/starter/httpapi/apiclient"
	"certdesk/workflows"
)

// generatedClient drives the stack with the client oapi-codegen made from
// /openapi.yaml: create, read and withdraw an application, read a revoked
// certificate, and refusals as problem+json. Every body must decode
// strictly (no field the document does not declare) into the generated
// type for its status, so the document and the server cannot drift apart.
func generatedClient(t *testing.T, s *stack, keyA, keyB, appA string, certA *x509.Certificate) {
	ctx := context.Background()
	as := func(key string) apiclient.ClientOption {
		return apiclient.WithRequestEditorFn(func(_ context.Context, r *http.Request) error {
			r.Header.Set("Authorization", "Bearer "+key)
			return nil
		})
	}
	a, err := apiclient.NewClientWithResponses(s.url, as(keyA))
	if err != nil {
		t.Fatal(err)
	}
	b, err := apiclient.NewClientWithResponses(s.url, as(keyB))
	if err != nil {
		t.Fatal(err)
	}

	// A new application, as the document describes the request.
	p := newPerson()
	_, csr := newCSR(t)
	org, phone, country, days := p.Organization, p.Phone, "JP", 365
	req := apiclient.ApplicationRequest{
		Product: apiclient.Product(product.ClientSign),
		Csr:     csr,
		Subscriber: apiclient.Subscriber{Name: p.Name, Email: openapi_types.Email(p.Email), Organization: &org, Phone: &phone,
			Country: &country},
		ValidityDays: &days,
	}
	req.Attestation.TermsVersion = "2026-04"
	req.Attestation.Truthful = true
	created, err := a.CreateApplicationWithResponse(ctx, &apiclient.CreateApplicationParams{}, req)
	if err != nil {
		t.Fatal(err)
	}
	var acc apiclient.Application
	strictDecode(t, created.HTTPResponse, created.Body, http.StatusAccepted, &acc)
	if created.JSON202 == nil || !strings.HasPrefix(created.JSON202.Id, "app_") ||
		created.JSON202.Status != apiclient.ApplicationStatus(status.AppReceived) ||
		created.HTTPResponse.Header.Get("Location") != "/v1/applications/"+created.JSON202.Id {
		t.Fatalf("create application: %d %s", created.StatusCode(), created.Body)
	}
	id := created.JSON202.Id
	s.waitApp(keyA, id, func(a applicationResponse) bool { return a.VerificationID != "" })
	got, err := a.GetApplicationWithResponse(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	strictDecode(t, got.HTTPResponse, got.Body, http.StatusOK, &acc)
	if got.JSON200 == nil || got.JSON200.Id != id || got.JSON200.WorkflowId != workflows.ApplicationWorkflowID(id) ||
		got.JSON200.VerificationId == nil || got.JSON200.Product == nil || *got.JSON200.Product != product.ClientSign {
		t.Fatalf("get application: %d %s", got.StatusCode(), got.Body)
	}
	// Withdrawn again, so it leaves nothing running for the later subtests.
	wd, err := a.WithdrawApplicationWithResponse(ctx, id, &apiclient.WithdrawApplicationParams{},
		apiclient.WithdrawApplicationJSONRequestBody{})
	if err != nil {
		t.Fatal(err)
	}
	strictDecode(t, wd.HTTPResponse, wd.Body, http.StatusAccepted, &acc)
	if wd.JSON202 == nil || wd.JSON202.Id != id || wd.JSON202.Status != "withdrawal_requested" {
		t.Fatalf("withdraw: %d %s", wd.StatusCode(), wd.Body)
	}
	s.waitApp(keyA, id, func(a applicationResponse) bool { return a.Status == status.AppWithdrawn })
	waitWorkflowClosed(t, s, workflows.ApplicationWorkflowID(id))

	// The issued, then revoked, application and certificate.
	got, err = a.GetApplicationWithResponse(ctx, appA)
	if err != nil {
		t.Fatal(err)
	}
	strictDecode(t, got.HTTPResponse, got.Body, http.StatusOK, &acc)
	serial := certA.SerialNumber.Text(16)
	if got.JSON200 == nil || got.JSON200.Status != apiclient.ApplicationStatus(status.AppIssued) ||
		got.JSON200.CertificateSerial == nil || *got.JSON200.CertificateSerial != serial {
		t.Fatalf("get issued application: %d %s", got.StatusCode(), got.Body)
	}
	cert, err := a.GetCertificateWithResponse(ctx, serial)
	if err != nil {
		t.Fatal(err)
	}
	var c apiclient.Certificate
	strictDecode(t, cert.HTTPResponse, cert.Body, http.StatusOK, &c)
	if cert.JSON200 == nil || cert.JSON200.Status == nil || *cert.JSON200.Status != apiclient.CertificateStatus(status.CertRevoked) ||
		cert.JSON200.RevocationReason == nil || *cert.JSON200.RevocationReason != revocation.Superseded.String() ||
		cert.JSON200.Pem == nil || !bytes.Equal(pemBlock(t, *cert.JSON200.Pem), certA.Raw) ||
		cert.JSON200.Links == nil || (*cert.JSON200.Links)["application"] != "/v1/applications/"+appA {
		t.Fatalf("get certificate: %d %s", cert.StatusCode(), cert.Body)
	}

	// Refusals: problem+json in the generated Problem type.
	var prob apiclient.Problem
	other, err := b.GetCertificateWithResponse(ctx, serial)
	if err != nil {
		t.Fatal(err)
	}
	strictDecode(t, other.HTTPResponse, other.Body, http.StatusNotFound, &prob)
	if other.ApplicationproblemJSON404 == nil || other.ApplicationproblemJSON404.Type != api.TypeNotFound ||
		other.ApplicationproblemJSON404.Instance == nil || !strings.HasPrefix(*other.ApplicationproblemJSON404.Instance, "urn:certdesk:request:") {
		t.Fatalf("another reseller's certificate: %d %s", other.StatusCode(), other.Body)
	}
	req.Attestation.Truthful = false
	refused, err := a.CreateApplicationWithResponse(ctx, &apiclient.CreateApplicationParams{}, req)
	if err != nil {
		t.Fatal(err)
	}
	strictDecode(t, refused.HTTPResponse, refused.Body, http.StatusUnprocessableEntity, &prob)
	pj := refused.ApplicationproblemJSON422
	if pj == nil || pj.Type != api.TypeValidation || pj.Status != http.StatusUnprocessableEntity || pj.Errors == nil ||
		len(*pj.Errors) != 1 || (*pj.Errors)[0].Field != "attestation.truthful" {
		t.Fatalf("untruthful application: %d %s", refused.StatusCode(), refused.Body)
	}
	bad := "keyCompromise'; --"
	rev, err := a.RevokeCertificateWithBodyWithResponse(ctx, serial, &apiclient.RevokeCertificateParams{}, "application/json",
		strings.NewReader(`{"reason":`+jsonString(bad)+`}`))
	if err != nil {
		t.Fatal(err)
	}
	strictDecode(t, rev.HTTPResponse, rev.Body, http.StatusUnprocessableEntity, &prob)
	if rev.ApplicationproblemJSON422 == nil || rev.ApplicationproblemJSON422.Errors == nil ||
		(*rev.ApplicationproblemJSON422.Errors)[0].Field != "reason" || strings.Contains(string(rev.Body), bad) {
		t.Fatalf("unknown revocation reason: %d %s", rev.StatusCode(), rev.Body)
	}
}

// strictDecode checks the status, the content type the document gives for
// it, and that body decodes into v with no field v does not declare.
func strictDecode(t *testing.T, resp *http.Response, body []byte, code int, v any) {
	t.Helper()
	want := "application/json"
	if code >= 400 {
		want = api.ContentType
	}
	if resp.StatusCode != code || resp.Header.Get("Content-Type") != want {
		t.Fatalf("%s %s: %d %s %s; want %d %s", resp.Request.Method, resp.Request.URL.Path, resp.StatusCode,
			resp.Header.Get("Content-Type"), body, code, want)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("%s %s: the body does not decode into %T as the document declares it: %v\n%s",
			resp.Request.Method, resp.Request.URL.Path, v, err, body)
	}
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
