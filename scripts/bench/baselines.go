package main

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"strconv"
	"time"

	"github.com/cart-cqrs/cart/scripts/bench/pgbench"
	"github.com/cart-cqrs/cart/scripts/bench/procs"
	"github.com/cart-cqrs/cart/scripts/bench/report"
	"github.com/cart-cqrs/cart/scripts/loadgen/load"
)

// pgbenchScripts are the raw write baselines, by the name the report uses.
var pgbenchScripts = []struct{ name, file string }{
	{report.ScriptAppend, "append.sql"},
	{report.ScriptLoadAppend, "load_append.sql"},
}

// rawWrites runs pgbench with each script at each client count against a
// freshly migrated database of its own.
func (b *bench) rawWrites(ctx context.Context) error {
	dbURL, err := withDatabase(b.cfg.DatabaseURL, b.cfg.PGBenchDatabase)
	if err != nil {
		return err
	}
	if err := migratedDatabase(ctx, dbURL); err != nil {
		return err
	}
	for i, c := range b.cfg.Clients {
		for j, s := range pgbenchScripts {
			b.say("pgbench %s, %d clients", s.name, c)
			r, err := pgbench.Exec(ctx, pgbench.Options{
				Path: b.cfg.PGBench, DatabaseURL: dbURL, Script: filepath.Join(b.cfg.PGBenchScripts, s.file),
				Name: s.name, Clients: c, Threads: runtime.NumCPU(), Duration: b.cfg.Duration,
				// Every run appends to streams of its own, from version 1.
				Vars: map[string]string{"run": strconv.Itoa(1000*i + j + 1), "v": "0"},
			})
			if err != nil {
				// Another count may still run (a high one can exceed
				// max_connections on a shared server).
				b.note(err.Error())
				b.say("    FAILED: %v", err)
				continue
			}
			b.say("    %.0f tps, %.2f ms average latency, %d failed", r.TPS, r.LatencyMs, r.Failed)
			b.res.PGBench = append(b.res.PGBench, r)
		}
	}
	return nil
}

// rawReads drives the bare echo + Redis GET handler at each client count.
func (b *bench) rawReads(ctx context.Context) (err error) {
	addr, err := procs.FreeAddr()
	if err != nil {
		return err
	}
	raw, err := procs.Start("rawread", b.tool("rawread"), []string{
		"-addr", addr, "-redis-url", b.cfg.RedisURL, "-prefix", b.cfg.RedisPrefix + "raw:",
		"-carts", strconv.Itoa(b.cfg.ReadCarts), "-customer-prefix", "bench-raw",
	}, baseEnv(), b.logs)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, raw.Stop(stopTimeout)) }()
	if err := raw.WaitHTTP(ctx, "http://"+addr+"/healthz", 30*time.Second); err != nil {
		return err
	}
	for _, c := range b.cfg.Clients {
		res, err := b.runLoad(ctx, loadSpec{
			name: fmt.Sprintf("raw read, %d clients", c), scenario: "reads", mode: load.Closed, clients: c,
			queryURL: "http://" + addr, customers: b.cfg.ReadCarts, prefix: "bench-raw", synthetic: true,
		})
		if err != nil {
			b.failedRun(err)
			continue
		}
		b.res.RawReads = append(b.res.RawReads, res)
	}
	return nil
}
