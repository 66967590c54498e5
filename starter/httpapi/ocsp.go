package httpapi

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/ocsp"

	"certdesk/internal/api"
	"certdesk/internal/pki"
	"certdesk/internal/store"
)

// errNotSignedYet: an issued serial without a pre-signed response yet.
var errNotSignedYet = errors.New("no pre-signed OCSP response yet")

// errExpired: the stored response's nextUpdate is not after now, and
// nothing fresher is stored. It is answered "tryLater" like
// errNotSignedYet, but logged: the signer is behind.
var errExpired = errors.New("stored OCSP response past its nextUpdate")

// ocspCache keeps what the pre-signed path needs per (issuer, serial):
// whether the serial was issued and its stored response, with the response
// headers computed once. Relying parties ask for the same serials again
// and again, and the pre-signed path should not cost a database round trip
// (nor a SHA-256 for the ETag) per request.
//
// Freshness bound: an entry is served only while it is younger than
// ocspCacheTTL, counted from the moment the database read it came from
// began. A response stored (a revocation's "revoked" replacing "good", a
// certificate newly issued) is therefore served by every request that
// arrives ocspCacheTTL or more after it was committed; before that, a
// request may still get the previous answer. A serial never issued is
// cached as "not issued" and answered "unauthorized", never "good" (O14).
//
// Expiry: a response is never served once its nextUpdate is not after now
// (RFC 5019 §4 / RFC 6960 §2.4: a relying party must not trust it, and an
// expired "good" could hide a revocation the signer failed to publish).
// A cached entry whose response has expired is re-read from the database
// at once, whatever its age, in case the signer stored a fresher one; an
// expired response from the database is answered "tryLater" and never
// cached, so the re-signed one is served as soon as it is stored.
//
// refresh, run every ocspRefreshEvery by refreshOCSPCache, re-reads in one
// statement per issuer the entries asked for since their last read that
// are past half their life, so popular serials stay cached without a
// round trip per request and without stretching the bound; entries nobody
// asked for expire and are dropped. Without the refresher (tests) entries
// simply expire and the next request reads the database.
type ocspCache struct {
	mu sync.RWMutex
	m  map[ocspKey]*ocspEntry
}

type ocspKey struct {
	issuer string
	serial string // lower-case hex, as big.Int.Text(16)
}

// ocspEntry is immutable once in the cache except for used and maxAge.
type ocspEntry struct {
	res    store.OCSPForIssuer
	readAt time.Time   // when the database read began
	used   atomic.Bool // asked for since readAt: refresh it

	// Response headers (RFC 5019 §6), for entries with a response.
	etag, lastModified, expires []string
	maxAge                      atomic.Pointer[ocspMaxAge]
}

// ocspMaxAge is the Cache-Control value for one second of wall time.
type ocspMaxAge struct {
	unix  int64
	value []string
}

const (
	ocspCacheTTL     = 5 * time.Second
	ocspCacheMax     = 200_000
	ocspRefreshEvery = 500 * time.Millisecond
	ocspRefreshBatch = 5000
)

// Header values shared by every response; each slice has len == cap so an
// Add by anyone appends to a copy.
var (
	ocspContentType      = []string{"application/ocsp-response"}
	ocspErrorCacheHeader = []string{"public, max-age=60, no-transform"}
)

func newOCSPEntry(res store.OCSPForIssuer, readAt time.Time) *ocspEntry {
	e := &ocspEntry{res: res, readAt: readAt}
	if r := res.Response; r != nil {
		sum := sha256.Sum256(r.DER)
		e.etag = []string{`"` + hex.EncodeToString(sum[:16]) + `"`}
		e.lastModified = []string{r.ThisUpdate.UTC().Format(http.TimeFormat)}
		e.expires = []string{r.NextUpdate.UTC().Format(http.TimeFormat)}
	}
	return e
}

// cacheControl is "max-age=<seconds until nextUpdate>, public,
// no-transform, must-revalidate", computed once per second per entry.
func (e *ocspEntry) cacheControl(now time.Time) []string {
	sec := now.Unix()
	if m := e.maxAge.Load(); m != nil && m.unix == sec {
		return m.value
	}
	maxAge := int64(e.res.Response.NextUpdate.Sub(now) / time.Second)
	if maxAge < 0 {
		maxAge = 0
	}
	v := []string{"max-age=" + strconv.FormatInt(maxAge, 10) + ", public, no-transform, must-revalidate"}
	e.maxAge.Store(&ocspMaxAge{unix: sec, value: v})
	return v
}

// expiredAt reports whether e holds a response that must no longer be
// served at now.
func (e *ocspEntry) expiredAt(now time.Time) bool {
	return e.res.Response != nil && !e.res.Response.NextUpdate.After(now)
}

func (c *ocspCache) get(k ocspKey, now time.Time) *ocspEntry {
	c.mu.RLock()
	e := c.m[k]
	c.mu.RUnlock()
	if e == nil || !now.Before(e.readAt.Add(ocspCacheTTL)) || e.expiredAt(now) {
		return nil
	}
	if !e.used.Load() {
		e.used.Store(true)
	}
	return e
}

// put stores e unless the cache holds a newer read of the same key.
func (c *ocspCache) put(k ocspKey, e *ocspEntry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.putLocked(k, e)
}

func (c *ocspCache) putLocked(k ocspKey, e *ocspEntry) {
	if old := c.m[k]; old != nil && old.readAt.After(e.readAt) {
		return
	}
	if c.m == nil || len(c.m) >= ocspCacheMax {
		c.m = make(map[ocspKey]*ocspEntry)
	}
	c.m[k] = e
}

func (c *ocspCache) drop(k ocspKey) {
	c.mu.Lock()
	delete(c.m, k)
	c.mu.Unlock()
}

// refresh drops expired entries and re-reads those asked for since their
// last read and past half their life, in one statement per issuer and
// ocspRefreshBatch serials.
func (c *ocspCache) refresh(ctx context.Context, st Store, now func() time.Time) error {
	t0 := now()
	due := map[string][]string{}
	c.mu.Lock()
	for k, e := range c.m {
		age := t0.Sub(e.readAt)
		if age >= ocspCacheTTL || age < 0 {
			delete(c.m, k)
			continue
		}
		if age >= ocspCacheTTL/2 && e.used.Load() {
			due[k.issuer] = append(due[k.issuer], k.serial)
		}
	}
	c.mu.Unlock()
	var errs []error
	for issuer, serials := range due {
		for len(serials) > 0 {
			chunk := serials[:min(len(serials), ocspRefreshBatch)]
			serials = serials[len(chunk):]
			readAt := now()
			res, err := st.GetOCSPForIssuerBatch(ctx, issuer, chunk)
			if err != nil {
				errs = append(errs, err) // the entries expire; requests read the database
				continue
			}
			fresh := make(map[ocspKey]*ocspEntry, len(res))
			for serial, r := range res {
				if r.Issued && (r.Response == nil || !r.Response.NextUpdate.After(readAt)) {
					fresh[ocspKey{issuer, serial}] = nil // asked again each time, as on a miss
					continue
				}
				fresh[ocspKey{issuer, serial}] = newOCSPEntry(r, readAt)
			}
			c.mu.Lock()
			for k, e := range fresh {
				if e == nil {
					delete(c.m, k)
				} else {
					c.putLocked(k, e)
				}
			}
			c.mu.Unlock()
		}
	}
	return errors.Join(errs...)
}

// refreshOCSPCache runs the cache refresh until ctx ends.
func (s *Server) refreshOCSPCache(ctx context.Context) {
	t := time.NewTicker(ocspRefreshEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := s.ocspCache.refresh(ctx, s.st, s.now); err != nil && ctx.Err() == nil {
			s.log.Warn("OCSP cache refresh", "error", err)
		}
	}
}

// ocspParsed remembers which (issuer, serial) a request DER asks about, so
// a request seen before skips the ASN.1 parse and the issuer match (a
// tenth of the pre-signed path's CPU). The mapping depends only on the
// request bytes and the CA certificates, which are fixed for the life of
// the process; nonces are ignored by pre-signed answers (RFC 5019).
type ocspParsed struct {
	mu sync.RWMutex
	m  map[string]ocspKey
}

const ocspParsedMax = 100_000

func (p *ocspParsed) get(der []byte) (ocspKey, bool) {
	p.mu.RLock()
	k, ok := p.m[string(der)]
	p.mu.RUnlock()
	return k, ok
}

func (p *ocspParsed) put(der []byte, k ocspKey) {
	p.mu.Lock()
	if p.m == nil || len(p.m) >= ocspParsedMax {
		p.m = make(map[string]ocspKey)
	}
	p.m[string(der)] = k
	p.mu.Unlock()
}

// storedOCSP is the pki.OCSPLookup over the cache and ocsp_responses; it
// remembers the key it was asked for and the entry it served, for the
// parse memo and the cache headers.
type storedOCSP struct {
	st     Store
	cache  *ocspCache
	now    time.Time
	key    ocspKey
	keyed  bool
	served *ocspEntry
}

func (l *storedOCSP) OCSPResponse(ctx context.Context, issuerID string, serial *big.Int) ([]byte, error) {
	if serial == nil || serial.Sign() <= 0 {
		return nil, pki.ErrNotIssued
	}
	l.key, l.keyed = ocspKey{issuer: issuerID, serial: serial.Text(16)}, true
	return l.byKey(ctx, l.key)
}

func (l *storedOCSP) byKey(ctx context.Context, key ocspKey) ([]byte, error) {
	e := l.cache.get(key, l.now)
	if e == nil {
		readAt := l.now
		res, err := l.st.GetOCSPForIssuer(ctx, key.issuer, key.serial)
		if err != nil {
			return nil, err
		}
		e = newOCSPEntry(res, readAt)
		// "Issued, not signed yet" and "expired" are asked again.
		if !res.Issued || (res.Response != nil && !e.expiredAt(l.now)) {
			l.cache.put(key, e)
		} else {
			l.cache.drop(key)
		}
	}
	if !e.res.Issued {
		return nil, pki.ErrNotIssued
	}
	if e.res.Response == nil {
		return nil, errNotSignedYet
	}
	if e.expiredAt(l.now) {
		return nil, fmt.Errorf("issuer %s serial %s: %w (nextUpdate %s)", key.issuer, key.serial, errExpired,
			e.res.Response.NextUpdate.UTC().Format(time.RFC3339))
	}
	l.served = e
	return e.res.Response.DER, nil
}

// answer is pki.RespondOCSP with the parse memo in front: the response to
// send, and an error for the log only.
func (s *Server) answerOCSP(ctx context.Context, der []byte, l *storedOCSP) ([]byte, error) {
	var resp []byte
	var err error
	if key, ok := s.ocspParsed.get(der); ok {
		// What RespondOCSP does after the parse and the match.
		resp, err = l.byKey(ctx, key)
		switch {
		case errors.Is(err, pki.ErrNotIssued):
			resp, err = ocsp.UnauthorizedErrorResponse, nil
		case err != nil && !errors.Is(err, errNotSignedYet) && !errors.Is(err, errExpired):
			resp, err = ocsp.InternalErrorErrorResponse, fmt.Errorf("OCSP lookup for issuer %s: %w", key.issuer, err)
		}
	} else {
		resp, err = pki.RespondOCSP(ctx, der, s.repo.index, l)
		if l.keyed {
			s.ocspParsed.put(der, l.key)
		}
	}
	switch {
	case errors.Is(err, errNotSignedYet):
		resp, err = ocsp.TryLaterErrorResponse, nil
	case errors.Is(err, errExpired):
		resp = ocsp.TryLaterErrorResponse // err kept for the log
	}
	return resp, err
}

// ocsp answers RFC 6960 / RFC 5019 requests (GET /ocsp/<base64>, POST
// /ocsp) from the pre-signed responses: "unauthorized" for serials never
// issued (never "good", O14), "tryLater" for an issued serial not signed yet.
func (s *Server) ocsp(w http.ResponseWriter, r *http.Request) {
	der, err := pki.OCSPRequestFromHTTP(r, "/ocsp/")
	if err != nil {
		switch {
		case r.Method == http.MethodPost && strings.Contains(err.Error(), "Content-Type"):
			s.problem(w, r, api.New(http.StatusUnsupportedMediaType, api.TypeUnsupportedMedia, "send the DER request as application/ocsp-request"))
		case strings.Contains(err.Error(), "too large"):
			s.problem(w, r, api.New(http.StatusRequestEntityTooLarge, api.TypePayloadTooLarge, "an OCSP request is at most 4 KiB"))
		default:
			s.problem(w, r, api.New(http.StatusBadRequest, api.TypeMalformedRequest, "the OCSP request is not base64 of a DER OCSPRequest (RFC 6960 Appendix A)"))
		}
		return
	}
	if s.repo == nil {
		s.problem(w, r, api.New(http.StatusServiceUnavailable, api.TypeUnavailable, "the CA repository is not loaded"))
		return
	}
	now := s.now()
	lookup := storedOCSP{st: s.st, cache: &s.ocspCache, now: now}
	resp, err := s.answerOCSP(r.Context(), der, &lookup)
	if err != nil {
		s.log.Warn("OCSP", "error", err, "request_id", r.Context().Value(ctxRequestID))
	}
	// The RFC 5019 §6 headers of pki.OCSPCacheHeaders, precomputed.
	h := w.Header()
	h["Content-Type"] = ocspContentType
	if e := lookup.served; e != nil {
		h["Last-Modified"] = e.lastModified
		h["Expires"] = e.expires
		h["Cache-Control"] = e.cacheControl(now)
		h["Etag"] = e.etag // canonical form of ETag, as Header.Set stores it
	} else {
		h["Cache-Control"] = ocspErrorCacheHeader
	}
	h["Content-Length"] = []string{strconv.Itoa(len(resp))}
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(resp)
	}
}
