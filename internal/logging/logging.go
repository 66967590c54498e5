// Package logging builds the structured JSON logger every CertDesk process
// uses, and the adapter that routes the Temporal SDK's logs into it.
package logging

import (
	"io"
	"log/slog"
	"os"

	tlog "go.temporal.io/sdk/log"
)

// New returns a JSON logger writing to stderr at level. The "service" field
// tells the worker, signer and starter apart in one log stream.
func New(service string, level slog.Level) *slog.Logger {
	return NewTo(os.Stderr, service, level)
}

// NewTo is New with an explicit destination, for tests.
func NewTo(w io.Writer, service string, level slog.Level) *slog.Logger {
	h := slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level})
	return slog.New(h).With("service", service)
}

// Temporal adapts l for client.Options.Logger so SDK messages (workflow task
// failures, activity retries) land in the same JSON stream.
func Temporal(l *slog.Logger) tlog.Logger {
	return tlog.NewStructuredLogger(l.With("component", "temporal-sdk"))
}
