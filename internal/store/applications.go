package store

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/lib/pq"

	"certdesk/internal/status"
)

// Application statuses, kept for callers outside the store that still say
// store.AppX.
//
// Deprecated: use the status package (status.AppReceived, ...).
const (
	AppReceived          = status.AppReceived
	AppValidating        = status.AppValidating
	AppVerifyingIdentity = status.AppVerifyingIdentity
	AppAwaitingReview    = status.AppAwaitingReview
	AppIssuing           = status.AppIssuing
	AppIssued            = status.AppIssued
	AppRejected          = status.AppRejected
	AppWithdrawn         = status.AppWithdrawn
	AppExpired           = status.AppExpired
	AppFailed            = status.AppFailed
)

// appTransitions lists, for each target status, the statuses it may be
// reached from. Terminal statuses (issued, rejected, withdrawn, expired,
// failed) are never left. Withdrawal and expiry stop once signing has
// started: from issuing the only ways out are issued or failed. "issued" is
// reached only through StoreCertificate, which records the certificate.
var appTransitions = map[string][]string{
	status.AppValidating:        {status.AppReceived},
	status.AppVerifyingIdentity: {status.AppReceived, status.AppValidating},
	status.AppAwaitingReview:    {status.AppReceived, status.AppValidating, status.AppVerifyingIdentity},
	status.AppIssuing:           {status.AppReceived, status.AppValidating, status.AppVerifyingIdentity, status.AppAwaitingReview},
	status.AppRejected:          {status.AppReceived, status.AppValidating, status.AppVerifyingIdentity, status.AppAwaitingReview},
	status.AppWithdrawn:         {status.AppReceived, status.AppValidating, status.AppVerifyingIdentity, status.AppAwaitingReview},
	status.AppExpired:           {status.AppReceived, status.AppValidating, status.AppVerifyingIdentity, status.AppAwaitingReview},
	status.AppFailed:            {status.AppReceived, status.AppValidating, status.AppVerifyingIdentity, status.AppAwaitingReview, status.AppIssuing},
}

// Application is a certificate application (O1) with its CSR decrypted.
type Application struct {
	ID                      string
	ResellerID              string
	SubscriberID            string
	Product                 string // server-dv, server-ov or client-sign
	Domains                 []string
	CSR                     []byte // DER; encrypted at rest
	SPKISHA256              []byte // SHA-256 of the CSR's SubjectPublicKeyInfo
	ValidityDays            int
	AttestationTermsVersion string
	AttestationTruthful     bool // must be true: the database refuses false
	AttestedAt              time.Time
	Status                  string
	StatusReason            string
	WorkflowID              string
	VerificationID          string
	CertificateSerial       string
	DueAt                   *time.Time
	// ACMEOrderID names the ACME order this application is (empty for the
	// reseller API). Such an application has no CSR until finalize.
	ACMEOrderID string
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

type applicationRow struct {
	ID                      string         `db:"id"`
	ResellerID              string         `db:"reseller_id"`
	SubscriberID            string         `db:"subscriber_id"`
	Product                 string         `db:"product"`
	Domains                 pq.StringArray `db:"domains"`
	CSREnc                  []byte         `db:"csr_enc"`
	SPKISHA256              []byte         `db:"spki_sha256"`
	ValidityDays            int            `db:"validity_days"`
	AttestationTermsVersion string         `db:"attestation_terms_version"`
	AttestationTruthful     bool           `db:"attestation_truthful"`
	AttestedAt              time.Time      `db:"attested_at"`
	Status                  string         `db:"status"`
	StatusReason            string         `db:"status_reason"`
	WorkflowID              string         `db:"workflow_id"`
	VerificationID          sql.NullString `db:"verification_id"`
	CertificateSerial       sql.NullString `db:"certificate_serial"`
	DueAt                   *time.Time     `db:"due_at"`
	ACMEOrderID             sql.NullString `db:"acme_order_id"`
	CreatedAt               time.Time      `db:"created_at"`
	UpdatedAt               time.Time      `db:"updated_at"`
}

const applicationCols = `id, reseller_id, subscriber_id, product, domains, csr_enc, spki_sha256, validity_days,
	attestation_terms_version, attestation_truthful, attested_at, status, status_reason, workflow_id,
	verification_id, certificate_serial, due_at, acme_order_id, created_at, updated_at`

// CreateApplication records a new application in status "received".
// Idempotent by id: a retry leaves the first row as it is; the same id for
// another reseller, subscriber or product is ErrConflict.
func (s *Store) CreateApplication(ctx context.Context, a Application) error {
	var csr, spki []byte
	var err error
	if a.CSR != nil || a.ACMEOrderID == "" {
		if csr, err = s.seal("applications", "csr_enc", a.ID, a.CSR); err != nil {
			return err
		}
		spki = a.SPKISHA256
	}
	var acmeOrder sql.NullString
	if a.ACMEOrderID != "" {
		acmeOrder = sql.NullString{String: a.ACMEOrderID, Valid: true}
	}
	domains := a.Domains
	if domains == nil {
		domains = []string{}
	}
	var inserted bool
	err = s.db.GetContext(ctx, &inserted, `
		INSERT INTO applications (id, reseller_id, subscriber_id, product, domains, csr_enc, spki_sha256,
			validity_days, attestation_terms_version, attestation_truthful, attested_at, workflow_id, due_at, acme_order_id)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
		ON CONFLICT (id) DO NOTHING
		RETURNING true`,
		a.ID, a.ResellerID, a.SubscriberID, a.Product, pq.StringArray(domains), csr, spki,
		a.ValidityDays, a.AttestationTermsVersion, a.AttestationTruthful, a.AttestedAt, a.WorkflowID, a.DueAt, acmeOrder)
	switch {
	case err == nil:
		return nil
	case pqCode(err) == codeCheckViolation:
		return fmt.Errorf("store: application %s refused by a database rule (attestation must be true, product one of server-dv/server-ov/client-sign, TLS products need domains, validity > 0): %w", a.ID, err)
	case pqCode(err) == codeForeignKeyViolation:
		return fmt.Errorf("%w: reseller %s or subscriber %s (store the subscriber first)", ErrNotFound, a.ResellerID, a.SubscriberID)
	case !errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("store: create application %s: %w", a.ID, err)
	}
	var cur struct {
		ResellerID   string `db:"reseller_id"`
		SubscriberID string `db:"subscriber_id"`
		Product      string `db:"product"`
	}
	if err := s.db.GetContext(ctx, &cur, `SELECT reseller_id, subscriber_id, product FROM applications WHERE id = $1`, a.ID); err != nil {
		return notFound(err, "application %s", a.ID)
	}
	if cur.ResellerID != a.ResellerID || cur.SubscriberID != a.SubscriberID || cur.Product != a.Product {
		return fmt.Errorf("%w: application id %s is already used for another reseller, subscriber or product; choose a new id", ErrConflict, a.ID)
	}
	return nil
}

// SetApplicationCSR records the CSR an ACME order's application received at
// finalize. Idempotent: once a CSR is recorded, the same key again is a
// no-op and another key is ErrConflict.
func (s *Store) SetApplicationCSR(ctx context.Context, id string, der, spkiSHA256 []byte) error {
	csr, err := s.seal("applications", "csr_enc", id, der)
	if err != nil {
		return err
	}
	res, err := s.db.ExecContext(ctx, `UPDATE applications SET csr_enc = $2, spki_sha256 = $3, updated_at = now()
		WHERE id = $1 AND acme_order_id IS NOT NULL AND csr_enc IS NULL`, id, csr, spkiSHA256)
	if err != nil {
		return fmt.Errorf("store: set CSR of application %s: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 1 {
		return nil
	}
	var cur []byte
	if err := s.db.GetContext(ctx, &cur, `SELECT spki_sha256 FROM applications WHERE id = $1 AND acme_order_id IS NOT NULL`, id); err != nil {
		return notFound(err, "ACME application %s", id)
	}
	if !bytes.Equal(cur, spkiSHA256) {
		return fmt.Errorf("%w: application %s already has a CSR for another key", ErrConflict, id)
	}
	return nil
}

// GetApplication reads an application for internal use.
func (s *Store) GetApplication(ctx context.Context, id string) (Application, error) {
	var row applicationRow
	if err := s.db.GetContext(ctx, &row, `SELECT `+applicationCols+` FROM applications WHERE id = $1`, id); err != nil {
		return Application{}, notFound(err, "application %s", id)
	}
	return s.applicationFromRow(row)
}

// GetApplicationForReseller reads an application only if resellerID owns it.
func (s *Store) GetApplicationForReseller(ctx context.Context, id, resellerID string) (Application, error) {
	var row applicationRow
	err := s.db.GetContext(ctx, &row, `SELECT `+applicationCols+` FROM applications WHERE id = $1 AND reseller_id = $2`, id, resellerID)
	if err != nil {
		return Application{}, notFound(err, "application %s", id)
	}
	return s.applicationFromRow(row)
}

// ListApplicationsBySubscriber lists a subscriber's applications, oldest
// first (disclosure compilation).
func (s *Store) ListApplicationsBySubscriber(ctx context.Context, subscriberID string) ([]Application, error) {
	var rows []applicationRow
	err := s.db.SelectContext(ctx, &rows, `SELECT `+applicationCols+` FROM applications
		WHERE subscriber_id = $1 ORDER BY created_at, id`, subscriberID)
	if err != nil {
		return nil, fmt.Errorf("store: list applications of %s: %w", subscriberID, err)
	}
	out := make([]Application, 0, len(rows))
	for _, r := range rows {
		a, err := s.applicationFromRow(r)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, nil
}

// SetApplicationStatus moves an application to status to, with a reason
// for the record. Setting the status it already has is a no-op (retries);
// a move the state machine forbids is ErrInvalidTransition naming both ends.
func (s *Store) SetApplicationStatus(ctx context.Context, id, to, reason string) error {
	from, ok := appTransitions[to]
	if !ok {
		if to == status.AppIssued {
			return fmt.Errorf("%w: an application becomes issued only through StoreCertificate", ErrInvalidTransition)
		}
		return fmt.Errorf("%w: unknown application status %q", ErrInvalidTransition, to)
	}
	res, err := s.db.ExecContext(ctx, `UPDATE applications SET status = $2, status_reason = $3, updated_at = now()
		WHERE id = $1 AND status = ANY($4)`, id, to, reason, pq.StringArray(from))
	if err != nil {
		return fmt.Errorf("store: set application %s status: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 1 {
		return nil
	}
	var cur string
	if err := s.db.GetContext(ctx, &cur, `SELECT status FROM applications WHERE id = $1`, id); err != nil {
		return notFound(err, "application %s", id)
	}
	if cur == to {
		return nil
	}
	return fmt.Errorf("%w: application %s is %s and cannot become %s", ErrInvalidTransition, id, cur, to)
}

// SetApplicationDue sets the time the application expires if not completed.
func (s *Store) SetApplicationDue(ctx context.Context, id string, due time.Time) error {
	res, err := s.db.ExecContext(ctx, `UPDATE applications SET due_at = $2, updated_at = now() WHERE id = $1`, id, due)
	return oneRow(res, err, "application %s", id)
}

// SetApplicationVerification links the identity verification case.
func (s *Store) SetApplicationVerification(ctx context.Context, id, verificationID string) error {
	res, err := s.db.ExecContext(ctx, `UPDATE applications SET verification_id = $2, updated_at = now() WHERE id = $1`, id, verificationID)
	return oneRow(res, err, "application %s", id)
}

// ListOpenApplicationsDue lists open applications due before t, soonest
// first, for expiry sweeps and staff dashboards (uses a partial index).
func (s *Store) ListOpenApplicationsDue(ctx context.Context, before time.Time, limit int) ([]Application, error) {
	var rows []applicationRow
	err := s.db.SelectContext(ctx, &rows, `SELECT `+applicationCols+` FROM applications
		WHERE status IN ('received', 'validating', 'verifying_identity', 'awaiting_review', 'issuing')
		  AND due_at < $1 ORDER BY due_at LIMIT $2`, before, limit)
	if err != nil {
		return nil, fmt.Errorf("store: list due applications: %w", err)
	}
	out := make([]Application, 0, len(rows))
	for _, r := range rows {
		a, err := s.applicationFromRow(r)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, nil
}

func (s *Store) applicationFromRow(r applicationRow) (Application, error) {
	o := s.opener("applications", r.ID)
	a := Application{
		ID: r.ID, ResellerID: r.ResellerID, SubscriberID: r.SubscriberID, Product: r.Product,
		Domains: []string(r.Domains), CSR: o.bytes("csr_enc", r.CSREnc), SPKISHA256: r.SPKISHA256,
		ValidityDays: r.ValidityDays, AttestationTermsVersion: r.AttestationTermsVersion,
		AttestationTruthful: r.AttestationTruthful, AttestedAt: r.AttestedAt,
		Status: r.Status, StatusReason: r.StatusReason, WorkflowID: r.WorkflowID,
		VerificationID: r.VerificationID.String, CertificateSerial: r.CertificateSerial.String,
		DueAt: r.DueAt, ACMEOrderID: r.ACMEOrderID.String, CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt,
	}
	return a, o.err
}
