//go:build integration

package httpapi

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"

	"github.com/jmoiron/sqlx"
	"go.temporal.io/sdk/client"

	"certdesk/internal/testenv"
)

func TestReadyzReportsWhatIsDown(t *testing.T) {
	pool, _ := testenv.NewDatabase(t)
	tc := testenv.TemporalClient(t, client.Options{})
	log := slog.New(slog.NewTextHandler(io.Discard, nil))

	up := httptest.NewServer(mustServer(t, Deps{DB: pool, Temporal: tc, Log: log}).Handler())
	defer up.Close()
	if code, _ := getReadyz(t, up.URL); code != http.StatusOK {
		t.Fatalf("readyz with everything up: %d", code)
	}

	// A pool on a port where nothing listens stands for a stopped PostgreSQL.
	port, _ := testenv.FreePort()
	dead, err := sqlx.Open("postgres", "postgres://postgres@127.0.0.1:"+strconv.Itoa(port)+"/x?sslmode=disable&connect_timeout=2")
	if err != nil {
		t.Fatal(err)
	}
	defer dead.Close()
	down := httptest.NewServer(mustServer(t, Deps{DB: dead, Temporal: tc, Log: log}).Handler())
	defer down.Close()
	code, body := getReadyz(t, down.URL)
	if code != http.StatusServiceUnavailable {
		t.Fatalf("readyz with PostgreSQL down: %d", code)
	}
	if _, ok := body["down"].(map[string]any)["postgres"]; !ok {
		t.Fatalf("body does not name postgres: %v", body)
	}

	resp, err := http.Get(down.URL + "/healthz")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("healthz must not depend on PostgreSQL: %v %v", resp, err)
	}
}

func getReadyz(t *testing.T, base string) (int, map[string]any) {
	t.Helper()
	resp, err := http.Get(base + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&body)
	return resp.StatusCode, body
}
