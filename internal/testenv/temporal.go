package testenv

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/testsuite"

	"certdesk/internal/cases"
)

var (
	temporalOnce sync.Once
	temporalSrv  *testsuite.DevServer
	temporalErr  error
)

// TemporalBinary is ./bin/temporal, built by `make tools`.
func TemporalBinary() (string, error) {
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	p := filepath.Join(root, "bin", "temporal")
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("the Temporal CLI is not built at %s: run `make tools`", p)
	}
	return p, nil
}

// Temporal returns the dev server shared by this test binary (in-memory
// SQLite, CertDesk's search attributes registered). Tests isolate themselves
// by task queue and workflow ID.
func Temporal(t testing.TB) *testsuite.DevServer {
	t.Helper()
	temporalOnce.Do(func() {
		var bin string
		bin, temporalErr = TemporalBinary()
		if temporalErr != nil {
			return
		}
		sa := make(map[string]string)
		var args []string
		for _, a := range cases.SearchAttributeTypes {
			sa[a.Name] = a.Type
			args = append(args, "--search-attribute", a.Name+"="+a.Type)
		}
		args = append(args, "--sqlite-pragma", "journal_mode=wal", "--sqlite-pragma", "synchronous=normal")
		// Eager activities: a workflow task completion hands its activity
		// straight back to the worker, saving a matching round trip.
		args = append(args, "--dynamic-config-value", "system.enableActivityEagerExecution=true")
		// One partition per task queue: on one machine with a few pollers,
		// four partitions leave tasks unmatched (written to the database and
		// read back) while pollers wait on another partition.
		args = append(args, "--dynamic-config-value", "matching.numTaskqueueReadPartitions=1",
			"--dynamic-config-value", "matching.numTaskqueueWritePartitions=1")
		temporalSrv, temporalErr = testsuite.StartDevServer(context.Background(), testsuite.DevServerOptions{
			ExistingPath: bin,
			ClientOptions: &client.Options{
				Namespace: "default",
				Logger:    quietLogger{},
			},
			LogLevel:  "error",
			ExtraArgs: args,
		})
		if temporalErr == nil {
			atExit(func() { _ = temporalSrv.Stop() })
		}
	})
	if temporalErr != nil {
		t.Fatalf("testenv: Temporal dev server: %v", temporalErr)
	}
	return temporalSrv
}

// TemporalClient dials the shared dev server with opts (HostPort and
// Namespace filled in) and closes the client when the test ends.
func TemporalClient(t testing.TB, opts client.Options) client.Client {
	t.Helper()
	srv := Temporal(t)
	opts.HostPort = srv.FrontendHostPort()
	if opts.Namespace == "" {
		opts.Namespace = "default"
	}
	if opts.Logger == nil {
		opts.Logger = quietLogger{}
	}
	c, err := client.Dial(opts)
	if err != nil {
		t.Fatalf("testenv: dial Temporal: %v", err)
	}
	t.Cleanup(c.Close)
	return c
}

// quietLogger drops SDK chatter so test output shows only failures.
type quietLogger struct{}

func (quietLogger) Debug(string, ...interface{}) {}
func (quietLogger) Info(string, ...interface{})  {}
func (quietLogger) Warn(string, ...interface{})  {}
func (quietLogger) Error(string, ...interface{}) {}
