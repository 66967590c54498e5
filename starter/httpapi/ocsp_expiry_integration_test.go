//go:build integration

package httpapi

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/base64"
	"math/big"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"certdesk/internal/status"
	"certdesk/internal/store"
)

// TestOCSPNeverPastNextUpdate: a stored answer whose nextUpdate is not
// after now is never served, neither from PostgreSQL nor from the
// in-memory cache (RFC 5019 §4: a response past nextUpdate must not be
// relied on). The responder answers from a fresher stored response when
// the signer has written one, else "tryLater" (RFC 6960 §2.3), which the
// client retries.
func TestOCSPNeverPastNextUpdate(t *testing.T) {
	ctx := context.Background()
	pool, st := newTestStore(t)

	const issuerID, base = "tls-expiry-test", 0x3100000000000000
	ca := newOCSPTestCA(t, st, issuerID, "rs_ocsp_exp", base, 2)
	key, issuer, idx := ca.key, ca.issuer, ca.idx
	serialA, serialB := big.NewInt(base), big.NewInt(base+1)

	t0 := time.Now().Truncate(time.Second)
	// sign stores a "good" response valid from thisUpdate to nextUpdate.
	sign := func(serial *big.Int, thisUpdate, nextUpdate time.Time) []byte {
		t.Helper()
		b, err := ocsp.CreateResponse(issuer, issuer, ocsp.Response{Status: ocsp.Good, SerialNumber: serial, ThisUpdate: thisUpdate, NextUpdate: nextUpdate}, key)
		if err != nil {
			t.Fatal(err)
		}
		stored, err := st.UpsertOCSP(ctx, store.OCSPResponse{Serial: serial.Text(16), DER: b, Status: status.OCSPGood,
			ProducedAt: thisUpdate, ThisUpdate: thisUpdate, NextUpdate: nextUpdate})
		if err != nil || !stored {
			t.Fatalf("store response: %v %v", stored, err)
		}
		return b
	}

	var mu sync.Mutex
	clock := t0
	now := func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
	at := func(d time.Duration) { mu.Lock(); clock = t0.Add(d); mu.Unlock() }
	s := mustServer(t, Deps{DB: pool, Store: st, Now: now})
	s.repo = &caRepository{index: idx}
	h := s.Handler()

	get := func(serial *big.Int, post bool) *httptest.ResponseRecorder {
		t.Helper()
		req, err := ocsp.CreateRequest(&x509.Certificate{SerialNumber: serial}, issuer, nil)
		if err != nil {
			t.Fatal(err)
		}
		r := httptest.NewRequest("GET", "/ocsp/"+base64.StdEncoding.EncodeToString(req), nil)
		if post {
			r = httptest.NewRequest("POST", "/ocsp", bytes.NewReader(req))
			r.Header.Set("Content-Type", "application/ocsp-request")
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != 200 {
			t.Fatalf("OCSP %x: HTTP %d", serial, w.Code)
		}
		return w
	}
	expect := func(what string, w *httptest.ResponseRecorder, want []byte) {
		t.Helper()
		if bytes.Equal(w.Body.Bytes(), want) {
			return
		}
		got := "?"
		if r, err := ocsp.ParseResponse(w.Body.Bytes(), issuer); err == nil {
			got = "a response with nextUpdate " + r.NextUpdate.UTC().Format(time.RFC3339)
		} else {
			got = err.Error()
		}
		t.Fatalf("%s: got %s", what, got)
	}

	// A's answer expires 2 s after t0, well within the cache's freshness
	// bound, so at 3 s the cached entry is still "fresh" as a cache entry.
	goodA := sign(serialA, t0.Add(-time.Hour), t0.Add(2*time.Second))
	at(0)
	expect("A before nextUpdate", get(serialA, false), goodA)
	at(3 * time.Second)
	w := get(serialA, false)
	expect("A past nextUpdate, cached", w, ocsp.TryLaterErrorResponse)
	if cc := w.Header().Get("Cache-Control"); strings.Contains(cc, "must-revalidate") || w.Header().Get("ETag") != "" {
		t.Errorf("tryLater carries the expired answer's cache headers: Cache-Control %q, ETag %q", cc, w.Header().Get("ETag"))
	}
	expect("A past nextUpdate, cached, by POST (parse memo path)", get(serialA, true), ocsp.TryLaterErrorResponse)
	at(2 * time.Second) // exactly nextUpdate: not after now, so not served
	expect("A at nextUpdate", get(serialA, false), ocsp.TryLaterErrorResponse)

	// Past the cache bound the database is read: still expired, still tryLater.
	at(10 * time.Second)
	expect("A past nextUpdate, from PostgreSQL", get(serialA, false), ocsp.TryLaterErrorResponse)
	if err := s.ocspCache.refresh(ctx, st, now); err != nil {
		t.Fatal(err)
	}
	expect("A past nextUpdate, after a cache refresh", get(serialA, false), ocsp.TryLaterErrorResponse)

	// Once the signer stores a fresh answer it is served at once: the
	// expired one was not cached.
	freshA := sign(serialA, t0.Add(10*time.Second), t0.Add(96*time.Hour))
	expect("A once re-signed", get(serialA, false), freshA)

	// A cached answer past nextUpdate gives way to a fresher stored one
	// within the cache bound, rather than to tryLater.
	at(0)
	goodB := sign(serialB, t0.Add(-time.Hour), t0.Add(2*time.Second))
	expect("B before nextUpdate", get(serialB, false), goodB)
	freshB := sign(serialB, t0.Add(time.Second), t0.Add(96*time.Hour))
	at(3 * time.Second)
	expect("B past the cached answer's nextUpdate", get(serialB, false), freshB)
}
