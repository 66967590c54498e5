// Package activities holds the thin Temporal wrappers over CertDesk's
// internal packages: storage, email and signing. Every activity is idempotent
// because Temporal retries it: writes use natural keys, emails go through the
// email log, signing is keyed by the business id.
package activities

import (
	"errors"
	"log/slog"

	"go.temporal.io/sdk/temporal"

	"certdesk/internal/caa"
	"certdesk/internal/config"
	"certdesk/internal/dcv"
	"certdesk/internal/mailer"
	"certdesk/internal/pii"
	"certdesk/internal/pki"
	"certdesk/internal/registry"
	"certdesk/internal/store"
)

// Activities carries the dependencies of the storage, email and validation
// activities that run on the "certdesk" task queue. It holds no CA key.
type Activities struct {
	Store  *store.Store
	Outbox *mailer.Outbox
	Config *config.Config
	Log    *slog.Logger
	DCV    *dcv.Validator
	// CAA checks CAA through the same validating resolver as DCV.
	CAA      *caa.Checker
	Registry registry.Lookup
	// Profiles checks CSRs against the products (no keys needed).
	Profiles *pki.ProfileSet
	// BlindIndex computes email-log references for explicit addresses.
	BlindIndex *pii.BlindIndex
}

// nonRetryable wraps a refusal the workflow branches on; Temporal does not
// retry it.
func nonRetryable(errType, msg string, cause error) error {
	return temporal.NewNonRetryableApplicationError(msg, errType, cause)
}

// storeErr turns "not found" into a non-retryable error and leaves the rest
// retryable (a database outage delays the case, it does not fail it).
func storeErr(err error, what string) error {
	if errors.Is(err, store.ErrNotFound) {
		return nonRetryable(ErrTypeNotFound, what+" not found", nil)
	}
	if errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrInvalidTransition) || errors.Is(err, store.ErrNoKeys) {
		return nonRetryable(ErrTypeInvalid, what+": "+err.Error(), nil)
	}
	return err
}
