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
	// AppendEntry appends a history entry to b as the store keeps it.
	AppendEntry(b []byte, h readmodel.HistoryEntry) ([]byte, error)
	// WriteMerges stores what the rebuild folded into generation gen: one
	// result per merge.
	WriteMerges(ctx context.Context, gen int, merges []Merge) ([]MergeResult, error)
	// StoredGenerations lists the generations that have keys.
	StoredGenerations(ctx context.Context) ([]int, error)
	// DropGeneration deletes every key of generation gen and returns how
	// many it deleted.
	DropGeneration(ctx context.Context, gen int) (int, error)
	// Locker is the rebuild lock: one rebuild at a time, over all
	// processes.
	lease.Locker
}

// Merge is one cart as the rebuild folded it so far. Its history entries
// after Base, the version the rebuild placed in the generation before (0:
// none), are staged in the store as they come (Staged of them already),
// then placed with the document, once, when the cart is done.
type Merge struct {
	CartID string
	Base   int
	State  cart.State
	// Staged is how many entries after Base the store holds staged;
	// Entries are the next ones, encoded by Store.AppendEntry.
	Staged  int
	Entries [][]byte
	Skipped []int
	// Place stores the cart (State and the entries staged and given);
	// otherwise the entries are only staged.
	Place bool
	// Index asks for the customer's open-cart index to follow the cart:
	// its status changed since Base (a cart's status only moves forward,
	// so the index already follows it otherwise).
	Index bool

	// blocks hold the entries; released once they are written.
	blocks []*block
}

// MergeResult is what a Merge did.
type MergeResult int

const (
	// Merged: the cart was stored (or its entries staged).
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
	// WriteBatch is about how many history entries are folded before
	// those of carts still open are staged in the store (default 16,384):
	// it bounds the memory the entries waiting take (a few hundred bytes
	// each).
	WriteBatch int
	// MaxCarts is about how many carts the rebuild keeps folded in memory
	// (default 50,000): beyond it, those it has not seen for longest are
	// forgotten once written, and read again from the log if they come
	// back. It wants to be more than the carts a shop has open at once.
	MaxCarts int
	// DrainWait is how long the old generation is still written after the
	// switch, before it is dropped (default 2s): longer than readers cache
	// the current generation (the query service: 1s).
	DrainWait time.Duration
	// LockTTL is how long the rebuild lock outlives a rebuild that died
	// (default 30s); a live rebuild renews it every third of that.
	LockTTL time.Duration
	// Applier folds an event onto a cart (default: projector.Evolve's
	// fold, with a faster decoding of the current schema versions). The
	// envelope it is given is valid only during the call.
	Applier projector.Applier
}

func (c Config) withDefaults() Config {
	if c.PageSize <= 0 {
		c.PageSize = 20000
	}
	if c.WriteBatch <= 0 {
		c.WriteBatch = 16384
	}
	if c.MaxCarts <= 0 {
		c.MaxCarts = 50000
	}
	if c.DrainWait <= 0 {
		c.DrainWait = 2 * time.Second
	}
	if c.LockTTL <= 0 {
		c.LockTTL = 30 * time.Second
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
