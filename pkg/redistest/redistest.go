// Package redistest gives each test its own Redis key prefix, so tests (and
// concurrent test runs) sharing one server never see each other's keys. The
// server is $REDIS_URL, else the local default, else a testcontainers Redis
// when a Docker engine answers; without any of them tests are skipped, or
// fail when CI=true.
package redistest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/testcontainers/testcontainers-go"
	tcredis "github.com/testcontainers/testcontainers-go/modules/redis"
)

const (
	defaultURL     = "redis://127.0.0.1:6379/0"
	containerImage = "redis:7-alpine"
)

// Env is one test's slice of a Redis server: every key the code under test
// writes must start with Prefix.
type Env struct {
	URL    string
	Prefix string // "test:<random hex>:"
	Client *redis.Client
}

// MustRedis returns a client and a fresh key prefix. When the test ends,
// every key under the prefix is deleted and the client closed.
func MustRedis(tb testing.TB) Env {
	tb.Helper()
	u := mustServer(tb)
	opts, err := redis.ParseURL(u)
	if err != nil {
		tb.Fatalf("redistest: parse %q: %v", u, err)
	}
	env := Env{URL: u, Prefix: "test:" + randomHex(8) + ":", Client: redis.NewClient(opts)}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := deletePrefix(ctx, env.Client, env.Prefix); err != nil {
			tb.Errorf("redistest: delete keys %s*: %v", env.Prefix, err)
		}
		if err := env.Client.Close(); err != nil {
			tb.Errorf("redistest: close: %v", err)
		}
	})
	return env
}

func deletePrefix(ctx context.Context, c *redis.Client, prefix string) error {
	iter := c.Scan(ctx, 0, prefix+"*", 1000).Iterator()
	batch := make([]string, 0, 1000)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		err := c.Unlink(ctx, batch...).Err()
		batch = batch[:0]
		return err
	}
	for iter.Next(ctx) {
		batch = append(batch, iter.Val())
		if len(batch) == cap(batch) {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if err := iter.Err(); err != nil {
		return err
	}
	return flush()
}

// server is the Redis server this test binary uses, resolved once: a
// container is started at most once per binary and reaped by Ryuk.
var server struct {
	once sync.Once
	url  string
	skip string // why there is no server (skip, or fail when CI=true)
	err  error  // a server was expected but could not be had: always fatal
}

func mustServer(tb testing.TB) string {
	tb.Helper()
	server.once.Do(func() {
		server.url, server.skip, server.err = resolveServer()
	})
	switch {
	case server.err != nil:
		tb.Fatalf("redistest: %v", server.err)
	case server.skip != "":
		if os.Getenv("CI") == "true" {
			tb.Fatalf("redistest: no Redis for tests (CI=true, so this is an error): %s", server.skip)
		}
		tb.Skipf("redistest: no Redis for tests: %s", server.skip)
	}
	return server.url
}

func resolveServer() (url, skip string, err error) {
	if u := os.Getenv("REDIS_URL"); u != "" {
		return u, "", nil
	}
	pingErr := ping(defaultURL, 2*time.Second)
	if pingErr == nil {
		return defaultURL, "", nil
	}
	if dockerErr := dockerHealthy(5 * time.Second); dockerErr != nil {
		return "", fmt.Sprintf("REDIS_URL is unset, 127.0.0.1:6379 does not answer (%v) and no Docker engine answers (%v)",
			pingErr, dockerErr), nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	// No Terminate: the container lives as long as the test binary, and Ryuk
	// removes it when the binary exits.
	ctr, err := tcredis.Run(ctx, containerImage)
	if err != nil {
		return "", "", fmt.Errorf("start Redis container: %w", err)
	}
	u, err := ctr.ConnectionString(ctx)
	if err != nil {
		return "", "", fmt.Errorf("Redis container address: %w", err)
	}
	return u, "", nil
}

func ping(u string, timeout time.Duration) error {
	opts, err := redis.ParseURL(u)
	if err != nil {
		return err
	}
	opts.DialTimeout, opts.ReadTimeout, opts.MaxRetries = timeout, timeout, -1
	c := redis.NewClient(opts)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	err = c.Ping(ctx).Err()
	if cerr := c.Close(); err == nil {
		err = cerr
	}
	return err
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

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails since Go 1.24
	return hex.EncodeToString(b)
}
