package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/cart-cqrs/cart/pkg/backoff"
	"github.com/cart-cqrs/cart/services/projector/internal/lease"
)

// Record is which generations of a projection exist, 0 meaning none: the
// one readers use (Current), the one a build fills (Building), the one
// readers are draining off after a switch (Previous), and one no longer
// listed whose keys are being deleted (Dropping).
type Record struct {
	Current, Building, Previous, Dropping int
}

// Writes are the generations kept up to date: the readers', the one being
// built and the one readers are draining off.
func (r Record) Writes() []int {
	var out []int
	for _, n := range []int{r.Current, r.Building, r.Previous} {
		if n > 0 && !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out
}

// Listing is where a generation other than the current one is listed.
type Listing string

const (
	Building Listing = "building"
	Previous Listing = "previous"
)

// Generations is a projection's record of its generations, in its store,
// and the keys of each. Every change is a compare-and-set on the record:
// ErrStaleRecord when it is not what the change expects.
type Generations interface {
	// Read reads the record.
	Read(ctx context.Context) (Record, error)
	// Open numbers a new generation and lists it as building: from then on
	// every live write lands in it too.
	Open(ctx context.Context, startedAt time.Time) (int, error)
	// Built notes when gen had read the whole log, before the switch.
	Built(ctx context.Context, gen int, at time.Time) error
	// Switch makes gen, building, the readers' current; the old current
	// becomes previous, still written.
	Switch(ctx context.Context, gen int) error
	// Unlist stops writing gen, listed as l, and deletes its keys; it
	// returns how many it deleted.
	Unlist(ctx context.Context, l Listing, gen int) (int, error)
	// Drop finishes deleting gen, listed as dropping.
	Drop(ctx context.Context, gen int) (int, error)
	// Serving reports whether gen, the current generation, still has its
	// keys: false when the store lost them.
	Serving(ctx context.Context, gen int) (bool, error)
	// The build lock: one build of the projection at a time, over all
	// processes.
	lease.Locker
}

// ErrStaleRecord is returned when the generations record is not what a
// change of it expected: something else changed it (the store wiped
// meanwhile, or a builder that lost its lock).
var ErrStaleRecord = errors.New("engine: generations record changed")

// Filler fills a generation from the event log.
type Filler interface {
	// Fill brings generation gen up to the whole event log as committed
	// when it begins (what commits later reaches gen through the live
	// writes, which include it since it was opened), telling r how far it
	// got.
	Fill(ctx context.Context, gen int, r Report) (Filled, error)
}

// Report is told how a fill goes.
type Report interface {
	// Begin says how many events the log holds as the fill begins.
	Begin(total int64)
	// Read adds the events read and the carts seen since the last call.
	Read(events, carts int64)
}

// Filled is what a fill read.
type Filled struct {
	Events, Carts int64
	// Undecodable is how many events were passed over.
	Undecodable int64
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

// Progress is a snapshot of the running or last build of a Builder.
type Progress struct {
	Phase      Phase
	Generation int
	// Events is how many events were read from the log so far, Total how
	// many it held when the build began, Carts how many carts were seen.
	Events, Total, Carts int64
	Started              time.Time
}

// Result is a finished build.
type Result struct {
	Projection string
	Generation int
	Filled
	// Duration is from the start until readers switched to the generation.
	Duration time.Duration
	// Dropped is how many keys of the previous generation were deleted.
	Dropped int
}

// String is the summary line of the CLI.
func (r Result) String() string {
	rate := 0.0
	if r.Duration > 0 {
		rate = float64(r.Events) / r.Duration.Seconds()
	}
	return fmt.Sprintf("%s: rebuilt %d events of %d carts in %s (%.0f events/s) into generation %d",
		r.Projection, r.Events, r.Carts, r.Duration.Round(time.Millisecond), rate, r.Generation)
}

// ErrBuilding is returned when another build of the projection holds the
// lock.
var ErrBuilding = errors.New("engine: another build is running")

// BuildConfig tunes the builds of one projection.
type BuildConfig struct {
	// DrainWait is how long the previous generation is still written after
	// readers switched, before it is dropped (default 2s): longer than
	// the query service caches the current generation (1s).
	DrainWait time.Duration
	// LockTTL is how long the build lock outlives a builder that died
	// (default 30s); a live build renews it every third of that.
	LockTTL time.Duration
	// CheckEvery is how often Run looks for a generation left behind by a
	// build that died and, with AutoBuild, for a missing current one
	// (default 30s).
	CheckEvery time.Duration
	// AutoBuild builds a generation whenever none serves: on the first
	// deployment, or after the store lost its keys. A projection the live
	// consumer fills from the stream's start does without.
	AutoBuild bool
}

func (c BuildConfig) withDefaults() BuildConfig {
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

// Builder builds a projection's generations from the event log while the
// live writes keep the current one up to date, then switches readers to the
// new one and drops the old one.
//
// A build:
//
//  1. opens a new generation n, listed as building (call that instant T0):
//     from then on every live write lands in it too, each cart guarded by
//     its own version there;
//  2. fills n from the log as committed when the fill begins (after T0);
//  3. switches readers to n; the old current becomes previous, still
//     written;
//  4. waits DrainWait (readers cache the current generation for up to a
//     second), unlists the previous generation and deletes its keys.
//
// Why nothing is missing from n. Take any event. If it was committed before
// T0, the fill sees it. If it was committed after T0, the relay published
// it after T0, so the live consumer fetched it after T0 and read a record
// listing n: it applies it to n, filling any gap from the log. A cart's
// version guards every write, so redeliveries and the interleaving of the
// live writes and the fill are harmless. A build that fails, or whose
// process stops, before the switch unlists n and drops it; what a build
// that died leaves behind is dropped by the next build, or by the check
// Run makes every CheckEvery.
type Builder struct {
	name    string
	cfg     BuildConfig
	gens    Generations
	filler  Filler
	metrics *Metrics
	logger  *slog.Logger

	mu       sync.Mutex
	progress Progress
}

// NewBuilder returns the builder of the named projection's generations.
func NewBuilder(name string, cfg BuildConfig, gens Generations, filler Filler, metrics *Metrics, logger *slog.Logger) *Builder {
	b := &Builder{name: name, cfg: cfg.withDefaults(), gens: gens, filler: filler, metrics: metrics, logger: logger,
		progress: Progress{Phase: PhaseIdle}}
	metrics.setPhase(name, PhaseIdle)
	metrics.BuildRead.WithLabelValues(name).Set(0)
	metrics.BuildTotal.WithLabelValues(name).Set(0)
	metrics.BuildApplied.WithLabelValues(name)
	return b
}

// Name is the projection's name.
func (b *Builder) Name() string { return b.name }

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
	b.metrics.setPhase(b.name, p.Phase)
	b.metrics.BuildRead.WithLabelValues(b.name).Set(float64(p.Events))
	b.metrics.BuildTotal.WithLabelValues(b.name).Set(float64(p.Total))
}

// Begin is the fill's Report.
func (b *Builder) Begin(total int64) {
	b.update(func(p *Progress) { p.Phase, p.Total = PhaseFilling, total })
}

// Read is the fill's Report.
func (b *Builder) Read(events, carts int64) {
	b.update(func(p *Progress) { p.Events += events; p.Carts += carts })
	b.metrics.BuildApplied.WithLabelValues(b.name).Add(float64(events))
}

// Run clears, at once and then every CheckEvery, what a build that died
// left behind and, with AutoBuild, builds a generation when none serves. It
// returns nil when ctx ends.
func (b *Builder) Run(ctx context.Context) error {
	t := time.NewTicker(b.cfg.CheckEvery)
	defer t.Stop()
	for {
		if err := b.tend(ctx); err != nil && ctx.Err() == nil && !errors.Is(err, ErrBuilding) {
			b.logger.ErrorContext(ctx, b.name+": build failed, trying again later", "err", err, "in", b.cfg.CheckEvery)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

func (b *Builder) tend(ctx context.Context) error {
	rec, err := b.gens.Read(ctx)
	if err != nil {
		return err
	}
	if b.cfg.AutoBuild {
		serving := rec.Current > 0
		if serving {
			// Listed, but its keys are gone (evicted, say): readers have
			// nothing to read, so it is built again.
			if serving, err = b.gens.Serving(ctx, rec.Current); err != nil {
				return err
			}
		}
		if !serving {
			b.logger.InfoContext(ctx, b.name+": no generation to serve: building one from the event log", "listed", rec.Current)
			res, err := b.Build(ctx)
			if err == nil {
				b.logger.InfoContext(ctx, res.String())
			}
			return err
		}
	}
	if rec.Building == 0 && rec.Previous == 0 && rec.Dropping == 0 {
		return nil
	}
	// A build runs, or one died: the lock tells.
	return b.locked(ctx, func(ctx context.Context) error {
		rec, err := b.gens.Read(ctx)
		if err != nil {
			return err
		}
		return b.cleanUp(ctx, rec)
	})
}

// Rebuild builds the next generation and switches readers to it, waiting
// first for a build that runs elsewhere.
func (b *Builder) Rebuild(ctx context.Context) (Result, error) {
	for {
		res, err := b.Build(ctx)
		if !errors.Is(err, ErrBuilding) {
			return res, err
		}
		if !backoff.Sleep(ctx, time.Second) {
			return Result{}, fmt.Errorf("%s: waiting for another build: %w", b.name, ctx.Err())
		}
	}
}

// Build builds a new generation from the whole event log and switches
// readers to it, then drops the previous one. ErrBuilding when another
// build runs. When it fails or ctx ends before the switch, the new
// generation is dropped and readers keep the one they had.
func (b *Builder) Build(ctx context.Context) (res Result, err error) {
	start := time.Now()
	err = b.locked(ctx, func(ctx context.Context) error {
		b.update(func(p *Progress) { *p = Progress{Phase: PhasePreparing, Started: start} })
		var err error
		res, err = b.build(ctx, start)
		return err
	})
	switch {
	case errors.Is(err, ErrBuilding):
		return Result{}, err
	case err != nil:
		b.update(func(p *Progress) { p.Phase = PhaseFailed })
		return Result{}, err
	}
	b.update(func(p *Progress) { p.Phase = PhaseDone })
	b.logger.InfoContext(ctx, b.name+": build done", "generation", res.Generation, "dropped_keys", res.Dropped,
		"until_switch", res.Duration.Round(time.Millisecond), "total", time.Since(start).Round(time.Millisecond))
	return res, nil
}

// locked runs fn holding the build lock, which it renews meanwhile; fn's
// ctx ends when the lock is lost. ErrBuilding when another holds it.
func (b *Builder) locked(ctx context.Context, fn func(ctx context.Context) error) error {
	err := lease.Run(ctx, b.gens, b.cfg.LockTTL, b.logger, b.name+" build", fn)
	if errors.Is(err, lease.ErrHeld) {
		return ErrBuilding
	}
	return err
}

// cleanUp drops what builds that died left behind: a generation they were
// building or dropping, or the one readers were draining off. The caller
// holds the lock, so no build of its own is among them.
func (b *Builder) cleanUp(ctx context.Context, rec Record) error {
	if rec.Dropping > 0 {
		if _, err := b.gens.Drop(ctx, rec.Dropping); err != nil {
			return err
		}
	}
	for _, left := range []struct {
		l   Listing
		gen int
	}{{Building, rec.Building}, {Previous, rec.Previous}} {
		if left.gen == 0 {
			continue
		}
		n, err := b.gens.Unlist(ctx, left.l, left.gen)
		if err != nil {
			return err
		}
		b.logger.InfoContext(ctx, b.name+": dropped a generation left behind", "generation", left.gen, "was", left.l, "keys", n)
	}
	return nil
}

func (b *Builder) build(ctx context.Context, start time.Time) (Result, error) {
	rec, err := b.gens.Read(ctx)
	if err != nil {
		return Result{}, err
	}
	if err := b.cleanUp(ctx, rec); err != nil {
		return Result{}, err
	}
	gen, err := b.gens.Open(ctx, start)
	if err != nil {
		return Result{}, err
	}
	b.update(func(p *Progress) { p.Generation = gen })
	b.logger.InfoContext(ctx, b.name+": building a generation from the event log; live writes go to it too",
		"generation", gen, "current", rec.Current)
	filled, err := b.filler.Fill(ctx, gen, b)
	if err == nil {
		err = b.gens.Built(ctx, gen, time.Now())
	}
	if err == nil {
		err = b.gens.Switch(ctx, gen)
	}
	if err != nil {
		return Result{}, errors.Join(err, b.abandon(ctx, gen))
	}
	res := Result{Projection: b.name, Generation: gen, Filled: filled, Duration: time.Since(start)}
	b.logger.InfoContext(ctx, b.name+": switched readers", "generation", gen, "events", res.Events, "carts", res.Carts)
	if rec.Current == 0 {
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
	if res.Dropped, err = b.gens.Unlist(cctx, Previous, rec.Current); err != nil {
		return Result{}, fmt.Errorf("%s: switched to generation %d, but drop generation %d: %w", b.name, gen, rec.Current, err)
	}
	return res, nil
}

// abandon unlists the generation a failed build was filling and drops it;
// a clean-up that fails is left to the next build.
func (b *Builder) abandon(ctx context.Context, gen int) error {
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if _, err := b.gens.Unlist(actx, Building, gen); err != nil {
		return fmt.Errorf("%s: abandon generation %d: %w", b.name, gen, err)
	}
	return nil
}
