package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/jmoiron/sqlx"
	"go.temporal.io/sdk/client"

	"certdesk/internal/config"
	"certdesk/internal/db"
	"certdesk/internal/temporalclient"
)

// server holds what the HTTP handlers need.
type server struct {
	cfg *config.Config
	db  *sqlx.DB
	tc  client.Client
	log *slog.Logger
}

func newServer(cfg *config.Config, pool *sqlx.DB, tc client.Client, log *slog.Logger) *server {
	return &server{cfg: cfg, db: pool, tc: tc, log: log}
}

func (s *server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", s.healthz)
	mux.HandleFunc("GET /readyz", s.readyz)
	return mux
}

// healthz says the process is up; it checks nothing else so an orchestrator
// does not restart the starter because a dependency is down.
func (s *server) healthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// readyz answers 200 only when PostgreSQL and Temporal both answer, checked
// in parallel with a 2 s budget each, so it turns within the probe period.
func (s *server) readyz(w http.ResponseWriter, r *http.Request) {
	checks := map[string]func(context.Context) error{
		"postgres": func(ctx context.Context) error { return db.Ping(ctx, s.db, 2*time.Second) },
		"temporal": func(ctx context.Context) error { return temporalclient.Check(ctx, s.tc, 2*time.Second) },
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
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
