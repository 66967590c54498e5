//go:build integration

package httpapi

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"certdesk/internal/testenv"
)

// TestServedOpenAPILints runs Redocly CLI (pinned by
// tools/redocly/package-lock.json; install with
// `npm ci --prefix tools/redocly`) on the document GET /openapi.yaml
// serves, with tools/redocly/redocly.yaml: any error (a malformed schema, a
// missing operationId) fails. Warnings are printed, not fatal.
func TestServedOpenAPILints(t *testing.T) {
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	redocly := filepath.Join(root, "tools", "redocly", "node_modules", ".bin", "redocly")
	if _, err := os.Stat(redocly); err != nil {
		t.Fatalf("Redocly CLI is not installed (%v): run `npm ci --prefix tools/redocly`", err)
	}

	ts := httptest.NewServer(mustServer(t, Deps{}).Handler())
	defer ts.Close()
	resp, err := http.Get(ts.URL + "/openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /openapi.yaml: %d %v", resp.StatusCode, err)
	}
	file := filepath.Join(t.TempDir(), "openapi.yaml")
	if err := os.WriteFile(file, doc, 0o600); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, redocly, "lint", "--config", filepath.Join(root, "tools", "redocly", "redocly.yaml"),
		"--format", "codeframe", file)
	// Redocly would otherwise phone home (telemetry, update check).
	cmd.Env = append(os.Environ(), "REDOCLY_TELEMETRY=off", "REDOCLY_SUPPRESS_UPDATE_NOTICE=true")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("redocly lint of the served /openapi.yaml: %v\n%s", err, out)
	}
	t.Logf("redocly lint:\n%s", out)
}
