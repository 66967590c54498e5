package store

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/lib/pq"
)

// AuditCheckpoint is a signed statement "the audit chain had Count rows and
// its row Seq hashed to Hash". The chain alone can be cut at the end or
// rebuilt by whoever owns the table (every hash is recomputable); a
// checkpoint signed with a key kept with the CA keys, not in the database,
// cannot be forged, so verify-audit detects both against it. Because each
// row's hash covers every row before it, one valid checkpoint protects the
// whole chain up to its row; older checkpoints only narrow down where a
// rebuild started.
type AuditCheckpoint struct {
	// Number counts checkpoints from 1; it is signed, so "checkpoint N"
	// means the same in the table, in the file and in reports.
	Number    int64     `json:"number"`
	Seq       int64     `json:"seq"`
	Hash      []byte    `json:"hash"`
	Count     int64     `json:"count"`
	SignedAt  time.Time `json:"signed_at"`
	KeyID     string    `json:"key_id"` // hex SHA-256 of the signing key's SubjectPublicKeyInfo
	Signature []byte    `json:"signature"`
}

// ErrAuditTampered marks a chain that no longer matches a signed checkpoint
// or no longer links: signing a new checkpoint over it would launder the
// change, so the signer refuses.
var ErrAuditTampered = errors.New("audit log tampered")

// Files in the CA directory (CERTDESK_CA_DIR), outside the database.
const (
	// AuditCheckpointFile holds the newest signed checkpoint, so deleting
	// the audit_checkpoints rows is detected too.
	AuditCheckpointFile = "audit-checkpoint.json"
	// AuditCheckpointPublicKeyFile is the PEM public key verify-audit
	// checks signatures with (never read from the database).
	AuditCheckpointPublicKeyFile = "audit-checkpoint.pub.pem"
)

// auditCheckpointDomain separates these signatures from anything else the
// key could ever be asked to sign.
const auditCheckpointDomain = "certdesk audit checkpoint v1\n"

func (c AuditCheckpoint) signedBytes() []byte {
	b, _ := json.Marshal(struct {
		Number   int64  `json:"number"`
		Seq      int64  `json:"seq"`
		Hash     string `json:"hash"`
		Count    int64  `json:"count"`
		SignedAt string `json:"signed_at"`
		KeyID    string `json:"key_id"`
	}{c.Number, c.Seq, hex.EncodeToString(c.Hash), c.Count, auditTime(c.SignedAt), c.KeyID})
	return append([]byte(auditCheckpointDomain), b...)
}

// AuditCheckpointKeyID names a checkpoint key: the hex SHA-256 of its DER
// SubjectPublicKeyInfo.
func AuditCheckpointKeyID(pub crypto.PublicKey) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", fmt.Errorf("store: audit checkpoint key: %w", err)
	}
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:]), nil
}

func checkpointPublicKey(pub crypto.PublicKey) (*ecdsa.PublicKey, error) {
	ec, ok := pub.(*ecdsa.PublicKey)
	if !ok || ec.Curve != elliptic.P256() {
		return nil, fmt.Errorf("store: audit checkpoint keys are ECDSA P-256, not %T", pub)
	}
	return ec, nil
}

// SignAuditCheckpoint signs c (its Number, Seq, Hash, Count and SignedAt)
// with an ECDSA P-256 key, a file key or one on a PKCS#11 token.
func SignAuditCheckpoint(key crypto.Signer, c AuditCheckpoint) (AuditCheckpoint, error) {
	if _, err := checkpointPublicKey(key.Public()); err != nil {
		return AuditCheckpoint{}, err
	}
	if c.Number < 1 || c.Seq < 1 || len(c.Hash) != sha256.Size || c.SignedAt.IsZero() {
		return AuditCheckpoint{}, fmt.Errorf("store: incomplete audit checkpoint %+v", c)
	}
	id, err := AuditCheckpointKeyID(key.Public())
	if err != nil {
		return AuditCheckpoint{}, err
	}
	c.SignedAt = c.SignedAt.UTC().Truncate(time.Microsecond)
	c.KeyID = id
	digest := sha256.Sum256(c.signedBytes())
	if c.Signature, err = key.Sign(rand.Reader, digest[:], crypto.SHA256); err != nil {
		return AuditCheckpoint{}, fmt.Errorf("store: sign audit checkpoint: %w", err)
	}
	// A token that returns another signature encoding fails here, not
	// later in verify-audit.
	if err := c.Verify(key.Public()); err != nil {
		return AuditCheckpoint{}, err
	}
	return c, nil
}

// Verify checks c's signature with pub, which must come from outside the
// database (the CA directory).
func (c AuditCheckpoint) Verify(pub crypto.PublicKey) error {
	ec, err := checkpointPublicKey(pub)
	if err != nil {
		return err
	}
	id, err := AuditCheckpointKeyID(pub)
	if err != nil {
		return err
	}
	if c.KeyID != id {
		return fmt.Errorf("audit checkpoint %d is signed by key %.16s…, not the checkpoint key %.16s…", c.Number, c.KeyID, id)
	}
	digest := sha256.Sum256(c.signedBytes())
	if !ecdsa.VerifyASN1(ec, digest[:], c.Signature) {
		return fmt.Errorf("audit checkpoint %d has a bad signature: it was forged or altered", c.Number)
	}
	return nil
}

func (c AuditCheckpoint) String() string {
	return fmt.Sprintf("checkpoint %d (signed %s)", c.Number, c.SignedAt.UTC().Format(time.RFC3339))
}

func tailCut(c AuditCheckpoint) string {
	return fmt.Sprintf("audit tail cut: %s names row %d which no longer exists", c, c.Seq)
}

func rebuilt(c AuditCheckpoint) string {
	return fmt.Sprintf("audit chain rebuilt: row %d hash differs from the signed %s", c.Seq, c)
}

// SaveAuditCheckpoint stores a signed checkpoint. Saving the same one again
// is a no-op; another checkpoint under its number or row (a concurrent
// signer) is an error, and the retried signer starts from the stored one.
func (s *Store) SaveAuditCheckpoint(ctx context.Context, c AuditCheckpoint) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO audit_checkpoints (number, seq, hash, count, signed_at, key_id, signature)
		VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING`,
		c.Number, c.Seq, c.Hash, c.Count, c.SignedAt, c.KeyID, c.Signature)
	if err != nil {
		return fmt.Errorf("store: save audit checkpoint: %w", err)
	}
	var got []AuditCheckpoint
	if err := s.db.SelectContext(ctx, &got, `SELECT `+checkpointCols+` FROM audit_checkpoints WHERE number = $1`, c.Number); err != nil {
		return fmt.Errorf("store: read audit checkpoint: %w", err)
	}
	if len(got) == 0 || got[0].Seq != c.Seq || !bytes.Equal(got[0].Hash, c.Hash) || !bytes.Equal(got[0].Signature, c.Signature) {
		return fmt.Errorf("store: audit checkpoint %d or row %d is already checkpointed otherwise (a concurrent signer)", c.Number, c.Seq)
	}
	return nil
}

const checkpointCols = `number AS "number", seq AS "seq", hash AS "hash", count AS "count", signed_at AS "signedat", key_id AS "keyid", signature AS "signature"`

// ListAuditCheckpoints returns every stored checkpoint, oldest first,
// without checking signatures.
func (s *Store) ListAuditCheckpoints(ctx context.Context) ([]AuditCheckpoint, error) {
	var out []AuditCheckpoint
	if err := s.db.SelectContext(ctx, &out, `SELECT `+checkpointCols+` FROM audit_checkpoints ORDER BY number`); err != nil {
		return nil, fmt.Errorf("store: list audit checkpoints: %w", err)
	}
	for i := range out {
		out[i].SignedAt = out[i].SignedAt.UTC()
	}
	return out, nil
}

// auditRowsAt returns the hash of each of seqs still in the log.
func (s *Store) auditRowsAt(ctx context.Context, seqs []int64) (map[int64][]byte, error) {
	var rows []struct {
		Seq  int64  `db:"seq"`
		Hash []byte `db:"hash"`
	}
	if err := s.db.SelectContext(ctx, &rows, `SELECT seq, hash FROM audit_events WHERE seq = ANY($1)`, pq.Int64Array(seqs)); err != nil {
		return nil, fmt.Errorf("store: read checkpointed audit rows: %w", err)
	}
	out := make(map[int64][]byte, len(rows))
	for _, r := range rows {
		out[r.Seq] = r.Hash
	}
	return out, nil
}

// NextAuditCheckpoint returns the unsigned checkpoint of the current head,
// numbered after from, once it has checked that the chain still holds
// from's row with its hash and links and hashes from there to the head
// (only the rows since from are read). from nil starts at the genesis. A
// chain that fails is an ErrAuditTampered naming the problem. When nothing
// was appended since from, the result has from's Seq.
func (s *Store) NextAuditCheckpoint(ctx context.Context, from *AuditCheckpoint) (AuditCheckpoint, error) {
	next := AuditCheckpoint{Number: 1, Hash: auditGenesis}
	if from != nil {
		at, err := s.auditRowsAt(ctx, []int64{from.Seq})
		if err != nil {
			return AuditCheckpoint{}, err
		}
		h, ok := at[from.Seq]
		switch {
		case !ok:
			return AuditCheckpoint{}, fmt.Errorf("%w: %s", ErrAuditTampered, tailCut(*from))
		case !bytes.Equal(h, from.Hash):
			return AuditCheckpoint{}, fmt.Errorf("%w: %s", ErrAuditTampered, rebuilt(*from))
		}
		next = AuditCheckpoint{Number: from.Number + 1, Seq: from.Seq, Hash: from.Hash, Count: from.Count}
	}
	broken, err := s.walkAudit(ctx, next.Seq, next.Hash, func(e AuditEvent) {
		next.Seq, next.Hash = e.Seq, e.Hash
		next.Count++
	})
	if err != nil {
		return AuditCheckpoint{}, err
	}
	if broken != 0 {
		return AuditCheckpoint{}, fmt.Errorf("%w: audit chain broken at seq %d; run worker verify-audit", ErrAuditTampered, broken)
	}
	return next, nil
}

// AuditCheck is what CheckAudit found.
type AuditCheck struct {
	Events   int64  // rows that verified, from the genesis
	HeadSeq  int64  // the last of them
	HeadHash []byte // its hash (the genesis for an empty log)
	// BrokenSeq is the first row that does not link or hash (0: none).
	BrokenSeq int64
	// Checkpoints is how many signed checkpoints verified; Newest is the
	// newest of them (nil: none).
	Checkpoints int
	Newest      *AuditCheckpoint
	// Problems are the checkpoint findings, one line each, oldest
	// checkpoint first: bad signatures, a cut tail, a rebuilt chain,
	// deleted checkpoints.
	Problems []string
}

// CheckAudit walks the whole chain (as VerifyAudit) and compares it with
// every signed checkpoint: those in audit_checkpoints and outside, the copy
// kept outside the database (nil: none; outsideName says where it is
// from). pub is the checkpoint public key, read from outside the database;
// nil when there is none, which is a problem only if checkpoints exist.
func (s *Store) CheckAudit(ctx context.Context, pub crypto.PublicKey, outside *AuditCheckpoint, outsideName string) (AuditCheck, error) {
	stored, err := s.ListAuditCheckpoints(ctx)
	if err != nil {
		return AuditCheck{}, err
	}
	var res AuditCheck
	if pub == nil {
		if n := len(stored); n > 0 || outside != nil {
			res.Problems = append(res.Problems, fmt.Sprintf("cannot check the signed audit checkpoints (%d stored): no checkpoint public key %s in the CA directory", n, AuditCheckpointPublicKeyFile))
		}
		stored, outside = nil, nil
	}
	byNumber := map[int64]AuditCheckpoint{}
	for _, c := range stored {
		if err := c.Verify(pub); err != nil {
			res.Problems = append(res.Problems, err.Error())
			continue
		}
		byNumber[c.Number] = c
	}
	if outside != nil {
		if err := outside.Verify(pub); err != nil {
			res.Problems = append(res.Problems, fmt.Sprintf("%s: %v", outsideName, err))
		} else if _, ok := byNumber[outside.Number]; !ok {
			res.Problems = append(res.Problems, fmt.Sprintf("audit checkpoints deleted: %s in %s is missing from audit_checkpoints", outside, outsideName))
			byNumber[outside.Number] = *outside
		}
	}
	valid := make([]AuditCheckpoint, 0, len(byNumber))
	seqs := make([]int64, 0, len(byNumber))
	for _, c := range byNumber {
		valid = append(valid, c)
		seqs = append(seqs, c.Seq)
	}
	sort.Slice(valid, func(i, j int) bool { return valid[i].Number < valid[j].Number })
	res.Checkpoints = len(valid)
	if len(valid) > 0 {
		res.Newest = &valid[len(valid)-1]
	}

	// Counts come from the walk; the rows themselves from one query, so a
	// checkpoint beyond a broken row is still compared.
	countAt := map[int64]int64{}
	want := map[int64]bool{}
	for _, s := range seqs {
		want[s] = true
	}
	res.HeadHash = auditGenesis
	res.BrokenSeq, err = s.walkAudit(ctx, 0, auditGenesis, func(e AuditEvent) {
		res.Events++
		res.HeadSeq, res.HeadHash = e.Seq, e.Hash
		if want[e.Seq] {
			countAt[e.Seq] = res.Events
		}
	})
	if err != nil {
		return AuditCheck{}, err
	}
	at, err := s.auditRowsAt(ctx, seqs)
	if err != nil {
		return AuditCheck{}, err
	}
	for _, c := range valid {
		h, ok := at[c.Seq]
		switch {
		case !ok:
			res.Problems = append(res.Problems, tailCut(c))
		case !bytes.Equal(h, c.Hash):
			res.Problems = append(res.Problems, rebuilt(c))
		default:
			if n, walked := countAt[c.Seq]; walked && n != c.Count {
				res.Problems = append(res.Problems, fmt.Sprintf("audit chain rebuilt: %s counted %d rows up to row %d, the chain now has %d", c, c.Count, c.Seq, n))
			}
		}
	}
	return res, nil
}

// ReadAuditCheckpointPublicKey reads the checkpoint public key from dir;
// nil, nil when there is none yet (the signer makes it with the first
// checkpoint).
func ReadAuditCheckpointPublicKey(dir string) (crypto.PublicKey, error) {
	path := filepath.Join(dir, AuditCheckpointPublicKeyFile)
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "PUBLIC KEY" {
		return nil, fmt.Errorf("%s: not a PEM public key", path)
	}
	pub, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if _, err := checkpointPublicKey(pub); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return pub, nil
}

// WriteAuditCheckpointPublicKey writes pub to dir once: an existing file
// is kept (and must hold the same key).
func WriteAuditCheckpointPublicKey(dir string, pub crypto.PublicKey) error {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return err
	}
	data := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	path := filepath.Join(dir, AuditCheckpointPublicKeyFile)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if errors.Is(err, fs.ErrExist) {
		old, rerr := os.ReadFile(path)
		if rerr != nil || !bytes.Equal(old, data) {
			return fmt.Errorf("%s already holds another audit checkpoint key", path)
		}
		return nil
	}
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// ReadAuditCheckpointFile reads the checkpoint copy kept in dir; nil, nil
// when there is none.
func ReadAuditCheckpointFile(dir string) (*AuditCheckpoint, error) {
	path := filepath.Join(dir, AuditCheckpointFile)
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var c AuditCheckpoint
	if err := json.Unmarshal(data, &c); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &c, nil
}

// WriteAuditCheckpointFile replaces the checkpoint copy in dir atomically
// (a reader sees the old or the new file, never half of one).
func WriteAuditCheckpointFile(dir string, c AuditCheckpoint) error {
	data, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, "."+AuditCheckpointFile+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(append(data, '\n')); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), filepath.Join(dir, AuditCheckpointFile))
}

// JoinAuditProblems makes one line of several findings.
func JoinAuditProblems(problems []string) string {
	const show = 3
	if len(problems) > show {
		return strings.Join(problems[:show], "; ") + fmt.Sprintf("; and %d more", len(problems)-show)
	}
	return strings.Join(problems, "; ")
}
