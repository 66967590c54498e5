package store

import (
	"context"
	"encoding/hex"
	"fmt"
	"time"
)

// NoticeRecipient is one address that receives a policy notice: the first
// subscriber record (by id) holding that address and a certificate valid at
// the time asked.
type NoticeRecipient struct {
	EmailIndex   string // hex of the email blind index: the keyset cursor and the notice key
	SubscriberID string
	Email        string
	Organization string
}

// ListNoticeRecipients pages, in blind-index order after the cursor ("" to
// start), through the distinct addresses of subscribers with a certificate
// valid at validAt (O10). One row per address, so a person with several
// subscriber records (one per application) is written to once.
func (s *Store) ListNoticeRecipients(ctx context.Context, validAt time.Time, afterIndex string, limit int) ([]NoticeRecipient, error) {
	if limit <= 0 {
		return nil, fmt.Errorf("store: limit must be positive")
	}
	after, err := hex.DecodeString(afterIndex)
	if err != nil {
		return nil, fmt.Errorf("store: notice cursor %q is not hex", afterIndex)
	}
	var rows []struct {
		EmailBidx       []byte `db:"email_bidx"`
		ID              string `db:"id"`
		EmailEnc        []byte `db:"email_enc"`
		OrganizationEnc []byte `db:"organization_enc"`
	}
	err = s.db.SelectContext(ctx, &rows, `
		SELECT DISTINCT ON (s.email_bidx) s.email_bidx, s.id, s.email_enc, s.organization_enc
		FROM subscribers s
		WHERE s.email_bidx > $1
		  AND EXISTS (SELECT 1 FROM certificates c
		              WHERE c.subscriber_id = s.id AND c.status = 'valid' AND c.not_after > $2)
		ORDER BY s.email_bidx, s.id
		LIMIT $3`, after, validAt, limit)
	if err != nil {
		return nil, fmt.Errorf("store: list notice recipients: %w", err)
	}
	out := make([]NoticeRecipient, 0, len(rows))
	for _, r := range rows {
		o := s.opener("subscribers", r.ID)
		n := NoticeRecipient{EmailIndex: hex.EncodeToString(r.EmailBidx), SubscriberID: r.ID,
			Email: o.str("email_enc", r.EmailEnc), Organization: o.str("organization_enc", r.OrganizationEnc)}
		if o.err != nil {
			return nil, o.err
		}
		out = append(out, n)
	}
	return out, nil
}
