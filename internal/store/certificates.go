package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/lib/pq"
)

// Certificate is an issued certificate with its DER decrypted.
type Certificate struct {
	Serial        string
	Issuer        string // the issuing CA's name in CertDesk (for example "tls-rsa-2026")
	DER           []byte
	NotBefore     time.Time
	NotAfter      time.Time
	SPKISHA256    []byte
	Status        string // valid or revoked
	ResellerID    string
	SubscriberID  string
	ApplicationID string
	Product       string
	CRLShard      int
	CreatedAt     time.Time
	// CTState is CTNone for certificates outside Certificate Transparency,
	// CTPrecert while only the precertificate is signed (DER and PrecertDER
	// are then both the precertificate), CTFinal once the final certificate
	// with embedded SCTs replaced DER.
	CTState    string
	PrecertDER []byte
}

// Certificate Transparency states of a certificate row.
const (
	CTNone    = "none"
	CTPrecert = "precert"
	CTFinal   = "final"
)

// CertificateRef is a certificate without its DER: what revocation,
// CRL and OCSP work needs, readable without the key ring. Revocation fields
// are set once the certificate is revoked.
type CertificateRef struct {
	Serial        string     `db:"serial"`
	Issuer        string     `db:"issuer"`
	NotBefore     time.Time  `db:"not_before"`
	NotAfter      time.Time  `db:"not_after"`
	Status        string     `db:"status"`
	ResellerID    string     `db:"reseller_id"`
	SubscriberID  string     `db:"subscriber_id"`
	ApplicationID string     `db:"application_id"`
	Product       string     `db:"product"`
	CRLShard      int        `db:"crl_shard"`
	RevokedAt     *time.Time `db:"revoked_at"`
	ReasonCode    *int       `db:"reason_code"`
}

type certificateRow struct {
	Serial        string    `db:"serial"`
	Issuer        string    `db:"issuer"`
	DEREnc        []byte    `db:"der_enc"`
	NotBefore     time.Time `db:"not_before"`
	NotAfter      time.Time `db:"not_after"`
	SPKISHA256    []byte    `db:"spki_sha256"`
	Status        string    `db:"status"`
	ResellerID    string    `db:"reseller_id"`
	SubscriberID  string    `db:"subscriber_id"`
	ApplicationID string    `db:"application_id"`
	Product       string    `db:"product"`
	CRLShard      int       `db:"crl_shard"`
	CreatedAt     time.Time `db:"created_at"`
	PrecertDEREnc []byte    `db:"precert_der_enc"`
	CTState       string    `db:"ct_state"`
}

const certificateCols = `serial, issuer, der_enc, not_before, not_after, spki_sha256, status, reseller_id,
	subscriber_id, application_id, product, crl_shard, created_at, precert_der_enc, ct_state`

// certRefSelect reads CertificateRefs; revocation data comes from the join.
const certRefSelect = `SELECT c.serial, c.issuer, c.not_before, c.not_after, c.status, c.reseller_id,
	c.subscriber_id, c.application_id, c.product, c.crl_shard, r.revoked_at, r.reason_code
	FROM certificates c LEFT JOIN revocations r ON r.serial = c.serial AND r.revoked_at IS NOT NULL`

// StoreCertificate records a signed certificate and marks its application
// issued, in one transaction. Idempotent: the application id is the anchor
// (one certificate per application), so a retry with the same serial is a
// no-op; a different serial for the same application, or a serial that
// differs from the application's reservation, is ErrConflict.
//
// A signed certificate is recorded whatever the application's status (even
// withdrawn or failed): it exists, so it must be findable and revocable.
func (s *Store) StoreCertificate(ctx context.Context, c Certificate) error {
	return s.storeCertificate(ctx, c, false)
}

// StorePrecertificate records a signed precertificate (c.DER) under the
// same rules as StoreCertificate, as row state CTPrecert: from then on the
// serial is issued (OCSP answers it, it can be revoked), but the
// application is not marked issued until StoreFinalCertificate.
func (s *Store) StorePrecertificate(ctx context.Context, c Certificate) error {
	return s.storeCertificate(ctx, c, true)
}

func (s *Store) storeCertificate(ctx context.Context, c Certificate, precert bool) error {
	c.Serial = NormalizeSerial(c.Serial)
	der, err := s.seal("certificates", "der_enc", c.Serial, c.DER)
	if err != nil {
		return err
	}
	var preEnc []byte
	state := CTNone
	if precert {
		state = CTPrecert
		if preEnc, err = s.seal("certificates", "precert_der_enc", c.Serial, c.DER); err != nil {
			return err
		}
	}
	return s.inTx(ctx, func(tx *sqlxTx) error {
		var reserved string
		err := tx.GetContext(ctx, &reserved, `SELECT serial FROM issuances WHERE application_id = $1`, c.ApplicationID)
		if err == nil && reserved != c.Serial {
			return fmt.Errorf("%w: application %s reserved serial %s, not %s; sign with the reserved serial", ErrConflict, c.ApplicationID, reserved, c.Serial)
		}
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("store: read reservation of %s: %w", c.ApplicationID, err)
		}
		_, err = tx.ExecContext(ctx, `
			INSERT INTO certificates (serial, issuer, der_enc, not_before, not_after, spki_sha256, reseller_id,
				subscriber_id, application_id, product, crl_shard, precert_der_enc, ct_state)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
			ON CONFLICT (application_id) DO NOTHING`,
			c.Serial, c.Issuer, der, c.NotBefore, c.NotAfter, c.SPKISHA256, c.ResellerID,
			c.SubscriberID, c.ApplicationID, c.Product, c.CRLShard, preEnc, state)
		switch pqCode(err) {
		case "":
		case codeUniqueViolation:
			return fmt.Errorf("%w: serial %s is already used by another application's certificate", ErrConflict, c.Serial)
		case codeForeignKeyViolation:
			return fmt.Errorf("%w: application %s, reseller %s or subscriber %s", ErrNotFound, c.ApplicationID, c.ResellerID, c.SubscriberID)
		default:
			return fmt.Errorf("store: store certificate %s: %w", c.Serial, err)
		}
		var stored string
		if err := tx.GetContext(ctx, &stored, `SELECT serial FROM certificates WHERE application_id = $1`, c.ApplicationID); err != nil {
			return fmt.Errorf("store: read back certificate of %s: %w", c.ApplicationID, err)
		}
		if stored != c.Serial {
			return fmt.Errorf("%w: application %s already has certificate %s", ErrConflict, c.ApplicationID, stored)
		}
		if precert {
			return nil // issued once the final certificate is stored
		}
		return markIssued(ctx, tx, c.ApplicationID, c.Serial)
	})
}

// markIssued marks the application issued with its certificate.
func markIssued(ctx context.Context, tx *sqlxTx, applicationID, serial string) error {
	_, err := tx.ExecContext(ctx, `UPDATE applications SET status = 'issued', certificate_serial = $2, updated_at = now()
		WHERE id = $1 AND (status <> 'issued' OR certificate_serial IS DISTINCT FROM $2)`, applicationID, serial)
	if err != nil {
		return fmt.Errorf("store: mark application %s issued: %w", applicationID, err)
	}
	return nil
}

// GetCertificate reads a certificate for internal use.
func (s *Store) GetCertificate(ctx context.Context, serial string) (Certificate, error) {
	serial = NormalizeSerial(serial)
	var row certificateRow
	if err := s.db.GetContext(ctx, &row, `SELECT `+certificateCols+` FROM certificates WHERE serial = $1`, serial); err != nil {
		return Certificate{}, notFound(err, "certificate %s", serial)
	}
	return s.certificateFromRow(row)
}

// GetCertificateForReseller reads a certificate only if resellerID manages it.
func (s *Store) GetCertificateForReseller(ctx context.Context, serial, resellerID string) (Certificate, error) {
	serial = NormalizeSerial(serial)
	var row certificateRow
	err := s.db.GetContext(ctx, &row, `SELECT `+certificateCols+` FROM certificates WHERE serial = $1 AND reseller_id = $2`, serial, resellerID)
	if err != nil {
		return Certificate{}, notFound(err, "certificate %s", serial)
	}
	return s.certificateFromRow(row)
}

// GetCertificateRef reads a certificate's status and revocation data
// without decrypting anything (OCSP signing, revocation checks).
func (s *Store) GetCertificateRef(ctx context.Context, serial string) (CertificateRef, error) {
	serial = NormalizeSerial(serial)
	var ref CertificateRef
	err := s.db.GetContext(ctx, &ref, certRefSelect+` WHERE c.serial = $1`, serial)
	return ref, notFoundOrNil(err, "certificate %s", serial)
}

// ListCertificatesBySPKI lists every certificate for a public key (SHA-256
// of the SubjectPublicKeyInfo), of every reseller. It decides nothing about
// scope: only a proven compromise (see ListKeyCompromiseSiblings) may act on
// other resellers' certificates.
func (s *Store) ListCertificatesBySPKI(ctx context.Context, spkiSHA256 []byte) ([]CertificateRef, error) {
	var out []CertificateRef
	if err := s.db.SelectContext(ctx, &out, certRefSelect+` WHERE c.spki_sha256 = $1 ORDER BY c.serial`, spkiSHA256); err != nil {
		return nil, fmt.Errorf("store: list certificates by key: %w", err)
	}
	return out, nil
}

// ListKeyCompromiseSiblings lists the serials a proven compromise of a key
// must still revoke or upgrade, whichever reseller manages them: the valid
// certificates with the key and the revoked ones whose reason is not
// keyCompromise yet (BR §7.2.2 lets the reason rise), except the reported
// certificate itself. Callers block the key first, so a certificate issued
// in between cannot exist. Empty once every certificate with the key is
// revoked for keyCompromise, which ends a cascade.
func (s *Store) ListKeyCompromiseSiblings(ctx context.Context, spkiSHA256 []byte, except string) ([]string, error) {
	var out []string
	err := s.db.SelectContext(ctx, &out, `SELECT c.serial FROM certificates c
		LEFT JOIN revocations r ON r.serial = c.serial AND r.revoked_at IS NOT NULL
		WHERE c.spki_sha256 = $1 AND c.serial <> $2
		  AND (c.status = 'valid' OR r.reason_code IS DISTINCT FROM $3)
		ORDER BY c.serial`, spkiSHA256, NormalizeSerial(except), ReasonKeyCompromise)
	if err != nil {
		return nil, fmt.Errorf("store: list key compromise siblings: %w", err)
	}
	return out, nil
}

// ListCertificatesBySubscriber lists a subscriber's certificates (disclosure).
func (s *Store) ListCertificatesBySubscriber(ctx context.Context, subscriberID string) ([]CertificateRef, error) {
	var out []CertificateRef
	if err := s.db.SelectContext(ctx, &out, certRefSelect+` WHERE c.subscriber_id = $1 ORDER BY c.not_before, c.serial`, subscriberID); err != nil {
		return nil, fmt.Errorf("store: list certificates of %s: %w", subscriberID, err)
	}
	return out, nil
}

// Selector chooses certificates for a mass revocation. Empty fields do not
// filter; set fields combine with AND. At least one field must be set.
type Selector struct {
	Issuer       string
	Serials      []string
	IssuedFrom   time.Time // notBefore >= IssuedFrom
	IssuedBefore time.Time // notBefore <  IssuedBefore
	ResellerID   string
	// ValidAt, if set, skips certificates expired at that time: revoking
	// them changes nothing for relying parties.
	ValidAt time.Time
	// IncludeRevoked also returns certificates already revoked (a dry run
	// counting the whole incident); by default only valid ones.
	IncludeRevoked bool
	// Through, if set, is the last serial a page may hold (serial <= Through,
	// in the same text order as the keyset cursor): a closed range of an
	// earlier page, re-read by the OCSP signer of a mass revocation.
	Through string
}

func (sel Selector) empty() bool {
	return sel.Issuer == "" && len(sel.Serials) == 0 && sel.IssuedFrom.IsZero() && sel.IssuedBefore.IsZero() && sel.ResellerID == ""
}

// SelectCertificates returns up to limit certificates matching sel with a
// serial greater than after, in serial order: keyset pagination, so a
// million-certificate incident is walked in constant-cost pages (pass the
// last serial of a page as after for the next; "" starts).
func (s *Store) SelectCertificates(ctx context.Context, sel Selector, after string, limit int) ([]CertificateRef, error) {
	if sel.empty() {
		return nil, fmt.Errorf("store: a selector needs at least one of issuer, serials, issued-between or reseller; refusing to select every certificate")
	}
	if limit <= 0 {
		return nil, fmt.Errorf("store: limit must be positive")
	}
	where, args := sel.where(after)
	args = append(args, limit)
	// The page is cut first and its revocations are then looked up by key:
	// a plain LEFT JOIN lets the planner hash the whole revocations table
	// for every page, which a mass revocation fills while it pages.
	q := `WITH page AS MATERIALIZED (SELECT c.* FROM certificates c WHERE ` + strings.Join(where, " AND ") +
		fmt.Sprintf(` ORDER BY c.serial LIMIT $%d)`, len(args)) + `
		SELECT c.serial, c.issuer, c.not_before, c.not_after, c.status, c.reseller_id,
			c.subscriber_id, c.application_id, c.product, c.crl_shard, r.revoked_at, r.reason_code
		FROM page c LEFT JOIN LATERAL (SELECT r.revoked_at, r.reason_code FROM revocations r
			WHERE r.serial = c.serial AND r.revoked_at IS NOT NULL LIMIT 1) r ON true
		ORDER BY c.serial`
	var out []CertificateRef
	if err := s.db.SelectContext(ctx, &out, q, args...); err != nil {
		return nil, fmt.Errorf("store: select certificates: %w", err)
	}
	return out, nil
}

// where is the WHERE clause (over certificates c) of sel after the keyset
// cursor after, with its arguments numbered from $1.
func (sel Selector) where(after string) ([]string, []any) {
	where := []string{"c.serial > $1"}
	args := []any{NormalizeSerial(after)}
	add := func(cond string, v any) {
		args = append(args, v)
		where = append(where, strings.ReplaceAll(cond, "?", fmt.Sprintf("$%d", len(args))))
	}
	if sel.Issuer != "" {
		add("c.issuer = ?", sel.Issuer)
	}
	if len(sel.Serials) > 0 {
		add("c.serial = ANY(?)", pq.StringArray(normalizeSerials(sel.Serials)))
	}
	if !sel.IssuedFrom.IsZero() {
		add("c.not_before >= ?", sel.IssuedFrom)
	}
	if !sel.IssuedBefore.IsZero() {
		add("c.not_before < ?", sel.IssuedBefore)
	}
	if sel.ResellerID != "" {
		add("c.reseller_id = ?", sel.ResellerID)
	}
	if !sel.ValidAt.IsZero() {
		add("c.not_after > ?", sel.ValidAt)
	}
	if sel.Through != "" {
		add("c.serial <= ?", NormalizeSerial(sel.Through))
	}
	if !sel.IncludeRevoked {
		where = append(where, "c.status = 'valid'")
	}
	return where, args
}

func (s *Store) certificateFromRow(r certificateRow) (Certificate, error) {
	o := s.opener("certificates", r.Serial)
	c := Certificate{
		Serial: r.Serial, Issuer: r.Issuer, DER: o.bytes("der_enc", r.DEREnc),
		NotBefore: r.NotBefore, NotAfter: r.NotAfter, SPKISHA256: r.SPKISHA256, Status: r.Status,
		ResellerID: r.ResellerID, SubscriberID: r.SubscriberID, ApplicationID: r.ApplicationID,
		Product: r.Product, CRLShard: r.CRLShard, CreatedAt: r.CreatedAt,
		CTState: r.CTState, PrecertDER: o.bytes("precert_der_enc", r.PrecertDEREnc),
	}
	return c, o.err
}
