//go:build integration

package httpapi

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/base64"
	"math/big"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"certdesk/internal/pki"
	"certdesk/internal/store"
)

// TestOCSPCacheFreshness checks the pre-signed path's cache against
// PostgreSQL with a controlled clock: a stored revocation is served once
// ocspCacheTTL has passed since the cached read (never later), the
// refresher re-reads popular entries, serials never issued are
// "unauthorized", issued but unsigned ones "tryLater", and the RFC 5019
// headers are those of pki.OCSPCacheHeaders.
func TestOCSPCacheFreshness(t *testing.T) {
	ctx := context.Background()
	pool, st := newTestStore(t)

	const issuerID, base = "tls-cache-test", 0x3000000000000000
	ca := newOCSPTestCA(t, st, issuerID, "rs_ocsp_cache", base, 3)
	key, issuer, idx := ca.key, ca.issuer, ca.idx
	serialA, serialB, serialUnsigned := big.NewInt(base), big.NewInt(base+1), big.NewInt(base+2)
	serialUnknown := big.NewInt(base + 977)

	t0 := time.Now().Truncate(time.Second)
	sign := func(serial *big.Int, status int, thisUpdate time.Time) []byte {
		t.Helper()
		r := ocsp.Response{Status: status, SerialNumber: serial, ThisUpdate: thisUpdate, NextUpdate: thisUpdate.Add(96 * time.Hour)}
		if status == ocsp.Revoked {
			r.RevokedAt, r.RevocationReason = thisUpdate, ocsp.KeyCompromise
		}
		b, err := ocsp.CreateResponse(issuer, issuer, r, key)
		if err != nil {
			t.Fatal(err)
		}
		stored, err := st.UpsertOCSP(ctx, store.OCSPResponse{Serial: serial.Text(16), DER: b, Status: map[int]string{ocsp.Good: "good", ocsp.Revoked: "revoked"}[status],
			ProducedAt: thisUpdate, ThisUpdate: thisUpdate, NextUpdate: thisUpdate.Add(96 * time.Hour)})
		if err != nil || !stored {
			t.Fatalf("store response: %v %v", stored, err)
		}
		return b
	}
	goodA := sign(serialA, ocsp.Good, t0.Add(-time.Hour))
	goodB := sign(serialB, ocsp.Good, t0.Add(-time.Hour))

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
		var r *http.Request
		if post {
			r = httptest.NewRequest("POST", "/ocsp", bytes.NewReader(req))
			r.Header.Set("Content-Type", "application/ocsp-request")
		} else {
			r = httptest.NewRequest("GET", "/ocsp/"+base64.StdEncoding.EncodeToString(req), nil)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != 200 || w.Header().Get("Content-Type") != "application/ocsp-response" {
			t.Fatalf("OCSP %x: %d %v", serial, w.Code, w.Header())
		}
		return w
	}
	expect := func(what string, w *httptest.ResponseRecorder, want []byte) {
		t.Helper()
		if !bytes.Equal(w.Body.Bytes(), want) {
			got := "?"
			if r, err := ocsp.ParseResponse(w.Body.Bytes(), issuer); err == nil {
				got = map[int]string{ocsp.Good: "good", ocsp.Revoked: "revoked", ocsp.Unknown: "unknown"}[r.Status]
			} else {
				got = err.Error()
			}
			t.Fatalf("%s: not the expected response (got %s)", what, got)
		}
	}

	// First answer: from PostgreSQL, with the RFC 5019 headers.
	at(0)
	w := get(serialA, false)
	expect("A at 0s", w, goodA)
	wantH := pki.OCSPCacheHeaders(goodA, t0.Add(-time.Hour), t0.Add(95*time.Hour), t0)
	for _, k := range []string{"Cache-Control", "ETag", "Last-Modified", "Expires"} {
		if w.Header().Get(k) != wantH.Get(k) {
			t.Errorf("%s: %q, want %q", k, w.Header().Get(k), wantH.Get(k))
		}
	}
	expect("A by POST at 0s", get(serialA, true), goodA)
	expect("B at 0s", get(serialB, false), goodB)

	// Never issued: unauthorized, from the database and from the cache.
	expect("unknown serial", get(serialUnknown, false), ocsp.UnauthorizedErrorResponse)
	expect("unknown serial again", get(serialUnknown, false), ocsp.UnauthorizedErrorResponse)
	if cc := get(serialUnknown, false).Header().Get("Cache-Control"); cc != "public, max-age=60, no-transform" {
		t.Errorf("unauthorized Cache-Control %q", cc)
	}
	// Issued, not signed yet: tryLater, and not cached.
	expect("unsigned serial", get(serialUnsigned, false), ocsp.TryLaterErrorResponse)
	goodU := sign(serialUnsigned, ocsp.Good, t0)
	expect("unsigned serial once signed", get(serialUnsigned, false), goodU)

	// Revoke A and B: the stored answers change.
	revokedA := sign(serialA, ocsp.Revoked, t0)
	revokedB := sign(serialB, ocsp.Revoked, t0)

	// Within the bound the cached answer may still be served (this is what
	// saves the round trip), never once the bound has passed.
	at(ocspCacheTTL - time.Millisecond)
	expect("A just before the bound (cached)", get(serialA, false), goodA)
	at(ocspCacheTTL)
	expect("A at the bound", get(serialA, false), revokedA)
	expect("A by POST at the bound", get(serialA, true), revokedA)

	// The refresher re-reads B (asked for since its read at 0s, past half
	// its life) before it expires.
	at(ocspCacheTTL/2 + time.Millisecond)
	expect("B before the refresh (cached)", get(serialB, false), goodB)
	if err := s.ocspCache.refresh(ctx, st, now); err != nil {
		t.Fatal(err)
	}
	expect("B after the refresh", get(serialB, false), revokedB)

	// Entries nobody asks for expire and are dropped.
	at(10 * ocspCacheTTL)
	if err := s.ocspCache.refresh(ctx, st, now); err != nil {
		t.Fatal(err)
	}
	s.ocspCache.mu.RLock()
	n := len(s.ocspCache.m)
	s.ocspCache.mu.RUnlock()
	if n != 0 {
		t.Errorf("%d entries left after every entry expired", n)
	}
	expect("A after expiry", get(serialA, false), revokedA)
}
