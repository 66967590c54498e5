package testenv

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	ctgo "github.com/google/certificate-transparency-go"
	ctclient "github.com/google/certificate-transparency-go/client"
	"github.com/google/certificate-transparency-go/jsonclient"
	"github.com/google/certificate-transparency-go/loglist3"

	"certdesk/internal/ct"
)

// CT logs: TesseraCT v0.1.1 with its POSIX backend (bin/tesseract-posix,
// built from tools/tesseract by `make tesseract`), one process per log, each
// with its own ECDSA P-256 key, storage directory and operator in the log
// list. The same code runs the logs of the tests (SharedCTLogs, NewCTLogs)
// and of `make run` (internal/testenv/cmd/ctlogs via scripts/ctlogs.sh).
//
// TesseraCT is a Static CT API log (c2sp.org/static-ct-api): submissions
// through RFC 6962's add-chain/add-pre-chain on the submission URL, reads
// (checkpoint, tiles, issuers) as files of its storage directory, which this
// harness serves over HTTP at the monitoring URL. The log list therefore
// names the logs as "tiled_logs".

// CTLogsConfig describes a set of logs to start.
type CTLogsConfig struct {
	// Dir holds everything: roots.pem, log_list.json and a directory per log
	// (key, storage, process output). An existing log's key, origin and
	// creation time are reused, so a persistent Dir keeps its logs.
	Dir string
	// N logs, each under its own operator; 0 means 2.
	N int
	// RootsPEM: the root certificates the logs accept besides the harness's
	// own warm-up root.
	RootsPEM []byte
	// Ports: each log's submission port; missing or 0 means a free one.
	Ports []int
	// MonitorPort serves every log's read API at /<name>/; 0: a free one.
	MonitorPort int
	// Binary is tesseract-posix; empty means bin/tesseract-posix.
	Binary string
}

// CTLog is one running TesseraCT log.
type CTLog struct {
	// Name is the log's path segment and origin suffix ("ct-a"); Operator
	// its operator in the log list.
	Name, Operator string
	Port           int
	// PublicKeyDER is the log's SubjectPublicKeyInfo; ID its SHA-256.
	PublicKeyDER []byte
	ID           [sha256.Size]byte
	// Origin is the log's checkpoint origin, "127.0.0.1/<name>".
	Origin string
	// StorageDir is the POSIX storage the monitoring URL serves.
	StorageDir string

	set     *CTLogs
	dir     string
	mu      sync.Mutex
	cmd     *exec.Cmd
	exited  chan struct{} // closed when cmd has been waited for
	created time.Time
}

// SubmissionURL is the base of the log's RFC 6962 submission API
// (…/ct/v1/add-pre-chain).
func (l *CTLog) SubmissionURL() string { return fmt.Sprintf("http://127.0.0.1:%d/%s", l.Port, l.Name) }

// MonitoringURL is the base of the log's Static CT API read path
// (…/checkpoint, …/tile/…, …/issuer/…).
func (l *CTLog) MonitoringURL() string {
	return fmt.Sprintf("http://127.0.0.1:%d/%s", l.set.MonitorPort, l.Name)
}

// CTLogs is a running set of logs and the files describing them.
type CTLogs struct {
	Logs []*CTLog
	// ListPath is the v3 log_list.json naming every log (for
	// CERTDESK_CT_LOG_LIST); RootsPath the roots file the logs accept.
	ListPath, RootsPath string
	MonitorPort         int
	// Root and RootKey: the harness's own throwaway root, which every log
	// accepts; tests may issue under it.
	Root    *x509.Certificate
	RootKey crypto.Signer

	binary  string
	monitor *http.Server
}

// TesseraCT's notAfter window for every harness log, also the list's
// temporal interval: wide, so that one log takes every test certificate.
var (
	ctShardStart = time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	ctShardEnd   = time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)
)

var (
	sharedCTOnce sync.Once
	sharedCT     *CTLogs
	sharedCTErr  error
)

// SharedCTLogs returns two logs shared by all tests of this binary,
// accepting only the harness's root (CTLogs.Root, CTLogs.RootKey): tests
// issue under it or under an intermediate it signs. Tests that stop a log
// use NewCTLogs.
func SharedCTLogs(t testing.TB) *CTLogs {
	t.Helper()
	sharedCTOnce.Do(func() {
		dir, err := os.MkdirTemp("", "certdesk-ct-")
		if err != nil {
			sharedCTErr = err
			return
		}
		sharedCT, sharedCTErr = StartCTLogs(CTLogsConfig{Dir: dir})
		if sharedCTErr == nil {
			atExit(func() { sharedCT.Stop(); os.RemoveAll(dir) })
		} else {
			os.RemoveAll(dir)
		}
	})
	if sharedCTErr != nil {
		t.Fatalf("testenv: %v", sharedCTErr)
	}
	return sharedCT
}

// NewCTLogs starts n logs of the test's own (stopped when it ends) accepting
// rootsPEM and the harness root.
func NewCTLogs(t testing.TB, n int, rootsPEM []byte) *CTLogs {
	t.Helper()
	c, err := StartCTLogs(CTLogsConfig{Dir: t.TempDir(), N: n, RootsPEM: rootsPEM})
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	t.Cleanup(c.Stop)
	return c
}

// ctStartTimeout bounds how long a log may take to answer after its start.
const ctStartTimeout = 3 * time.Minute

// StartCTLogs starts the logs, waits until each answers, makes one
// submission to each (a fresh TesseraCT log can mishandle concurrent first
// submissions, so tests and `make run` only see warmed-up logs), then writes
// the log list.
func StartCTLogs(cfg CTLogsConfig) (_ *CTLogs, err error) {
	if cfg.N == 0 {
		cfg.N = 2
	}
	if cfg.N < 1 || cfg.N > 26 {
		return nil, fmt.Errorf("CT logs: N=%d, want 1..26", cfg.N)
	}
	if cfg.Binary == "" {
		root, err := RepoRoot()
		if err != nil {
			return nil, err
		}
		cfg.Binary = filepath.Join(root, "bin", "tesseract-posix")
	}
	if _, err := os.Stat(cfg.Binary); err != nil {
		return nil, fmt.Errorf("TesseraCT is not built at %s: run `make tesseract`", cfg.Binary)
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, err
	}
	c := &CTLogs{binary: cfg.Binary, RootsPath: filepath.Join(cfg.Dir, "roots.pem"), ListPath: filepath.Join(cfg.Dir, "log_list.json")}
	// A stale list must not be taken for a ready one (scripts/ctlogs.sh
	// waits for it).
	if err := os.Remove(c.ListPath); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	if c.Root, c.RootKey, err = loadOrMakeRoot(cfg.Dir); err != nil {
		return nil, err
	}
	roots := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Root.Raw})
	if err := os.WriteFile(c.RootsPath, append(roots, cfg.RootsPEM...), 0o644); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			c.Stop()
		}
	}()
	for i := range cfg.N {
		name := "ct-" + string(rune('a'+i))
		l := &CTLog{Name: name, Operator: "CertDesk test log operator " + strings.ToUpper(name[3:]), Origin: "127.0.0.1/" + name,
			set: c, dir: filepath.Join(cfg.Dir, name)}
		l.StorageDir = filepath.Join(l.dir, "storage")
		if i < len(cfg.Ports) {
			l.Port = cfg.Ports[i]
		}
		if l.Port == 0 {
			if l.Port, err = FreePort(); err != nil {
				return nil, err
			}
		}
		if err := l.prepare(); err != nil {
			return nil, err
		}
		c.Logs = append(c.Logs, l)
	}
	// The monitor reads c.Logs: started once the set is complete.
	if err := c.startMonitor(cfg.MonitorPort); err != nil {
		return nil, err
	}
	// Sequentially: each log's first submission alone.
	for _, l := range c.Logs {
		if err := l.Start(); err != nil {
			return nil, err
		}
		if err := l.warmUp(); err != nil {
			return nil, err
		}
	}
	return c, c.writeList()
}

// Stop stops every log and the monitoring server.
func (c *CTLogs) Stop() {
	for _, l := range c.Logs {
		l.Stop()
	}
	if c.monitor != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = c.monitor.Shutdown(ctx)
		c.monitor = nil
	}
}

// Env is the environment line `make run` adds for the worker.
func (c *CTLogs) Env() string { return "CERTDESK_CT_LOG_LIST=" + c.ListPath }

// prepare loads or creates the log's key and records its creation time.
func (l *CTLog) prepare() error {
	if err := os.MkdirAll(l.StorageDir, 0o755); err != nil {
		return err
	}
	keyPath := filepath.Join(l.dir, "key.pem")
	b, err := os.ReadFile(keyPath)
	var key *ecdsa.PrivateKey
	switch {
	case errors.Is(err, os.ErrNotExist):
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return err
		}
		der, err := x509.MarshalECPrivateKey(key)
		if err != nil {
			return err
		}
		if err := os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), 0o600); err != nil {
			return err
		}
		// Usable since a minute before creation: SCT timestamps come after.
		l.created = time.Now().UTC().Add(-time.Minute).Truncate(time.Second)
		if err := os.WriteFile(filepath.Join(l.dir, "created"), []byte(l.created.Format(time.RFC3339)), 0o644); err != nil {
			return err
		}
	case err != nil:
		return err
	default:
		blk, _ := pem.Decode(b)
		if blk == nil {
			return fmt.Errorf("CT log %s: %s is not PEM", l.Name, keyPath)
		}
		if key, err = x509.ParseECPrivateKey(blk.Bytes); err != nil {
			return fmt.Errorf("CT log %s: %w", l.Name, err)
		}
		cb, err := os.ReadFile(filepath.Join(l.dir, "created"))
		if err != nil {
			return err
		}
		if l.created, err = time.Parse(time.RFC3339, strings.TrimSpace(string(cb))); err != nil {
			return err
		}
	}
	if l.PublicKeyDER, err = x509.MarshalPKIXPublicKey(&key.PublicKey); err != nil {
		return err
	}
	l.ID = sha256.Sum256(l.PublicKeyDER)
	return nil
}

// Start (re)starts the log's process on its port and waits until it answers.
func (l *CTLog) Start() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.cmd != nil {
		return nil
	}
	out, err := os.OpenFile(filepath.Join(l.dir, "tesseract.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer out.Close()
	cmd := exec.Command(l.set.binary,
		"--http_endpoint", fmt.Sprintf("127.0.0.1:%d", l.Port),
		"--origin", l.Origin,
		"--path_prefix", "/"+l.Name,
		"--storage_dir", l.StorageDir,
		"--private_key", filepath.Join(l.dir, "key.pem"),
		"--roots_pem_file", l.set.RootsPath,
		"--not_after_start", ctShardStart.Format(time.RFC3339),
		"--not_after_limit", ctShardEnd.Format(time.RFC3339),
		"--accept_sha1_signing_algorithms=false",
		// Checkpoints soon after each batch: tests read them.
		"--checkpoint_interval", "500ms",
	)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start TesseraCT %s: %w", l.Name, err)
	}
	l.cmd = cmd
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	l.exited = exited
	// A readiness bound, not a speed expectation: a busy 2-core machine
	// running test packages in parallel has been seen to need over a minute.
	deadline := time.Now().Add(ctStartTimeout)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			l.cmd = nil
			return fmt.Errorf("TesseraCT %s exited at start; see %s", l.Name, out.Name())
		default:
		}
		resp, err := http.Get(l.SubmissionURL() + "/ct/v1/get-roots")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	l.stopLocked()
	tail, _ := os.ReadFile(out.Name())
	if len(tail) > 2000 {
		tail = tail[len(tail)-2000:]
	}
	return fmt.Errorf("TesseraCT %s did not answer on %s within %s; its log %s ends:\n%s", l.Name, l.SubmissionURL(), ctStartTimeout, out.Name(), tail)
}

// Stop stops the log's process (its read API, served by the harness from
// storage, stays up); Start brings it back with the same key, port and tree.
func (l *CTLog) Stop() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.stopLocked()
}

func (l *CTLog) stopLocked() {
	if l.cmd == nil {
		return
	}
	pid := l.cmd.Process.Pid
	_ = syscall.Kill(-pid, syscall.SIGTERM)
	select {
	case <-l.exited:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		<-l.exited
	}
	l.cmd = nil
}

// warmUp logs one certificate under the harness root and waits for it to
// be in the published checkpoint.
func (l *CTLog) warmUp() error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		return err
	}
	now := time.Now().UTC().Truncate(time.Second)
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: "warm-up." + l.Name + ".certdesk.test"},
		DNSNames:  []string{"warm-up." + l.Name + ".certdesk.test"},
		NotBefore: now.Add(-time.Minute), NotAfter: now.Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, l.set.Root, &key.PublicKey, l.set.RootKey)
	if err != nil {
		return err
	}
	lc, err := ctclient.New(l.SubmissionURL(), &http.Client{Timeout: 60 * time.Second}, jsonclient.Options{PublicKeyDER: l.PublicKeyDER, Logger: ctQuiet{}})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, err := lc.AddChain(ctx, []ctgo.ASN1Cert{{Data: der}, {Data: l.set.Root.Raw}}); err != nil {
		return fmt.Errorf("CT log %s: warm-up submission: %w", l.Name, err)
	}
	for ctx.Err() == nil {
		if size, err := l.TreeSize(); err == nil && size > 0 {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("CT log %s: the warm-up entry reached no checkpoint within 2 minutes", l.Name)
}

// TreeSize reads the size of the log's latest checkpoint through its
// monitoring URL (c2sp.org/tlog-checkpoint: origin line, size line, root
// hash line, then signatures).
func (l *CTLog) TreeSize() (uint64, error) {
	resp, err := http.Get(l.MonitoringURL() + "/checkpoint")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("checkpoint: %s", resp.Status)
	}
	lines := strings.SplitN(string(b), "\n", 3)
	if len(lines) < 3 || lines[0] != l.Origin {
		return 0, fmt.Errorf("checkpoint of %s: unexpected %q", l.Name, b)
	}
	return strconv.ParseUint(lines[1], 10, 64)
}

// startMonitor serves each log's storage directory at /<name>/, without
// TesseraCT's private state (.state).
func (c *CTLogs) startMonitor(port int) error {
	if port == 0 {
		var err error
		if port, err = FreePort(); err != nil {
			return err
		}
	}
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		return fmt.Errorf("CT monitoring server: %w", err)
	}
	c.MonitorPort = port
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{log}/{path...}", func(w http.ResponseWriter, r *http.Request) {
		var log *CTLog
		for _, l := range c.Logs {
			if l.Name == r.PathValue("log") {
				log = l
			}
		}
		p := r.PathValue("path")
		if log == nil || p == "" || strings.HasPrefix(p, ".") || strings.Contains(p, "/.") {
			http.NotFound(w, r)
			return
		}
		http.ServeFile(w, r, filepath.Join(log.StorageDir, filepath.FromSlash(p)))
	})
	c.monitor = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = c.monitor.Serve(ln) }()
	return nil
}

// writeList writes log_list.json (atomically: its appearance means ready).
func (c *CTLogs) writeList() error {
	ll := loglist3.LogList{Version: "1", LogListTimestamp: time.Now().UTC().Truncate(time.Second)}
	for _, l := range c.Logs {
		ll.Operators = append(ll.Operators, &loglist3.Operator{
			Name:  l.Operator,
			Email: []string{l.Name + "@certdesk.test"},
			// Chrome's schema wants the array, even empty.
			Logs: []*loglist3.Log{},
			TiledLogs: []*loglist3.TiledLog{{
				Description:   "CertDesk local TesseraCT log " + l.Name,
				LogID:         l.ID[:],
				Key:           l.PublicKeyDER,
				SubmissionURL: l.SubmissionURL() + "/",
				MonitoringURL: l.MonitoringURL() + "/",
				MMD:           60,
				State:         &loglist3.LogStates{Usable: &loglist3.LogState{Timestamp: l.created}},
				TemporalInterval: &loglist3.TemporalInterval{
					StartInclusive: ctShardStart, EndExclusive: ctShardEnd,
				},
			}},
		})
	}
	b, err := json.MarshalIndent(ll, "", "  ")
	if err != nil {
		return err
	}
	tmp := c.ListPath + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, c.ListPath)
}

// loadOrMakeRoot returns the harness's throwaway root CA (kept in dir).
func loadOrMakeRoot(dir string) (*x509.Certificate, crypto.Signer, error) {
	certPath, keyPath := filepath.Join(dir, "harness-root.pem"), filepath.Join(dir, "harness-root.key")
	if cb, err := os.ReadFile(certPath); err == nil {
		kb, err := os.ReadFile(keyPath)
		if err != nil {
			return nil, nil, err
		}
		cblk, _ := pem.Decode(cb)
		kblk, _ := pem.Decode(kb)
		if cblk == nil || kblk == nil {
			return nil, nil, fmt.Errorf("CT harness root in %s: not PEM", dir)
		}
		cert, err := x509.ParseCertificate(cblk.Bytes)
		if err != nil {
			return nil, nil, err
		}
		key, err := x509.ParseECPrivateKey(kblk.Bytes)
		if err != nil {
			return nil, nil, err
		}
		if time.Now().Before(cert.NotAfter.Add(-24 * time.Hour)) {
			return cert, key, nil
		}
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	now := time.Now().UTC().Truncate(time.Second)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(now.UnixNano()), Subject: pkix.Name{CommonName: "CertDesk CT harness root (throwaway)"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.AddDate(10, 0, 0),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	if err := os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		return nil, nil, err
	}
	if err := os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return nil, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	return cert, key, err
}

// ctQuiet drops the CT client's retry chatter.
type ctQuiet struct{}

func (ctQuiet) Printf(string, ...any) {}

// EntryBundle fetches, through the monitoring URL, the Static CT API data
// tile (c2sp.org/static-ct-api "entry bundle") holding the entry at index:
// the full tile if published, else the partial one the latest checkpoint
// covers.
func (l *CTLog) EntryBundle(index uint64) ([]byte, error) {
	size, err := l.TreeSize()
	if err != nil {
		return nil, err
	}
	if index >= size {
		return nil, fmt.Errorf("CT log %s: entry %d not in the checkpoint (size %d)", l.Name, index, size)
	}
	n := index / 256
	path := "/" + ct.DataTilePath(index)
	if w := size - n*256; w < 256 {
		path += fmt.Sprintf(".p/%d", w)
	}
	resp, err := http.Get(l.MonitoringURL() + path)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("CT log %s: %s: %s", l.Name, path, resp.Status)
	}
	return b, nil
}
