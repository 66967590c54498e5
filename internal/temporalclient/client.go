// Package temporalclient builds the Temporal client every CertDesk process
// uses, so the worker, the signer and the starter agree on namespace, logger
// and (later) the payload codec.
package temporalclient

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"go.temporal.io/sdk/client"

	"certdesk/internal/config"
	"certdesk/internal/logging"
)

// New returns a lazily connecting client: processes start even while the
// Temporal server is still coming up, and readiness reports it instead.
func New(cfg *config.Config, log *slog.Logger) (client.Client, error) {
	c, err := client.NewLazyClient(client.Options{
		HostPort:  cfg.TemporalAddress,
		Namespace: cfg.TemporalNamespace,
		Logger:    logging.Temporal(log),
	})
	if err != nil {
		return nil, fmt.Errorf("temporal client for %s: %w", cfg.TemporalAddress, err)
	}
	return c, nil
}

// Check reports whether the Temporal frontend answers within timeout.
func Check(ctx context.Context, c client.Client, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	_, err := c.CheckHealth(ctx, &client.CheckHealthRequest{})
	return err
}
