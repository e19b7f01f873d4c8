// Package migrations holds the schema as goose SQL migrations, embedded so
// every binary and test migrates the same way.
package migrations

import "embed"

// FS holds the migration files.
//
//go:embed *.sql
var FS embed.FS
