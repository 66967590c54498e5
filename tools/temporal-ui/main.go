// Command temporal-ui serves the Temporal Web UI (github.com/temporalio/ui-server,
// the same version the Temporal CLI v1.5.1 embeds in `temporal server
// start-dev`) for a Temporal frontend that has none: the standalone server
// on PostgreSQL started by `make run TEMPORAL=postgres`.
//
//	temporal-ui -temporal 127.0.0.1:7233 -listen 127.0.0.1:8233 -codec http://127.0.0.1:8080/codec
package main

import (
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"os/signal"
	"strconv"
	"syscall"

	uiserver "github.com/temporalio/ui-server/v2/server"
	uiconfig "github.com/temporalio/ui-server/v2/server/config"
	uiserveroptions "github.com/temporalio/ui-server/v2/server/server_options"
)

func main() {
	temporal := flag.String("temporal", "127.0.0.1:7233", "Temporal frontend gRPC host:port")
	listen := flag.String("listen", "127.0.0.1:8233", "address the Web UI listens on")
	codec := flag.String("codec", "", "remote codec endpoint (the starter's /codec), so the UI shows decrypted payloads")
	flag.Parse()
	host, portText, err := net.SplitHostPort(*listen)
	if err != nil {
		log.Fatalf("temporal-ui: -listen %q: %v", *listen, err)
	}
	port, err := strconv.Atoi(portText)
	if err != nil {
		log.Fatalf("temporal-ui: -listen %q: bad port", *listen)
	}
	srv := uiserver.NewServer(uiserveroptions.WithConfigProvider(&uiconfig.Config{
		Host:                host,
		Port:                port,
		TemporalGRPCAddress: *temporal,
		EnableUI:            true,
		DefaultNamespace:    "default",
		Codec:               uiconfig.Codec{Endpoint: *codec},
		CORS:                uiconfig.CORS{CookieInsecure: true},
		HideLogs:            true,
	}))
	go func() {
		ch := make(chan os.Signal, 1)
		signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM)
		<-ch
		srv.Stop()
		os.Exit(0)
	}()
	fmt.Printf("temporal-ui: http://%s for %s\n", *listen, *temporal)
	if err := srv.Start(); err != nil {
		log.Fatalf("temporal-ui: %v", err)
	}
}
