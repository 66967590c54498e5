package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/lib/pq"
)

// UrgentRenewalWindow is the length of the ARI window SetRenewalWindowNow
// sets: it starts when it is set, so a client polling renewalInfo renews at
// once.
const UrgentRenewalWindow = time.Hour

// SetRenewalWindowNow moves the ARI suggested renewal window (RFC 9773) of
// the certificates issued through ACME among serials (any case, colons or
// leading zeros are normalised) to [now, now+UrgentRenewalWindow], for a
// mass revocation to announce itself before it lands. Serials not issued
// through ACME are skipped. It returns how many certificates got the new
// window; setting it again moves it to the new now.
func (s *Store) SetRenewalWindowNow(ctx context.Context, serials []string) (int64, error) {
	res, err := s.db.ExecContext(ctx, `
		INSERT INTO acme_renewal_windows (serial, window_start, window_end, set_at)
		SELECT DISTINCT cert_serial, now(), now() + $2 * interval '1 second', now()
		FROM acme_orders WHERE cert_serial = ANY($1) AND cert_serial <> ''
		ON CONFLICT (serial) DO UPDATE SET window_start = EXCLUDED.window_start,
		    window_end = EXCLUDED.window_end, set_at = EXCLUDED.set_at`,
		pq.Array(normalizeSerials(serials)), UrgentRenewalWindow.Seconds())
	if err != nil {
		return 0, fmt.Errorf("store: set ARI renewal windows: %w", err)
	}
	return res.RowsAffected()
}

// RenewalWindow returns the overridden ARI window of a certificate; ok is
// false when there is none (the default window applies).
func (s *Store) RenewalWindow(ctx context.Context, serial string) (start, end time.Time, ok bool, err error) {
	err = s.db.QueryRowContext(ctx,
		`SELECT window_start, window_end FROM acme_renewal_windows WHERE serial = $1`, NormalizeSerial(serial)).
		Scan(&start, &end)
	if errors.Is(err, sql.ErrNoRows) {
		return time.Time{}, time.Time{}, false, nil
	}
	if err != nil {
		return time.Time{}, time.Time{}, false, fmt.Errorf("store: read ARI renewal window: %w", err)
	}
	return start, end, true, nil
}

// CountACMEReplaced counts the certificates among serials that a valid
// ACME order has replaced (newOrder "replaces", RFC 9773 §5): how many
// clients renewed, for the progress of a mass revocation.
func (s *Store) CountACMEReplaced(ctx context.Context, serials []string) (int64, error) {
	var n int64
	err := s.db.QueryRowContext(ctx,
		`SELECT count(DISTINCT replaces) FROM acme_orders WHERE status = 'valid' AND replaces = ANY($1)`,
		pq.Array(normalizeSerials(serials))).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("store: count replaced ACME certificates: %w", err)
	}
	return n, nil
}
