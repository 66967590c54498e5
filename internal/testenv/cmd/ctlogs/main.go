// Command ctlogs runs the local Certificate Transparency logs of `make run`
// (scripts/ctlogs.sh) with the harness the integration tests use
// (testenv.StartCTLogs): N TesseraCT logs persisted under -dir, each with its
// own key and operator, accepting the roots in -roots. When they are up and
// warmed up it writes -dir/log_list.json, prints CERTDESK_CT_LOG_LIST=<path>
// and runs until SIGINT or SIGTERM.
package main

import (
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"certdesk/internal/testenv"
)

func main() {
	dir := flag.String("dir", ".run/ct", "state directory (keys, trees, log list); reused across runs")
	n := flag.Int("n", 2, "number of logs, each under its own operator")
	roots := flag.String("roots", "", "comma-separated PEM files of root certificates the logs accept (the development CA's root)")
	ports := flag.String("ports", "", "comma-separated submission ports, one per log (empty or 0: a free port)")
	monitor := flag.Int("monitor-port", 0, "port serving every log's read API at /<log>/ (0: a free port)")
	bin := flag.String("tesseract", "", "tesseract-posix binary (default bin/tesseract-posix)")
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("ctlogs: ")

	cfg := testenv.CTLogsConfig{N: *n, MonitorPort: *monitor, Binary: *bin}
	var err error
	if cfg.Dir, err = filepath.Abs(*dir); err != nil {
		log.Fatal(err)
	}
	for _, f := range splitList(*roots) {
		b, err := os.ReadFile(f)
		if err != nil {
			log.Fatalf("roots: %v", err)
		}
		cfg.RootsPEM = append(cfg.RootsPEM, b...)
		if len(b) > 0 && b[len(b)-1] != '\n' {
			cfg.RootsPEM = append(cfg.RootsPEM, '\n')
		}
	}
	for _, p := range splitList(*ports) {
		v, err := strconv.Atoi(p)
		if err != nil || v < 0 || v > 65535 {
			log.Fatalf("-ports: %q is not a port", p)
		}
		cfg.Ports = append(cfg.Ports, v)
	}
	logs, err := testenv.StartCTLogs(cfg)
	if err != nil {
		log.Fatal(err)
	}
	for _, l := range logs.Logs {
		log.Printf("%s (%s): submit %s, read %s", l.Name, l.Operator, l.SubmissionURL(), l.MonitoringURL())
	}
	fmt.Println(logs.Env())
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	<-sig
	logs.Stop()
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}
