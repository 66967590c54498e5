package activities

import (
	"context"
	"encoding/pem"
	"fmt"
	"hash/fnv"
	"log/slog"
	"math/big"
	"runtime"
	"sync"
	"time"

	"go.temporal.io/sdk/activity"

	"certdesk/internal/db"
	"certdesk/internal/pki"
	"certdesk/internal/pki/problem"
	"certdesk/internal/store"
)

// SigningActivities run only on the "certdesk-signing" task queue, in the
// one process that holds the CA keys.
type SigningActivities struct {
	CA    *pki.CA
	Store *store.Store
	Log   *slog.Logger
	// Keys is where new OCSP responder keys are made; nil disables renewal.
	Keys pki.KeyStore
}

// issuing bounds IssueCertificate calls in flight in this process (whose
// store has one pool of db.MaxOpenConns connections).
var issuing = make(chan struct{}, db.MaxOpenConns/2)

// RenewOCSPResponders replaces each delegated OCSP responder certificate
// that is close to expiry with a new key and certificate, and returns how
// many it renewed. The daily schedule runs it, so renewal is automatic.
func (s *SigningActivities) RenewOCSPResponders(ctx context.Context) (int, error) {
	if s.Keys == nil {
		return 0, nil
	}
	now := time.Now()
	n := 0
	for _, is := range s.CA.Issuers() {
		r, ok := s.CA.Responder(is.ID())
		if ok && !r.NeedsRenewal(now) {
			continue
		}
		if _, err := s.CA.RenewOCSPResponder(ctx, s.Keys, is.ID(), now); err != nil {
			return n, fmt.Errorf("renew OCSP responder of %s: %w", is.ID(), err)
		}
		s.Log.Info("OCSP responder renewed", "issuer", is.ID())
		n++
	}
	return n, nil
}

// IssueInput is what the signer needs; the subject is the verified data.
type IssueInput struct {
	ApplicationID string
	ResellerID    string
	SubscriberID  string
	Product       string
	CSRPEM        string
	Domains       []string
	Email         string
	ValidityDays  int
	Subject       pki.Subject
}

// IssueResult describes the issued certificate.
type IssueResult struct {
	Serial         string
	Issuer         string
	Shard          int
	NotBefore      time.Time
	NotAfter       time.Time
	CertificatePEM string
}

// IssueCertificate lints and signs the application's certificate exactly
// once. The serial is reserved in the database before signing, the work runs
// under a per-application advisory lock, and a certificate already stored
// for the application is returned as it is: a retried or concurrent call
// never signs a second certificate.
func (s *SigningActivities) IssueCertificate(ctx context.Context, in IssueInput) (IssueResult, error) {
	// Each call holds a pooled connection for its lock and needs a second
	// for its reads and writes: with as many calls as the pool has
	// connections, all would wait for each other. At most half the pool
	// holds locks.
	select {
	case issuing <- struct{}{}:
		defer func() { <-issuing }()
	case <-ctx.Done():
		return IssueResult{}, ctx.Err()
	}
	conn, err := s.Store.DB().Conn(ctx)
	if err != nil {
		return IssueResult{}, err
	}
	defer conn.Close()
	lock := int64(fnvHash("issue:" + in.ApplicationID))
	if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock($1)`, lock); err != nil {
		return IssueResult{}, err
	}
	defer conn.ExecContext(context.Background(), `SELECT pg_advisory_unlock($1)`, lock) //nolint:errcheck

	if iss, err := s.Store.GetIssuance(ctx, in.ApplicationID); err == nil {
		if c, err := s.Store.GetCertificate(ctx, iss.Serial); err == nil {
			return issueResult(c), nil
		}
	}
	issuer, err := s.CA.IssuerFor(in.Product)
	if err != nil {
		return IssueResult{}, nonRetryable(ErrTypeInvalid, err.Error(), nil)
	}
	candidate, err := pki.NewSerial()
	if err != nil {
		return IssueResult{}, err
	}
	iss, err := s.Store.ReserveSerial(ctx, in.ApplicationID, candidate.Text(16))
	if err != nil {
		return IssueResult{}, storeErr(err, "issuance")
	}
	serial, ok := new(big.Int).SetString(iss.Serial, 16)
	if !ok {
		return IssueResult{}, nonRetryable(ErrTypeInvalid, "reserved serial is not hex", nil)
	}
	req := &pki.IssueRequest{
		Request:   pki.Request{Profile: in.Product, CSR: []byte(in.CSRPEM), Subject: in.Subject, Domains: in.Domains, Email: in.Email},
		Serial:    serial,
		NotBefore: iss.ReservedAt.UTC().Truncate(time.Second),
		Validity:  time.Duration(in.ValidityDays) * 24 * time.Hour,
	}
	out, err := issuer.Issue(ctx, req)
	if err != nil {
		if problem.IsRefusal(err) {
			return IssueResult{}, nonRetryable(ErrTypeCSRRejected, err.Error(), nil)
		}
		return IssueResult{}, err
	}
	spki, err := pki.SPKISHA256(out.Cert.PublicKey)
	if err != nil {
		return IssueResult{}, err
	}
	c := store.Certificate{
		Serial: iss.Serial, Issuer: issuer.ID(), DER: out.DER, NotBefore: out.Cert.NotBefore, NotAfter: out.Cert.NotAfter,
		SPKISHA256: spki[:], Status: "valid", ResellerID: in.ResellerID, SubscriberID: in.SubscriberID,
		ApplicationID: in.ApplicationID, Product: in.Product, CRLShard: out.Shard,
	}
	if err := s.Store.StoreCertificate(ctx, c); err != nil {
		return IssueResult{}, storeErr(err, "certificate")
	}
	// A first OCSP answer ("good") so relying parties get one at once.
	if err := s.signOCSP(ctx, []string{c.Serial}); err != nil {
		s.Log.Warn("first OCSP response not signed; the refresh schedule will", "serial", c.Serial, "error", err)
	}
	return issueResult(c), nil
}

func issueResult(c store.Certificate) IssueResult {
	return IssueResult{Serial: c.Serial, Issuer: c.Issuer, Shard: c.CRLShard, NotBefore: c.NotBefore, NotAfter: c.NotAfter,
		CertificatePEM: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.DER}))}
}

func fnvHash(s string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(s))
	return h.Sum64() >> 1
}

// PublishCRLsInput names the shards to regenerate.
type PublishCRLsInput struct {
	Shards []ShardRef
}

// PublishCRLs signs and stores a new CRL for each shard, with a CRLNumber
// drawn from the database (strictly increasing per shard, O14). A retry
// publishes a newer CRL, never an older one. Shards are independent, so
// they are built on every core at once (listing one shard in PostgreSQL
// while another is encoded and signed).
func (s *SigningActivities) PublishCRLs(ctx context.Context, in PublishCRLsInput) error {
	workers := min(runtime.GOMAXPROCS(0), len(in.Shards), 4)
	if workers <= 1 {
		for i, sh := range in.Shards {
			if err := s.publishCRL(ctx, sh); err != nil {
				return err
			}
			activity.RecordHeartbeat(ctx, i)
		}
		return nil
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	next := make(chan ShardRef)
	done := make(chan error, len(in.Shards)) // never blocks a worker
	for range workers {
		go func() {
			for sh := range next {
				done <- s.publishCRL(ctx, sh)
			}
		}()
	}
	go func() {
		defer close(next)
		for _, sh := range in.Shards {
			select {
			case next <- sh:
			case <-ctx.Done():
				return
			}
		}
	}()
	for i := range in.Shards {
		if err := <-done; err != nil {
			return err // the deferred cancel stops the feeder; workers drain
		}
		activity.RecordHeartbeat(ctx, i)
	}
	return nil
}

// crlListed, if set (tests only), runs after a shard's entries are read.
var crlListed func(ShardRef)

// publishCRL draws the shard's CRLNumber before it reads the entries. Two
// publishers of one shard can overlap (the daily schedule and a mass
// revocation); SaveCRL keeps the highest number, so the highest number must
// carry the newest content. Read-then-number let a publisher that had read
// early, but drew its number late, replace a complete CRL with a stale one:
// certificates revoked in between vanished from the published CRL until the
// next publication. Numbered first, a CRL's entries are read after every
// lower-numbered CRL was numbered, so the one kept lists at least what any
// publication started before it listed.
func (s *SigningActivities) publishCRL(ctx context.Context, sh ShardRef) error {
	issuer, ok := s.CA.Issuer(sh.Issuer)
	if !ok {
		return nonRetryable(ErrTypeInvalid, "unknown issuer "+sh.Issuer, nil)
	}
	number, err := s.Store.NextCRLNumber(ctx, sh.Issuer, sh.Shard)
	if err != nil {
		return err
	}
	revoked, err := s.Store.ListRevoked(ctx, sh.Issuer, sh.Shard, time.Now().UTC())
	if err != nil {
		return err
	}
	if crlListed != nil {
		crlListed(sh)
	}
	// thisUpdate after the read: no entry's revocation time is later.
	now := time.Now().UTC().Truncate(time.Second)
	entries := make([]pki.CRLEntry, len(revoked))
	for i, r := range revoked {
		n, ok := new(big.Int).SetString(r.Serial, 16)
		if !ok {
			return nonRetryable(ErrTypeInvalid, "stored serial is not hex: "+r.Serial, nil)
		}
		entries[i] = pki.CRLEntry{Serial: n, RevokedAt: r.RevokedAt, Reason: r.ReasonCode}
	}
	der, err := issuer.CRL(ctx, &pki.CRLRequest{Shard: sh.Shard, Number: big.NewInt(number), ThisUpdate: now, Entries: entries})
	if err != nil {
		return fmt.Errorf("CRL %s/%d: %w", sh.Issuer, sh.Shard, err)
	}
	_, err = s.Store.SaveCRL(ctx, store.CRL{Issuer: sh.Issuer, Shard: sh.Shard, Number: number, ThisUpdate: now,
		NextUpdate: now.Add(pki.DefaultCRLValidity), DER: der})
	return err
}

// PublishAllCRLs regenerates every shard of every issuer: the daily schedule
// (BR: at least every 4 days, nextUpdate ≤ 10 days).
func (s *SigningActivities) PublishAllCRLs(ctx context.Context) (int, error) {
	var shards []ShardRef
	for _, is := range s.CA.Issuers() {
		for i := 0; i < is.CRLShards(); i++ {
			shards = append(shards, ShardRef{Issuer: is.ID(), Shard: i})
		}
	}
	return len(shards), s.PublishCRLs(ctx, PublishCRLsInput{Shards: shards})
}

// SignOCSPInput names certificates whose status changed.
type SignOCSPInput struct {
	Serials []string
}

// SignOCSP signs fresh OCSP answers for serials and stores them.
func (s *SigningActivities) SignOCSP(ctx context.Context, in SignOCSPInput) error {
	return s.signOCSP(ctx, in.Serials)
}

func (s *SigningActivities) signOCSP(ctx context.Context, serials []string) error {
	now := time.Now().UTC().Truncate(time.Second)
	var batch []store.OCSPResponse
	for _, serial := range serials {
		ref, err := s.Store.GetCertificateRef(ctx, serial)
		if err != nil {
			return storeErr(err, "certificate "+serial)
		}
		r, err := s.signOne(ref, now)
		if err != nil {
			return err
		}
		batch = append(batch, r)
	}
	_, err := s.Store.UpsertOCSPBatch(ctx, batch)
	return err
}

func (s *SigningActivities) signOne(ref store.CertificateRef, now time.Time) (store.OCSPResponse, error) {
	resp, ok := s.CA.Responder(ref.Issuer)
	if !ok {
		return store.OCSPResponse{}, nonRetryable(ErrTypeInvalid, "no OCSP responder for "+ref.Issuer, nil)
	}
	n, _ := new(big.Int).SetString(ref.Serial, 16)
	st := pki.CertStatus{Serial: n}
	status := "good"
	if ref.Status == "revoked" && ref.RevokedAt != nil {
		st.Revoked, st.RevokedAt, status = true, *ref.RevokedAt, "revoked"
		if ref.ReasonCode != nil {
			st.Reason = *ref.ReasonCode
		}
	}
	signed, err := resp.Sign(st, now)
	if err != nil {
		return store.OCSPResponse{}, err
	}
	return store.OCSPResponse{Serial: ref.Serial, DER: signed.DER, Status: status, ProducedAt: now,
		ThisUpdate: signed.ThisUpdate, NextUpdate: signed.NextUpdate}, nil
}

// RefreshOCSPInput starts a refresh; it covers every certificate due.
type RefreshOCSPInput struct{}

// RefreshOCSP re-signs, in pages, every OCSP answer that is missing or past
// half its validity — after a mass revocation that is every revoked serial,
// since revocation drops the stored "good" answers. Each page is signed on
// every core. Progress is heartbeated.
func (s *SigningActivities) RefreshOCSP(ctx context.Context, in RefreshOCSPInput) (int, error) {
	now := time.Now().UTC().Truncate(time.Second)
	refreshBefore := now.Add(pki.DefaultOCSPValidity / 2)
	after := ""
	if activity.HasHeartbeatDetails(ctx) {
		_ = activity.GetHeartbeatDetails(ctx, &after)
	}
	total := 0
	for {
		refs, err := s.Store.ListOCSPDue(ctx, refreshBefore, after, 2000)
		if err != nil {
			return total, err
		}
		if len(refs) == 0 {
			return total, nil
		}
		batch, err := s.signAll(ctx, refs, now)
		if err != nil {
			return total, err
		}
		if _, err := s.Store.UpsertOCSPBatch(ctx, batch); err != nil {
			return total, err
		}
		total += len(refs)
		after = refs[len(refs)-1].Serial
		activity.RecordHeartbeat(ctx, after)
	}
}

// signAll signs an OCSP response for each ref, in order, spreading the
// work over every core (ECDSA P-256 signing and the response's DER are pure
// CPU; the responder's crypto.Signer is safe for concurrent use).
func (s *SigningActivities) signAll(ctx context.Context, refs []store.CertificateRef, now time.Time) ([]store.OCSPResponse, error) {
	out := make([]store.OCSPResponse, len(refs))
	workers := min(runtime.GOMAXPROCS(0), (len(refs)+255)/256)
	if workers <= 1 {
		for i, ref := range refs {
			r, err := s.signOne(ref, now)
			if err != nil {
				return nil, err
			}
			out[i] = r
		}
		return out, nil
	}
	errs := make([]error, workers)
	chunk := (len(refs) + workers - 1) / workers
	var wg sync.WaitGroup
	for w := range workers {
		lo, hi := w*chunk, min((w+1)*chunk, len(refs))
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := lo; i < hi; i++ {
				if i%256 == 0 && ctx.Err() != nil {
					errs[w] = ctx.Err()
					return
				}
				r, err := s.signOne(refs[i], now)
				if err != nil {
					errs[w] = err
					return
				}
				out[i] = r
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// SignRevokedOCSPInput is the closed serial range (After, Through] of one
// page of a mass revocation, with the page's selector.
type SignRevokedOCSPInput struct {
	Selector Selector
	After    string
	Through  string
}

// SignRevokedOCSP signs and stores "revoked" OCSP answers for every revoked
// certificate of one mass revocation page, right after the page was revoked
// (RevokeBatch drops the "good" answers): only the page's own serials, read
// back from PostgreSQL by keyset range, never a scan of every certificate.
// Certificates of the range still valid are left alone. A retry re-signs
// the same range (UpsertOCSPBatch keeps the newest answer); progress within
// the range is heartbeated.
func (s *SigningActivities) SignRevokedOCSP(ctx context.Context, in SignRevokedOCSPInput) (int, error) {
	if err := checkSelector(in.Selector); err != nil {
		return 0, err
	}
	if in.Through == "" {
		return 0, nonRetryable(ErrTypeInvalid, "SignRevokedOCSP needs the last serial of the range (Through)", nil)
	}
	sel := in.Selector.store()
	sel.IncludeRevoked, sel.Through = true, in.Through
	after := in.After
	if activity.HasHeartbeatDetails(ctx) {
		_ = activity.GetHeartbeatDetails(ctx, &after)
	}
	now := time.Now().UTC().Truncate(time.Second)
	total := 0
	for {
		refs, err := s.Store.SelectCertificates(ctx, sel, after, 5000)
		if err != nil {
			return total, storeErr(err, "selector")
		}
		if len(refs) == 0 {
			return total, nil
		}
		last := refs[len(refs)-1].Serial
		revoked := refs[:0]
		for _, r := range refs {
			if r.Status == "revoked" && r.RevokedAt != nil {
				revoked = append(revoked, r)
			}
		}
		batch, err := s.signAll(ctx, revoked, now)
		if err != nil {
			return total, err
		}
		if _, err := s.Store.UpsertOCSPBatch(ctx, batch); err != nil {
			return total, err
		}
		total += len(batch)
		after = last
		activity.RecordHeartbeat(ctx, after)
	}
}
