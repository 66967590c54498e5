package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Subscriber is a subscriber (加入者) with its personal data decrypted.
type Subscriber struct {
	ID           string
	ResellerID   string
	Organization string
	Name         string
	Email        string
	Phone        string
	Address      string
	Country      string // ISO 3166-1 alpha-2, not personal on its own
	CreatedAt    time.Time
	UpdatedAt    time.Time
}

type subscriberRow struct {
	ID              string    `db:"id"`
	ResellerID      string    `db:"reseller_id"`
	OrganizationEnc []byte    `db:"organization_enc"`
	NameEnc         []byte    `db:"name_enc"`
	EmailEnc        []byte    `db:"email_enc"`
	PhoneEnc        []byte    `db:"phone_enc"`
	AddressEnc      []byte    `db:"address_enc"`
	Country         string    `db:"country"`
	CreatedAt       time.Time `db:"created_at"`
	UpdatedAt       time.Time `db:"updated_at"`
}

const subscriberCols = `id, reseller_id, organization_enc, name_enc, email_enc, phone_enc, address_enc, country, created_at, updated_at`

// UpsertSubscriber creates the subscriber or replaces its data, keyed by id.
// A subscriber belongs to one reseller for good: an id held by another
// reseller is ErrConflict.
func (s *Store) UpsertSubscriber(ctx context.Context, sub Subscriber) error {
	if s.bidx == nil {
		return ErrNoKeys
	}
	if sub.Email == "" {
		return fmt.Errorf("store: subscriber %s has no email address; notices and disclosure lookups need one", sub.ID)
	}
	w := s.sealer("subscribers", sub.ID)
	org := w.opt("organization_enc", sub.Organization)
	name := w.req("name_enc", []byte(sub.Name))
	email := w.req("email_enc", []byte(sub.Email))
	phone := w.opt("phone_enc", sub.Phone)
	addr := w.opt("address_enc", sub.Address)
	if w.err != nil {
		return w.err
	}
	var id string
	err := s.db.GetContext(ctx, &id, `
		INSERT INTO subscribers (id, reseller_id, organization_enc, name_enc, email_enc, phone_enc, address_enc,
			country, email_bidx, phone_bidx)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
		ON CONFLICT (id) DO UPDATE SET
			organization_enc = EXCLUDED.organization_enc, name_enc = EXCLUDED.name_enc,
			email_enc = EXCLUDED.email_enc, phone_enc = EXCLUDED.phone_enc, address_enc = EXCLUDED.address_enc,
			country = EXCLUDED.country, email_bidx = EXCLUDED.email_bidx, phone_bidx = EXCLUDED.phone_bidx,
			updated_at = now()
		WHERE subscribers.reseller_id = EXCLUDED.reseller_id
		RETURNING id`,
		sub.ID, sub.ResellerID, org, name, email, phone, addr, sub.Country,
		s.bidx.Email(sub.Email), s.bidx.Phone(sub.Phone))
	switch {
	case err == nil:
		return nil
	case errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("%w: subscriber %s belongs to another reseller", ErrConflict, sub.ID)
	case pqCode(err) == codeForeignKeyViolation:
		return fmt.Errorf("%w: reseller %s (create the reseller first)", ErrNotFound, sub.ResellerID)
	default:
		return fmt.Errorf("store: upsert subscriber %s: %w", sub.ID, err)
	}
}

// GetSubscriber reads a subscriber for internal use (workflows, disclosure).
func (s *Store) GetSubscriber(ctx context.Context, id string) (Subscriber, error) {
	var row subscriberRow
	if err := s.db.GetContext(ctx, &row, `SELECT `+subscriberCols+` FROM subscribers WHERE id = $1`, id); err != nil {
		return Subscriber{}, notFound(err, "subscriber %s", id)
	}
	return s.subscriberFromRow(row)
}

// GetSubscriberForReseller reads a subscriber only if resellerID manages it.
func (s *Store) GetSubscriberForReseller(ctx context.Context, id, resellerID string) (Subscriber, error) {
	var row subscriberRow
	err := s.db.GetContext(ctx, &row, `SELECT `+subscriberCols+` FROM subscribers WHERE id = $1 AND reseller_id = $2`, id, resellerID)
	if err != nil {
		return Subscriber{}, notFound(err, "subscriber %s", id)
	}
	return s.subscriberFromRow(row)
}

// FindSubscribersByEmail finds every subscriber record with this address
// (several resellers may hold the same person), through the blind index, so
// case and surrounding space do not matter.
func (s *Store) FindSubscribersByEmail(ctx context.Context, email string) ([]Subscriber, error) {
	if s.bidx == nil {
		return nil, ErrNoKeys
	}
	return s.findSubscribers(ctx, `email_bidx = $1`, s.bidx.Email(email))
}

// FindSubscribersByPhone finds subscribers by phone number (digits compared).
func (s *Store) FindSubscribersByPhone(ctx context.Context, phone string) ([]Subscriber, error) {
	if s.bidx == nil {
		return nil, ErrNoKeys
	}
	return s.findSubscribers(ctx, `phone_bidx = $1`, s.bidx.Phone(phone))
}

func (s *Store) findSubscribers(ctx context.Context, where string, idx []byte) ([]Subscriber, error) {
	if idx == nil {
		return nil, nil
	}
	var rows []subscriberRow
	if err := s.db.SelectContext(ctx, &rows, `SELECT `+subscriberCols+` FROM subscribers WHERE `+where+` ORDER BY id`, idx); err != nil {
		return nil, fmt.Errorf("store: find subscribers: %w", err)
	}
	out := make([]Subscriber, 0, len(rows))
	for _, r := range rows {
		sub, err := s.subscriberFromRow(r)
		if err != nil {
			return nil, err
		}
		out = append(out, sub)
	}
	return out, nil
}

func (s *Store) subscriberFromRow(r subscriberRow) (Subscriber, error) {
	o := s.opener("subscribers", r.ID)
	sub := Subscriber{
		ID: r.ID, ResellerID: r.ResellerID,
		Organization: o.str("organization_enc", r.OrganizationEnc),
		Name:         o.str("name_enc", r.NameEnc),
		Email:        o.str("email_enc", r.EmailEnc),
		Phone:        o.str("phone_enc", r.PhoneEnc),
		Address:      o.str("address_enc", r.AddressEnc),
		Country:      r.Country, CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt,
	}
	return sub, o.err
}
