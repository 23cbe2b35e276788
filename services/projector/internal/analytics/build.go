package analytics

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/cart-cqrs/cart/services/projector/internal/lease"
)

// BuildConfig tunes the builds.
type BuildConfig struct {
	// PageSize is how many events one read of the log returns (default
	// 10,000).
	PageSize int
	// DrainWait is how long the previous generation is still written after
	// readers switched, before it is dropped (default 2s): longer than
	// the query service caches the current generation (1s).
	DrainWait time.Duration
	// LockTTL is how long the build lock outlives a builder that died
	// (default 30s); a live build renews it every third of that.
	LockTTL time.Duration
	// CheckEvery is how often Run looks for a missing current generation
	// (a first deployment, a Redis wiped) or one left behind (default 30s).
	CheckEvery time.Duration
}

func (c BuildConfig) withDefaults() BuildConfig {
	if c.PageSize <= 0 {
		c.PageSize = 10000
	}
	if c.DrainWait <= 0 {
		c.DrainWait = 2 * time.Second
	}
	if c.LockTTL <= 0 {
		c.LockTTL = 30 * time.Second
	}
	if c.CheckEvery <= 0 {
		c.CheckEvery = 30 * time.Second
	}
	return c
}

// Phase is where a build is.
type Phase string

const (
	PhaseIdle      Phase = "idle"
	PhasePreparing Phase = "preparing"
	PhaseFilling   Phase = "filling"
	PhaseDraining  Phase = "draining"
	PhaseDropping  Phase = "dropping"
	PhaseDone      Phase = "done"
	PhaseFailed    Phase = "failed"
)

var phases = []Phase{PhaseIdle, PhasePreparing, PhaseFilling, PhaseDraining, PhaseDropping, PhaseDone, PhaseFailed}

// Progress is a snapshot of the running or last build of this Builder.
type Progress struct {
	Phase      Phase
	Generation int
	// Events is how many events were read from the log so far, Total how
	// many it held when the build began, Carts how many carts were seen.
	Events, Total, Carts int64
	Started              time.Time
}

// BuildResult is a finished build.
type BuildResult struct {
	Generation    int
	Events, Carts int64
	// Undecodable is how many events were passed over.
	Undecodable int64
	// Duration is from the start until readers switched to the generation.
	Duration time.Duration
	// Dropped is how many keys of the previous generation were deleted.
	Dropped int
}

// String is the summary line of the CLI.
func (r BuildResult) String() string {
	rate := 0.0
	if r.Duration > 0 {
		rate = float64(r.Events) / r.Duration.Seconds()
	}
	return fmt.Sprintf("built product analytics from %d events of %d carts in %s (%.0f events/s) into analytics generation %d",
		r.Events, r.Carts, r.Duration.Round(time.Millisecond), rate, r.Generation)
}

// ErrBuilding is returned when another build holds the lock.
var ErrBuilding = errors.New("analytics: another build is running")

// Builder builds generations from the event log.
type Builder struct {
	cfg     BuildConfig
	store   *Store
	log     Events
	metrics *Metrics
	logger  *slog.Logger

	mu       sync.Mutex
	progress Progress
}

// NewBuilder returns a Builder.
func NewBuilder(cfg BuildConfig, store *Store, log Events, metrics *Metrics, logger *slog.Logger) *Builder {
	return &Builder{cfg: cfg.withDefaults(), store: store, log: log, metrics: metrics, logger: logger,
		progress: Progress{Phase: PhaseIdle}}
}

// Progress returns where the running or last build is.
func (b *Builder) Progress() Progress {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.progress
}

func (b *Builder) update(f func(p *Progress)) {
	b.mu.Lock()
	f(&b.progress)
	p := b.progress
	b.mu.Unlock()
	b.metrics.setPhase(p.Phase)
	b.metrics.BuildEvents.Set(float64(p.Events))
	b.metrics.BuildTotal.Set(float64(p.Total))
}

// Run builds a generation when there is no current one — at once, and
// then every CheckEvery, so that a first deployment builds from the whole
// history and a Redis wiped heals itself — and clears what a build that
// died left behind. It returns nil when ctx ends.
func (b *Builder) Run(ctx context.Context) error {
	t := time.NewTicker(b.cfg.CheckEvery)
	defer t.Stop()
	for {
		if err := b.tend(ctx); err != nil && ctx.Err() == nil && !errors.Is(err, ErrBuilding) {
			b.logger.ErrorContext(ctx, "analytics: build failed, trying again later", "err", err, "in", b.cfg.CheckEvery)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

func (b *Builder) tend(ctx context.Context) error {
	gens, err := b.store.Generations(ctx)
	if err != nil {
		return err
	}
	current := gens.Current > 0
	if current {
		// Listed, but its keys are gone (evicted, say): readers have
		// nothing to read, so it is built again.
		if current, err = b.store.listed(ctx, gens.Current); err != nil {
			return err
		}
	}
	switch {
	case !current:
		b.logger.InfoContext(ctx, "analytics: no generation to serve: building one from the event log", "listed", gens.Current)
		res, err := b.Build(ctx)
		if err == nil {
			b.logger.InfoContext(ctx, res.String())
		}
		return err
	case gens.Building > 0 || gens.Previous > 0 || gens.Dropping > 0:
		// A build runs, or one died: the lock tells.
		return b.locked(ctx, func(ctx context.Context) error {
			gens, err := b.store.Generations(ctx)
			if err != nil {
				return err
			}
			return b.cleanUp(ctx, gens)
		})
	}
	return nil
}

// Rebuild builds the next generation and switches readers to it, waiting
// first for a build that runs elsewhere.
func (b *Builder) Rebuild(ctx context.Context) (BuildResult, error) {
	for {
		res, err := b.Build(ctx)
		if !errors.Is(err, ErrBuilding) {
			return res, err
		}
		if !sleep(ctx, time.Second) {
			return BuildResult{}, fmt.Errorf("analytics: waiting for another build: %w", ctx.Err())
		}
	}
}

// Build builds a new generation from the whole event log and switches
// readers to it, then drops the previous one. ErrBuilding when another
// build runs. When it fails or ctx ends before the switch, the new
// generation is dropped and readers keep the one they had.
func (b *Builder) Build(ctx context.Context) (res BuildResult, err error) {
	start := time.Now()
	err = b.locked(ctx, func(ctx context.Context) error {
		b.update(func(p *Progress) { *p = Progress{Phase: PhasePreparing, Started: start} })
		var err error
		res, err = b.build(ctx, start)
		return err
	})
	switch {
	case errors.Is(err, ErrBuilding):
		return BuildResult{}, err
	case err != nil:
		b.update(func(p *Progress) { p.Phase = PhaseFailed })
		return BuildResult{}, err
	}
	b.update(func(p *Progress) { p.Phase = PhaseDone })
	return res, nil
}

// locked runs fn holding the build lock, which it renews meanwhile; fn's
// ctx ends when the lock is lost. ErrBuilding when another holds it.
func (b *Builder) locked(ctx context.Context, fn func(ctx context.Context) error) error {
	err := lease.Run(ctx, b.store.lock, b.cfg.LockTTL, b.logger, "analytics build", fn)
	if errors.Is(err, lease.ErrHeld) {
		return ErrBuilding
	}
	return err
}

// cleanUp drops what builds that died left behind: a generation they were
// building or dropping, or the one readers were draining off. The caller
// holds the lock, so no build of its own is among them.
func (b *Builder) cleanUp(ctx context.Context, gens Generations) error {
	if gens.Dropping > 0 {
		if _, err := b.store.drop(ctx, gens.Dropping); err != nil {
			return err
		}
	}
	for _, left := range []struct {
		field string
		gen   int
	}{{"building", gens.Building}, {"previous", gens.Previous}} {
		if left.gen == 0 {
			continue
		}
		n, err := b.store.unlist(ctx, left.field, left.gen)
		if err != nil {
			return err
		}
		b.logger.InfoContext(ctx, "analytics: dropped a generation left behind", "generation", left.gen, "was", left.field, "keys", n)
	}
	return nil
}

func (b *Builder) build(ctx context.Context, start time.Time) (BuildResult, error) {
	gens, err := b.store.Generations(ctx)
	if err != nil {
		return BuildResult{}, err
	}
	if err := b.cleanUp(ctx, gens); err != nil {
		return BuildResult{}, err
	}
	gen, err := b.store.listBuilding(ctx, start)
	if err != nil {
		return BuildResult{}, err
	}
	b.logger.InfoContext(ctx, "analytics: building a generation from the event log; live writes go to it too",
		"generation", gen, "current", gens.Current)
	res, err := b.fill(ctx, gen)
	if err == nil {
		err = b.store.markBuilt(ctx, gen, time.Now())
	}
	if err == nil {
		err = b.store.changeRecord(ctx, "switch", gen)
	}
	if err != nil {
		return BuildResult{}, errors.Join(err, b.abandon(ctx, gen))
	}
	res.Generation, res.Duration = gen, time.Since(start)
	b.logger.InfoContext(ctx, "analytics: switched readers", "generation", gen, "events", res.Events, "carts", res.Carts)
	if gens.Current == 0 {
		return res, nil // nobody read a previous generation
	}

	// From here on the new generation stands: finish the clean-up even
	// when ctx ends, bounded.
	b.update(func(p *Progress) { p.Phase = PhaseDraining })
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute+b.cfg.DrainWait)
	defer cancel()
	t := time.NewTimer(b.cfg.DrainWait)
	select {
	case <-t.C:
	case <-ctx.Done():
		t.Stop()
	}
	b.update(func(p *Progress) { p.Phase = PhaseDropping })
	if res.Dropped, err = b.store.unlist(cctx, "previous", gens.Current); err != nil {
		return BuildResult{}, fmt.Errorf("analytics: switched to generation %d, but drop generation %d: %w", gen, gens.Current, err)
	}
	return res, nil
}

// abandon unlists the generation a failed build was filling and drops it;
// a clean-up that fails is left to the next build.
func (b *Builder) abandon(ctx context.Context, gen int) error {
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if _, err := b.store.unlist(actx, "building", gen); err != nil {
		return fmt.Errorf("analytics: abandon generation %d: %w", gen, err)
	}
	return nil
}

// sleep waits d or until ctx ends; it reports whether ctx is still alive.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
