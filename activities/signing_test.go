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

// fakeSigningStore answers the issuance reads from memory. Methods a test
// does not expect hit the nil embedded interface and panic. The
// SigningActivities under test have no CA: reaching the signer panics too,
// which is how these tests show nothing was signed.
type fakeSigningStore struct {
	SigningStore
	lockErr   error
	issuance  *store.Issuance
	issErr    error
	certs     map[string]store.Certificate
	certErr   error
	locked    bool
	reserved  int
	lockCalls int
	audited   []store.AuditEvent
}

// AppendAudit keeps the events, one per key as the store does.
func (f *fakeSigningStore) AppendAudit(_ context.Context, e store.AuditEvent) (store.AuditEvent, error) {
	for _, a := range f.audited {
		if e.EventKey != "" && a.EventKey == e.EventKey {
			return a, nil
		}
	}
	f.audited = append(f.audited, e)
	return e, nil
}

func (f *fakeSigningStore) WithIssuanceLock(ctx context.Context, _ string, fn func(context.Context) error) error {
	f.lockCalls++
	if f.lockErr != nil {
		return f.lockErr
	}
	f.locked = true
	defer func() { f.locked = false }()
	return fn(ctx)
}

func (f *fakeSigningStore) GetIssuance(context.Context, string) (store.Issuance, error) {
	if !f.locked {
		panic("GetIssuance outside the issuance lock")
	}
	if f.issErr != nil {
		return store.Issuance{}, f.issErr
	}
	if f.issuance == nil {
		return store.Issuance{}, store.ErrNotFound
	}
	return *f.issuance, nil
}

func (f *fakeSigningStore) GetCertificate(_ context.Context, serial string) (store.Certificate, error) {
	if f.certErr != nil {
		return store.Certificate{}, f.certErr
	}
	c, ok := f.certs[serial]
	if !ok {
		return c, store.ErrNotFound
	}
	return c, nil
}

func (f *fakeSigningStore) ReserveSerial(context.Context, string, string) (store.Issuance, error) {
	f.reserved++
	return store.Issuance{}, errors.New("ReserveSerial must not be reached")
}

func issueIn() IssueInput {
	return IssueInput{ApplicationID: "app_1", Product: product.ServerDV, Domains: []string{"www.example.jp"}, ValidityDays: 90}
}

// A certificate already stored for the application is returned as it is,
// under the lock, without signing.
func TestIssueReturnsStoredCertificate(t *testing.T) {
	nb := time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC)
	f := &fakeSigningStore{issuance: &store.Issuance{ApplicationID: "app_1", Serial: "0a01"},
		certs: map[string]store.Certificate{"0a01": {Serial: "0a01", Issuer: "tls-2026", DER: []byte{0x30, 0x00},
			NotBefore: nb, NotAfter: nb.AddDate(0, 0, 90), Status: status.CertValid, CRLShard: 3}}}
	s := &SigningActivities{Store: f}
	res, err := s.IssueCertificate(context.Background(), issueIn())
	if err != nil {
		t.Fatal(err)
	}
	if res.Serial != "0a01" || res.Shard != 3 || !strings.HasPrefix(res.CertificatePEM, "-----BEGIN CERTIFICATE-----") || f.lockCalls != 1 {
		t.Fatalf("%+v (lock calls %d)", res, f.lockCalls)
	}
	// The stored certificate's signature is audited (an attempt may have
	// stored it and failed before auditing), once however often retried.
	if _, err := s.IssueCertificate(context.Background(), issueIn()); err != nil {
		t.Fatal(err)
	}
	if len(f.audited) != 1 || f.audited[0].Action != AuditCertificateSigned || f.audited[0].ObjectRef != "certificate:0a01" ||
		f.audited[0].Actor != "ca:signer" {
		t.Fatalf("audited %+v", f.audited)
	}
}

// When the store cannot take the lock or say whether a certificate was
// issued, the signer stops with a retryable error and signs nothing.
func TestIssueRefusesWhenStoreFails(t *testing.T) {
	down := errors.New("connection refused")
	reserved := &store.Issuance{ApplicationID: "app_1", Serial: "0a01"}
	for name, f := range map[string]*fakeSigningStore{
		"lock":             {lockErr: down},
		"issuance read":    {issErr: down},
		"certificate read": {issuance: reserved, certErr: down},
	} {
		s := &SigningActivities{Store: f}
		_, err := s.IssueCertificate(context.Background(), issueIn())
		if !errors.Is(err, down) || f.reserved != 0 {
			t.Errorf("%s: error %v, reservations %d", name, err, f.reserved)
		}
		var appErr *temporal.ApplicationError
		if errors.As(err, &appErr) && appErr.NonRetryable() {
			t.Errorf("%s: an outage must be retried, got non-retryable %v", name, err)
		}
	}
}
