package main

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cart-cqrs/cart/pkg/envconf"
)

// config is one benchmark, read from BENCH_* variables (and the services'
// AUTH_* and REDIS_URL) so that `make bench VAR=…` tunes it.
type config struct {
	// Duration is measured per run after Warmup (BENCH_DURATION 10s,
	// BENCH_WARMUP 2s).
	Duration, Warmup time.Duration
	// Clients are the client counts of the closed-loop runs, pgbench's
	// included (BENCH_CLIENTS "1 4 16 64").
	Clients []int
	// LagRate is the open-loop command rate of the lag run
	// (BENCH_LAG_RATE 1000).
	LagRate int
	// DrainEvents is the outbox backlog the relay drains
	// (BENCH_DRAIN_EVENTS 100000).
	DrainEvents int
	// ReadCarts is the number of carts the read runs read (BENCH_READ_CARTS
	// 1000).
	ReadCarts int
	// Bin holds the service binaries from make build and the bench tools
	// (BENCH_BIN "bin"); Out receives the report (BENCH_OUT "bench");
	// PGBenchScripts holds the pgbench scripts (BENCH_PGBENCH_SCRIPTS
	// "bench/pgbench").
	Bin, Out, PGBenchScripts string
	// PGBench is the pgbench binary (BENCH_PGBENCH "/usr/bin/pgbench").
	PGBench string
	// DatabaseURL is the system's own database, dropped and created at the
	// start (BENCH_DATABASE_URL …/cart_bench); PGBenchDatabase the raw
	// baseline's, on the same server (BENCH_PGBENCH_DATABASE
	// "cart_bench_pgbench").
	DatabaseURL, PGBenchDatabase string
	// RedisURL (REDIS_URL) and RedisPrefix (BENCH_REDIS_PREFIX
	// "cart-bench:"): every key the benchmark writes is under the prefix and
	// deleted at the start and the end.
	RedisURL, RedisPrefix string
	// NATSURL is a NATS server with JetStream (BENCH_NATS_URL); empty runs
	// an embedded current nats-server, the reproducible choice.
	NATSURL string
	// Auth is what the services check and the load generator signs with:
	// AUTH_HS256_SECRET, AUTH_ISSUER, AUTH_AUDIENCE (make exports them).
	AuthSecret, AuthIssuer, AuthAudience string
}

func configFromEnv(env envconf.Env) (config, error) {
	r := envconf.New(env)
	cfg := config{
		Duration:        r.Duration("BENCH_DURATION", 10*time.Second),
		Warmup:          r.Duration("BENCH_WARMUP", 2*time.Second),
		LagRate:         r.Int("BENCH_LAG_RATE", 1000),
		DrainEvents:     r.Int("BENCH_DRAIN_EVENTS", 100_000),
		ReadCarts:       r.Int("BENCH_READ_CARTS", 1000),
		Bin:             r.String("BENCH_BIN", "bin"),
		Out:             r.String("BENCH_OUT", "bench"),
		PGBenchScripts:  r.String("BENCH_PGBENCH_SCRIPTS", "bench/pgbench"),
		PGBench:         r.String("BENCH_PGBENCH", "/usr/bin/pgbench"),
		DatabaseURL:     r.String("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/cart_bench?sslmode=disable"),
		PGBenchDatabase: r.String("BENCH_PGBENCH_DATABASE", "cart_bench_pgbench"),
		RedisURL:        r.String("REDIS_URL", "redis://127.0.0.1:6379/0"),
		RedisPrefix:     r.String("BENCH_REDIS_PREFIX", "cart-bench:"),
		NATSURL:         r.String("BENCH_NATS_URL", ""),
		AuthSecret:      r.String("AUTH_HS256_SECRET", ""),
		AuthIssuer:      r.String("AUTH_ISSUER", ""),
		AuthAudience:    r.String("AUTH_AUDIENCE", ""),
	}
	clients, err := parseClients(r.String("BENCH_CLIENTS", "1 4 16 64"))
	errs := []error{r.Err(), err}
	cfg.Clients = clients
	check := func(ok bool, msg string) {
		if !ok {
			errs = append(errs, errors.New(msg))
		}
	}
	check(cfg.Duration >= time.Second, "BENCH_DURATION: want at least 1s")
	check(cfg.Warmup >= 0, "BENCH_WARMUP: want 0 or more")
	check(cfg.LagRate > 0, "BENCH_LAG_RATE: want a positive rate")
	check(cfg.DrainEvents > 0, "BENCH_DRAIN_EVENTS: want a positive count")
	check(cfg.ReadCarts > 0, "BENCH_READ_CARTS: want a positive count")
	check(cfg.AuthSecret != "" && cfg.AuthIssuer != "" && cfg.AuthAudience != "",
		"AUTH_HS256_SECRET, AUTH_ISSUER and AUTH_AUDIENCE must be set (make exports development values)")
	check(cfg.RedisPrefix != "", "BENCH_REDIS_PREFIX: must not be empty: the benchmark deletes every key under it")
	if err := errors.Join(errs...); err != nil {
		return config{}, fmt.Errorf("config: %w", err)
	}
	return cfg, nil
}

// parseClients reads "1 4 16 64" (spaces or commas) into sorted, distinct
// positive counts.
func parseClients(s string) ([]int, error) {
	fields := strings.FieldsFunc(s, func(r rune) bool { return r == ' ' || r == ',' || r == '\t' })
	var out []int
	for _, f := range fields {
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 {
			return nil, fmt.Errorf("BENCH_CLIENTS=%q: %q is not a positive client count", s, f)
		}
		out = append(out, n)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("BENCH_CLIENTS=%q: no client count", s)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// maxClients is the largest client count.
func (c config) maxClients() int { return c.Clients[len(c.Clients)-1] }

// openClients bounds the requests in flight of the open-loop runs: enough
// that the load generator is never what holds a request back, so that a
// slow answer shows as latency of the system.
func (c config) openClients() int { return max(64, c.maxClients()) }
