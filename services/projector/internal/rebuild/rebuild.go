// Package rebuild rebuilds every read model from the event log in
// PostgreSQL into a new generation while the live projectors keep serving
// the current one, then switches the readers to it and drops the old one.
//
// # The generation handshake
//
// Two Redis keys say which generations exist for whom: the current
// generation (readmodel.CurrentGeneration), which readers use, and the
// generations written, which every live projector keeps up to date. Every
// live write is one Lua call per cart that first compares both keys with
// what the projector read when it computed the write, and refuses it
// otherwise (projector.ErrStaleGenerations: the projector reads them
// again, reloads the cart and computes the write again). So once a key
// changes, no write computed from the old value lands, whichever
// instance computed it and however long it took.
//
// A rebuild from generation g to n = g+1:
//
//  1. Takes the rebuild lock (one rebuild at a time, over all processes).
//  2. Writes "g,n" as the generations written (call that instant T0). From
//     T0 every live write lands in both g and n, atomically, each guarded
//     by its own version: n may be behind (the rebuild has not reached the
//     cart), and a gap there is filled from the event log like any gap.
//  3. Reads the whole log in position order, in large pages, folds each
//     cart and merges it into n: a merge writes only when it takes the
//     cart further than what n holds (the live projectors may have got
//     there first); both are folds of the same log, so the further one is
//     right. The reading goes on until a page comes back short: the end.
//  4. Switches: one call sets the current generation to n and the
//     generations written to "n,g". Readers see either g or n, each whole.
//  5. Waits DrainWait (the readers cache the current generation for up to
//     a second) while the projectors still keep g up to date, then writes
//     "n" alone and deletes g's keys (SCAN + UNLINK, in batches).
//
// Why nothing is lost in n. Take any event. If a live projector applied it
// in a write that landed after T0, that write included n. Otherwise it was
// applied before T0 — and so committed to PostgreSQL before T0 (the relay
// publishes only committed events, and gaps are read from PostgreSQL) — or
// not at all yet, and then it will be, after T0, into n. The rebuild starts
// reading after T0, so it sees every event committed before T0, even those
// whose position a slower transaction held back: a cart's later versions
// always have later positions, and a version the rebuild finds missing is
// read from the cart's stream. A write that lands after the switch in step
// 4 was computed for "n,g" or later, so it lands in n; one computed for
// "g,n" is refused and computed again. Parked events are in no generation
// until they are retried or skipped, which writes every generation written.
package rebuild

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cart-cqrs/cart/pkg/cart"
	"github.com/cart-cqrs/cart/pkg/eventlog"
	"github.com/cart-cqrs/cart/pkg/readmodel"
	"github.com/cart-cqrs/cart/services/projector/internal/lease"
	"github.com/cart-cqrs/cart/services/projector/internal/projector"
)

// Events is the event log: read in pages, and counted.
type Events interface {
	eventlog.Querier
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// Store is what a rebuild needs of the read-model store, besides what a
// projector needs.
type Store interface {
	projector.Store
	// SetGenerations sets the current generation and the generations
	// written, provided they are still from (else ErrStaleGenerations).
	SetGenerations(ctx context.Context, from projector.Generations, current int, writes []int) (projector.Generations, error)
	// EncodeMerges prepares what the rebuild folded for generation gen
	// (encoding is work of its own, done while the previous batch is being
	// written).
	EncodeMerges(gen int, merges []Merge) (MergeBatch, error)
	// StoredGenerations lists the generations that have keys.
	StoredGenerations(ctx context.Context) ([]int, error)
	// DropGeneration deletes every key of generation gen and returns how
	// many it deleted.
	DropGeneration(ctx context.Context, gen int) (int, error)
	// Locker is the rebuild lock: one rebuild at a time, over all
	// processes.
	lease.Locker
}

// Merge is one cart as the rebuild folded it: State, and the history
// entries after Base, the version the rebuild stored before (all of them,
// from version 1, when Whole).
type Merge struct {
	CartID  string
	Base    int
	State   cart.State
	History []readmodel.HistoryEntry
	Skipped []int
	Whole   bool
}

// MergeBatch is merges encoded for the store.
type MergeBatch interface {
	// Write stores them, one result per merge.
	Write(ctx context.Context) ([]MergeResult, error)
}

// MergeResult is what a Merge did.
type MergeResult int

const (
	// Merged: the cart was stored.
	Merged MergeResult = iota
	// Behind: the generation had the cart at State's version or later.
	Behind
	// Reset: the stored cart is neither the rebuild's last write nor ahead
	// of it; the rebuild must store the cart whole.
	Reset
)

// ErrRunning is returned when another rebuild holds the lock.
var ErrRunning = errors.New("rebuild: another rebuild is running")

// Config tunes a rebuild.
type Config struct {
	// PageSize is how many events one read of the log returns (default
	// 20,000).
	PageSize int
	// WriteBatch is about how many events are folded before they are
	// written (default 100,000): a cart whose events span several pages
	// is written once for them all.
	WriteBatch int
	// DrainWait is how long the old generation is still written after the
	// switch, before it is dropped (default 2s): longer than readers cache
	// the current generation (the query service: 1s).
	DrainWait time.Duration
	// LockTTL is how long the rebuild lock outlives a rebuild that died
	// (default 30s); a live rebuild renews it every third of that.
	LockTTL time.Duration
	// Applier folds an event onto a cart (default projector.Evolve).
	Applier projector.Applier
}

func (c Config) withDefaults() Config {
	if c.PageSize <= 0 {
		c.PageSize = 20000
	}
	if c.WriteBatch <= 0 {
		c.WriteBatch = 100000
	}
	if c.DrainWait <= 0 {
		c.DrainWait = 2 * time.Second
	}
	if c.LockTTL <= 0 {
		c.LockTTL = 30 * time.Second
	}
	if c.Applier == nil {
		c.Applier = projector.Evolve
	}
	return c
}

// Phase is where a rebuild is.
type Phase string

const (
	PhasePreparing Phase = "preparing"
	PhaseFilling   Phase = "filling"
	PhaseDraining  Phase = "draining"
	PhaseDropping  Phase = "dropping"
	PhaseDone      Phase = "done"
	PhaseFailed    Phase = "failed"
)

// Progress is a snapshot of a rebuild.
type Progress struct {
	Phase      Phase
	Generation int
	// Events is how many events were folded so far, Total how many the log
	// held when the rebuild began, Carts how many carts were seen.
	Events, Total, Carts int64
	Started              time.Time
}

// Result is a finished rebuild.
type Result struct {
	Events, Carts int64
	// Duration is from the start until the readers switched to the new
	// generation; draining and dropping the old one follow.
	Duration   time.Duration
	Generation int
	// Dropped is how many keys of the old generation were deleted.
	Dropped int
}

// String is the summary line of the CLI.
func (r Result) String() string {
	rate := 0.0
	if r.Duration > 0 {
		rate = float64(r.Events) / r.Duration.Seconds()
	}
	return fmt.Sprintf("rebuilt %d events of %d carts in %s (%.0f events/s) into generation %d",
		r.Events, r.Carts, r.Duration.Round(time.Millisecond), rate, r.Generation)
}

// Rebuilder runs rebuilds.
type Rebuilder struct {
	cfg     Config
	store   Store
	events  Events
	metrics *projector.Metrics
	logger  *slog.Logger

	mu       sync.Mutex
	progress Progress
}

// New returns a Rebuilder. metrics may be nil.
func New(cfg Config, store Store, events Events, metrics *projector.Metrics, logger *slog.Logger) *Rebuilder {
	return &Rebuilder{cfg: cfg.withDefaults(), store: store, events: events, metrics: metrics, logger: logger}
}

// Progress returns where the last rebuild is.
func (r *Rebuilder) Progress() Progress {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.progress
}

func (r *Rebuilder) update(f func(p *Progress)) {
	r.mu.Lock()
	f(&r.progress)
	r.mu.Unlock()
}

// Run rebuilds every read model into the next generation and switches the
// readers to it. When it fails or ctx ends before the switch, the next
// generation is abandoned and the current one stays as it was.
func (r *Rebuilder) Run(ctx context.Context) (res Result, err error) {
	start := time.Now()
	r.update(func(p *Progress) { *p = Progress{Phase: PhasePreparing, Started: start} })
	defer func() {
		if err != nil {
			r.update(func(p *Progress) { p.Phase = PhaseFailed })
		}
		if r.metrics != nil {
			r.metrics.RebuildTotal.Set(0)
		}
	}()
	err = lease.Run(ctx, r.store, r.cfg.LockTTL, r.logger, "rebuild", func(ctx context.Context) (err error) {
		res, err = r.run(ctx, start)
		return err
	})
	if errors.Is(err, lease.ErrHeld) {
		return Result{}, ErrRunning
	}
	if err != nil {
		return Result{}, err
	}
	r.update(func(p *Progress) { p.Phase = PhaseDone })
	r.logger.InfoContext(ctx, "rebuild: done", "generation", res.Generation, "dropped_keys", res.Dropped,
		"until_switch", res.Duration.Round(time.Millisecond), "total", time.Since(start).Round(time.Millisecond))
	return res, nil
}

func (r *Rebuilder) run(ctx context.Context, start time.Time) (Result, error) {
	gens, err := r.store.Generations(ctx)
	if err != nil {
		return Result{}, err
	}
	cur := gens.Current
	// An interrupted rebuild may have left its generation behind, still
	// written: stop writing it, then drop every generation but the current.
	if len(gens.Writes) != 1 || gens.Writes[0] != cur {
		if gens, err = r.store.SetGenerations(ctx, gens, cur, []int{cur}); err != nil {
			return Result{}, err
		}
	}
	stored, err := r.store.StoredGenerations(ctx)
	if err != nil {
		return Result{}, err
	}
	for _, g := range stored {
		if g != cur {
			n, err := r.store.DropGeneration(ctx, g)
			if err != nil {
				return Result{}, err
			}
			r.logger.InfoContext(ctx, "rebuild: dropped a left-over generation", "generation", g, "keys", n)
		}
	}
	next := cur + 1
	if gens, err = r.store.SetGenerations(ctx, gens, cur, []int{cur, next}); err != nil {
		return Result{}, err
	}
	r.logger.InfoContext(ctx, "rebuild: filling the next generation; projectors write both", "current", cur, "next", next)
	res, err := r.fill(ctx, gens, next)
	if err != nil {
		return Result{}, errors.Join(err, r.abandon(ctx, gens, cur, next))
	}
	res.Generation = next

	// The switch: readers move to next at once.
	if gens, err = r.store.SetGenerations(ctx, gens, next, []int{next, cur}); err != nil {
		return Result{}, errors.Join(err, r.abandon(ctx, gens, cur, next))
	}
	res.Duration = time.Since(start)
	r.logger.InfoContext(ctx, "rebuild: switched readers", "generation", next, "events", res.Events, "carts", res.Carts)
	r.update(func(p *Progress) { p.Phase = PhaseDraining })
	// From here on the new generation stands: finish the clean-up even
	// when ctx ends, bounded.
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute+r.cfg.DrainWait)
	defer cancel()
	t := time.NewTimer(r.cfg.DrainWait)
	select {
	case <-t.C:
	case <-ctx.Done():
		t.Stop()
	}
	if _, err := r.store.SetGenerations(cctx, gens, next, []int{next}); err != nil {
		return Result{}, fmt.Errorf("rebuild: switched to generation %d, but stop writing generation %d: %w", next, cur, err)
	}
	r.update(func(p *Progress) { p.Phase = PhaseDropping })
	if res.Dropped, err = r.store.DropGeneration(cctx, cur); err != nil {
		return Result{}, fmt.Errorf("rebuild: switched to generation %d, but drop generation %d: %w", next, cur, err)
	}
	return res, nil
}

// abandon stops the projectors writing next and drops it.
func (r *Rebuilder) abandon(ctx context.Context, gens projector.Generations, cur, next int) error {
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	now, err := r.store.Generations(actx)
	if err != nil {
		return fmt.Errorf("rebuild: abandon generation %d: %w", next, err)
	}
	if now.Token != gens.Token {
		return fmt.Errorf("rebuild: abandon generation %d: generations changed meanwhile (%v): left as they are", next, now.Writes)
	}
	if _, err := r.store.SetGenerations(actx, now, cur, []int{cur}); err != nil {
		return fmt.Errorf("rebuild: abandon generation %d: %w", next, err)
	}
	if _, err := r.store.DropGeneration(actx, next); err != nil {
		return fmt.Errorf("rebuild: abandon generation %d: %w", next, err)
	}
	return nil
}
