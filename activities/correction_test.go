package activities

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/temporal"

	"certdesk/internal/product"
	"certdesk/internal/status"
	"certdesk/internal/store"
)

// fakeCorrectionStore holds one certificate of reseller rs_1.
type fakeCorrectionStore struct {
	cert store.Certificate
	sub  store.Subscriber
	app  store.Application
}

func (f *fakeCorrectionStore) GetCertificateForReseller(_ context.Context, serial, resellerID string) (store.Certificate, error) {
	if serial != f.cert.Serial || resellerID != f.cert.ResellerID {
		return store.Certificate{}, store.ErrNotFound
	}
	return f.cert, nil
}

func (f *fakeCorrectionStore) GetSubscriber(_ context.Context, id string) (store.Subscriber, error) {
	if id != f.sub.ID {
		return store.Subscriber{}, store.ErrNotFound
	}
	return f.sub, nil
}

func (f *fakeCorrectionStore) GetApplication(_ context.Context, id string) (store.Application, error) {
	if id != f.app.ID {
		return store.Application{}, store.ErrNotFound
	}
	return f.app, nil
}

var corrNow = time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)

func dvCertificate() *fakeCorrectionStore {
	return &fakeCorrectionStore{
		cert: store.Certificate{Serial: "0a01", ResellerID: "rs_1", SubscriberID: "sub_1", ApplicationID: "app_1",
			Product: product.ServerDV, Status: status.CertValid, NotAfter: corrNow.AddDate(0, 3, 0)},
		sub: store.Subscriber{ID: "sub_1", ResellerID: "rs_1", Organization: "株式会社サンプル", Name: "山田 太郎",
			Email: "taro@example.jp", Phone: "03-1234-5678", Country: "JP"},
		app: store.Application{ID: "app_1", Product: product.ServerDV, Domains: []string{"www.example.jp"}, ValidityDays: 90,
			CSR: []byte{0x30, 0x00}, AttestationTermsVersion: "2026-01"},
	}
}

func appErrType(err error) (string, bool) {
	var ae *temporal.ApplicationError
	if errors.As(err, &ae) {
		return ae.Type(), ae.NonRetryable()
	}
	return "", false
}

func TestCheckCorrectionPlans(t *testing.T) {
	ctx := context.Background()
	f := dvCertificate()
	plan, err := checkCorrection(ctx, f, CheckCorrectionInput{Serial: "0a01", ResellerID: "rs_1",
		Changes: map[string]string{"phone": "03-9999-0000"}}, corrNow)
	if err != nil {
		t.Fatal(err)
	}
	if plan.Classification != CorrectionContact || plan.Reissue != nil || plan.SubscriberID != "sub_1" || plan.Changes[FieldContactPhone] != "03-9999-0000" {
		t.Fatalf("%+v", plan)
	}
	// A domain change is printed: the plan carries the new application.
	plan, err = checkCorrection(ctx, f, CheckCorrectionInput{Serial: "0a01", ResellerID: "rs_1",
		Changes: map[string]string{"domains": "new.example.jp", "email": "hanako@example.jp"}}, corrNow)
	if err != nil {
		t.Fatal(err)
	}
	r := plan.Reissue
	if plan.Classification != CorrectionPrinted || plan.ReviewRequired || r == nil || strings.Join(r.Domains, ",") != "new.example.jp" ||
		r.Subscriber.Email != "hanako@example.jp" || r.Subscriber.Organization != "株式会社サンプル" || r.TermsVersion != "2026-01" ||
		!strings.HasPrefix(r.CSRPEM, "-----BEGIN CERTIFICATE REQUEST-----") {
		t.Fatalf("%+v %+v", plan, r)
	}
}

func TestCheckCorrectionRefuses(t *testing.T) {
	ctx := context.Background()
	f := dvCertificate()
	// Another reseller's certificate does not exist for it (O3).
	_, err := checkCorrection(ctx, f, CheckCorrectionInput{Serial: "0a01", ResellerID: "rs_2",
		Changes: map[string]string{"phone": "03-9999-0000"}}, corrNow)
	if typ, nr := appErrType(err); typ != ErrTypeNotFound || !nr {
		t.Fatalf("another reseller: %v", err)
	}
	// A printed change on an expired certificate: apply anew.
	_, err = checkCorrection(ctx, f, CheckCorrectionInput{Serial: "0a01", ResellerID: "rs_1",
		Changes: map[string]string{"domains": "new.example.jp"}}, corrNow.AddDate(1, 0, 0))
	if typ, nr := appErrType(err); typ != ErrTypeInvalid || !nr || !strings.Contains(err.Error(), "no longer valid") {
		t.Fatalf("expired: %v", err)
	}
	// A revoked one likewise.
	f.cert.Status = status.CertRevoked
	_, err = checkCorrection(ctx, f, CheckCorrectionInput{Serial: "0a01", ResellerID: "rs_1",
		Changes: map[string]string{"domains": "new.example.jp"}}, corrNow)
	if typ, _ := appErrType(err); typ != ErrTypeInvalid {
		t.Fatalf("revoked: %v", err)
	}
}
