package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/lib/pq"
)

// ACMEIdentifier is an order identifier (RFC 8555 §9.7.7; "dns" only).
type ACMEIdentifier struct {
	Type  string `json:"type"`
	Value string `json:"value"`
}

// ACMEOrder is an ACME order with its authorizations' ids.
type ACMEOrder struct {
	ID          string
	AccountID   string
	Status      string
	Profile     string
	Identifiers []ACMEIdentifier
	ExpiresAt   time.Time
	BackendRef  string
	CertPEM     string
	CertSerial  string
	Error       json.RawMessage // problem document when invalid
	AuthzIDs    []string
	// Replaces is the serial (hex) of the certificate this order renews
	// (RFC 9773 §5); empty if none.
	Replaces string
}

// ACMEAuthz is an authorization with its challenges.
type ACMEAuthz struct {
	ID         string
	OrderID    string
	AccountID  string
	Identifier ACMEIdentifier
	Wildcard   bool
	Status     string
	ExpiresAt  time.Time
	Challenges []ACMEChallenge
}

// ACMEChallenge is one challenge of an authorization.
type ACMEChallenge struct {
	ID          string
	AuthzID     string
	Type        string
	Token       string
	Status      string
	ValidatedAt *time.Time
	Error       json.RawMessage
}

func newID(prefix string) (string, error) {
	t, err := randomToken(15)
	if err != nil {
		return "", err
	}
	return prefix + t, nil
}

// CreateACMEOrder writes an order and one pending authorization per
// identifier, each with the given challenge types, in one transaction. Ids
// and tokens are chosen here. An order replacing a certificate another
// order (not invalid) already replaces is ErrConflict and writes nothing.
func (s *Store) CreateACMEOrder(ctx context.Context, o ACMEOrder, challengeTypes []string, authzTTL time.Duration) (ACMEOrder, error) {
	var err error
	if o.ID, err = newID("ord_"); err != nil {
		return ACMEOrder{}, err
	}
	o.Status = "pending"
	ids, _ := json.Marshal(o.Identifiers)
	err = s.inTx(ctx, func(tx *sqlxTx) error {
		if _, err := tx.ExecContext(ctx,
			`INSERT INTO acme_orders (id, account_id, status, profile, identifiers, expires_at, backend_ref, replaces)
			 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
			o.ID, o.AccountID, o.Status, o.Profile, string(ids), o.ExpiresAt, o.BackendRef, o.Replaces); err != nil {
			var pe *pq.Error
			if errors.As(err, &pe) && pe.Code == "23505" {
				return ErrConflict
			}
			return fmt.Errorf("store: insert ACME order: %w", err)
		}
		o.AuthzIDs = nil
		for _, id := range o.Identifiers {
			az, err := newID("authz_")
			if err != nil {
				return err
			}
			value, wildcard := id.Value, false
			if len(value) > 2 && value[:2] == "*." {
				value, wildcard = value[2:], true
			}
			if _, err := tx.ExecContext(ctx,
				`INSERT INTO acme_authorizations (id, order_id, account_id, id_type, id_value, wildcard, status, expires_at)
				 VALUES ($1, $2, $3, $4, $5, $6, 'pending', now() + $7 * interval '1 second')`,
				az, o.ID, o.AccountID, id.Type, value, wildcard, authzTTL.Seconds()); err != nil {
				return fmt.Errorf("store: insert ACME authorization: %w", err)
			}
			for _, typ := range challengeTypes {
				if wildcard && typ != "dns-01" {
					continue // RFC 8555 §7.1.3: wildcards only by dns-01
				}
				cid, err := newID("chall_")
				if err != nil {
					return err
				}
				tok, err := randomToken(32)
				if err != nil {
					return err
				}
				if _, err := tx.ExecContext(ctx,
					`INSERT INTO acme_challenges (id, authz_id, type, token, status) VALUES ($1, $2, $3, $4, 'pending')`,
					cid, az, typ, tok); err != nil {
					return fmt.Errorf("store: insert ACME challenge: %w", err)
				}
			}
			o.AuthzIDs = append(o.AuthzIDs, az)
		}
		return nil
	})
	if err != nil {
		return ACMEOrder{}, err
	}
	return o, nil
}

// GetACMEOrder reads an order of one account; another account's order is
// ErrNotFound.
func (s *Store) GetACMEOrder(ctx context.Context, accountID, id string) (ACMEOrder, error) {
	var (
		o       ACMEOrder
		ids     string
		errJSON sql.NullString
	)
	err := s.db.QueryRowContext(ctx,
		`SELECT id, account_id, status, profile, identifiers, expires_at, backend_ref, cert_pem, cert_serial, error, replaces
		 FROM acme_orders WHERE id = $1 AND account_id = $2`, id, accountID).
		Scan(&o.ID, &o.AccountID, &o.Status, &o.Profile, &ids, &o.ExpiresAt, &o.BackendRef, &o.CertPEM, &o.CertSerial, &errJSON, &o.Replaces)
	if err != nil {
		return ACMEOrder{}, notFound(err, "ACME order %s", id)
	}
	_ = json.Unmarshal([]byte(ids), &o.Identifiers)
	if errJSON.Valid {
		o.Error = json.RawMessage(errJSON.String)
	}
	if err := s.db.SelectContext(ctx, &o.AuthzIDs,
		`SELECT id FROM acme_authorizations WHERE order_id = $1 ORDER BY id_value, id`, id); err != nil {
		return ACMEOrder{}, fmt.Errorf("store: read authorizations of %s: %w", id, err)
	}
	return o, nil
}

// GetACMEAuthz reads an authorization of one account with its challenges.
func (s *Store) GetACMEAuthz(ctx context.Context, accountID, id string) (ACMEAuthz, error) {
	var a ACMEAuthz
	err := s.db.QueryRowContext(ctx,
		`SELECT id, order_id, account_id, id_type, id_value, wildcard, status, expires_at
		 FROM acme_authorizations WHERE id = $1 AND account_id = $2`, id, accountID).
		Scan(&a.ID, &a.OrderID, &a.AccountID, &a.Identifier.Type, &a.Identifier.Value, &a.Wildcard, &a.Status, &a.ExpiresAt)
	if err != nil {
		return ACMEAuthz{}, notFound(err, "ACME authorization %s", id)
	}
	rows, err := s.db.QueryContext(ctx,
		`SELECT id, authz_id, type, token, status, validated_at, error FROM acme_challenges WHERE authz_id = $1 ORDER BY type`, id)
	if err != nil {
		return ACMEAuthz{}, fmt.Errorf("store: read challenges of %s: %w", id, err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			c ACMEChallenge
			e sql.NullString
		)
		if err := rows.Scan(&c.ID, &c.AuthzID, &c.Type, &c.Token, &c.Status, &c.ValidatedAt, &e); err != nil {
			return ACMEAuthz{}, fmt.Errorf("store: scan challenge: %w", err)
		}
		if e.Valid {
			c.Error = json.RawMessage(e.String)
		}
		a.Challenges = append(a.Challenges, c)
	}
	return a, rows.Err()
}

// ACMEChallengeOwner finds the authorization id of a challenge of one
// account.
func (s *Store) ACMEChallengeOwner(ctx context.Context, accountID, challengeID string) (string, error) {
	var az string
	err := s.db.QueryRowContext(ctx,
		`SELECT c.authz_id FROM acme_challenges c JOIN acme_authorizations a ON a.id = c.authz_id
		 WHERE c.id = $1 AND a.account_id = $2`, challengeID, accountID).Scan(&az)
	if err != nil {
		return "", notFound(err, "ACME challenge %s", challengeID)
	}
	return az, nil
}

// StartACMEChallenge moves a pending challenge to processing; false if it
// was not pending (a repeated POST), so only one caller validates.
func (s *Store) StartACMEChallenge(ctx context.Context, challengeID string) (bool, error) {
	res, err := s.db.ExecContext(ctx,
		`UPDATE acme_challenges SET status = 'processing' WHERE id = $1 AND status = 'pending'`, challengeID)
	if err != nil {
		return false, fmt.Errorf("store: start ACME challenge: %w", err)
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}

// ResetACMEChallenge moves a processing challenge back to pending, when the
// backend could not take it (the client may respond again).
func (s *Store) ResetACMEChallenge(ctx context.Context, challengeID string) error {
	if _, err := s.db.ExecContext(ctx,
		`UPDATE acme_challenges SET status = 'pending' WHERE id = $1 AND status = 'processing'`, challengeID); err != nil {
		return fmt.Errorf("store: reset ACME challenge: %w", err)
	}
	return nil
}

// ResetACMEFinalize moves a processing order back to ready, when the
// backend could not take the finalize (the client may finalize again).
func (s *Store) ResetACMEFinalize(ctx context.Context, orderID string) error {
	if _, err := s.db.ExecContext(ctx,
		`UPDATE acme_orders SET status = 'ready' WHERE id = $1 AND status = 'processing'`, orderID); err != nil {
		return fmt.Errorf("store: reset ACME finalize: %w", err)
	}
	return nil
}

// FinishACMEChallenge records a validation result: the challenge and its
// authorization become valid (other challenges of it stay as they are) or
// invalid with problem; an order whose authorizations are all valid becomes
// ready, one with an invalid authorization invalid. One transaction.
func (s *Store) FinishACMEChallenge(ctx context.Context, challengeID string, problem json.RawMessage) error {
	return s.inTx(ctx, func(tx *sqlxTx) error {
		var az, order string
		if err := tx.QueryRowContext(ctx,
			`SELECT c.authz_id, a.order_id FROM acme_challenges c JOIN acme_authorizations a ON a.id = c.authz_id
			 WHERE c.id = $1 FOR UPDATE OF a`, challengeID).Scan(&az, &order); err != nil {
			return notFound(err, "ACME challenge %s", challengeID)
		}
		status, errArg := "valid", sql.NullString{}
		if problem != nil {
			status, errArg = "invalid", sql.NullString{String: string(problem), Valid: true}
		}
		if _, err := tx.ExecContext(ctx,
			`UPDATE acme_challenges SET status = $2, error = $3, validated_at = CASE WHEN $2 = 'valid' THEN now() END WHERE id = $1`,
			challengeID, status, errArg); err != nil {
			return fmt.Errorf("store: finish ACME challenge: %w", err)
		}
		if _, err := tx.ExecContext(ctx,
			`UPDATE acme_authorizations SET status = $2 WHERE id = $1 AND status = 'pending'`, az, status); err != nil {
			return fmt.Errorf("store: finish ACME authorization: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `
			UPDATE acme_orders o SET status = CASE
			    WHEN EXISTS (SELECT 1 FROM acme_authorizations WHERE order_id = o.id AND status NOT IN ('pending', 'valid')) THEN 'invalid'
			    WHEN NOT EXISTS (SELECT 1 FROM acme_authorizations WHERE order_id = o.id AND status <> 'valid') THEN 'ready'
			    ELSE 'pending' END
			WHERE o.id = $1 AND o.status = 'pending'`, order); err != nil {
			return fmt.Errorf("store: update ACME order: %w", err)
		}
		return nil
	})
}

// ErrNotReady: finalize on an order that is not ready.
var ErrNotReady = errors.New("store: ACME order is not ready")

// StartACMEFinalize moves a ready order to processing (one caller wins);
// ErrNotReady otherwise.
func (s *Store) StartACMEFinalize(ctx context.Context, accountID, orderID string) error {
	res, err := s.db.ExecContext(ctx,
		`UPDATE acme_orders SET status = 'processing' WHERE id = $1 AND account_id = $2 AND status = 'ready'`, orderID, accountID)
	if err != nil {
		return fmt.Errorf("store: start ACME finalize: %w", err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return ErrNotReady
	}
	return nil
}

// FinishACMEOrder records the outcome of a processing order: the
// certificate chain and serial (valid) or a problem (invalid).
func (s *Store) FinishACMEOrder(ctx context.Context, orderID, certPEM, serialHex string, problem json.RawMessage) error {
	status, errArg := "valid", sql.NullString{}
	if problem != nil {
		status, errArg = "invalid", sql.NullString{String: string(problem), Valid: true}
	}
	res, err := s.db.ExecContext(ctx,
		`UPDATE acme_orders SET status = $2, cert_pem = $3, cert_serial = $4, error = $5 WHERE id = $1 AND status = 'processing'`,
		orderID, status, certPEM, serialHex, errArg)
	if err != nil {
		return fmt.Errorf("store: finish ACME order: %w", err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return ErrInvalidTransition
	}
	return nil
}

// ACMEOrderBySerial finds the order that issued a certificate (serial in
// lower-case hex), of any account.
func (s *Store) ACMEOrderBySerial(ctx context.Context, serialHex string) (ACMEOrder, error) {
	var acct, id string
	if err := s.db.QueryRowContext(ctx,
		`SELECT account_id, id FROM acme_orders WHERE cert_serial = $1`, serialHex).Scan(&acct, &id); err != nil {
		return ACMEOrder{}, notFound(err, "ACME certificate %s", serialHex)
	}
	return s.GetACMEOrder(ctx, acct, id)
}
