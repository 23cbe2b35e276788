package pgtest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"sync"

	"github.com/cart-cqrs/cart/migrations"
	"github.com/jackc/pgx/v5"
)

// templateLockKey serializes template builds across test binaries on one
// server (advisory locks are per database, and every binary connects to the
// same admin database). It is an arbitrary constant unlikely to collide.
const templateLockKey int64 = 0x63617274_74706c31 // "carttpl1"

// templates caches, per admin URL, the migrated template database name.
var templates struct {
	mu    sync.Mutex
	names map[string]string
}

// template returns the name of a database holding the current migrations,
// creating it if needed. Cloning it is several times faster than running the
// migrations on every test database. Its name carries a hash of the
// migration files, so changing a migration builds a new template instead of
// reusing a stale one.
func template(ctx context.Context, adminURL string) (string, error) {
	templates.mu.Lock()
	defer templates.mu.Unlock()
	if name, ok := templates.names[adminURL]; ok {
		return name, nil
	}
	hash, err := migrationsHash()
	if err != nil {
		return "", err
	}
	name := "cart_tpl_" + hash
	if err := buildTemplate(ctx, adminURL, name); err != nil {
		return "", fmt.Errorf("template %s: %w", name, err)
	}
	if templates.names == nil {
		templates.names = make(map[string]string)
	}
	templates.names[adminURL] = name
	return name, nil
}

func buildTemplate(ctx context.Context, adminURL, name string) (err error) {
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return err
	}
	// Closing the session also releases the advisory lock taken below.
	defer func() {
		if cerr := conn.Close(context.WithoutCancel(ctx)); cerr != nil && err == nil {
			err = cerr
		}
	}()

	if ok, err := databaseExists(ctx, conn, name); err != nil || ok {
		return err
	}
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", templateLockKey); err != nil {
		return fmt.Errorf("lock: %w", err)
	}
	// Another binary may have built it while this one waited for the lock.
	if ok, err := databaseExists(ctx, conn, name); err != nil || ok {
		return err
	}

	// Build under another name and rename when done, so a template that
	// exists under its final name is always complete. A build left over by
	// a crashed binary is dropped first.
	build := ident(name + "_build")
	if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+build+" WITH (FORCE)"); err != nil {
		return err
	}
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+build); err != nil {
		return err
	}
	buildURL, err := withDatabase(adminURL, name+"_build")
	if err != nil {
		return err
	}
	if err := migrations.Up(ctx, buildURL, nil); err != nil {
		return err
	}
	// IS_TEMPLATE lets any role with CREATEDB clone it and refuses to drop
	// it; it is set after the rename so a leftover build can always be dropped.
	for _, stmt := range []string{
		"ALTER DATABASE " + build + " RENAME TO " + ident(name),
		"ALTER DATABASE " + ident(name) + " WITH IS_TEMPLATE true ALLOW_CONNECTIONS false",
	} {
		if _, err := conn.Exec(ctx, stmt); err != nil {
			return err
		}
	}
	return nil
}

func databaseExists(ctx context.Context, conn *pgx.Conn, name string) (bool, error) {
	var ok bool
	err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&ok)
	return ok, err
}

// migrationsHash fingerprints the embedded migration files (names and
// contents, in lexical order).
func migrationsHash() (string, error) {
	h := sha256.New()
	fsys := migrations.FS()
	err := fs.WalkDir(fsys, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(fsys, path)
		if err != nil {
			return err
		}
		fmt.Fprintf(h, "%s\x00%d\x00", path, len(b))
		h.Write(b)
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("hash migrations: %w", err)
	}
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}
