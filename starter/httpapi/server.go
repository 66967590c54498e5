// Package httpapi is CertDesk's HTTP API as a library: New builds it from
// narrow interfaces this package declares (the store methods and Temporal
// client calls it makes, a clock, configuration values), and the starter
// command only wires real ones in. It sits above the workflows (it starts
// them) and below the command.
package httpapi

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"time"

	"go.temporal.io/sdk/client"

	"certdesk/internal/api"
	"certdesk/internal/pki"
)

// Limits are the per-client rate limits (token buckets) and body sizes.
type Limits struct {
	// ResellerRate requests per second per reseller, with ResellerBurst.
	ResellerRate  float64
	ResellerBurst int
	// PublicRate requests per second per client address on the public /v1
	// endpoints (and on failed reseller authentication).
	PublicRate  float64
	PublicBurst int
	// CodeRate submissions per second per client address on
	// /v1/verifications/{id}/code: with the workflow's own lock after five
	// wrong codes, it stops spraying guesses across many verifications.
	CodeRate  float64
	CodeBurst int
	// IdempotencyTTL is how long an Idempotency-Key answer is kept.
	IdempotencyTTL time.Duration
	// RequestTimeout ends the context of a request with an
	// Idempotency-Key this long after its key was reserved; the
	// reservation is taken over only a safe margin after that (see
	// idempotencyLease). Zero means 60 s, the starter's WriteTimeout,
	// after which the client cannot receive the answer anyway.
	RequestTimeout time.Duration
}

const defaultRequestTimeout = 60 * time.Second

// DefaultLimits are the production defaults.
func DefaultLimits() Limits {
	return Limits{
		// Above the 100 issuances/s performance target for one reseller.
		ResellerRate: 200, ResellerBurst: 400,
		PublicRate: 5, PublicBurst: 20,
		CodeRate: 10.0 / 60, CodeBurst: 10,
		IdempotencyTTL: 24 * time.Hour,
		RequestTimeout: defaultRequestTimeout,
	}
}

// Deps is what the HTTP API is built from. Store and Temporal are required
// for every /v1 route; a nil DB or Temporal makes /readyz report it down.
type Deps struct {
	Config   Config
	DB       Pinger       // for /readyz only
	Store    Store        // with the PII key ring: certificate DER and reseller contacts are encrypted
	Temporal Temporal     // with the payload codec: workflow inputs carry personal data
	Codec    PayloadCodec // the payload codec served at /codec; nil disables it
	Log      *slog.Logger
	Limits   Limits // the zero value means DefaultLimits
	// StaffAuth authenticates staff at /codec; nil means personal tokens
	// from Store (`starter staff add`).
	StaffAuth StaffAuthenticator
	// Now defaults to time.Now.
	Now func() time.Time
}

// Server is CertDesk's HTTP API: the reseller and public /v1 endpoints,
// the CA repository (CA certificates, CRLs, OCSP), the staff codec for the
// Temporal tools, health, metrics and /openapi.yaml.
type Server struct {
	cfg   Config
	db    Pinger
	st    Store
	tc    Temporal
	codec PayloadCodec
	staff StaffAuthenticator
	// sessionKey signs staff session cookies.
	sessionKey []byte
	log        *slog.Logger
	limits     Limits
	now        func() time.Time
	profiles   *pki.ProfileSet
	repo       *caRepository
	metrics    *metrics

	ocspCache  ocspCache
	ocspParsed ocspParsed

	resellerLimiter *limiterSet
	publicLimiter   *limiterSet
	codeLimiter     *limiterSet

	routes []route
	mux    *http.ServeMux
}

// route is one registered endpoint; the OpenAPI test walks this table.
type route struct {
	Method  string
	Pattern string // Go ServeMux path pattern
	Handler http.Handler
}

// New builds the HTTP API from d. A CA directory that cannot be read is
// logged, not fatal: the repository and OCSP answer 503 until the CA exists
// and the process restarts.
func New(d Deps) (*Server, error) {
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	if d.Limits == (Limits{}) {
		d.Limits = DefaultLimits()
	}
	if d.Limits.RequestTimeout <= 0 {
		d.Limits.RequestTimeout = defaultRequestTimeout
	}
	// The purge deletes every record older than IdempotencyTTL, running
	// reservations too: it must not free one inside its lease.
	if lease := leaseFor(d.Limits.RequestTimeout); d.Limits.IdempotencyTTL < lease {
		d.Limits.IdempotencyTTL = lease
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	profiles, err := pki.NewProfileSet(pki.ProfileOptions{})
	if err != nil {
		return nil, err
	}
	s := &Server{
		cfg: d.Config, db: d.DB, st: d.Store, tc: d.Temporal, codec: d.Codec, log: d.Log,
		limits: d.Limits, now: d.Now, profiles: profiles, metrics: newMetrics(),
		resellerLimiter: newLimiterSet(d.Limits.ResellerRate, d.Limits.ResellerBurst),
		publicLimiter:   newLimiterSet(d.Limits.PublicRate, d.Limits.PublicBurst),
		codeLimiter:     newLimiterSet(d.Limits.CodeRate, d.Limits.CodeBurst),
		staff:           staffAuthFor(d),
		sessionKey:      newSessionKey(),
	}
	if d.Config.StaffToken != "" {
		// Sessions survive a restart and span starters sharing the token.
		k := sha256.Sum256([]byte("certdesk codec session|" + d.Config.StaffToken))
		s.sessionKey = k[:]
	}
	if s.cfg.CADir != "" {
		repo, err := loadCARepository(s.cfg.CADir)
		if err != nil {
			s.log.Warn("CA repository not loaded: /repository/ca and /ocsp answer 503 until the CA exists and the starter restarts", "dir", s.cfg.CADir, "error", err)
		} else {
			s.repo = repo
		}
	}
	s.register()
	return s, nil
}

// Run does the server's background work until ctx ends: it purges expired
// Idempotency-Key answers hourly and keeps the OCSP cache fresh. It needs
// Deps.Store; without Run the OCSP cache entries simply expire.
func (s *Server) Run(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); s.purgeIdempotencyKeys(ctx) }()
	go func() { defer wg.Done(); s.refreshOCSPCache(ctx) }()
	wg.Wait()
}

// purgeIdempotencyKeys deletes expired Idempotency-Key answers hourly.
func (s *Server) purgeIdempotencyKeys(ctx context.Context) {
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		if n, err := s.st.PurgeIdempotencyKeys(ctx, s.limits.IdempotencyTTL); err != nil {
			if ctx.Err() == nil {
				s.log.Warn("purge idempotency keys", "error", err)
			}
		} else if n > 0 {
			s.log.Info("purged idempotency keys", "rows", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// register builds the route table and the mux.
func (s *Server) register() {
	reseller := s.resellerAuth
	public := s.publicLimit
	s.routes = []route{
		// Operators.
		{"GET", "/healthz", http.HandlerFunc(s.healthz)},
		{"GET", "/readyz", http.HandlerFunc(s.readyz)},
		{"GET", "/metrics", s.metrics.handler()},
		{"GET", "/openapi.yaml", http.HandlerFunc(s.openapi)},

		// Resellers.
		{"POST", "/v1/applications", reseller(s.jsonPost(s.createApplication, false))},
		{"GET", "/v1/applications/{id}", reseller(http.HandlerFunc(s.getApplication))},
		{"POST", "/v1/applications/{id}/withdraw", reseller(s.jsonPost(s.withdrawApplication, true))},
		{"GET", "/v1/certificates/{serial}", reseller(http.HandlerFunc(s.getCertificate))},
		{"POST", "/v1/certificates/{serial}/corrections", reseller(s.jsonPost(s.createCorrection, false))},
		{"POST", "/v1/certificates/{serial}/revocation", reseller(s.jsonPost(s.revokeByReseller, false))},
		{"POST", "/v1/acme/eab", reseller(s.eabReplay(s.jsonPost(s.createEAB, false)))},
		{"DELETE", "/v1/acme/eab/{kid}", reseller(http.HandlerFunc(s.revokeEAB))},

		// Anyone (key holders, data subjects, subscribers).
		{"POST", "/v1/revocations", public(s.jsonPost(s.revokeByKeyProof, false))},
		{"POST", "/v1/key-compromises", public(s.jsonPost(s.reportKeyCompromise, false))},
		{"POST", "/v1/disclosure-requests", public(s.jsonPost(s.createDisclosureRequest, false))},
		{"POST", "/v1/inquiries", public(s.jsonPost(s.createInquiry, false))},
		{"GET", "/v1/disclosures/{token}", public(http.HandlerFunc(s.getDisclosure))},
		{"POST", "/v1/verifications/{id}/code", public(s.codeLimit(s.jsonPost(s.submitCode, false)))},

		// Relying parties: the repository (URLs printed in certificates, internal/pki/urls.go).
		{"GET", "/repository/ca/{file}", http.HandlerFunc(s.caCertificate)},
		{"GET", "/repository/crl/{issuer}/{shard}", http.HandlerFunc(s.crl)},
		{"GET", "/repository/crl/{file}", http.HandlerFunc(s.crlPartitions)},
		{"GET", "/ocsp/{request...}", http.HandlerFunc(s.ocsp)},
		{"POST", "/ocsp", http.HandlerFunc(s.ocsp)},

		// Staff: the Temporal UI / CLI remote codec.
		{"POST", "/codec/encode", s.staffOnly(http.HandlerFunc(s.codecEncode))},
		{"POST", "/codec/decode", s.staffOnly(http.HandlerFunc(s.codecDecode))},
		{"GET", "/codec/session", http.HandlerFunc(s.codecSessionForm)},
		{"POST", "/codec/session", http.HandlerFunc(s.codecSession)},
		{"OPTIONS", "/codec/encode", http.HandlerFunc(s.codecPreflight)},
		{"OPTIONS", "/codec/decode", http.HandlerFunc(s.codecPreflight)},
		// Staff: the compiled disclosure package, checked before approve-disclosure.
		{"GET", "/staff/disclosure-drafts/{id}", s.staffOnly(http.HandlerFunc(s.getDisclosureDraft))},
	}
	s.mux = http.NewServeMux()
	for _, rt := range s.routes {
		s.mux.Handle(rt.Method+" "+rt.Pattern, rt.Handler)
	}
}

// Handler is the whole HTTP interface: request ids, panics, metrics,
// problem+json for unknown routes, then the mux.
func (s *Server) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rid := requestID(r)
		w.Header().Set("X-Request-Id", rid)
		ctx := context.WithValue(r.Context(), ctxRequestID, rid)
		info := &requestInfo{}
		ctx = context.WithValue(ctx, ctxInfo, info)
		r = r.WithContext(ctx)
		sw := &statusWriter{ResponseWriter: w}
		label := ""
		defer func() {
			if p := recover(); p != nil {
				s.log.Error("panic in handler", "panic", fmt.Sprint(p), "request_id", rid, "path", r.URL.Path)
				if !sw.wrote {
					s.problem(sw, r, api.New(http.StatusInternalServerError, api.TypeInternal, "an unexpected error occurred; quote the request id to support"))
				}
			}
			if label == "" {
				label = r.Pattern
			}
			if label == "" {
				label = "unmatched"
			}
			d := time.Since(start)
			s.metrics.observe(label, sw.status(), d)
			level := slog.LevelInfo
			if !strings.HasPrefix(label, "POST /v1") && !strings.HasPrefix(label, "GET /v1") {
				level = slog.LevelDebug
			}
			if s.log.Enabled(r.Context(), level) { // the arguments allocate even when dropped
				s.log.Log(r.Context(), level, "http request", "route", label, "status", sw.status(),
					"duration_ms", d.Milliseconds(), "request_id", rid, "reseller", info.resellerID)
			}
		}()

		// OCSP GET carries base64 in the path, which may contain "//" or
		// "%2F": served before the mux, whose path cleaning would redirect.
		if (r.Method == http.MethodGet || r.Method == http.MethodHead) && strings.HasPrefix(r.URL.Path, "/ocsp/") {
			label = "GET /ocsp/{request...}"
			s.ocsp(sw, r)
			return
		}
		if _, pattern := s.mux.Handler(r); pattern == "" {
			s.unmatched(sw, r)
			return
		}
		s.mux.ServeHTTP(sw, r)
	})
}

// unmatched answers a request no route takes with problem+json: 405 (with
// Allow) when the path exists under other methods, 404 otherwise.
func (s *Server) unmatched(w http.ResponseWriter, r *http.Request) {
	rec := httptest.NewRecorder()
	s.mux.ServeHTTP(rec, r)
	switch rec.Code {
	case http.StatusMethodNotAllowed:
		w.Header().Set("Allow", rec.Header().Get("Allow"))
		s.problem(w, r, api.New(http.StatusMethodNotAllowed, api.TypeMethodNotAllowed, "use one of: "+rec.Header().Get("Allow")))
	case http.StatusMovedPermanently, http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
	default:
		s.problem(w, r, api.New(http.StatusNotFound, api.TypeNotFound, "no such resource; see /openapi.yaml"))
	}
}

// healthz says the process is up; it checks nothing else so an orchestrator
// does not restart the starter because a dependency is down.
func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// readyz answers 200 only when PostgreSQL and Temporal both answer, checked
// in parallel with a 2 s budget each, so it turns within the probe period.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	checks := map[string]func(context.Context) error{
		"postgres": func(ctx context.Context) error {
			if s.db == nil {
				return errors.New("no database configured")
			}
			ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			defer cancel()
			return s.db.PingContext(ctx)
		},
		"temporal": func(ctx context.Context) error {
			if s.tc == nil {
				return errors.New("no Temporal client configured")
			}
			ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			defer cancel()
			_, err := s.tc.CheckHealth(ctx, &client.CheckHealthRequest{})
			return err
		},
	}
	var mu sync.Mutex
	down := map[string]string{}
	var wg sync.WaitGroup
	for name, check := range checks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := check(r.Context()); err != nil {
				mu.Lock()
				down[name] = err.Error()
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(down) > 0 {
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "unavailable", "down": down})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// problem writes p with the request id as its instance.
// validator is a request type that checks itself.
type validator interface{ Validate() *api.Validation }

// decodeValid decodes the JSON body into req and validates it; on either
// problem it answers with problem+json and returns false.
func (s *Server) decodeValid(w http.ResponseWriter, r *http.Request, req validator) bool {
	if p := api.DecodeJSON(bodyOf(r), req, false); p != nil {
		s.problem(w, r, p)
		return false
	}
	if p := req.Validate().Problem(); p != nil {
		s.problem(w, r, p)
		return false
	}
	return true
}

func (s *Server) problem(w http.ResponseWriter, r *http.Request, p *api.Problem) {
	if rid, _ := r.Context().Value(ctxRequestID).(string); rid != "" && p.Instance == "" {
		p.Instance = "urn:certdesk:request:" + rid
	}
	api.Write(w, p)
}

// internalError logs err (never sent to the client) and answers 500.
func (s *Server) internalError(w http.ResponseWriter, r *http.Request, what string, err error) {
	s.log.Error(what, "error", err, "request_id", r.Context().Value(ctxRequestID))
	s.problem(w, r, api.New(http.StatusInternalServerError, api.TypeInternal, "an unexpected error occurred; quote the request id to support"))
}

type ctxKey int

const (
	ctxRequestID ctxKey = iota
	ctxInfo
	ctxReseller
	ctxBody
	ctxClientScope
	ctxStaff
	ctxStoredAnswer
)

// requestInfo is filled in by handlers for the access log.
type requestInfo struct {
	resellerID string
}

var requestIDPattern = regexp.MustCompile(`^[A-Za-z0-9._-]{8,64}$`)

// requestID keeps a well-formed X-Request-Id from a proxy, else makes one.
func requestID(r *http.Request) string {
	if v := r.Header.Get("X-Request-Id"); requestIDPattern.MatchString(v) {
		return v
	}
	return randomID(12)
}

// randomID returns 2n lower-case hex characters from crypto/rand.
func randomID(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return hex.EncodeToString(b)
}

// statusWriter records the status code for metrics and logs.
type statusWriter struct {
	http.ResponseWriter
	code  int
	wrote bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wrote {
		w.code, w.wrote = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if !w.wrote {
		w.code, w.wrote = http.StatusOK, true
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) status() int {
	if !w.wrote {
		return http.StatusOK
	}
	return w.code
}

// Unwrap lets http.ResponseController reach the connection.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// errTemporalUnavailable marks Temporal being unreachable.
var errTemporalUnavailable = errors.New("temporal unavailable")
