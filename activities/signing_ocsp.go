package activities

import (
	"context"
	"math/big"
	"runtime"
	"sync"
	"time"

	"go.temporal.io/sdk/activity"

	"certdesk/internal/pki"
	"certdesk/internal/status"
	"certdesk/internal/store"
)

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
	if err := s.auditOCSPBatch(ctx, batch); err != nil {
		return err
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
	answer := status.OCSPGood
	if ref.Status == status.CertRevoked && ref.RevokedAt != nil {
		st.Revoked, st.RevokedAt, answer = true, *ref.RevokedAt, status.OCSPRevoked
		if ref.ReasonCode != nil {
			st.Reason = *ref.ReasonCode
		}
	}
	signed, err := resp.Sign(st, now)
	if err != nil {
		return store.OCSPResponse{}, err
	}
	return store.OCSPResponse{Serial: ref.Serial, DER: signed.DER, Status: answer, ProducedAt: now,
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
		if err := s.auditOCSPBatch(ctx, batch); err != nil {
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
			if r.Status == status.CertRevoked && r.RevokedAt != nil {
				revoked = append(revoked, r)
			}
		}
		batch, err := s.signAll(ctx, revoked, now)
		if err != nil {
			return total, err
		}
		if err := s.auditOCSPBatch(ctx, batch); err != nil {
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
