// Package activities holds the thin Temporal wrappers over CertDesk's
// internal packages: storage, email and signing. Every activity is idempotent
// because Temporal retries it.
package activities

import (
	"log/slog"

	"github.com/jmoiron/sqlx"

	"certdesk/internal/config"
)

// Activities carries the dependencies of the storage and email activities
// that run on the "certdesk" task queue.
type Activities struct {
	DB     *sqlx.DB
	Config *config.Config
	Log    *slog.Logger
}
