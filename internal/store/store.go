// Package store is CertDesk's PostgreSQL side: one repository type, Store,
// with explicit SQL (sqlx + lib/pq, no ORM) for every table of schema/.
//
// Rules every method follows:
//   - Each call takes a context; a write touching more than one row runs in
//     one transaction.
//   - Every write an activity makes is idempotent: ids are chosen by the
//     caller (workflow business ids) and inserts use ON CONFLICT on the
//     natural key, so a retried activity neither fails nor duplicates.
//     A retry with the same id but different owner data is ErrConflict.
//   - Personal data is encrypted before it reaches SQL (internal/pii) with
//     associated data "table.column|row id"; equality lookups go through
//     blind indexes. Reads decrypt.
//   - Reseller-facing reads take the reseller id and filter on it in SQL;
//     another reseller's row is ErrNotFound, never a different error.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"certdesk/internal/pii"
)

// Store is the repository over one connection pool. It is safe for
// concurrent use.
type Store struct {
	db   *sqlx.DB
	keys *pii.KeyRing
	bidx *pii.BlindIndex

	audit auditQueue // AppendAudit's in-process combining queue
}

// New returns a Store. keys and bidx may be nil for processes that touch no
// personal data (a CRL or OCSP publisher); methods that need them then fail
// with an error saying so.
func New(db *sqlx.DB, keys *pii.KeyRing, bidx *pii.BlindIndex) *Store {
	return &Store{db: db, keys: keys, bidx: bidx}
}

// DB is the underlying pool, for health checks and tests.
func (s *Store) DB() *sqlx.DB { return s.db }

var (
	// ErrNotFound: no such row, or it belongs to another reseller.
	ErrNotFound = errors.New("store: not found")
	// ErrConflict: the id is taken by a row with different owner data; the
	// caller must choose another id or read the existing row.
	ErrConflict = errors.New("store: conflicts with an existing row")
	// ErrInvalidTransition: a status change the case's state machine forbids.
	ErrInvalidTransition = errors.New("store: status transition not allowed")
	// ErrNoKeys: the Store was built without the key ring or blind index.
	ErrNoKeys = errors.New("store: this Store has no PII key ring or blind index key; construct it with both to read or write personal data")
)

// sqlxTx shortens signatures.
type sqlxTx = sqlx.Tx

// inTx runs fn in a READ COMMITTED transaction and commits if fn returns nil.
func (s *Store) inTx(ctx context.Context, fn func(tx *sqlx.Tx) error) error {
	tx, err := s.db.BeginTxx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: begin transaction: %w", err)
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: commit: %w", err)
	}
	return nil
}

// aad binds a ciphertext to the column and row it was written for.
func aad(table, column, id string) []byte {
	return []byte(table + "." + column + "|" + id)
}

// seal encrypts a required value.
func (s *Store) seal(table, column, id string, plaintext []byte) ([]byte, error) {
	if s.keys == nil {
		return nil, ErrNoKeys
	}
	ct, err := s.keys.Encrypt(plaintext, aad(table, column, id))
	if err != nil {
		return nil, fmt.Errorf("store: encrypt %s.%s: %w", table, column, err)
	}
	return ct, nil
}

// sealOpt encrypts an optional string; the empty string is stored as NULL.
func (s *Store) sealOpt(table, column, id, v string) ([]byte, error) {
	if v == "" {
		return nil, nil
	}
	return s.seal(table, column, id, []byte(v))
}

// open decrypts a value read from table.column of row id; NULL gives nil.
func (s *Store) open(table, column, id string, ct []byte) ([]byte, error) {
	if ct == nil {
		return nil, nil
	}
	if s.keys == nil {
		return nil, ErrNoKeys
	}
	pt, err := s.keys.Decrypt(ct, aad(table, column, id))
	if err != nil {
		return nil, fmt.Errorf("store: decrypt %s.%s of %s: %w", table, column, id, err)
	}
	return pt, nil
}

// opener decrypts several columns of one row, keeping the first error.
type opener struct {
	s     *Store
	table string
	id    string
	err   error
}

func (s *Store) opener(table, id string) *opener { return &opener{s: s, table: table, id: id} }

func (o *opener) str(column string, ct []byte) string { return string(o.bytes(column, ct)) }

func (o *opener) bytes(column string, ct []byte) []byte {
	if o.err != nil {
		return nil
	}
	pt, err := o.s.open(o.table, column, o.id, ct)
	if err != nil {
		o.err = err
	}
	return pt
}

// sealer encrypts several columns of one row, keeping the first error.
type sealer struct {
	s     *Store
	table string
	id    string
	err   error
}

func (s *Store) sealer(table, id string) *sealer { return &sealer{s: s, table: table, id: id} }

func (w *sealer) req(column string, pt []byte) []byte {
	if w.err != nil {
		return nil
	}
	ct, err := w.s.seal(w.table, column, w.id, pt)
	if err != nil {
		w.err = err
	}
	return ct
}

func (w *sealer) opt(column, v string) []byte {
	if v == "" {
		return nil
	}
	return w.req(column, []byte(v))
}

// notFound turns sql.ErrNoRows into ErrNotFound naming what was sought.
func notFound(err error, what string, args ...any) error {
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("%w: "+what, append([]any{ErrNotFound}, args...)...)
	}
	return fmt.Errorf("store: "+what+": %w", append(args, err)...)
}

// pqCode is the SQLSTATE of a PostgreSQL error, or "".
func pqCode(err error) string {
	var pe *pq.Error
	if errors.As(err, &pe) {
		return string(pe.Code)
	}
	return ""
}

const (
	codeUniqueViolation     = "23505"
	codeForeignKeyViolation = "23503"
	codeCheckViolation      = "23514"
)

// NormalizeSerial returns the canonical form of a certificate serial: lower
// case hex of the integer without leading zeros (what big.Int.Text(16)
// gives), accepting upper case, colons and leading zeros.
func NormalizeSerial(s string) string {
	s = strings.ToLower(strings.ReplaceAll(strings.TrimSpace(s), ":", ""))
	s = strings.TrimPrefix(s, "0x")
	t := strings.TrimLeft(s, "0")
	if t == "" && s != "" {
		return "0"
	}
	return t
}

func normalizeSerials(in []string) []string {
	out := make([]string, len(in))
	for i, s := range in {
		out[i] = NormalizeSerial(s)
	}
	return out
}

// nullStr maps "" to NULL for optional text columns.
func nullStr(s string) sql.NullString { return sql.NullString{String: s, Valid: s != ""} }

// oneRow checks an UPDATE touched a row; none is ErrNotFound naming what.
func oneRow(res sql.Result, err error, what string, args ...any) error {
	if err != nil {
		return fmt.Errorf("store: "+what+": %w", append(args, err)...)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("store: "+what+": %w", append(args, err)...)
	}
	if n == 0 {
		return fmt.Errorf("%w: "+what, append([]any{ErrNotFound}, args...)...)
	}
	return nil
}

// notFoundOrNil is notFound for a possibly nil error.
func notFoundOrNil(err error, what string, args ...any) error {
	if err == nil {
		return nil
	}
	return notFound(err, what, args...)
}

// uniqueSerials normalises and de-duplicates, keeping the first order.
func uniqueSerials(in []string) []string {
	seen := make(map[string]bool, len(in))
	out := make([]string, 0, len(in))
	for _, s := range in {
		s = NormalizeSerial(s)
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

// prefixCols qualifies a comma-separated column list with a table alias.
func prefixCols(prefix, cols string) string {
	parts := strings.Split(cols, ",")
	for i, p := range parts {
		parts[i] = prefix + strings.TrimSpace(p)
	}
	return strings.Join(parts, ", ")
}

// stringArray passes a Go slice as a PostgreSQL text[] (never NULL).
func stringArray(v []string) pq.StringArray {
	if v == nil {
		return pq.StringArray{}
	}
	return pq.StringArray(v)
}
