package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/lib/pq"
)

// ErrUsed: a single-use value (an ACME nonce or EAB credential) was already
// spent, has expired or was revoked.
var ErrUsed = errors.New("store: already used, expired or revoked")

// randomToken returns n random bytes as base64url without padding.
func randomToken(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("store: reading random bytes: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// NewACMENonce stores and returns a fresh Replay-Nonce valid for ttl.
func (s *Store) NewACMENonce(ctx context.Context, ttl time.Duration) (string, error) {
	n, err := randomToken(16)
	if err != nil {
		return "", err
	}
	if _, err := s.db.ExecContext(ctx,
		`INSERT INTO acme_nonces (nonce, expires_at) VALUES ($1, now() + $2 * interval '1 second')`,
		n, ttl.Seconds()); err != nil {
		return "", fmt.Errorf("store: insert ACME nonce: %w", err)
	}
	return n, nil
}

// ConsumeACMENonce spends a nonce. It returns ErrUsed if the nonce was never
// issued, was already used or has expired; of concurrent callers with the
// same nonce exactly one succeeds (the DELETE that finds the row).
func (s *Store) ConsumeACMENonce(ctx context.Context, nonce string) error {
	res, err := s.db.ExecContext(ctx,
		`DELETE FROM acme_nonces WHERE nonce = $1 AND expires_at > now()`, nonce)
	if err != nil {
		return fmt.Errorf("store: consume ACME nonce: %w", err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return ErrUsed
	}
	return nil
}

// PurgeACMENonces deletes expired nonces and reports how many.
func (s *Store) PurgeACMENonces(ctx context.Context) (int64, error) {
	res, err := s.db.ExecContext(ctx, `DELETE FROM acme_nonces WHERE expires_at <= now()`)
	if err != nil {
		return 0, fmt.Errorf("store: purge ACME nonces: %w", err)
	}
	return res.RowsAffected()
}

// EABCredential is an External Account Binding credential (RFC 8555
// §7.3.4). HMACKey is the raw key; it is sealed at rest.
type EABCredential struct {
	KID        string
	ResellerID string
	HMACKey    []byte
	Products   []string // product ids the account may order; empty = any
	Reference  string   // the reseller's own reference for its customer
	ExpiresAt  *time.Time
	CreatedAt  time.Time
	UsedAt     *time.Time
	AccountID  string
	RevokedAt  *time.Time
	// OrganizationFrom is the server-ov application whose verified
	// organisation the credentials are bound to (VerifiedOrganization), or "".
	OrganizationFrom string
}

// CreateEABCredential makes a new credential for a reseller with a random
// kid and a 256-bit HMAC key, and returns it (with the key, to show once).
func (s *Store) CreateEABCredential(ctx context.Context, resellerID string, products []string, reference string, expiresAt *time.Time) (EABCredential, error) {
	return s.createEAB(ctx, resellerID, EABOptions{Products: products, Reference: reference, ExpiresAt: expiresAt})
}

func (s *Store) createEAB(ctx context.Context, resellerID string, opt EABOptions) (EABCredential, error) {
	products, reference, expiresAt := opt.Products, opt.Reference, opt.ExpiresAt
	tok, err := randomToken(15)
	if err != nil {
		return EABCredential{}, err
	}
	kid := "eab_" + tok
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return EABCredential{}, fmt.Errorf("store: reading random EAB key: %w", err)
	}
	enc, err := s.seal("acme_eab_credentials", "hmac_key_enc", kid, key)
	if err != nil {
		return EABCredential{}, err
	}
	if products == nil {
		products = []string{}
	}
	c := EABCredential{KID: kid, ResellerID: resellerID, HMACKey: key, Products: products, Reference: reference, ExpiresAt: expiresAt,
		OrganizationFrom: opt.OrganizationFrom}
	err = s.db.QueryRowContext(ctx,
		`INSERT INTO acme_eab_credentials (kid, reseller_id, hmac_key_enc, products, reference, expires_at, organization_application_id)
		 VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING created_at`,
		kid, resellerID, enc, pq.Array(products), reference, expiresAt, nullStr(opt.OrganizationFrom)).Scan(&c.CreatedAt)
	if err != nil {
		var pe *pq.Error
		if errors.As(err, &pe) && pe.Code == "23503" {
			if opt.OrganizationFrom != "" && pe.Constraint != "" && strings.Contains(pe.Constraint, "organization") {
				return EABCredential{}, fmt.Errorf("%w: application %s", ErrNotFound, opt.OrganizationFrom)
			}
			return EABCredential{}, fmt.Errorf("%w: reseller %s", ErrNotFound, resellerID)
		}
		return EABCredential{}, fmt.Errorf("store: insert EAB credential: %w", err)
	}
	return c, nil
}

// GetEABCredential reads a credential by kid, spent or not.
func (s *Store) GetEABCredential(ctx context.Context, kid string) (EABCredential, error) {
	var (
		c   EABCredential
		enc []byte
		acc sql.NullString
		org sql.NullString
	)
	err := s.db.QueryRowContext(ctx,
		`SELECT kid, reseller_id, hmac_key_enc, products, reference, expires_at, created_at, used_at, account_id, revoked_at,
		        organization_application_id
		 FROM acme_eab_credentials WHERE kid = $1`, kid).
		Scan(&c.KID, &c.ResellerID, &enc, pq.Array(&c.Products), &c.Reference, &c.ExpiresAt, &c.CreatedAt, &c.UsedAt, &acc, &c.RevokedAt, &org)
	if err != nil {
		return EABCredential{}, notFound(err, "EAB credential %s", kid)
	}
	c.AccountID, c.OrganizationFrom = acc.String, org.String
	key, err := s.open("acme_eab_credentials", "hmac_key_enc", kid, enc)
	if err != nil {
		return EABCredential{}, err
	}
	c.HMACKey = key
	return c, nil
}

// RevokeEABCredential revokes a reseller's credential and deactivates the
// account made with it, in one transaction, and returns the credential as
// it now is (without its key). Revoking a revoked credential changes
// nothing; another reseller's kid is ErrNotFound.
func (s *Store) RevokeEABCredential(ctx context.Context, resellerID, kid string) (EABCredential, error) {
	var (
		c   EABCredential
		acc sql.NullString
		org sql.NullString
	)
	err := s.inTx(ctx, func(tx *sqlxTx) error {
		err := tx.QueryRowContext(ctx,
			`UPDATE acme_eab_credentials SET revoked_at = COALESCE(revoked_at, now())
			 WHERE kid = $1 AND reseller_id = $2
			 RETURNING kid, reseller_id, products, reference, expires_at, created_at, used_at, account_id, revoked_at,
			           organization_application_id`,
			kid, resellerID).
			Scan(&c.KID, &c.ResellerID, pq.Array(&c.Products), &c.Reference, &c.ExpiresAt, &c.CreatedAt, &c.UsedAt, &acc, &c.RevokedAt, &org)
		if err != nil {
			return notFound(err, "EAB credential %s", kid)
		}
		if _, err := tx.ExecContext(ctx,
			`UPDATE acme_accounts SET status = 'deactivated' WHERE eab_kid = $1 AND status = 'valid'`, kid); err != nil {
			return fmt.Errorf("store: deactivate the account of EAB credential %s: %w", kid, err)
		}
		return nil
	})
	if err != nil {
		return EABCredential{}, err
	}
	c.AccountID, c.OrganizationFrom = acc.String, org.String
	return c, nil
}

// ACMEAccount is an ACME account; JWK is the public key as JSON.
type ACMEAccount struct {
	ID         string
	Thumbprint string
	JWK        []byte
	Status     string // valid, deactivated, revoked
	ResellerID string
	EABKID     string
	Contact    string // mailto: URLs joined by newlines; sealed at rest
	CreatedAt  time.Time
}

// CreateACMEAccount spends the EAB credential a.EABKID and creates the
// account in one transaction: if the credential is used, expired or revoked
// nothing is written and the error is ErrUsed; a key already bound to an
// account is ErrConflict. a.ID is chosen here if empty; ResellerID is taken
// from the credential.
func (s *Store) CreateACMEAccount(ctx context.Context, a ACMEAccount) (ACMEAccount, error) {
	if a.ID == "" {
		tok, err := randomToken(15)
		if err != nil {
			return ACMEAccount{}, err
		}
		a.ID = "acct_" + tok
	}
	contact, err := s.sealOpt("acme_accounts", "contact_enc", a.ID, a.Contact)
	if err != nil {
		return ACMEAccount{}, err
	}
	a.Status = "valid"
	err = s.inTx(ctx, func(tx *sqlxTx) error {
		err := tx.QueryRowContext(ctx,
			`UPDATE acme_eab_credentials SET used_at = now(), account_id = $2
			 WHERE kid = $1 AND used_at IS NULL AND revoked_at IS NULL
			   AND (expires_at IS NULL OR expires_at > now())
			 RETURNING reseller_id`, a.EABKID, a.ID).Scan(&a.ResellerID)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrUsed
		}
		if err != nil {
			return fmt.Errorf("store: spend EAB credential: %w", err)
		}
		err = tx.QueryRowContext(ctx,
			`INSERT INTO acme_accounts (id, thumbprint, jwk, status, reseller_id, eab_kid, contact_enc)
			 VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING created_at`,
			a.ID, a.Thumbprint, string(a.JWK), a.Status, a.ResellerID, a.EABKID, contact).Scan(&a.CreatedAt)
		var pe *pq.Error
		if errors.As(err, &pe) && pe.Code == "23505" {
			return ErrConflict
		}
		if err != nil {
			return fmt.Errorf("store: insert ACME account: %w", err)
		}
		return nil
	})
	if err != nil {
		return ACMEAccount{}, err
	}
	return a, nil
}

const acmeAccountCols = `id, thumbprint, jwk, status, reseller_id, eab_kid, contact_enc, created_at`

func (s *Store) scanACMEAccount(row *sql.Row, what string, arg string) (ACMEAccount, error) {
	var (
		a       ACMEAccount
		jwk     string
		contact []byte
	)
	if err := row.Scan(&a.ID, &a.Thumbprint, &jwk, &a.Status, &a.ResellerID, &a.EABKID, &contact, &a.CreatedAt); err != nil {
		return ACMEAccount{}, notFound(err, what, arg)
	}
	a.JWK = []byte(jwk)
	c, err := s.open("acme_accounts", "contact_enc", a.ID, contact)
	if err != nil {
		return ACMEAccount{}, err
	}
	a.Contact = string(c)
	return a, nil
}

// GetACMEAccount reads an account by id.
func (s *Store) GetACMEAccount(ctx context.Context, id string) (ACMEAccount, error) {
	return s.scanACMEAccount(s.db.QueryRowContext(ctx,
		`SELECT `+acmeAccountCols+` FROM acme_accounts WHERE id = $1`, id), "ACME account %s", id)
}

// ACMEAccountByThumbprint reads the account whose key has this thumbprint.
func (s *Store) ACMEAccountByThumbprint(ctx context.Context, thumbprint string) (ACMEAccount, error) {
	return s.scanACMEAccount(s.db.QueryRowContext(ctx,
		`SELECT `+acmeAccountCols+` FROM acme_accounts WHERE thumbprint = $1`, thumbprint), "ACME account with key %s", thumbprint)
}

// DeactivateACMEAccount sets a valid account to deactivated (RFC 8555
// §7.3.6). Deactivating a deactivated account is a no-op; anything else is
// ErrInvalidTransition.
func (s *Store) DeactivateACMEAccount(ctx context.Context, id string) error {
	var st string
	err := s.db.QueryRowContext(ctx,
		`UPDATE acme_accounts SET status = 'deactivated' WHERE id = $1 AND status IN ('valid', 'deactivated') RETURNING status`, id).Scan(&st)
	if errors.Is(err, sql.ErrNoRows) {
		if _, gerr := s.GetACMEAccount(ctx, id); gerr != nil {
			return gerr
		}
		return ErrInvalidTransition
	}
	if err != nil {
		return fmt.Errorf("store: deactivate ACME account %s: %w", id, err)
	}
	return nil
}

// RolloverACMEAccountKey replaces a valid account's key (RFC 8555 §7.3.5)
// if its current thumbprint is oldThumbprint; a new key already bound to
// another account is ErrConflict.
func (s *Store) RolloverACMEAccountKey(ctx context.Context, id, oldThumbprint, newThumbprint string, newJWK []byte) error {
	res, err := s.db.ExecContext(ctx,
		`UPDATE acme_accounts SET thumbprint = $3, jwk = $4 WHERE id = $1 AND thumbprint = $2 AND status = 'valid'`,
		id, oldThumbprint, newThumbprint, string(newJWK))
	var pe *pq.Error
	if errors.As(err, &pe) && pe.Code == "23505" {
		return ErrConflict
	}
	if err != nil {
		return fmt.Errorf("store: rollover ACME account key %s: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return ErrInvalidTransition
	}
	return nil
}
