package pgtest

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/testcontainers/testcontainers-go"
	tcpostgres "github.com/testcontainers/testcontainers-go/modules/postgres"
)

const (
	// defaultURL is the local server "make run" uses.
	defaultURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
	// containerImage is used only when neither DATABASE_URL nor the local
	// server is available.
	containerImage = "postgres:17-alpine"
)

// server is the PostgreSQL server this test binary uses, resolved once:
// a container is started at most once per binary and reaped by Ryuk.
var server struct {
	once sync.Once
	url  string // admin URL: a database tests may connect to in order to create others
	skip string // why there is no server (skip, or fail when CI=true)
	err  error  // a server was expected but could not be had: always fatal
}

// mustServer returns the admin URL of the resolved server: $DATABASE_URL,
// else the local default if it answers within 2 s, else a testcontainers
// PostgreSQL if a Docker engine answers.
func mustServer(tb testing.TB) string {
	tb.Helper()
	server.once.Do(func() {
		server.url, server.skip, server.err = resolveServer()
	})
	switch {
	case server.err != nil:
		tb.Fatalf("pgtest: %v", server.err)
	case server.skip != "":
		if os.Getenv("CI") == "true" {
			tb.Fatalf("pgtest: no PostgreSQL for tests (CI=true, so this is an error): %s", server.skip)
		}
		tb.Skipf("pgtest: no PostgreSQL for tests: %s", server.skip)
	}
	return server.url
}

func resolveServer() (url, skip string, err error) {
	if u := os.Getenv("DATABASE_URL"); u != "" {
		return u, "", nil
	}
	pingErr := ping(defaultURL, 2*time.Second)
	if pingErr == nil {
		return defaultURL, "", nil
	}
	if dockerErr := dockerHealthy(5 * time.Second); dockerErr != nil {
		return "", fmt.Sprintf("DATABASE_URL is unset, %s does not answer (%v) and no Docker engine answers (%v)",
			"127.0.0.1:5432", pingErr, dockerErr), nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	// No Terminate: the container lives as long as the test binary, and Ryuk
	// removes it when the binary exits.
	ctr, err := tcpostgres.Run(ctx, containerImage, tcpostgres.BasicWaitStrategies())
	if err != nil {
		return "", "", fmt.Errorf("start PostgreSQL container: %w", err)
	}
	u, err := ctr.ConnectionString(ctx, "sslmode=disable")
	if err != nil {
		return "", "", fmt.Errorf("PostgreSQL container address: %w", err)
	}
	return u, "", nil
}

func ping(url string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	return conn.Close(ctx)
}

// dockerHealthy reports whether a Docker engine answers. testcontainers may
// panic when no engine is configured at all, hence the recover.
func dockerHealthy(timeout time.Duration) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("testcontainers: %v", r)
		}
	}()
	provider, err := testcontainers.ProviderDocker.GetProvider()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return provider.Health(ctx) // Health closes the provider
}
