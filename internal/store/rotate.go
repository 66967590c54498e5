package store

import (
	"context"
	"fmt"
	"strings"

	"certdesk/internal/pii"
)

// encryptedTable lists the encrypted columns of a table and its key column
// (the row id in the associated data). Every _enc column of schema/ must be
// here, or key rotation would leave it behind; a test checks this against
// the live schema.
type encryptedTable struct {
	table   string
	key     string
	columns []string
}

var encryptedTables = []encryptedTable{
	{"resellers", "id", []string{"contact_email_enc"}},
	{"subscribers", "id", []string{"organization_enc", "name_enc", "email_enc", "phone_enc", "address_enc"}},
	{"applications", "id", []string{"csr_enc"}},
	{"certificates", "serial", []string{"der_enc", "precert_der_enc"}},
	{"corrections", "id", []string{"old_values_enc", "new_values_enc"}},
	{"disclosure_requests", "id", []string{"name_enc", "email_enc", "phone_enc", "postal_address_enc"}},
	{"disclosure_packages", "id", []string{"json_enc", "html_enc"}},
	{"disclosure_drafts", "request_id", []string{"json_enc", "html_enc"}},
	{"inquiries", "id", []string{"contact_enc", "body_enc", "answer_enc"}},
	{"acme_eab_credentials", "kid", []string{"hmac_key_enc"}},
	{"acme_accounts", "id", []string{"contact_enc"}},
}

// rotateBatch is how many rows one rotation transaction rewrites: small
// enough that row locks are held briefly next to live traffic.
const rotateBatch = 500

// RotationReport counts what RotateKeys rewrote.
type RotationReport struct {
	Rows    int            // rows touched
	Values  int            // values re-encrypted
	ByTable map[string]int // values re-encrypted per "table.column"
}

// RotateKeys re-encrypts, under ring's current key, every encrypted value
// written under another key. Each batch of rows is locked, rewritten and
// committed in its own transaction, so it can run next to live traffic and
// be resumed after an interruption. ring must hold every key still in use.
//
// Procedure: (1) give every process the new ring (old keys first, the new
// key last) so new writes use the new key; (2) run RotateKeys; (3) check
// KeyIDCounts shows only the new id; (4) drop the old keys from the ring.
func (s *Store) RotateKeys(ctx context.Context, ring *pii.KeyRing) (RotationReport, error) {
	rep := RotationReport{ByTable: map[string]int{}}
	cur := ring.CurrentID()
	for _, t := range encryptedTables {
		stale := make([]string, len(t.columns))
		for i, c := range t.columns {
			stale[i] = fmt.Sprintf("(%s IS NOT NULL AND pii_key_id(%s) IS DISTINCT FROM $1)", c, c)
		}
		sel := fmt.Sprintf(`SELECT %s AS k, %s FROM %s WHERE %s > $2 AND (%s) ORDER BY %s LIMIT %d FOR UPDATE`,
			t.key, strings.Join(t.columns, ", "), t.table, t.key, strings.Join(stale, " OR "), t.key, rotateBatch)
		sets := make([]string, len(t.columns))
		for i, c := range t.columns {
			sets[i] = fmt.Sprintf("%s = $%d", c, i+2)
		}
		upd := fmt.Sprintf(`UPDATE %s SET %s WHERE %s = $1`, t.table, strings.Join(sets, ", "), t.key)

		after := ""
		for {
			n := 0
			err := s.inTx(ctx, func(tx *sqlxTx) error {
				rows, err := tx.QueryxContext(ctx, sel, cur, after)
				if err != nil {
					return fmt.Errorf("store: rotate %s: %w", t.table, err)
				}
				type pending struct {
					key  string
					vals []any
				}
				var todo []pending
				for rows.Next() {
					vals, err := rows.SliceScan()
					if err != nil {
						rows.Close()
						return fmt.Errorf("store: rotate %s: %w", t.table, err)
					}
					todo = append(todo, pending{key: asString(vals[0]), vals: vals[1:]})
				}
				if err := rows.Err(); err != nil {
					return fmt.Errorf("store: rotate %s: %w", t.table, err)
				}
				rows.Close()
				for _, p := range todo {
					args := []any{p.key}
					for i, c := range t.columns {
						ct, _ := p.vals[i].([]byte)
						if ct != nil && ring.NeedsRotation(ct) {
							pt, err := ring.Decrypt(ct, aad(t.table, c, p.key))
							if err != nil {
								return fmt.Errorf("store: rotate %s.%s of %s: %w", t.table, c, p.key, err)
							}
							if ct, err = ring.Encrypt(pt, aad(t.table, c, p.key)); err != nil {
								return err
							}
							rep.Values++
							rep.ByTable[t.table+"."+c]++
						}
						args = append(args, ct)
					}
					if _, err := tx.ExecContext(ctx, upd, args...); err != nil {
						return fmt.Errorf("store: rotate %s %s: %w", t.table, p.key, err)
					}
					after = p.key
				}
				n = len(todo)
				return nil
			})
			if err != nil {
				return rep, err
			}
			rep.Rows += n
			if n < rotateBatch {
				break
			}
		}
	}
	return rep, nil
}

// KeyIDCounts counts stored encrypted values per key id across every
// encrypted column ("" for a value not in the pii format, which should
// never appear). After RotateKeys it holds only the current id.
func (s *Store) KeyIDCounts(ctx context.Context) (map[string]int, error) {
	var parts []string
	for _, t := range encryptedTables {
		for _, c := range t.columns {
			parts = append(parts, fmt.Sprintf(`SELECT COALESCE(pii_key_id(%s), '') AS id FROM %s WHERE %s IS NOT NULL`, c, t.table, c))
		}
	}
	q := `SELECT id, count(*) AS n FROM (` + strings.Join(parts, " UNION ALL ") + `) v GROUP BY id`
	var rows []struct {
		ID string `db:"id"`
		N  int    `db:"n"`
	}
	if err := s.db.SelectContext(ctx, &rows, q); err != nil {
		return nil, fmt.Errorf("store: count key ids: %w", err)
	}
	out := make(map[string]int, len(rows))
	for _, r := range rows {
		out[r.ID] = r.N
	}
	return out, nil
}

func asString(v any) string {
	if b, ok := v.([]byte); ok {
		return string(b)
	}
	return fmt.Sprint(v)
}
