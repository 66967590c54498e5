package store

import (
	"context"
	"crypto/x509"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"certdesk/internal/product"
	"certdesk/internal/status"
)

// OrganizationReuse is how long a completed verification of an
// organisation's identity may be reused for a new OV certificate: BR §4.2.1
// allows Subject Identity Information validated no more than 825 days
// before issuance.
const OrganizationReuse = 825 * 24 * time.Hour

// ErrNotVerified: the record named as proof of an already verified
// organisation does not prove it (wrong product, not issued, verification
// not passed or too old). The wrapped message says which.
var ErrNotVerified = errors.New("store: not an already verified organisation")

// VerifiedOrganization is an organisation CertDesk has verified: the
// reseller's earlier server-ov application whose identity verification
// passed and whose certificate was issued after staff review. The subject
// fields are those of that certificate (public: the certificate is in CT
// logs), i.e. exactly what was verified and approved.
type VerifiedOrganization struct {
	ApplicationID     string
	ResellerID        string
	VerificationID    string
	VerifiedAt        time.Time
	CertificateSerial string
	Organization      string
	Locality          string
	Province          string
	Country           string
}

// VerifiedOrganization checks that application applicationID of reseller
// resellerID proves an already verified organisation as of now and returns
// it. Another reseller's application, or none, is ErrNotFound; one that
// proves nothing is ErrNotVerified with the reason.
func (s *Store) VerifiedOrganization(ctx context.Context, resellerID, applicationID string) (VerifiedOrganization, error) {
	var (
		o         VerifiedOrganization
		prod, st  string
		verID     sql.NullString
		result    sql.NullString
		decidedAt *time.Time
		serial    sql.NullString
		fresh     sql.NullBool
	)
	err := s.db.QueryRowContext(ctx, `
		SELECT a.id, a.reseller_id, a.product, a.status, a.verification_id, v.result, v.decided_at,
		       v.decided_at > now() - $3 * interval '1 second', c.serial
		FROM applications a
		LEFT JOIN identity_verifications v ON v.id = a.verification_id
		LEFT JOIN certificates c ON c.application_id = a.id
		WHERE a.id = $1 AND a.reseller_id = $2`, applicationID, resellerID, OrganizationReuse.Seconds()).
		Scan(&o.ApplicationID, &o.ResellerID, &prod, &st, &verID, &result, &decidedAt, &fresh, &serial)
	if err != nil {
		return VerifiedOrganization{}, notFound(err, "application %s", applicationID)
	}
	switch {
	case prod != product.ServerOV:
		return VerifiedOrganization{}, fmt.Errorf("%w: application %s is %s, not %s", ErrNotVerified, applicationID, prod, product.ServerOV)
	case st != status.AppIssued || !serial.Valid:
		return VerifiedOrganization{}, fmt.Errorf("%w: application %s is %s, not issued", ErrNotVerified, applicationID, st)
	case !verID.Valid || result.String != "passed" || decidedAt == nil:
		return VerifiedOrganization{}, fmt.Errorf("%w: the identity verification of application %s has not passed", ErrNotVerified, applicationID)
	case !fresh.Bool:
		return VerifiedOrganization{}, fmt.Errorf("%w: the identity verification of application %s is older than %d days (BR §4.2.1)",
			ErrNotVerified, applicationID, int(OrganizationReuse/(24*time.Hour)))
	}
	o.VerificationID, o.VerifiedAt, o.CertificateSerial = verID.String, decidedAt.UTC(), serial.String
	c, err := s.GetCertificate(ctx, serial.String)
	if err != nil {
		return VerifiedOrganization{}, err
	}
	cert, err := x509.ParseCertificate(c.DER)
	if err != nil {
		return VerifiedOrganization{}, fmt.Errorf("store: certificate %s of application %s: %w", c.Serial, applicationID, err)
	}
	first := func(v []string) string {
		if len(v) == 0 {
			return ""
		}
		return v[0]
	}
	n := cert.Subject
	o.Organization, o.Locality, o.Province, o.Country = first(n.Organization), first(n.Locality), first(n.Province), first(n.Country)
	if o.Organization == "" || o.Country == "" {
		return VerifiedOrganization{}, fmt.Errorf("%w: the certificate of application %s names no organisation", ErrNotVerified, applicationID)
	}
	return o, nil
}

// EABOptions are what a reseller sets on new EAB credentials.
type EABOptions struct {
	Products  []string // product ids the account may order; empty = any
	Reference string
	ExpiresAt *time.Time
	// OrganizationFrom, when set, binds the credentials to the organisation
	// that application verified (VerifiedOrganization): the account may
	// then order server-ov for it.
	OrganizationFrom string
}

// CreateEABCredentialWith is CreateEABCredential with every option. An
// OrganizationFrom that proves no verified organisation of this reseller
// is ErrNotFound or ErrNotVerified and nothing is written.
func (s *Store) CreateEABCredentialWith(ctx context.Context, resellerID string, opt EABOptions) (EABCredential, error) {
	if opt.OrganizationFrom != "" {
		if _, err := s.VerifiedOrganization(ctx, resellerID, opt.OrganizationFrom); err != nil {
			return EABCredential{}, err
		}
	}
	return s.createEAB(ctx, resellerID, opt)
}

// EABOrganization is the verified organisation the EAB credential kid is
// bound to, checked again as of now; credentials without a binding are
// ErrNotVerified.
func (s *Store) EABOrganization(ctx context.Context, kid string) (VerifiedOrganization, error) {
	var (
		rs  string
		app sql.NullString
	)
	err := s.db.QueryRowContext(ctx,
		`SELECT reseller_id, organization_application_id FROM acme_eab_credentials WHERE kid = $1`, kid).Scan(&rs, &app)
	if err != nil {
		return VerifiedOrganization{}, notFound(err, "EAB credential %s", kid)
	}
	if !app.Valid {
		return VerifiedOrganization{}, fmt.Errorf("%w: EAB credential %s is not bound to an organisation", ErrNotVerified, kid)
	}
	return s.VerifiedOrganization(ctx, rs, app.String)
}
