//go:build integration

package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"certdesk/internal/api"
)

// TestIdempotencyNoTakeoverWhileRunning: a retry with the same
// Idempotency-Key while the first request still runs gets 409
// idempotency-key-in-progress, also after the one minute the reservation
// used to be taken over at (the clock is moved by back-dating the
// reservation in PostgreSQL, whose clock the store uses), and runs
// nothing; the first request's answer is then stored and replayed. A
// reservation older than the lease, whose owner cannot be running any
// more, is taken over.
func TestIdempotencyNoTakeoverWhileRunning(t *testing.T) {
	ctx := context.Background()
	pool, st := newTestStore(t)
	s := mustServer(t, Deps{DB: pool, Store: st})

	var calls atomic.Int32
	started, release := make(chan struct{}), make(chan struct{})
	var releaseOnce sync.Once
	unblock := func() { releaseOnce.Do(func() { close(release) }) }
	t.Cleanup(unblock) // a failing test does not leave the first request blocked
	h := s.jsonPost(func(w http.ResponseWriter, r *http.Request) {
		n := calls.Add(1)
		if n == 1 {
			close(started)
			<-release
		}
		w.Header().Set("Location", "/v1/things/1")
		writeJSON(w, http.StatusCreated, map[string]any{"call": n})
	}, false)
	post := func(key string) *httptest.ResponseRecorder {
		r := httptest.NewRequest("POST", "/v1/things", strings.NewReader(`{"a":1}`))
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set("Idempotency-Key", key)
		r.RemoteAddr = "198.51.100.1:4000"
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	backdate := func(key string, d time.Duration) {
		t.Helper()
		if _, err := pool.ExecContext(ctx, `UPDATE idempotency_keys SET created_at = created_at - $2::interval WHERE key = $1`,
			key, pgIntervalTest(d)); err != nil {
			t.Fatal(err)
		}
	}

	first := make(chan *httptest.ResponseRecorder, 1)
	go func() { first <- post("k-running") }()
	<-started
	// Past the old 1-minute takeover: the first request still runs.
	backdate("k-running", 90*time.Second)
	w := post("k-running")
	if w.Code != http.StatusConflict || w.Header().Get("Content-Type") != api.ContentType || w.Header().Get("Retry-After") == "" {
		t.Fatalf("retry while the first runs: HTTP %d %v %s, want 409 problem+json with Retry-After", w.Code, w.Header(), w.Body)
	}
	var p struct {
		Type   string `json:"type"`
		Detail string `json:"detail"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil || p.Type != api.TypeIdempotencyBusy || !strings.Contains(p.Detail, "still being processed") {
		t.Fatalf("409 body %s (%v)", w.Body, err)
	}
	if n := calls.Load(); n != 1 {
		t.Fatalf("the handler ran %d times while the first request was running", n)
	}
	var inProgress int
	if err := pool.GetContext(ctx, &inProgress, `SELECT count(*) FROM idempotency_keys WHERE key = 'k-running' AND status IS NULL AND response_body IS NULL`); err != nil || inProgress != 1 {
		t.Fatalf("reservation after the refused retry: %d rows in progress (%v), want 1 untouched", inProgress, err)
	}

	unblock()
	if w := <-first; w.Code != http.StatusCreated || !strings.Contains(w.Body.String(), `"call":1`) {
		t.Fatalf("first request: HTTP %d %s", w.Code, w.Body)
	}
	w = post("k-running")
	if w.Code != http.StatusCreated || w.Header().Get("Idempotent-Replayed") != "true" || !strings.Contains(w.Body.String(), `"call":1`) ||
		w.Header().Get("Location") != "/v1/things/1" {
		t.Fatalf("replay: HTTP %d %v %s", w.Code, w.Header(), w.Body)
	}
	if n := calls.Load(); n != 1 {
		t.Fatalf("the handler ran %d times for one key", n)
	}

	// A reservation left by a process that died: once older than the
	// lease nobody can still be running it, and a retry takes it over.
	if _, reserved, err := st.ReserveIdempotencyKey(ctx, "ip:198.51.100.1", "k-orphan", idempotencyRequestHash(httptest.NewRequest("POST", "/v1/things", nil), []byte(`{"a":1}`)), time.Hour*24, s.idempotencyLease()); err != nil || !reserved {
		t.Fatalf("orphan reservation: %v %v", reserved, err)
	}
	if w := post("k-orphan"); w.Code != http.StatusConflict {
		t.Fatalf("fresh orphan: HTTP %d, want 409", w.Code)
	}
	backdate("k-orphan", s.idempotencyLease()+time.Second)
	if w := post("k-orphan"); w.Code != http.StatusCreated || w.Header().Get("Idempotent-Replayed") != "" {
		t.Fatalf("orphan past the lease: HTTP %d %v %s, want a fresh 201", w.Code, w.Header(), w.Body)
	}
}

func pgIntervalTest(d time.Duration) string { return fmt.Sprintf("%d microseconds", d.Microseconds()) }
