package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"certdesk/bench/stack"
)

// ocspLoadResult is what one OCSP load run measured.
type ocspLoadResult struct {
	Generator string // "wrk 4.1.0, 1 thread", "Go net/http client"
	Requests  int64
	Failed    int64
	Seconds   float64
	P50, P99  time.Duration
	Note      string
	CPU       string // where the machine's CPU went during the measured run
	// StarterCPUPerResponse: the starter's CPU time per response (the
	// figure that does not depend on what else the machine runs).
	StarterCPUPerResponse time.Duration
}

// ocspLoad puts conns keep-alive connections of GET load on the OCSP
// URLs (each request picks one of urls at random) for d after a 2 s
// warm-up. It uses wrk (a C load generator, far lighter than Go's client
// on the same 2 cores) when it is installed, else (or with
// BENCH_OCSP_GEN=go) Go's net/http client.
func ocspLoad(ctx context.Context, urls []string, conns int, d time.Duration, starterPid int) (ocspLoadResult, error) {
	gen := os.Getenv("BENCH_OCSP_GEN")
	if gen != "go" {
		if path, err := exec.LookPath("wrk"); err == nil {
			return ocspLoadWrk(ctx, path, urls, conns, d, starterPid)
		} else if gen == "wrk" {
			return ocspLoadResult{}, fmt.Errorf("BENCH_OCSP_GEN=wrk but wrk is not installed (apt-get install wrk)")
		}
	}
	res, err := ocspLoadGo(ctx, urls, conns, d, starterPid)
	if gen != "go" {
		res.Note = "wrk not installed (apt-get install wrk): Go client instead, which takes CPU from the starter"
	}
	return res, err
}

// wrkScript pre-formats one request per URL path in init and hands them
// out at random, so the Lua side costs one table lookup per request. done
// prints the summary as one JSON line (latencies in microseconds).
const wrkScript = `
local paths = {}
for line in io.lines(os.getenv("OCSP_PATHS")) do paths[#paths + 1] = line end
local reqs = {}
local n = #paths
function init(args)
  math.randomseed(os.time() + math.floor(os.clock() * 1e6))
  for i = 1, n do reqs[i] = wrk.format("GET", paths[i]) end
end
function request()
  return reqs[math.random(n)]
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('WRKJSON {"requests":%d,"duration_us":%d,"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,"p50":%d,"p99":%d,"max":%d}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99), latency.max))
end
`

func ocspLoadWrk(ctx context.Context, wrkPath string, urls []string, conns int, d time.Duration, starterPid int) (ocspLoadResult, error) {
	if len(urls) == 0 {
		return ocspLoadResult{}, fmt.Errorf("no OCSP URLs")
	}
	u, err := url.Parse(urls[0])
	if err != nil {
		return ocspLoadResult{}, err
	}
	base := u.Scheme + "://" + u.Host
	dir, err := os.MkdirTemp("", "certdesk-ocsp-wrk-")
	if err != nil {
		return ocspLoadResult{}, err
	}
	defer os.RemoveAll(dir)
	var paths strings.Builder
	for _, s := range urls {
		p, ok := strings.CutPrefix(s, base)
		if !ok {
			return ocspLoadResult{}, fmt.Errorf("OCSP URL %s is not on %s", s, base)
		}
		paths.WriteString(p + "\n")
	}
	pathFile, scriptFile := filepath.Join(dir, "paths"), filepath.Join(dir, "ocsp.lua")
	if err := os.WriteFile(pathFile, []byte(paths.String()), 0o600); err != nil {
		return ocspLoadResult{}, err
	}
	if err := os.WriteFile(scriptFile, []byte(wrkScript), 0o600); err != nil {
		return ocspLoadResult{}, err
	}
	// One wrk thread: it drives 8 connections with epoll at well over the
	// target on one core, and a second thread would only take CPU from
	// the starter on this 2-core machine.
	threads := envInt("BENCH_OCSP_WRK_THREADS", 1)
	if threads > conns {
		threads = conns
	}
	var wrkCPU time.Duration
	run := func(dur time.Duration) (map[string]int64, error) {
		secs := int((dur + time.Second - 1) / time.Second)
		cmd := exec.CommandContext(ctx, wrkPath, "-t", fmt.Sprint(threads), "-c", fmt.Sprint(conns),
			"-d", fmt.Sprintf("%ds", secs), "--timeout", "10s", "-s", scriptFile, base+"/ocsp/")
		cmd.Env = append(os.Environ(), "OCSP_PATHS="+pathFile)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		if err := cmd.Run(); err != nil {
			return nil, fmt.Errorf("wrk: %v: %s%s", err, errb.String(), out.String())
		}
		wrkCPU = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
		for _, line := range strings.Split(out.String(), "\n") {
			if js, ok := strings.CutPrefix(line, "WRKJSON "); ok {
				m := map[string]int64{}
				if err := json.Unmarshal([]byte(js), &m); err != nil {
					return nil, fmt.Errorf("wrk summary %q: %v", js, err)
				}
				return m, nil
			}
		}
		return nil, fmt.Errorf("wrk printed no summary: %s", out.String())
	}
	// Warm-up (connections, the starter's cache, the CPU governor), then
	// the measured run.
	if _, err := run(2 * time.Second); err != nil {
		return ocspLoadResult{}, err
	}
	cpu := startCPUSample(starterPid)
	m, err := run(d)
	if err != nil {
		return ocspLoadResult{}, err
	}
	cpuNote := cpu.note("wrk", wrkCPU)
	version := "wrk"
	if out, _ := exec.Command(wrkPath, "-v").CombinedOutput(); len(out) > 0 { // wrk -v exits 1
		if f := strings.Fields(string(out)); len(f) >= 2 && f[0] == "wrk" {
			version = "wrk " + f[1]
		}
	}
	return ocspLoadResult{
		Generator:             fmt.Sprintf("%s, %d thread(s), Lua script over %d URLs", version, threads, len(urls)),
		Requests:              m["requests"],
		Failed:                m["connect"] + m["read"] + m["write"] + m["status"] + m["timeout"],
		Seconds:               float64(m["duration_us"]) / 1e6,
		P50:                   time.Duration(m["p50"]) * time.Microsecond,
		P99:                   time.Duration(m["p99"]) * time.Microsecond,
		CPU:                   cpuNote,
		StarterCPUPerResponse: perResponse(cpu.starterCores, float64(m["requests"])/(float64(m["duration_us"])/1e6)),
	}, nil
}

// ocspLoadGo is the fallback generator: conns goroutines, each with its
// own keep-alive connection, in this process.
func ocspLoadGo(ctx context.Context, urls []string, conns int, d time.Duration, starterPid int) (ocspLoadResult, error) {
	tr := &http.Transport{MaxConnsPerHost: conns, MaxIdleConnsPerHost: conns, DisableCompression: true}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	var total, failed atomic.Int64
	lat := make([][]time.Duration, conns)
	warm := time.Now().Add(2 * time.Second)
	end := warm.Add(d)
	n := len(urls)
	var cpu *cpuSample
	var self0 time.Duration
	cpuStarted := make(chan struct{})
	go func() {
		time.Sleep(time.Until(warm))
		cpu, self0 = startCPUSample(starterPid), selfCPU()
		close(cpuStarted)
	}()
	var wg sync.WaitGroup
	for c := 0; c < conns; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			rng := mrand.New(mrand.NewPCG(uint64(c), 42))
			for {
				t := time.Now()
				if t.After(end) || ctx.Err() != nil {
					return
				}
				r, err := hc.Get(urls[rng.IntN(n)])
				ok := err == nil
				if ok {
					_, _ = io.Copy(io.Discard, r.Body)
					r.Body.Close()
					ok = r.StatusCode == 200
				}
				if t.After(warm) {
					total.Add(1)
					if !ok {
						failed.Add(1)
					}
					lat[c] = append(lat[c], time.Since(t))
				}
			}
		}(c)
	}
	wg.Wait()
	<-cpuStarted
	cpuNote := cpu.note("bench process (Go client)", selfCPU()-self0)
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	slices.Sort(all)
	stack.Logf("ocsp: Go client, %d requests", total.Load())
	return ocspLoadResult{Generator: "Go net/http client in the bench process", Requests: total.Load(), Failed: failed.Load(),
		Seconds: d.Seconds(), P50: pct(all, 0.50), P99: pct(all, 0.99), CPU: cpuNote,
		StarterCPUPerResponse: perResponse(cpu.starterCores, float64(total.Load())/d.Seconds())}, nil
}

// cpuSample is where the CPU went from its start to note: the starter's
// process (/proc/<pid>/stat) and the whole machine (/proc/stat).
type cpuSample struct {
	start        time.Time
	pid          int
	starter0     time.Duration
	busy0, all0  int64
	starterCores float64 // set by note
}

func startCPUSample(pid int) *cpuSample {
	c := &cpuSample{start: time.Now(), pid: pid}
	c.starter0 = procCPU(pid)
	c.busy0, c.all0 = machineTicks()
	return c
}

// note says, in cores (CPU seconds per second), what the starter, the
// load generator (gen used genCPU) and the rest of the machine used.
func (c *cpuSample) note(gen string, genCPU time.Duration) string {
	wall := time.Since(c.start).Seconds()
	starter := (procCPU(c.pid) - c.starter0).Seconds() / wall
	busy, all := machineTicks()
	machine := 0.0
	if all > c.all0 {
		machine = float64(busy-c.busy0) / float64(all-c.all0) * float64(runtime.NumCPU())
	}
	g := genCPU.Seconds() / wall
	c.starterCores = starter
	return fmt.Sprintf("CPU in cores of %d: starter %.2f, %s %.2f, everything else %.2f (PostgreSQL, Temporal, worker, other jobs), idle %.2f",
		runtime.NumCPU(), starter, gen, g, max(0, machine-starter-g), max(0, float64(runtime.NumCPU())-machine))
}

// procCPU is the user+system CPU of a process (0 when unreadable).
func procCPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the parenthesised command name; utime and stime are the
	// 14th and 15th fields overall, in clock ticks (USER_HZ, 100 on Linux).
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0
	}
	var ut, st int64
	fmt.Sscan(f[11], &ut)
	fmt.Sscan(f[12], &st)
	return time.Duration(ut+st) * 10 * time.Millisecond
}

// machineTicks returns busy and total CPU ticks from /proc/stat.
func machineTicks() (busy, total int64) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	for i, v := range f[1:] {
		var n int64
		fmt.Sscan(v, &n)
		total += n
		if i != 3 && i != 4 { // idle, iowait
			busy += n
		}
	}
	return busy, total
}

// selfCPU is this process's user+system CPU.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func perResponse(cores, rps float64) time.Duration {
	if rps <= 0 {
		return 0
	}
	return time.Duration(cores / rps * float64(time.Second))
}
