// Package testenv starts and hands out the real services CertDesk's
// integration tests run against: PostgreSQL (a fresh, migrated database per
// test), the Temporal dev server built into ./bin, and MailDev from
// tools/maildev. Nothing here downloads anything; a missing tool is a test
// failure that says which make target builds it.
//
// Services that are expensive to start (Temporal, MailDev) start once per test
// binary; wrap TestMain with Main so they are stopped when the tests end.
package testenv

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

var (
	stopMu sync.Mutex
	stops  []func()
)

func atExit(f func()) {
	stopMu.Lock()
	defer stopMu.Unlock()
	stops = append(stops, f)
}

// Main runs the tests and then stops every service this binary started.
// Use it as: func TestMain(m *testing.M) { testenv.Main(m) }.
func Main(m *testing.M) {
	code := m.Run()
	stopMu.Lock()
	for i := len(stops) - 1; i >= 0; i-- {
		stops[i]()
	}
	stopMu.Unlock()
	os.Exit(code)
}

// RepoRoot is the directory holding go.mod, found by walking up from the
// test's working directory.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("testenv: no go.mod above the working directory")
		}
		dir = parent
	}
}

// FreePort asks the kernel for a free loopback TCP port.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
