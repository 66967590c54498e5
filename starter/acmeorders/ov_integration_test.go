//go:build integration

package acmeorders

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	xacme "golang.org/x/crypto/acme"

	"certdesk/internal/product"
	"certdesk/internal/status"
	"certdesk/internal/store"
	"certdesk/internal/store/storetest"
	"certdesk/internal/testenv"
	"certdesk/workflows"
)

// TestOVOrderOnWorkflows: golang.org/x/crypto/acme orders profile
// server-ov. With EAB credentials not bound to an organisation newOrder is
// unauthorized, saying why. With credentials bound (organization_from) to
// the reseller's verified OV application the order validates by dns-01,
// finalizes, then stays processing while its application waits for the
// staff review Update (an unknown reviewer refused by CheckStaff); once a
// staff member approves it the certificate comes through the CT path with
// the verified organisation's subject, and the application records the
// reused identity verification.
func TestOVOrderOnWorkflows(t *testing.T) {
	s := newStack(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if _, err := storetest.VerifiedOV(ctx, s.st, "rs_acmewf", "app_ov_verified"); err != nil {
		t.Fatal(err)
	}
	if err := s.st.CreateStaff(ctx, "st_alice", "Alice", "staff-token-alice-0123456789abcdef"); err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(s.rootPEM)
	newClient := func(cred store.EABCredential) *xacme.Client {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		c := &xacme.Client{Key: key, DirectoryURL: s.dirURL,
			HTTPClient: &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}}
		if _, err := c.Register(ctx, &xacme.Account{Contact: []string{"mailto:ov@reseller.example"},
			ExternalAccountBinding: &xacme.ExternalAccountBinding{KID: cred.KID, Key: cred.HMACKey}}, xacme.AcceptTOS); err != nil {
			t.Fatal(err)
		}
		return c
	}
	name := testenv.DNSName(t, s.dns.Zones.Signed)

	// Unbound credentials: refused at newOrder with the reason.
	plain, err := s.st.CreateEABCredential(ctx, "rs_acmewf", []string{product.ServerOV}, "cust-plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = newClient(plain).AuthorizeOrder(ctx, xacme.DomainIDs(name), xacme.WithOrderIssuanceProfile(product.ServerOV))
	var ae *xacme.Error
	if !errors.As(err, &ae) || ae.ProblemType != "urn:ietf:params:acme:error:unauthorized" || !strings.Contains(ae.Detail, "organization_from") {
		t.Fatalf("server-ov without a bound organisation: %v", err)
	}

	bound, err := s.st.CreateEABCredentialWith(ctx, "rs_acmewf", store.EABOptions{Products: []string{product.ServerOV},
		Reference: "cust-ov", OrganizationFrom: "app_ov_verified"})
	if err != nil {
		t.Fatal(err)
	}
	c := newClient(bound)
	o, err := c.AuthorizeOrder(ctx, xacme.DomainIDs(name), xacme.WithOrderIssuanceProfile(product.ServerOV))
	if err != nil {
		t.Fatal(err)
	}
	az, err := c.GetAuthorization(ctx, o.AuthzURLs[0])
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(az.Challenges, func(ch *xacme.Challenge) bool { return ch.Type == "dns-01" })
	if i < 0 {
		t.Fatal("no dns-01 challenge")
	}
	v, _ := c.DNS01ChallengeRecord(az.Challenges[i].Token)
	if err := s.dns.SetRecords(ctx, "_acme-challenge."+name, "TXT", `"`+v+`"`); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Accept(ctx, az.Challenges[i]); err != nil {
		t.Fatal(err)
	}
	if o, err = c.WaitOrder(ctx, o.URI); err != nil {
		t.Fatalf("order: %v", err)
	}
	certKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	csr, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{DNSNames: []string{name}}, certKey)
	type issued struct {
		ders [][]byte
		err  error
	}
	done := make(chan issued, 1)
	go func() {
		ders, _, err := c.CreateOrderCert(ctx, o.FinalizeURL, csr, true)
		done <- issued{ders, err}
	}()

	// The application waits for staff review; the order stays processing.
	wid := workflows.ApplicationWorkflowID(ApplicationID(orderIDOf(o.URI)))
	var st workflows.ApplicationState
	for st.Status != status.AppAwaitingReview {
		select {
		case r := <-done:
			t.Fatalf("the order finished before the staff review: %v", r.err)
		case <-ctx.Done():
			s.dump(t)
			t.Fatalf("application %s never awaited review: %+v", wid, st)
		case <-time.After(200 * time.Millisecond):
		}
		if q, err := s.tc.QueryWorkflow(ctx, wid, "", workflows.StatusQuery); err == nil {
			_ = q.Get(&st)
		}
	}
	if st.VerificationID != "ver-app_ov_verified" {
		t.Fatalf("state %+v: the organisation's verification is not the one reused", st)
	}
	if ord, err := c.GetOrder(ctx, o.URI); err != nil || ord.Status != xacme.StatusProcessing {
		t.Fatalf("order while awaiting review: %+v %v", ord, err)
	}
	review := func(reviewer string) error {
		h, err := s.tc.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{WorkflowID: wid, UpdateName: workflows.ReviewUpdate,
			UpdateID: "review-" + reviewer, Args: []any{workflows.ReviewDecision{Decision: "approve", Reviewer: reviewer}},
			WaitForStage: client.WorkflowUpdateStageCompleted})
		if err == nil {
			err = h.Get(ctx, nil)
		}
		return err
	}
	if err := review("st_nobody"); err == nil || !strings.Contains(err.Error(), "not a staff member") {
		t.Fatalf("review by an unknown reviewer: %v", err)
	}
	if err := review("st_alice"); err != nil {
		t.Fatalf("review: %v", err)
	}
	var r issued
	select {
	case r = <-done:
	case <-ctx.Done():
		s.dump(t)
		t.Fatal("no certificate after the review")
	}
	if r.err != nil {
		t.Fatalf("finalize: %v", r.err)
	}
	leaf, err := x509.ParseCertificate(r.ders[0])
	if err != nil {
		t.Fatal(err)
	}
	want := storetest.Organization
	if !slices.Equal(leaf.Subject.Organization, want.Organization) || !slices.Equal(leaf.Subject.Locality, want.Locality) ||
		!slices.Equal(leaf.Subject.Province, want.Province) || !slices.Equal(leaf.Subject.Country, want.Country) ||
		!slices.Equal(leaf.DNSNames, []string{name}) || embeddedSCTs(t, leaf) < 2 {
		t.Fatalf("certificate subject %v names %v with %d SCTs", leaf.Subject, leaf.DNSNames, embeddedSCTs(t, leaf))
	}
	app, err := s.st.GetApplication(ctx, ApplicationID(orderIDOf(o.URI)))
	if err != nil || app.Product != product.ServerOV || app.Status != status.AppIssued || app.VerificationID != "ver-app_ov_verified" {
		t.Fatalf("application %+v (%v)", app, err)
	}
	var res workflows.ApplicationResult
	if err := s.tc.GetWorkflow(ctx, wid, "").Get(ctx, &res); err != nil || res.Status != status.AppIssued {
		t.Fatalf("workflow result %+v (%v)", res, err)
	}
	recordHistory(t, s.tc, wid, "application-acme-ov")
}

// orderIDOf is the order id at the end of an order URL.
func orderIDOf(uri string) string { return uri[strings.LastIndex(uri, "/")+1:] }
