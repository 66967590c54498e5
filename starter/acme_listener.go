package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"
)

// serveACME runs the ACME listener (acmeorders.NewServer) until ctx ends;
// a listen error goes to errc. A nil srv (no listener certificate) is
// logged as off.
func serveACME(ctx context.Context, srv *http.Server, errc chan<- error, log *slog.Logger) {
	if srv == nil {
		log.Info("ACME listener off: set CERTDESK_ACME_TLS_CERT and CERTDESK_ACME_TLS_KEY (make run: worker listener-cert)")
		return
	}
	go func() {
		if err := srv.ListenAndServeTLS("", ""); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errc <- fmt.Errorf("ACME listener on %s: %w", srv.Addr, err)
		}
	}()
	log.Info("ACME server listening", "directory", "https://"+srv.Addr+"/acme/directory")
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
	}()
}
