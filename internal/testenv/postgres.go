package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	_ "github.com/lib/pq"

	"certdesk/internal/db"
)

// AdminURL is the PostgreSQL server tests create their databases on:
// CERTDESK_TEST_DATABASE_URL, or the machine's local server.
func AdminURL() string {
	if u := os.Getenv("CERTDESK_TEST_DATABASE_URL"); u != "" {
		return u
	}
	return "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
}

var (
	templateOnce sync.Once
	templateName string
	templateErr  error
)

// migratedTemplate builds, once per test binary, a database holding the
// current schema; each test's database is a cheap copy of it.
func migratedTemplate(ctx context.Context) (string, error) {
	templateOnce.Do(func() {
		templateName = "certdesk_tmpl_" + randomSuffix()
		admin, err := sqlx.Open("postgres", AdminURL())
		if err != nil {
			templateErr = err
			return
		}
		defer admin.Close()
		if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+templateName); err != nil {
			templateErr = fmt.Errorf("testenv: create template database (is PostgreSQL running at %s?): %w", AdminURL(), err)
			return
		}
		atExit(func() { dropDatabase(templateName) })
		tdb, err := db.Open(ctx, withDatabase(AdminURL(), templateName))
		if err != nil {
			templateErr = err
			return
		}
		defer tdb.Close()
		templateErr = db.Migrate(ctx, tdb, nil)
	})
	return templateName, templateErr
}

// NewDatabase creates a fresh database holding the current schema, returns a
// pool on it and its URL, and drops it when the test ends.
func NewDatabase(t testing.TB) (*sqlx.DB, string) {
	t.Helper()
	ctx := context.Background()
	tmpl, err := migratedTemplate(ctx)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	name := "certdesk_test_" + randomSuffix()
	admin, err := sqlx.Open("postgres", AdminURL())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	// CREATE DATABASE … TEMPLATE fails while another session uses the
	// template; parallel tests in one binary take turns.
	createMu.Lock()
	_, err = admin.ExecContext(ctx, fmt.Sprintf("CREATE DATABASE %s TEMPLATE %s", name, tmpl))
	createMu.Unlock()
	if err != nil {
		t.Fatalf("testenv: create database: %v", err)
	}
	u := withDatabase(AdminURL(), name)
	pool, err := db.Open(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		pool.Close()
		dropDatabase(name)
	})
	return pool, u
}

var createMu sync.Mutex

// NewEmptyDatabase creates a database with no schema, for migration tests.
func NewEmptyDatabase(t testing.TB) string {
	t.Helper()
	name := "certdesk_empty_" + randomSuffix()
	admin, err := sqlx.Open("postgres", AdminURL())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if _, err := admin.Exec("CREATE DATABASE " + name); err != nil {
		t.Fatalf("testenv: create database: %v", err)
	}
	t.Cleanup(func() { dropDatabase(name) })
	return withDatabase(AdminURL(), name)
}

func dropDatabase(name string) {
	admin, err := sqlx.Open("postgres", AdminURL())
	if err != nil {
		return
	}
	defer admin.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, _ = admin.ExecContext(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
}

func withDatabase(base, name string) string {
	u, err := url.Parse(base)
	if err != nil {
		panic(err)
	}
	u.Path = "/" + name
	return u.String()
}

func randomSuffix() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
