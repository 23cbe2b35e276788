// Command bench is `make bench`: it measures the raw limits of this machine
// and the cart system against them, and writes bench/REPORT.md with plots
// and bench/results.json.
//
// In order: pgbench with the command's writes (bench/pgbench) at each client
// count; a bare echo + Redis GET handler driven by the load generator; then
// the three services of make build and a nats-server, each a child process,
// over a database, NATS stream and Redis prefix of their own — the command
// service closed loop (profiled), the query service closed loop and at half
// load, the open-loop steps of the sustainable rate (each command read back
// with ?minVersion: the visibility lag), a shop's mix; the relay draining an
// outbox backlog; a full read-model rebuild. Last, the cost of the stream's
// durability: for each nats-server sync setting compared (BENCH_NATS_SYNC),
// a server of its own under one synchronous publisher, then the system on
// it under the command service's closed loop at the most clients. Over each
// measured window of the command runs, the steps and the drain, the CPU
// time of every process of the system (PostgreSQL's included) and
// PostgreSQL's transactions and statements are read; each service's memory
// is read from /proc.
// The durations, client counts and rates come from BENCH_* variables
// (config.go).
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cart-cqrs/cart/pkg/envconf"
	"github.com/cart-cqrs/cart/scripts/bench/report"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.LookupEnv, os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// bench is one benchmark run and what it found so far.
type bench struct {
	cfg   config
	out   io.Writer
	work  string // scratch: copied binaries, logs, raw results, profiles
	logs  string
	bins  string
	runID string
	seq   int
	rdb   *redis.Client
	res   report.Results
}

// say prints a progress line.
func (b *bench) say(format string, args ...any) { fmt.Fprintf(b.out, "bench: "+format+"\n", args...) }

// note records something the report's reader must know.
func (b *bench) note(s string) { b.res.Notes = append(b.res.Notes, s) }

// tool is a copied binary.
func (b *bench) tool(name string) string { return filepath.Join(b.bins, name) }

// tools are copied from the build directory before anything runs, so that a
// `make build` elsewhere during the benchmark cannot swap them.
var tools = []string{report.ServiceCommand, report.ServiceProjector, report.ServiceQuery, "loadgen", "rawread"}

// settle is how long the machine's other work is measured before the
// benchmark starts anything.
const settle = 3 * time.Second

func run(ctx context.Context, env envconf.Env, out io.Writer) (err error) {
	cfg, err := configFromEnv(env)
	if err != nil {
		return err
	}
	started := time.Now()
	work, err := os.MkdirTemp("", "cart-bench-")
	if err != nil {
		return err
	}
	b := &bench{cfg: cfg, out: out, work: work, logs: filepath.Join(work, "logs"), bins: filepath.Join(work, "bin"), runID: randomHex(3)}
	b.say("scratch directory (logs, raw results): %s", work)
	defer func() {
		// The logs and raw results stay for a look; the copies go.
		err = errors.Join(err, os.RemoveAll(b.bins), os.RemoveAll(filepath.Join(work, "nats")))
	}()
	if err := b.prepareTools(); err != nil {
		return err
	}

	rdb, err := redisClient(cfg.RedisURL)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, rdb.Close()) }()
	b.rdb = rdb
	if err := deleteKeys(ctx, rdb, cfg.RedisPrefix); err != nil {
		return err
	}
	b.res.Date = started
	serverURL, err := withDatabase(cfg.DatabaseURL, "postgres")
	if err != nil {
		return err
	}
	b.res.Machine = machineFacts(ctx, serverURL, rdb)
	b.res.Settings = report.Settings{Duration: cfg.Duration, Warmup: cfg.Warmup, Clients: cfg.Clients,
		LagRate: float64(cfg.LagRate), IdleRate: float64(cfg.IdleRate), Rates: cfg.steppedRates(),
		DrainEvents: cfg.DrainEvents, ReadCarts: cfg.ReadCarts, Code: codeMeasured(ctx, cfg), Note: cfg.Note, NATSSync: cfg.NATSSync}
	b.say("measuring the machine's other work for %v before starting", settle)
	b.res.Machine.OutsideBefore = outsideBefore(ctx, settle)
	if o := b.res.Machine.OutsideBefore; o > report.BusyShare*float64(b.res.Machine.NProc) {
		b.say("the machine is busy with other work: %.2f CPUs of it; the numbers will be noisy", o)
	}

	b.phase(ctx, "raw PostgreSQL (pgbench)", b.rawWrites)
	b.phase(ctx, "raw read", b.rawReads)
	b.phase(ctx, "the system", b.system)
	b.phase(ctx, "stream durability", b.natsSync)

	if err := deleteKeys(context.WithoutCancel(ctx), rdb, cfg.RedisPrefix); err != nil {
		b.note(fmt.Sprintf("Could not delete the benchmark's Redis keys (%s*): %v", cfg.RedisPrefix, err))
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("interrupted; no report written: %w", err)
	}
	b.res.Machine.LoadAfter = loadAverage()
	b.res.Settings.Elapsed = time.Since(started)
	return b.write()
}

// phase runs one part of the benchmark; a failure is noted in the report
// and the benchmark goes on with the next part.
func (b *bench) phase(ctx context.Context, name string, f func(context.Context) error) {
	if ctx.Err() != nil {
		return
	}
	if err := f(ctx); err != nil && ctx.Err() == nil {
		b.note(fmt.Sprintf("The %s phase failed: %v", name, err))
		b.say("%s FAILED: %v", name, err)
	}
}

// system runs NATS and the three services and every phase that needs
// them.
func (b *bench) system(ctx context.Context) (err error) {
	var nats *natsServer
	if b.cfg.NATSURL == "" {
		if nats, err = b.startNATS(ctx, "nats-server", report.SyncDefault); err != nil {
			return err
		}
		defer b.stopNATS(nats)
	} else {
		nats = externalNATS(b.cfg.NATSURL)
	}
	b.res.Machine.NATSVersion = nats.version
	return b.withServices(ctx, nats, func(ctx context.Context, st *stack, m *meter) error {
		b.phase(ctx, "idle", func(ctx context.Context) error { return b.idle(ctx, m) })
		b.phase(ctx, "command service", func(ctx context.Context) error { return b.commands(ctx, st, m) })
		b.phase(ctx, "query service", func(ctx context.Context) error { return b.reads(ctx, st) })
		b.phase(ctx, "sustainable rate", func(ctx context.Context) error { return b.steps(ctx, st, m) })
		b.phase(ctx, "mix", func(ctx context.Context) error { return b.mix(ctx, st) })
		for _, svc := range []string{report.ServiceCommand, report.ServiceProjector, report.ServiceQuery} {
			m, err := st.memory(svc, report.PhaseLoad)
			if err != nil {
				return err
			}
			b.res.Memory = append(b.res.Memory, m)
		}
		b.phase(ctx, "relay drain", func(ctx context.Context) error { return b.drain(ctx, st, m) })
		b.phase(ctx, "rebuild", func(ctx context.Context) error { return b.rebuild(ctx, st) })
		return nil
	})
}

// startNATS starts a nats-server of the benchmark's own, named name, with
// the file store's sync setting and a store of its own.
func (b *bench) startNATS(ctx context.Context, name, sync string) (*natsServer, error) {
	return startNATS(ctx, b.tool("nats-server"), name, filepath.Join(b.work, "nats", name), b.logs, sync)
}

// stopNATS stops a nats-server the benchmark started.
func (b *bench) stopNATS(n *natsServer) {
	if err := n.stop(); err != nil {
		b.note(fmt.Sprintf("nats-server did not stop cleanly: %v", err))
	}
}

// withServices starts the three services on nats, over an empty database
// and Redis prefix, runs f with a meter of every process of the system,
// and stops them.
func (b *bench) withServices(ctx context.Context, nats *natsServer, f func(context.Context, *stack, *meter) error) (err error) {
	if err := resetDatabase(ctx, b.cfg.DatabaseURL); err != nil {
		return err
	}
	if err := deleteKeys(ctx, b.rdb, b.cfg.RedisPrefix); err != nil {
		return err
	}
	serverURL, err := withDatabase(b.cfg.DatabaseURL, "postgres")
	if err != nil {
		return err
	}
	pg := newPGMeter(ctx, serverURL, b.cfg.DatabaseURL)
	defer func() {
		for _, e := range pg.errs {
			b.note(fmt.Sprintf("PostgreSQL measurement: %v", e))
		}
		if cerr := pg.close(context.WithoutCancel(ctx)); cerr != nil {
			b.note(fmt.Sprintf("PostgreSQL measurement: close: %v", cerr))
		}
	}()
	b.res.Machine.PGStatStatements = pg.statements
	st, err := newStack(b.cfg, b.bins, b.logs, nats.url)
	if err != nil {
		return err
	}
	defer func() {
		if serr := st.stopAll(); serr != nil {
			b.note(fmt.Sprintf("A service did not stop cleanly: %v", serr))
		}
	}()
	b.say("starting command, projector and query (logs in %s)", b.logs)
	if err := st.startAll(ctx); err != nil {
		return err
	}
	return f(ctx, st, newMeter(ctx, st, nats, pg, b.rdb))
}

// write writes results.json, the plots and REPORT.md, and prints the
// verdict.
func (b *bench) write() error {
	if err := os.MkdirAll(b.cfg.Out, 0o755); err != nil {
		return err
	}
	raw, err := json.MarshalIndent(b.res, "", "  ")
	if err != nil {
		return fmt.Errorf("results: %w", err)
	}
	if err := os.WriteFile(filepath.Join(b.cfg.Out, "results.json"), append(raw, '\n'), 0o644); err != nil {
		return fmt.Errorf("results: %w", err)
	}
	plots, err := report.Plots(b.res, b.cfg.Out)
	if err != nil {
		b.note(fmt.Sprintf("Plots: %v", err))
	}
	before := b.before()
	checks := report.Evaluate(b.res)
	md := report.Markdown(b.res, before, checks, plots)
	if err := os.WriteFile(filepath.Join(b.cfg.Out, "REPORT.md"), []byte(md), 0o644); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	fmt.Fprintf(b.out, "\nRATIOS AND TARGETS (%s, %d CPUs, %.2f CPUs of other work before the start)\n%s\n%s\nReport: %s; took %s.\n",
		b.res.Date.Format(time.DateTime), b.res.Machine.NProc, b.res.Machine.OutsideBefore,
		report.Text(checks), report.CPUText(b.res, before), filepath.Join(b.cfg.Out, "REPORT.md"), b.res.Settings.Elapsed.Round(time.Second))
	for _, n := range b.res.Notes {
		fmt.Fprintf(b.out, "note: %s\n", n)
	}
	return nil
}

// before reads the results of the code before the speed work, if kept.
func (b *bench) before() *report.Results {
	before, err := report.ReadResults(b.cfg.Before)
	switch {
	case errors.Is(err, os.ErrNotExist):
		b.note(fmt.Sprintf("No results from before the speed work (%s): the report compares with nothing.", b.cfg.Before))
		return nil
	case err != nil:
		b.note(fmt.Sprintf("The results from before the speed work are unreadable: %v", err))
		return nil
	}
	return before
}

// prepareTools copies the binaries the benchmark runs into its scratch
// directory.
func (b *bench) prepareTools() error {
	for _, dir := range []string{b.logs, b.bins} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	}
	for _, name := range tools {
		if err := copyFile(filepath.Join(b.cfg.Bin, name), b.tool(name)); err != nil {
			return fmt.Errorf("%w (make bench builds them; run it, or make build and build scripts/loadgen and scripts/rawread into %s)", err, b.cfg.Bin)
		}
	}
	if b.cfg.NATSURL == "" {
		if err := copyFile(b.cfg.NATSServer, b.tool("nats-server")); err != nil {
			return fmt.Errorf("%w (make bench builds it: go build -o bin/ github.com/nats-io/nats-server/v2; or set BENCH_NATS_URL)", err)
		}
	}
	return nil
}

// codeMeasured names the code of the binaries: BENCH_CODE, or the commit
// of the working tree when the binaries are its bin/.
func codeMeasured(ctx context.Context, cfg config) string {
	if cfg.Code != "" {
		return cfg.Code
	}
	if filepath.Clean(cfg.Bin) != "bin" {
		return "the binaries in " + cfg.Bin
	}
	head, err := runTool(ctx, "git", "rev-parse", "--short", "HEAD")
	if err != nil {
		return "the binaries in bin/ (no git: " + err.Error() + ")"
	}
	code := "commit " + strings.TrimSpace(head)
	if dirty, err := runTool(ctx, "git", "status", "--porcelain", "--untracked-files=no", "--", "services", "pkg", "migrations"); err == nil && strings.TrimSpace(dirty) != "" {
		code += " with uncommitted changes to the services"
	}
	return code
}

func copyFile(from, to string) (err error) {
	src, err := os.Open(from)
	if err != nil {
		return err
	}
	defer func() { _ = src.Close() }() // read-only
	dst, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := dst.Close(); err == nil {
			err = cerr
		}
	}()
	_, err = io.Copy(dst, src)
	return err
}

func redisClient(url string) (*redis.Client, error) {
	opts, err := redis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("redis url: %w", err)
	}
	return redis.NewClient(opts), nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return hex.EncodeToString(b)
}
