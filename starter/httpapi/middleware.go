package httpapi

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"certdesk/internal/api"
	"certdesk/internal/store"
)

// resellerAuth authenticates "Authorization: Bearer <key>" against the
// stored SHA-256 of reseller keys, then applies the reseller's rate limit.
// Failed attempts count against the client address's public limit, so keys
// cannot be guessed quickly.
func (s *Server) resellerAuth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key, ok := bearer(r)
		if !ok || !strings.HasPrefix(key, "cdk_") || len(key) > 128 {
			s.unauthorized(w, r)
			return
		}
		rs, err := s.st.ResellerByKeyHash(r.Context(), store.HashAPIKey(key))
		if errors.Is(err, store.ErrNotFound) {
			s.unauthorized(w, r)
			return
		}
		if err != nil {
			s.internalError(w, r, "authenticate reseller", err)
			return
		}
		if info, _ := r.Context().Value(ctxInfo).(*requestInfo); info != nil {
			info.resellerID = rs.ID
		}
		if !s.allow(w, r, s.resellerLimiter, rs.ID) {
			return
		}
		ctx := context.WithValue(r.Context(), ctxReseller, rs.ID)
		ctx = context.WithValue(ctx, ctxClientScope, "reseller:"+rs.ID)
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

func (s *Server) unauthorized(w http.ResponseWriter, r *http.Request) {
	if !s.allow(w, r, s.publicLimiter, s.clientIP(r)) {
		return
	}
	w.Header().Set("WWW-Authenticate", `Bearer realm="certdesk"`)
	s.problem(w, r, api.New(http.StatusUnauthorized, api.TypeUnauthorized,
		"send the reseller API key as Authorization: Bearer <key> (keys are made with `starter reseller add`)"))
}

// bearer returns the token of an Authorization: Bearer header.
func bearer(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	return tok, tok != ""
}

// resellerOf is the authenticated reseller of the request.
func resellerOf(r *http.Request) string {
	id, _ := r.Context().Value(ctxReseller).(string)
	return id
}

// publicLimit applies the per-address limit of the public endpoints and
// scopes Idempotency-Keys to the address.
func (s *Server) publicLimit(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ip := s.clientIP(r)
		if !s.allow(w, r, s.publicLimiter, ip) {
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), ctxClientScope, "ip:"+ip)))
	})
}

// codeLimit is the stricter per-address limit of code submissions.
func (s *Server) codeLimit(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.allow(w, r, s.codeLimiter, s.clientIP(r)) {
			return
		}
		next.ServeHTTP(w, r)
	})
}

// allow takes a token for key from set, or answers 429 with Retry-After.
func (s *Server) allow(w http.ResponseWriter, r *http.Request, set *limiterSet, key string) bool {
	wait, ok := set.take(key, s.now())
	if ok {
		return true
	}
	secs := int(math.Ceil(wait.Seconds()))
	if secs < 1 {
		secs = 1
	}
	w.Header().Set("Retry-After", strconv.Itoa(secs))
	s.problem(w, r, api.New(http.StatusTooManyRequests, api.TypeRateLimited, "slow down and retry after the time in Retry-After").
		With("retry_after", secs))
	return false
}

// limiterSet holds one token bucket per key, forgetting idle ones.
type limiterSet struct {
	mu    sync.Mutex
	r     rate.Limit
	burst int
	m     map[string]*limiterEntry
	swept time.Time
}

type limiterEntry struct {
	lim  *rate.Limiter
	seen time.Time
}

func newLimiterSet(perSecond float64, burst int) *limiterSet {
	if burst < 1 {
		burst = 1
	}
	return &limiterSet{r: rate.Limit(perSecond), burst: burst, m: map[string]*limiterEntry{}}
}

// take reports whether a request may proceed now, else how long to wait.
func (l *limiterSet) take(key string, now time.Time) (time.Duration, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.swept) > time.Minute {
		for k, e := range l.m {
			if now.Sub(e.seen) > 10*time.Minute {
				delete(l.m, k)
			}
		}
		l.swept = now
	}
	e := l.m[key]
	if e == nil {
		e = &limiterEntry{lim: rate.NewLimiter(l.r, l.burst)}
		l.m[key] = e
	}
	e.seen = now
	res := e.lim.ReserveN(now, 1)
	if !res.OK() {
		return time.Minute, false
	}
	if d := res.DelayFrom(now); d > 0 {
		res.CancelAt(now)
		return d, false
	}
	return 0, true
}

// jsonPost reads and checks a JSON POST body (1 MiB, application/json),
// then applies the Idempotency-Key, then calls h with the body in the
// context (bodyOf). emptyOK accepts a missing body (withdraw).
func (s *Server) jsonPost(h http.HandlerFunc, emptyOK bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, p := api.ReadBody(w, r, api.MaxBody)
		if p != nil {
			s.problem(w, r, p)
			return
		}
		if p := api.CheckJSONContentType(r, len(body), emptyOK); p != nil {
			s.problem(w, r, p)
			return
		}
		r = r.WithContext(context.WithValue(r.Context(), ctxBody, body))
		s.idempotent(w, r, body, h)
	})
}

// bodyOf returns the body jsonPost read.
func bodyOf(r *http.Request) []byte {
	b, _ := r.Context().Value(ctxBody).([]byte)
	return b
}

// idempotent honours Idempotency-Key (IETF draft-ietf-httpapi-idempotency-key-header):
// the first request with a key runs and, if it succeeds (2xx), its answer is
// stored; the same key with the same request replays that answer; with a
// different request it is refused with 422; while the first still runs, 409.
// Keys are scoped to the reseller, or to the client address on public
// endpoints. A failed request stores nothing and frees the key.
func (s *Server) idempotent(w http.ResponseWriter, r *http.Request, body []byte, h http.HandlerFunc) {
	key := r.Header.Get("Idempotency-Key")
	if key == "" {
		h(w, r)
		return
	}
	key = strings.Trim(key, `"`) // the draft's sf-string form
	if len(key) < 1 || len(key) > 255 || strings.IndexFunc(key, func(c rune) bool { return c < 0x21 || c > 0x7e }) >= 0 {
		var v api.Validation
		v.Add("Idempotency-Key", "invalid", "use 1 to 255 printable ASCII characters, e.g. a UUID")
		s.problem(w, r, v.Problem())
		return
	}
	scope, _ := r.Context().Value(ctxClientScope).(string)
	if scope == "" {
		scope = "ip:" + s.clientIP(r)
	}
	rec, reserved, err := s.st.ReserveIdempotencyKey(r.Context(), scope, key, idempotencyRequestHash(r, body), s.limits.IdempotencyTTL, s.idempotencyLease())
	switch {
	case errors.Is(err, store.ErrIdempotencyMismatch):
		s.problem(w, r, api.New(http.StatusUnprocessableEntity, api.TypeIdempotencyReused,
			"this Idempotency-Key was used for a different request; use a new key for a new request"))
		return
	case errors.Is(err, store.ErrIdempotencyInProgress):
		w.Header().Set("Retry-After", "1")
		s.problem(w, r, api.New(http.StatusConflict, api.TypeIdempotencyBusy, "the first request with this key is still being processed; retry shortly"))
		return
	case err != nil:
		s.internalError(w, r, "idempotency key", err)
		return
	case !reserved:
		if rec.ContentType != "" {
			w.Header().Set("Content-Type", rec.ContentType)
		}
		if rec.Location != "" {
			w.Header().Set("Location", rec.Location)
		}
		w.Header().Set("Idempotent-Replayed", "true")
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(*rec.Status)
		_, _ = w.Write(rec.ResponseBody)
		return
	}

	cw := &captureWriter{ResponseWriter: w}
	completed := false
	defer func() {
		if completed {
			return
		}
		// Panics and failures free the key; use a fresh context, the
		// request's may be cancelled.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), idempotencyFinish)
		defer cancel()
		if err := s.st.ReleaseIdempotencyKey(ctx, scope, key, rec.CreatedAt); err != nil {
			s.log.Error("release idempotency key", "error", err)
		}
	}()
	// The handler's deadline is what makes the lease safe: see
	// idempotencyLease.
	hctx, hcancel := context.WithTimeout(r.Context(), s.limits.RequestTimeout)
	defer hcancel()
	stored := &storedAnswer{}
	h(cw, r.WithContext(context.WithValue(hctx, ctxStoredAnswer, stored)))
	if cw.code >= 200 && cw.code < 300 {
		body := cw.buf.Bytes()
		if stored.set {
			body = stored.body
		}
		ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), idempotencyFinish)
		defer cancel()
		// Fenced by rec.CreatedAt: should this request have overrun its
		// lease and been taken over, its answer is not stored over the
		// retry's reservation (the client that sent it got a 5xx or
		// nothing, and the retry's answer is the one kept).
		if err := s.st.CompleteIdempotencyKey(ctx, scope, key, rec.CreatedAt, cw.code, cw.Header().Get("Content-Type"), cw.Header().Get("Location"), body); err != nil {
			s.log.Error("store idempotent answer", "error", err)
			return
		}
		completed = true
	}
}

// idempotencyFinish bounds storing or releasing a reservation once the
// handler has returned.
const idempotencyFinish = 5 * time.Second

// idempotencyLeaseMargin covers what the deadlines do not: a handler
// noticing its context's end a little late, and the round trips between
// the reservation's created_at (PostgreSQL's clock) and the deadline's
// start (this process's clock; only elapsed time on each matters, so the
// two clocks need not agree).
const idempotencyLeaseMargin = time.Minute

// idempotencyLease is how long an uncompleted Idempotency-Key reservation
// is protected from takeover. It used to be a fixed minute, shorter than
// a request may run, so a retry could run the request a second time while
// the first was still at work. Now the owner's handler runs under a
// context that ends RequestTimeout after the reservation, storing or
// releasing the answer takes at most idempotencyFinish more, and the
// lease adds idempotencyLeaseMargin on top: a reservation younger than
// the lease may have a running owner and gets 409; an older one belongs
// to a process that died (or a handler that ignored its deadline, whose
// late answer the store's fencing token then keeps out). This needs no
// heartbeat and no schema change; its cost is that a crashed request's
// key stays busy for about two minutes.
func (s *Server) idempotencyLease() time.Duration { return leaseFor(s.limits.RequestTimeout) }

func leaseFor(requestTimeout time.Duration) time.Duration {
	return requestTimeout + idempotencyFinish + idempotencyLeaseMargin
}

// idempotencyRequestHash identifies the request an Idempotency-Key was
// used with: method, route, path and body.
func idempotencyRequestHash(r *http.Request, body []byte) []byte {
	hash := sha256.New()
	hash.Write([]byte(r.Method + " " + r.Pattern + "\n" + r.URL.Path + "\n"))
	hash.Write(body)
	return hash.Sum(nil)
}

// storedAnswer is what idempotent keeps of a successful answer when the
// handler says (storeInstead): an answer carrying a secret shown once is
// stored without it.
type storedAnswer struct {
	set  bool
	body []byte
}

// storeInstead makes idempotent store body, not the answer written, for a
// replay of this request.
func storeInstead(r *http.Request, body []byte) {
	if a, _ := r.Context().Value(ctxStoredAnswer).(*storedAnswer); a != nil {
		a.set, a.body = true, body
	}
}

// captureWriter copies what a handler writes.
type captureWriter struct {
	http.ResponseWriter
	code int
	buf  bytes.Buffer
}

func (w *captureWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *captureWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	w.buf.Write(b)
	return w.ResponseWriter.Write(b)
}
