package testenv

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// MailDev is a MailDev 2.2.1 process (tools/maildev) on loopback ports.
type MailDev struct {
	SMTPPort int
	WebPort  int

	mu  sync.Mutex
	cmd *exec.Cmd
}

// Address of the MailDev SMTP listener.
func (m *MailDev) SMTPHost() string { return "127.0.0.1" }

// APIURL is the base of MailDev's REST API.
func (m *MailDev) APIURL() string { return fmt.Sprintf("http://127.0.0.1:%d", m.WebPort) }

var (
	sharedMailOnce sync.Once
	sharedMail     *MailDev
	sharedMailErr  error
)

// SharedMailDev returns the MailDev shared by all tests of this binary. Tests
// sharing it must tell their messages apart by recipient.
func SharedMailDev(t testing.TB) *MailDev {
	t.Helper()
	sharedMailOnce.Do(func() {
		sharedMail, sharedMailErr = StartMailDev()
		if sharedMailErr == nil {
			atExit(sharedMail.Stop)
		}
	})
	if sharedMailErr != nil {
		t.Fatalf("testenv: %v", sharedMailErr)
	}
	return sharedMail
}

// NewMailDev starts a MailDev of the test's own, stopped when the test ends,
// for tests that take the SMTP server down.
func NewMailDev(t testing.TB) *MailDev {
	t.Helper()
	m, err := StartMailDev()
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	t.Cleanup(m.Stop)
	return m
}

// StartMailDev starts MailDev on free ports and waits until its API answers.
func StartMailDev() (*MailDev, error) {
	smtp, err := FreePort()
	if err != nil {
		return nil, err
	}
	web, err := FreePort()
	if err != nil {
		return nil, err
	}
	m := &MailDev{SMTPPort: smtp, WebPort: web}
	return m, m.Start()
}

// Start (re)starts the process on the same ports.
func (m *MailDev) Start() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd != nil {
		return nil
	}
	root, err := RepoRoot()
	if err != nil {
		return err
	}
	bin := filepath.Join(root, "tools", "maildev", "node_modules", "maildev", "bin", "maildev")
	if _, err := os.Stat(bin); err != nil {
		return fmt.Errorf("MailDev is not installed at %s: run `make tools`", bin)
	}
	cmd := exec.Command("node", bin, "--smtp", fmt.Sprint(m.SMTPPort), "--web", fmt.Sprint(m.WebPort),
		"--ip", "127.0.0.1", "--silent")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start MailDev: %w", err)
	}
	m.cmd = cmd
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(m.APIURL() + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	m.stopLocked()
	return fmt.Errorf("MailDev did not answer on %s within 30s", m.APIURL())
}

// Stop kills the process; Start brings it back on the same ports.
func (m *MailDev) Stop() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.stopLocked()
}

func (m *MailDev) stopLocked() {
	if m.cmd == nil {
		return
	}
	_ = syscall.Kill(-m.cmd.Process.Pid, syscall.SIGKILL)
	_ = m.cmd.Wait()
	m.cmd = nil
}

// Email is the part of MailDev's JSON message that tests read.
type Email struct {
	ID          string `json:"id"`
	Subject     string `json:"subject"`
	Text        string `json:"text"`
	HTML        string `json:"html"`
	Date        string `json:"date"`
	From        []Addr `json:"from"`
	To          []Addr `json:"to"`
	ReplyTo     []Addr `json:"replyTo"`
	Headers     map[string]any
	Attachments []struct {
		FileName    string `json:"fileName"`
		ContentType string `json:"contentType"`
		Length      int    `json:"length"`
		Generated   string `json:"generatedFileName"`
	} `json:"attachments"`
}

// Addr is a MailDev address.
type Addr struct {
	Address string `json:"address"`
	Name    string `json:"name"`
}

// Messages lists every message MailDev holds.
func (m *MailDev) Messages(ctx context.Context) ([]Email, error) {
	var out []Email
	return out, m.getJSON(ctx, "/email", &out)
}

// Query lists the messages matching a MailDev filter: dot paths into the
// message JSON, e.g. "to.address=a@example.jp&headers.x-certdesk-notice=…"
// (values query-escaped by the caller).
func (m *MailDev) Query(ctx context.Context, filter string) ([]Email, error) {
	var out []Email
	return out, m.getJSON(ctx, "/email?"+filter, &out)
}

// MessagesTo lists the messages addressed to addr (case-insensitive).
func (m *MailDev) MessagesTo(ctx context.Context, addr string) ([]Email, error) {
	all, err := m.Messages(ctx)
	if err != nil {
		return nil, err
	}
	var out []Email
	for _, e := range all {
		for _, to := range e.To {
			if strings.EqualFold(to.Address, addr) {
				out = append(out, e)
				break
			}
		}
	}
	return out, nil
}

// WaitFor polls until at least n messages to addr have arrived or timeout.
func (m *MailDev) WaitFor(t testing.TB, addr string, n int, timeout time.Duration) []Email {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		got, err := m.MessagesTo(context.Background(), addr)
		if err == nil && len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("testenv: %d message(s) to %s within %s, want %d (last error %v)", len(got), addr, timeout, n, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Source returns the raw RFC 5322 message.
func (m *MailDev) Source(ctx context.Context, id string) ([]byte, error) {
	return m.get(ctx, "/email/"+id+"/source")
}

// Attachment returns an attachment's bytes by its generated file name.
func (m *MailDev) Attachment(ctx context.Context, id, generatedName string) ([]byte, error) {
	return m.get(ctx, "/email/"+id+"/attachment/"+generatedName)
}

// DeleteAll empties the mailbox.
func (m *MailDev) DeleteAll(ctx context.Context) error {
	req, _ := http.NewRequestWithContext(ctx, http.MethodDelete, m.APIURL()+"/email/all", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}

func (m *MailDev) getJSON(ctx context.Context, path string, v any) error {
	b, err := m.get(ctx, path)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

func (m *MailDev) get(ctx context.Context, path string) ([]byte, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, m.APIURL()+path, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != 200 {
		return nil, fmt.Errorf("MailDev %s: %s: %s", path, resp.Status, b)
	}
	return b, nil
}
