// Package dnsstack runs CertDesk's local DNS: two Knot DNS servers (a
// signed "jp." registry and a customer server holding the test zones, with
// RFC 2136 updates authorised by a TSIG key) and a validating Unbound that
// trusts only the registry's key and is the CA's resolver. The integration
// tests (through internal/testenv) and `make run` (through scripts/dns.sh)
// start the same stack from the same generated configuration.
package dnsstack

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/miekg/dns"
)

// Binaries the stack runs, from the Debian packages knot and unbound.
var (
	KnotdBin   = "knotd"
	UnboundBin = "unbound"
)

// Missing names the binaries that are not on PATH (nil if none is missing).
func Missing() []string {
	var out []string
	for _, b := range []string{KnotdBin, UnboundBin, "unbound-checkconf"} {
		if _, err := exec.LookPath(b); err != nil {
			out = append(out, b)
		}
	}
	return out
}

// InstallHint is what to run when Missing is not empty.
const InstallHint = "apt-get install knot unbound"

// Config says where and how to run a stack.
type Config struct {
	// Dir holds configuration, keys, journals, pid files and logs; what an
	// earlier start left there is removed first.
	Dir string
	// Ports on 127.0.0.1; 0 picks a free one.
	AuthPort, RegistryPort, ResolverPort int
	// Detach leaves the servers running after this process exits (for
	// scripts/dns.sh); otherwise they die with it.
	Detach bool
	// StartTimeout bounds the start (zone signing included); 0 means 2 min.
	StartTimeout time.Duration
}

// TSIG is the key that authorises dynamic updates.
type TSIG struct {
	Name      string // FQDN, e.g. "certdesk-dev."
	Algorithm string // miekg/dns name, dns.HmacSHA256
	Secret    string // base64
}

// NsupdateKey is the key as `nsupdate -y` takes it: hmac-sha256:name:secret.
func (k TSIG) NsupdateKey() string {
	return "hmac-sha256:" + strings.TrimSuffix(k.Name, ".") + ":" + k.Secret
}

// Stack is a running DNS stack.
type Stack struct {
	Dir          string
	AuthAddr     string // customer Knot: the test zones; send updates here
	RegistryAddr string // registry Knot: jp., with the DS records
	ResolverAddr string // validating Unbound: the CA's resolver
	TSIG         TSIG
	Zones        Zones
	// TrustAnchor is the registry KSK (DNSKEY, zone-file text), the
	// resolver's only trust anchor.
	TrustAnchor string

	authPort, registryPort int
	procs                  []*proc
	// onExit, set before the first spawn, hears of every server's exit.
	onExit func(*proc)
}

type proc struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{} // closed when the process has exited
}

// Start builds the configuration in cfg.Dir, starts the two Knot servers,
// waits until the test zones are signed, publishes their DS (a wrong one for
// the bogus zone) in the registry, and starts Unbound with the registry key
// as trust anchor. It returns once the resolver validates the signed zone.
func Start(ctx context.Context, cfg Config) (s *Stack, err error) {
	if m := Missing(); len(m) > 0 {
		return nil, fmt.Errorf("dnsstack: %s not installed: %s", strings.Join(m, ", "), InstallHint)
	}
	if cfg.StartTimeout == 0 {
		cfg.StartTimeout = 2 * time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.StartTimeout)
	defer cancel()
	// A server dying during the start ends it at once, with its log.
	ctx, died := context.WithCancelCause(ctx)
	defer died(nil)
	dir, err := filepath.Abs(cfg.Dir)
	if err != nil {
		return nil, err
	}
	// Only what an earlier start left, never the whole directory: cfg.Dir
	// may be a mistake such as ".".
	for _, d := range []string{"auth", "registry", "resolver", "logs", "env"} {
		if err := os.RemoveAll(filepath.Join(dir, d)); err != nil {
			return nil, err
		}
	}
	for _, d := range []string{"auth/zones", "auth/db", "registry/zones", "registry/db", "resolver", "logs"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o700); err != nil {
			return nil, err
		}
	}
	ports := []*int{&cfg.AuthPort, &cfg.RegistryPort, &cfg.ResolverPort}
	for _, p := range ports {
		if *p == 0 {
			if *p, err = FreePort(); err != nil {
				return nil, err
			}
		} else if !portFree(*p) {
			return nil, fmt.Errorf("dnsstack: port %d on 127.0.0.1 is in use", *p)
		}
	}
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return nil, err
	}
	s = &Stack{
		Dir:          dir,
		AuthAddr:     addr(cfg.AuthPort),
		RegistryAddr: addr(cfg.RegistryPort),
		ResolverAddr: addr(cfg.ResolverPort),
		TSIG:         TSIG{Name: TSIGName, Algorithm: dns.HmacSHA256, Secret: base64.StdEncoding.EncodeToString(secret)},
		Zones:        DefaultZones,
		authPort:     cfg.AuthPort,
		registryPort: cfg.RegistryPort,
	}
	s.onExit = func(p *proc) { died(p.exitError()) }
	defer func() {
		if err != nil {
			s.Stop()
			s, err = nil, fmt.Errorf("dnsstack: %w (logs in %s)", err, filepath.Join(dir, "logs"))
		}
	}()

	// The customer server first: the registry needs its keys for the DS.
	auth := knotParams{Dir: filepath.Join(dir, "auth"), Port: cfg.AuthPort, TSIGSecret: s.TSIG.Secret, Zones: []knotZone{
		{Domain: s.Zones.Signed, Sign: true}, {Domain: s.Zones.Bogus, Sign: true}, {Domain: s.Zones.Unsigned},
	}}
	for _, z := range auth.Zones {
		if err := writeFile(filepath.Join(auth.Dir, "zones", z.Domain+".zone"), zoneFile(z.Domain)); err != nil {
			return s, err
		}
	}
	if err := s.startKnot(ctx, "knot-auth", auth, cfg.Detach); err != nil {
		return s, err
	}
	signedKSK, err := waitKSK(ctx, s.AuthAddr, s.Zones.Signed)
	if err != nil {
		return s, err
	}
	bogusKSK, err := waitKSK(ctx, s.AuthAddr, s.Zones.Bogus)
	if err != nil {
		return s, err
	}
	if _, err := waitAnswer(ctx, s.AuthAddr, s.Zones.Unsigned, dns.TypeSOA); err != nil {
		return s, err
	}

	signedDS := signedKSK.ToDS(dns.SHA256)
	bogusDS := bogusKSK.ToDS(dns.SHA256)
	bogusDS.Digest = corruptHex(bogusDS.Digest)
	rel := func(zone string) string { return strings.TrimSuffix(zone, "."+TLD) }
	registry := knotParams{Dir: filepath.Join(dir, "registry"), Port: cfg.RegistryPort, TSIGSecret: s.TSIG.Secret,
		Zones: []knotZone{{Domain: TLD, Sign: true}}}
	lines := []string{"ns A 127.0.0.1"}
	for _, z := range []string{s.Zones.Signed, s.Zones.Bogus, s.Zones.Unsigned, s.Zones.ServFail} {
		lines = append(lines, fmt.Sprintf("%s NS ns.%s.", rel(z), TLD))
	}
	lines = append(lines, dsLine(rel(s.Zones.Signed), signedDS), dsLine(rel(s.Zones.Bogus), bogusDS))
	if err := writeFile(filepath.Join(registry.Dir, "zones", TLD+".zone"), zoneFile(TLD, lines...)); err != nil {
		return s, err
	}
	if err := s.startKnot(ctx, "knot-registry", registry, cfg.Detach); err != nil {
		return s, err
	}
	tldKSK, err := waitKSK(ctx, s.RegistryAddr, TLD)
	if err != nil {
		return s, err
	}
	// The DS RRset signed means the registry finished signing.
	if err := waitSigned(ctx, s.RegistryAddr, s.Zones.Signed, dns.TypeDS); err != nil {
		return s, err
	}
	s.TrustAnchor = tldKSK.String()
	anchor := filepath.Join(dir, "resolver", TLD+".anchor")
	if err := writeFile(anchor, s.TrustAnchor+"\n"); err != nil {
		return s, err
	}
	if err := s.startUnbound(ctx, "unbound", unboundParams{Dir: filepath.Join(dir, "resolver"), Port: cfg.ResolverPort,
		RegistryPort: cfg.RegistryPort, AuthPort: cfg.AuthPort, Anchor: anchor, Zones: s.Zones}, cfg.Detach); err != nil {
		return s, err
	}
	if err := waitSecure(ctx, s.ResolverAddr, s.Zones.Signed); err != nil {
		return s, err
	}
	return s, nil
}

// Stop stops every process of the stack that this process started.
func (s *Stack) Stop() {
	for i := len(s.procs) - 1; i >= 0; i-- {
		s.procs[i].stop()
	}
	s.procs = nil
}

// Env is the stack as `make run` exports it, one KEY=value a line.
func (s *Stack) Env() string {
	return fmt.Sprintf("CERTDESK_DEV_DNS_SERVER=%s\nCERTDESK_DEV_DNS_TSIG=%s\nCERTDESK_DEV_ZONES=signed=%s,bogus=%s,unsigned=%s\nCERTDESK_DEV_DNS_SERVFAIL_ZONE=%s\nCERTDESK_DCV_RESOLVER=%s\n",
		s.AuthAddr, s.TSIG.NsupdateKey(), s.Zones.Signed, s.Zones.Bogus, s.Zones.Unsigned, s.Zones.ServFail, s.ResolverAddr)
}

func (s *Stack) startKnot(ctx context.Context, name string, p knotParams, detach bool) error {
	conf, err := renderKnot(p)
	if err != nil {
		return err
	}
	path := filepath.Join(p.Dir, "knot.conf")
	if err := writeFile(path, conf); err != nil {
		return err
	}
	return s.spawn(name, detach, KnotdBin, "-c", path)
}

func (s *Stack) startUnbound(ctx context.Context, name string, p unboundParams, detach bool) error {
	conf, err := renderUnbound(p)
	if err != nil {
		return err
	}
	path := filepath.Join(p.Dir, "unbound.conf")
	if err := writeFile(path, conf); err != nil {
		return err
	}
	if out, err := exec.CommandContext(ctx, "unbound-checkconf", path).CombinedOutput(); err != nil {
		return fmt.Errorf("unbound-checkconf %s: %v: %s", path, err, out)
	}
	return s.spawn(name, detach, UnboundBin, "-d", "-c", path)
}

// spawn starts a server with its output in logs/NAME.log and its pid in
// NAME.pid (what StopDir reads).
func (s *Stack) spawn(name string, detach bool, bin string, args ...string) error {
	logf, err := os.OpenFile(filepath.Join(s.Dir, "logs", name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if detach {
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	} else {
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", bin, err)
	}
	p := &proc{name: name, cmd: cmd, log: logf.Name(), done: make(chan struct{})}
	s.procs = append(s.procs, p)
	// Reap the child when it exits, so that waits notice a crash at once.
	go func() {
		_ = cmd.Wait()
		close(p.done)
		if s.onExit != nil {
			s.onExit(p)
		}
	}()
	return writeFile(filepath.Join(s.Dir, name+".pid"), strconv.Itoa(cmd.Process.Pid)+"\n")
}

// exitError says that the server died, with the tail of its log.
func (p *proc) exitError() error {
	b, _ := os.ReadFile(p.log)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return fmt.Errorf("%s exited (%s): %s", p.name, p.cmd.ProcessState, strings.Join(lines[max(0, len(lines)-5):], " | "))
}

func (p *proc) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = syscall.Kill(p.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	}
}

// Detach forgets the processes, which keep running (scripts/dns.sh start).
func (s *Stack) Detach() { s.procs = nil }

// StopDir stops a stack started with Detach in dir, by the pid files it wrote.
func StopDir(dir string) error {
	pids, _ := filepath.Glob(filepath.Join(dir, "*.pid"))
	var errs []error
	// Unbound first, then the servers it queries.
	for i := len(pids) - 1; i >= 0; i-- {
		b, err := os.ReadFile(pids[i])
		if err != nil {
			errs = append(errs, err)
			continue
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || pid <= 1 {
			errs = append(errs, fmt.Errorf("%s: bad pid %q", pids[i], b))
			continue
		}
		if ownProcess(pid, dir) {
			_ = syscall.Kill(pid, syscall.SIGTERM)
			if !waitGone(pid, 10*time.Second) {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		_ = os.Remove(pids[i])
	}
	return errors.Join(errs...)
}

// Running reports whether every server of the stack in dir is alive.
func Running(dir string) bool {
	pids, _ := filepath.Glob(filepath.Join(dir, "*.pid"))
	if len(pids) != 3 {
		return false
	}
	for _, f := range pids {
		b, err := os.ReadFile(f)
		if err != nil {
			return false
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || !ownProcess(pid, dir) {
			return false
		}
	}
	return true
}

// ownProcess: pid is alive and runs with a configuration file under dir, so
// a stale pid file never makes us signal somebody else's process.
func ownProcess(pid int, dir string) bool {
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return false
	}
	return strings.Contains(string(cmdline), dir+string(filepath.Separator))
}

func waitGone(pid int, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if err := syscall.Kill(pid, 0); err != nil {
			return true
		}
		// A zombie child of ours counts as gone.
		if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil {
			if f := strings.Fields(string(b)); len(f) > 2 && f[2] == "Z" {
				return true
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return false
}

// FreePort finds a loopback port free for both TCP and UDP (DNS uses both).
func FreePort() (int, error) {
	for i := 0; i < 50; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if portFree(port) {
			return port, nil
		}
	}
	return 0, errors.New("dnsstack: no free loopback port for TCP and UDP")
}

func portFree(port int) bool {
	l, err := net.Listen("tcp", addr(port))
	if err != nil {
		return false
	}
	defer l.Close()
	u, err := net.ListenPacket("udp", addr(port))
	if err != nil {
		return false
	}
	u.Close()
	return true
}

func addr(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }

func writeFile(path, content string) error {
	return os.WriteFile(path, []byte(content), 0o600)
}

func dsLine(owner string, ds *dns.DS) string {
	return fmt.Sprintf("%s DS %d %d %d %s", owner, ds.KeyTag, ds.Algorithm, ds.DigestType, ds.Digest)
}

// corruptHex changes the last digit of a hex digest: a DS with the right key
// tag and algorithm whose digest matches no key.
func corruptHex(h string) string {
	last := h[len(h)-1]
	repl := byte('0')
	if last == '0' {
		repl = '1'
	}
	return h[:len(h)-1] + string(repl)
}
