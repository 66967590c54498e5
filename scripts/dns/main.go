// Command dns starts and stops the local DNS stack of `make run` (see
// internal/testenv/dnsstack); scripts/dns.sh is its front end.
//
//	go run ./scripts/dns start -dir .run/dns [-auth-port N -registry-port N -resolver-port N]
//	go run ./scripts/dns stop -dir .run/dns
//
// start leaves the servers running and writes DIR/env (KEY=value lines,
// mode 0600: it holds the TSIG secret, so start prints only the addresses);
// a stack already running in DIR is left alone.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"certdesk/internal/testenv/dnsstack"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	fs := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	dir := fs.String("dir", ".run/dns", "state directory")
	auth := fs.Int("auth-port", 15353, "port of the customer Knot (test zones, RFC 2136 updates)")
	registry := fs.Int("registry-port", 15354, "port of the registry Knot (jp.)")
	resolver := fs.Int("resolver-port", 15355, "port of the validating Unbound (the CA's resolver)")
	_ = fs.Parse(os.Args[2:])
	abs, err := filepath.Abs(*dir)
	if err != nil {
		fail(err)
	}
	envFile := filepath.Join(abs, "env")
	switch os.Args[1] {
	case "start":
		if dnsstack.Running(abs) {
			if _, err := os.Stat(envFile); err == nil {
				fmt.Printf("DNS stack already running in %s (env in %s)\n", abs, envFile)
				return
			}
		}
		_ = dnsstack.StopDir(abs) // a half-dead stack from an earlier run
		s, err := dnsstack.Start(context.Background(), dnsstack.Config{Dir: abs, AuthPort: *auth,
			RegistryPort: *registry, ResolverPort: *resolver, Detach: true})
		if err != nil {
			fail(err)
		}
		s.Detach()
		if err := os.WriteFile(envFile, []byte(s.Env()), 0o600); err != nil {
			_ = dnsstack.StopDir(abs)
			fail(err)
		}
		fmt.Printf("DNS stack running: resolver %s (validating), zones %s, %s, %s at %s, registry %s; env in %s\n",
			s.ResolverAddr, s.Zones.Signed, s.Zones.Bogus, s.Zones.Unsigned, s.AuthAddr, s.RegistryAddr, envFile)
	case "stop":
		if err := dnsstack.StopDir(abs); err != nil {
			fail(err)
		}
		_ = os.Remove(envFile)
	default:
		usage()
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: dns start|stop [-dir DIR] [-auth-port N] [-registry-port N] [-resolver-port N]")
	os.Exit(2)
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "dns:", err)
	os.Exit(1)
}
