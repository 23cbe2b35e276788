package app

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"runtime/debug"
	"slices"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	goredis "github.com/redis/go-redis/v9"
	"github.com/schollz/progressbar/v3"

	"github.com/cart-cqrs/cart/services/projector/internal/postgres"
	"github.com/cart-cqrs/cart/services/projector/internal/projector"
	"github.com/cart-cqrs/cart/services/projector/internal/rebuild"
	"github.com/cart-cqrs/cart/services/projector/internal/redis"
)

// Rebuild is the `projector rebuild` command: it rebuilds every read model
// from the event log into the next generation while the live projectors
// keep serving the current one, switches the readers and drops the old
// generation — or, with -cart, replaces one cart in place. It reads the
// service's environment (lookup) and prints its summary as the last line of
// stdout; the progress bar and the logs go to stderr.
func Rebuild(ctx context.Context, lookup func(string) (string, bool), args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("projector rebuild", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cartID := fs.String("cart", "", "rebuild only this cart, in place in the current generation")
	progress := fs.Bool("progress", true, "show a progress bar on stderr")
	verbose := fs.Bool("v", false, "log progress at info level")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: projector rebuild [-cart <id>] [-progress=false] [-v]")
		fmt.Fprintln(stderr, "Configured by the projector's environment (DATABASE_URL, REDIS_URL, REDIS_PREFIX, PROJECTOR_REBUILD_*).")
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
	store := redis.New(rdb, cfg.RedisPrefix)
	metrics, err := projector.NewMetrics(prometheus.NewRegistry())
	if err != nil {
		return err
	}

	if *cartID != "" {
		id, err := uuid.Parse(*cartID)
		if err != nil {
			return fmt.Errorf("-cart %q: not a cart id: %w", *cartID, err)
		}
		return rebuildCart(ctx, cfg, store, pool, metrics, logger, id.String(), stdout)
	}

	// A rebuild allocates a page of events after another and keeps little:
	// collecting garbage less often buys throughput with memory, which a
	// one-off command can spare.
	debug.SetGCPercent(400)
	rb := rebuild.New(rebuildConfig(cfg), store, pool, metrics, logger)
	stop := func() {}
	if *progress {
		stop = showProgress(rb, stderr)
	}
	res, err := rb.Run(ctx)
	stop()
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(stdout, res)
	return err
}

func rebuildCart(ctx context.Context, cfg Config, store *redis.Store, pool *pgxpool.Pool, metrics *projector.Metrics,
	logger *slog.Logger, cartID string, stdout io.Writer) error {
	start := time.Now()
	p := projector.New(projector.Config{MaxDeliver: cfg.MaxDeliver}, nil, store, pool, metrics, logger)
	n, err := p.RebuildCart(ctx, cartID)
	if err != nil {
		return err
	}
	gens, err := store.Generations(ctx)
	if err != nil {
		return err
	}
	res := rebuild.Result{Events: int64(n), Carts: 1, Duration: time.Since(start), Generation: gens.Current}
	_, err = fmt.Fprintln(stdout, res)
	return err
}

// showProgress draws the rebuild's progress on w until the returned func
// is called.
func showProgress(rb *rebuild.Rebuilder, w io.Writer) func() {
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
		var phase rebuild.Phase
		for {
			p := rb.Progress()
			if p.Total > 0 && bar.GetMax64() != max(p.Total, p.Events) {
				bar.ChangeMax64(max(p.Total, p.Events))
			}
			if p.Phase != phase && slices.Contains([]rebuild.Phase{rebuild.PhaseFilling, rebuild.PhaseDraining, rebuild.PhaseDropping}, p.Phase) {
				phase = p.Phase
				bar.Describe(fmt.Sprintf("rebuild g%d %s", p.Generation, phase))
			}
			_ = bar.Set64(p.Events) // drawing to a terminal: nothing to do about a failed write
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
