// Command bench runs the performance scenarios of DESIGN.md ("Performance
// targets") on this machine against the real services and prints one table,
// also written as JSON to bench/results/<time>-<mode>.json (make bench).
//
//	(1) DV issuance end to end through POST /v1/applications, against a bare
//	    workflow with as many no-op activities on the same Temporal
//	(2) mass revocation of N seeded certificates, CRL publication included
//	(3) CRL generation per 1,000,000 entries against raw x509.CreateRevocationList
//	(4) OCSP from the starter's pre-signed path, 8 connections on loopback
//	    from wrk (a C load generator), with the CPU each side used
//	(5) bulk notices to MailDev
//	(6) ACME: certificates per second by dns-01 with the same client
//	    (golang.org/x/crypto/acme) and concurrency against Pebble v2.10.3
//	    and against the starter's ACME listener, in the same run
//
// Environment:
//
//	CERTDESK_BENCH_TEMPORAL  dev (Temporal CLI dev server, SQLite) or postgres
//	                         (standalone server v1.29.1 on PostgreSQL; default)
//	BENCH_SCENARIOS          comma-separated subset of dv,mass,crl,ocsp,mail,acme (default all)
//	BENCH_MASS_N             certificates to mass-revoke (default 1000000)
//	BENCH_DV_N               DV applications (default 2000)
//	BENCH_DV_CLIENTS         concurrent API clients (default 16)
//	BENCH_DV_NOCT_N          DV applications with CT off, the comparison row
//	                         (default BENCH_DV_N; 0 skips it)
//	BENCH_CRL_N              CRL entries (default 1000000)
//	BENCH_OCSP_SECONDS       OCSP load duration (default 15)
//	BENCH_OCSP_CONNS         OCSP connections (default 8)
//	BENCH_OCSP_GEN           OCSP load generator: wrk (default when installed;
//	                         make bench installs it) or go (net/http client in
//	                         this process, the fallback)
//	BENCH_OCSP_WRK_THREADS   wrk threads (default 1)
//	BENCH_MAIL_N             notices per run (default 2000)
//	BENCH_ACME_N             ACME certificates per server (default 100)
//	BENCH_ACME_CLIENTS       concurrent ACME clients, one account each (default 8)
//	PEBBLE_BIN               Pebble binary (default bin/pebble, make tools)
//	BENCH_TEMPORAL_PORT      postgres mode: frontend port (default 27233)
//	BENCH_KEEP               1: leave the work directory (.run/bench/...) and logs
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"certdesk/bench/stack"
)

func envInt(k string, def int) int {
	if v, err := strconv.Atoi(strings.ReplaceAll(os.Getenv(k), "_", "")); err == nil && v > 0 {
		return v
	}
	return def
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run() error {
	mode := os.Getenv("CERTDESK_BENCH_TEMPORAL")
	if mode == "" {
		mode = "postgres"
	}
	want := map[string]bool{}
	for _, s := range strings.Split(os.Getenv("BENCH_SCENARIOS"), ",") {
		if s = strings.TrimSpace(s); s != "" {
			want[s] = true
		}
	}
	all := len(want) == 0
	on := func(s string) bool { return all || want[s] }

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	started := time.Now()
	var rows []Row
	var failures []string
	record := func(name string, r []Row, err error) {
		if err != nil {
			stack.Logf("%s: FAILED: %v", name, err)
			failures = append(failures, name+": "+err.Error())
			rows = append(rows, Row{Scenario: name, Figure: "FAILED: " + firstLine(err.Error()), Mode: mode})
			return
		}
		for i := range r {
			if r[i].Mode == "" {
				r[i].Mode = mode
			}
		}
		rows = append(rows, r...)
	}

	s, err := stack.New(ctx, stack.Options{Mode: mode, Work: filepath.Join(rootDir(), ".run", "bench", time.Now().Format("20060102-150405")),
		TemporalPort: envInt("BENCH_TEMPORAL_PORT", 27233), Label: "certdesk_bench"})
	if err != nil {
		return err
	}
	defer func() {
		s.Close()
		if os.Getenv("BENCH_KEEP") == "" {
			_ = os.RemoveAll(s.Work)
		}
	}()
	stack.Logf("stack up (Temporal %s at %s, database %s, starter %s)", mode, s.TemporalAddr, s.DBName, s.StarterURL)

	// Pure CPU first, then the scenarios that load the whole stack.
	if on("crl") {
		n := envInt("BENCH_CRL_N", 1_000_000)
		stack.Logf("crl: %d entries", n)
		r, err := benchCRL(ctx, s.CA, s.Keys, s.Cfg.CADir, n)
		for i := range r {
			r[i].Mode = "in-process"
		}
		record("3 CRL", r, err)
	}
	if on("mail") {
		n := envInt("BENCH_MAIL_N", 2000)
		stack.Logf("mail: %d notices", n)
		r, err := benchMail(ctx, s, n)
		for i := range r {
			r[i].Mode = "MailDev"
		}
		record("5 bulk notices", r, err)
	}
	if on("ocsp") {
		d := time.Duration(envInt("BENCH_OCSP_SECONDS", 15)) * time.Second
		stack.Logf("ocsp: %s", d)
		r, err := benchOCSP(ctx, s, envInt("BENCH_OCSP_CONNS", 8), d)
		for i := range r {
			r[i].Mode = "starter+PostgreSQL"
		}
		record("4 OCSP", r, err)
	}
	if on("acme") {
		n, c := envInt("BENCH_ACME_N", 100), envInt("BENCH_ACME_CLIENTS", 8)
		stack.Logf("acme: %d certificates per server, %d clients", n, c)
		r, err := benchACME(ctx, s, n, c)
		record("6 ACME", r, err)
	}
	if on("dv") {
		n := envInt("BENCH_DV_N", 2000)
		stack.Logf("dv: %d applications", n)
		r, err := benchDV(ctx, s, n+1, envInt("BENCH_DV_CLIENTS", 16), false)
		record("1 DV issuance", r, err)
		// The same issuance without Certificate Transparency, for the
		// figure next to it (BENCH_DV_NOCT_N, default the same n; 0 skips it).
		if m := envInt("BENCH_DV_NOCT_N", n); m > 0 {
			stack.Logf("dv: %d applications with CT off, for comparison", m)
			r, err := benchDV(ctx, s, m+1, envInt("BENCH_DV_CLIENTS", 16), true)
			record("1 DV issuance", r, err)
		}
	}
	if on("mass") {
		n := envInt("BENCH_MASS_N", 1_000_000)
		stack.Logf("mass: %d certificates", n)
		r, err := benchMass(ctx, s, n)
		record("2 mass revocation", r, err)
	}

	printTable(os.Stdout, rows)
	out := filepath.Join(rootDir(), "bench", "results", time.Now().Format("20060102-150405")+"-"+mode+".json")
	doc := map[string]any{
		"started": started.UTC(), "seconds": time.Since(started).Seconds(), "temporal": mode,
		"go": runtime.Version(), "cpus": runtime.NumCPU(), "rows": rows, "failures": failures,
	}
	b, _ := json.MarshalIndent(doc, "", "  ")
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err == nil {
		if err := os.WriteFile(out, b, 0o644); err == nil {
			fmt.Printf("\nwritten to %s\n", out)
		}
	}
	if len(failures) > 0 {
		return fmt.Errorf("%d scenario(s) failed", len(failures))
	}
	return nil
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	if len(s) > 160 {
		s = s[:160] + "…"
	}
	return s
}

func rootDir() string {
	d, _ := os.Getwd()
	for p := d; ; p = filepath.Dir(p) {
		if _, err := os.Stat(filepath.Join(p, "go.mod")); err == nil {
			return p
		}
		if filepath.Dir(p) == p {
			return d
		}
	}
}

func printTable(w *os.File, rows []Row) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "scenario\tfigure\tvalue\tunit\tratio\ttarget\tmet\tmode\tnote")
	for _, r := range rows {
		m := ""
		if r.Met != nil {
			m = map[bool]string{true: "yes", false: "NO"}[*r.Met]
		}
		v := ""
		if r.Unit != "" {
			v = fmtValue(r.Value)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Scenario, r.Figure, v, r.Unit, r.Ratio, r.Target, m, r.Mode, r.Note)
	}
	tw.Flush()
}

func fmtValue(v float64) string {
	switch {
	case v >= 1000:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case v >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	default:
		return strconv.FormatFloat(v, 'f', 3, 64)
	}
}
