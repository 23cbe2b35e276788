package main

import (
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cart-cqrs/cart/pkg/envconf"
	"github.com/cart-cqrs/cart/scripts/bench/report"
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
	// LagRate is the open-loop command rate of the lag targets
	// (BENCH_LAG_RATE 1000), IdleRate that of the idle lag (BENCH_IDLE_RATE
	// 50); with half the lag rate they are always stepped.
	LagRate, IdleRate int
	// Rates are the open-loop steps of the sustainable rate (BENCH_RATES
	// "250 500 1000 1500 2000 3000 4000 6000 8000"), stepped up from the
	// lowest until one fails twice.
	Rates []float64
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
	// NATSServer (BENCH_NATS_SERVER, <Bin>/nats-server, which make bench
	// builds from the version in scripts/go.mod) as a child process, the
	// reproducible choice, whose CPU time is measured like the services'.
	NATSURL, NATSServer string
	// NATSSync are the sync settings of the benchmark's own nats-server
	// whose durability cost it measures, each with a server, database and
	// services of its own after the rest (BENCH_NATS_SYNC "default
	// always"; each "default", "always" or a sync_interval duration; "off"
	// skips it).
	NATSSync []string
	// Before is the results of the code before the speed work, shown beside
	// this run's (BENCH_BEFORE "bench/before.json"; missing: not shown).
	Before string
	// Code names the code measured in the report (BENCH_CODE; by default
	// the commit of the working tree, when Bin is "bin"); Note says
	// anything else a reader must know of the run (BENCH_NOTE).
	Code, Note string
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
		IdleRate:        r.Int("BENCH_IDLE_RATE", 50),
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
		Before:          r.String("BENCH_BEFORE", "bench/before.json"),
		Code:            r.String("BENCH_CODE", ""),
		Note:            r.String("BENCH_NOTE", ""),
		AuthSecret:      r.String("AUTH_HS256_SECRET", ""),
		AuthIssuer:      r.String("AUTH_ISSUER", ""),
		AuthAudience:    r.String("AUTH_AUDIENCE", ""),
	}
	cfg.NATSServer = r.String("BENCH_NATS_SERVER", filepath.Join(cfg.Bin, "nats-server"))
	clients, err := parseClients(r.String("BENCH_CLIENTS", "1 4 16 64"))
	rates, errR := parseRates(r.String("BENCH_RATES", "250 500 1000 1500 2000 3000 4000 6000 8000"))
	syncs, errS := parseSync(r.String("BENCH_NATS_SYNC", report.SyncDefault+" "+report.SyncAlways))
	errs := []error{r.Err(), err, errR, errS}
	cfg.Clients, cfg.Rates, cfg.NATSSync = clients, rates, syncs
	check := func(ok bool, msg string) {
		if !ok {
			errs = append(errs, errors.New(msg))
		}
	}
	check(cfg.Duration >= time.Second, "BENCH_DURATION: want at least 1s")
	check(cfg.Warmup >= 0, "BENCH_WARMUP: want 0 or more")
	check(cfg.LagRate > 0, "BENCH_LAG_RATE: want a positive rate")
	check(cfg.IdleRate > 0, "BENCH_IDLE_RATE: want a positive rate")
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

// parseRates reads "250 500 1000" (spaces or commas) into sorted, distinct
// positive rates per second.
func parseRates(s string) ([]float64, error) {
	var out []float64
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ' ' || r == ',' || r == '\t' }) {
		v, err := strconv.ParseFloat(f, 64)
		if err != nil || !(v > 0) || math.IsInf(v, 0) {
			return nil, fmt.Errorf("BENCH_RATES=%q: %q is not a positive rate", s, f)
		}
		out = append(out, v)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// parseSync reads "default always 1s" (spaces or commas) into distinct
// nats-server sync settings in the order given; "off" alone is none.
func parseSync(s string) ([]string, error) {
	fields := strings.FieldsFunc(s, func(r rune) bool { return r == ' ' || r == ',' || r == '\t' })
	if len(fields) == 1 && strings.EqualFold(fields[0], "off") {
		return nil, nil
	}
	var out []string
	for _, f := range fields {
		v := strings.ToLower(f)
		if v != report.SyncDefault && v != report.SyncAlways {
			d, err := time.ParseDuration(f)
			if err != nil || d <= 0 {
				return nil, fmt.Errorf("BENCH_NATS_SYNC=%q: %q is not default, always, a positive duration or off", s, f)
			}
			v = d.String()
		}
		if !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("BENCH_NATS_SYNC=%q: no sync setting (off skips the comparison)", s)
	}
	return out, nil
}

// steppedRates are the open-loop steps: the configured rates with the idle
// rate, half the lag rate and the lag rate, which the targets need.
func (c config) steppedRates() []float64 {
	rates := append(slices.Clone(c.Rates), c.requiredRates()...)
	slices.Sort(rates)
	return slices.Compact(rates)
}

// requiredRates are stepped even after the stepping stopped.
func (c config) requiredRates() []float64 {
	return []float64{float64(c.IdleRate), float64(c.LagRate) / 2, float64(c.LagRate)}
}

// stepClients bounds the requests in flight of a step: each client sends a
// command and its read-back one after the other, so at high rates it takes
// more of them to keep up with a healthy system (30 ms per pair).
func (c config) stepClients(rate float64) int {
	return max(c.openClients(), int(math.Ceil(rate*0.03)))
}

// maxClients is the largest client count.
func (c config) maxClients() int { return c.Clients[len(c.Clients)-1] }

// openClients bounds the requests in flight of the open-loop runs: enough
// that the load generator is never what holds a request back, so that a
// slow answer shows as latency of the system.
func (c config) openClients() int { return max(64, c.maxClients()) }
