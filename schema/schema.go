// Package schema holds CertDesk's PostgreSQL migrations, embedded so every
// binary carries the schema it was built against.
//
// Files are goose migrations named NNNNN_description.sql with -- +goose Up and
// -- +goose Down sections. Never edit a migration that has shipped; add one.
package schema

import "embed"

// FS holds the migration files.
//
//go:embed *.sql
var FS embed.FS
