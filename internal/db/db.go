// Package db opens CertDesk's PostgreSQL connection pool and applies the
// embedded migrations.
package db

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/jmoiron/sqlx"
	_ "github.com/lib/pq" // PostgreSQL driver registered as "postgres".
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	"certdesk/schema"
)

// MaxOpenConns bounds each process's pool. PostgreSQL's default
// max_connections is 100, shared with Temporal on the same server.
const MaxOpenConns = 20

// Open connects to url and checks the server answers within 10 s.
func Open(ctx context.Context, url string) (*sqlx.DB, error) {
	db, err := sqlx.Open("postgres", url)
	if err != nil {
		return nil, fmt.Errorf("db: open: %w", err)
	}
	db.SetMaxOpenConns(MaxOpenConns)
	db.SetMaxIdleConns(10)
	db.SetConnMaxIdleTime(5 * time.Minute)
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := db.PingContext(pctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("db: cannot reach PostgreSQL (check DATABASE_URL and that the server runs): %w", err)
	}
	return db, nil
}

// Migrate applies every pending migration. A PostgreSQL advisory lock held for
// the session serialises concurrent starts of workers and starters, so two
// processes never race on the same migration.
func Migrate(ctx context.Context, db *sqlx.DB, log *slog.Logger) error {
	locker, err := lock.NewPostgresSessionLocker()
	if err != nil {
		return fmt.Errorf("db: migration lock: %w", err)
	}
	p, err := goose.NewProvider(goose.DialectPostgres, db.DB, schema.FS, goose.WithSessionLocker(locker))
	if err != nil {
		return fmt.Errorf("db: migrations: %w", err)
	}
	results, err := p.Up(ctx)
	if err != nil {
		return fmt.Errorf("db: applying migrations: %w", err)
	}
	for _, r := range results {
		if log != nil {
			log.Info("migration applied", "version", r.Source.Version, "file", r.Source.Path, "took", r.Duration.String())
		}
	}
	return nil
}

// Ping reports whether the database answers within timeout, for readiness.
func Ping(ctx context.Context, db *sqlx.DB, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return db.PingContext(ctx)
}
