package migrations

import (
	"embed"
	"io/fs"
)

//go:embed sql/*.sql
var embedded embed.FS

// FS returns the migration files (goose SQL format) at the root of the
// returned file system. Tests use it to fingerprint the schema.
func FS() fs.FS {
	sub, err := fs.Sub(embedded, "sql")
	if err != nil {
		// fs.Sub fails only on an invalid path, and "sql" is valid.
		panic(err)
	}
	return sub
}
