// Package redistest gives each test its own Redis key prefix, so tests (and
// concurrent test runs) sharing one server never see each other's keys. The
// server is $REDIS_URL, else the local default, else a testcontainers Redis
// when a Docker engine answers; without any of them tests are skipped, or
// fail when CI=true.
package redistest

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	tcredis "github.com/testcontainers/testcontainers-go/modules/redis"

	"github.com/cart-cqrs/cart/pkg/internal/testserver"
	"github.com/cart-cqrs/cart/pkg/rediskeys"
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
	u := server.Must(tb)
	opts, err := redis.ParseURL(u)
	if err != nil {
		tb.Fatalf("redistest: parse %q: %v", u, err)
	}
	env := Env{URL: u, Prefix: "test:" + testserver.RandomHex(8) + ":", Client: redis.NewClient(opts)}
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
	_, err := rediskeys.UnlinkMatching(ctx, c, prefix+"*")
	return err
}

// server is the Redis server this test binary uses.
var server = testserver.New(testserver.Spec{
	Helper: "redistest", Name: "Redis", EnvVar: "REDIS_URL",
	DefaultURL: "redis://127.0.0.1:6379/0",
	Ping: func(ctx context.Context, u string) error {
		opts, err := redis.ParseURL(u)
		if err != nil {
			return err
		}
		opts.MaxRetries = -1
		c := redis.NewClient(opts)
		err = c.Ping(ctx).Err()
		if cerr := c.Close(); err == nil {
			err = cerr
		}
		return err
	},
	Start: func(ctx context.Context) (string, error) {
		ctr, err := tcredis.Run(ctx, "redis:7-alpine")
		if err != nil {
			return "", err
		}
		return ctr.ConnectionString(ctx)
	},
})
