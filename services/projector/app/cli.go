package app

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"runtime/debug"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	goredis "github.com/redis/go-redis/v9"
	"github.com/schollz/progressbar/v3"

	"github.com/cart-cqrs/cart/services/projector/internal/documents"
	"github.com/cart-cqrs/cart/services/projector/internal/engine"
	"github.com/cart-cqrs/cart/services/projector/internal/postgres"
)

// Rebuild is the `projector rebuild` command: it rebuilds every read model
// from the event log into the next generation while the live projectors
// keep serving the current one, switches the readers and drops the old
// generation, then does the same for the product analytics (unless
// -analytics=false) — or, with -cart, replaces one cart in place (the
// analytics are not touched). It reads the service's environment (lookup)
// and prints the analytics' summary, then the read models' as the last line
// of stdout; the progress bars and the logs go to stderr.
func Rebuild(ctx context.Context, lookup func(string) (string, bool), args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("projector rebuild", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cartID := fs.String("cart", "", "rebuild only this cart, in place in the current generation")
	progress := fs.Bool("progress", true, "show a progress bar on stderr")
	verbose := fs.Bool("v", false, "log progress at info level")
	withAnalytics := fs.Bool("analytics", true, "rebuild the product analytics too, after the read models")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: projector rebuild [-cart <id>] [-analytics=false] [-progress=false] [-v]")
		fmt.Fprintln(stderr, "Configured by the projector's environment (DATABASE_URL, REDIS_URL, REDIS_PREFIX, PROJECTOR_REBUILD_*, ANALYTICS_BUILD_PAGE).")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return fmt.Errorf("unexpected arguments %v", fs.Args())
	}
	cfg, err := readConfig(lookup)
	if err != nil {
		return err
	}
	if err := cfg.validateProjection(); err != nil {
		return err
	}
	cfg = cfg.withDefaults()
	level := slog.LevelWarn
	if *verbose {
		level = slog.LevelInfo
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))

	pool, err := postgres.NewPool(ctx, cfg.DatabaseURL)
	if err != nil {
		return err
	}
	defer pool.Close()
	ropts, err := goredis.ParseURL(cfg.RedisURL)
	if err != nil {
		return fmt.Errorf("redis url: %w", err)
	}
	rdb := goredis.NewClient(ropts)
	defer func() {
		if cerr := rdb.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("redis close: %w", cerr)
		}
	}()
	reg := prometheus.NewRegistry()
	metrics, err := engine.NewMetrics(reg)
	if err != nil {
		return err
	}
	docMetrics, err := documents.NewMetrics(reg)
	if err != nil {
		return err
	}
	proj := newProjections(cfg, rdb, pool, metrics, docMetrics, logger)

	if *cartID != "" {
		id, err := uuid.Parse(*cartID)
		if err != nil {
			return fmt.Errorf("-cart %q: not a cart id: %w", *cartID, err)
		}
		return rebuildCart(ctx, proj, id.String(), stdout)
	}

	// A rebuild allocates a page of events after another and keeps little:
	// collecting garbage less often buys throughput with memory, which a
	// one-off command can spare.
	debug.SetGCPercent(400)
	builders := proj.builders
	if !*withAnalytics {
		builders = builders[:1]
	}
	var results []engine.Result
	for i, b := range builders {
		stop := func() {}
		if *progress {
			stop = showProgress(stderr, func() (string, int64, int64) {
				p := b.Progress()
				if p.Phase == engine.PhaseIdle {
					return b.Name() + ": waiting for a running build", 0, 0
				}
				return fmt.Sprintf("%s g%d %s", b.Name(), p.Generation, p.Phase), p.Events, p.Total
			})
		}
		build := b.Rebuild // the others' builds may run in a projector: wait for them
		if i == 0 {
			build = b.Build
		}
		res, err := build(ctx)
		stop()
		if err != nil {
			if i > 0 {
				return fmt.Errorf("%s, but: %w", results[0], err)
			}
			return err
		}
		results = append(results, res)
	}
	// The first projection's line comes last: the command's contract.
	for _, res := range append(results[1:], results[0]) {
		if _, err := fmt.Fprintln(stdout, res); err != nil {
			return err
		}
	}
	return nil
}

// rebuildCart replaces one cart's documents in place.
func rebuildCart(ctx context.Context, proj *projections, cartID string, stdout io.Writer) error {
	start := time.Now()
	n, err := proj.documents.RebuildCart(ctx, cartID)
	if err != nil {
		return err
	}
	gens, err := proj.store.Generations(ctx)
	if err != nil {
		return err
	}
	res := engine.Result{Projection: documents.Name, Generation: gens.Current, Duration: time.Since(start),
		Filled: engine.Filled{Events: int64(n), Carts: 1}}
	_, err = fmt.Fprintln(stdout, res)
	return err
}

// showProgress draws a progress bar on w until the returned func is
// called: progress says what runs, how many events it has done and of how
// many (0: not known yet).
func showProgress(w io.Writer, progress func() (what string, events, total int64)) func() {
	bar := progressbar.NewOptions64(-1,
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetDescription("rebuild"),
		progressbar.OptionSetItsString("events"),
		progressbar.OptionShowIts(),
		progressbar.OptionShowCount(),
		progressbar.OptionSetWidth(30),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionSetPredictTime(true),
	)
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		shown := ""
		for {
			what, events, total := progress()
			if total > 0 && bar.GetMax64() != max(total, events) {
				bar.ChangeMax64(max(total, events))
			}
			if what != shown {
				shown = what
				bar.Describe(what)
			}
			_ = bar.Set64(events) // drawing to a terminal: nothing to do about a failed write
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	return func() {
		close(done)
		wg.Wait()
		_ = bar.Finish()
		fmt.Fprintln(w)
	}
}
