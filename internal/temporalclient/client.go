// Package temporalclient builds the Temporal client every CertDesk process
// uses, so the worker, the signer and the starter agree on namespace, logger
// and the payload codec: every payload and failure message is encrypted with
// CERTDESK_CODEC_KEY (internal/codec) before it reaches the Temporal server.
package temporalclient

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"

	"certdesk/internal/codec"
	"certdesk/internal/config"
	"certdesk/internal/logging"
)

// New returns a lazily connecting client: processes start even while the
// Temporal server is still coming up, and readiness reports it instead.
// It refuses to build a client without a codec key: payloads carry personal
// data and must never reach Temporal in clear.
func New(cfg *config.Config, log *slog.Logger) (client.Client, error) {
	return NewWithMetrics(cfg, log, nil)
}

// NewWithMetrics is New with the SDK's metrics reported to metrics (nil:
// none), for workers that expose them.
func NewWithMetrics(cfg *config.Config, log *slog.Logger, metrics client.MetricsHandler) (client.Client, error) {
	opts, err := WithCodec(client.Options{
		HostPort:       cfg.TemporalAddress,
		Namespace:      cfg.TemporalNamespace,
		Logger:         logging.Temporal(log),
		MetricsHandler: metrics,
	}, cfg.CodecKey)
	if err != nil {
		return nil, err
	}
	c, err := client.NewLazyClient(opts)
	if err != nil {
		return nil, fmt.Errorf("temporal client for %s: %w", cfg.TemporalAddress, err)
	}
	return c, nil
}

// Codec parses the payload codec key (CERTDESK_CODEC_KEY).
func Codec(key string) (*codec.Codec, error) {
	if key == "" {
		return nil, fmt.Errorf("config: CERTDESK_CODEC_KEY is not set (Temporal payload encryption key; make one with `openssl rand -base64 32`)")
	}
	c, err := codec.ParseKeys(key)
	if err != nil {
		return nil, fmt.Errorf("config: CERTDESK_CODEC_KEY: %w", err)
	}
	return c, nil
}

// WithCodec sets opts' data converter and failure converter to encrypt with
// key. Tests use it to talk to workflows started by the starter:
//
//	opts, _ := temporalclient.WithCodec(client.Options{}, key)
//	tc := testenv.TemporalClient(t, opts)
func WithCodec(opts client.Options, key string) (client.Options, error) {
	c, err := Codec(key)
	if err != nil {
		return opts, err
	}
	opts.DataConverter = c.DataConverter()
	opts.FailureConverter = c.FailureConverter()
	return opts, nil
}

// Check reports whether the Temporal frontend answers within timeout.
func Check(ctx context.Context, c client.Client, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	_, err := c.CheckHealth(ctx, &client.CheckHealthRequest{})
	return err
}

// WorkerOptions are the options of every CertDesk worker (and of the
// benchmark's bare reference worker, so the two compare like with like).
//
// Pollers scale with the server's feedback instead of the SDK's fixed two
// per queue: under a burst of applications two workflow-task pollers left
// tasks waiting about two seconds each for a poller while the worker idled
// (bench scenario 1).
func WorkerOptions() worker.Options {
	return worker.Options{
		WorkflowTaskPollerBehavior: worker.NewPollerBehaviorAutoscaling(worker.PollerBehaviorAutoscalingOptions{}),
		ActivityTaskPollerBehavior: worker.NewPollerBehaviorAutoscaling(worker.PollerBehaviorAutoscalingOptions{}),
	}
}
