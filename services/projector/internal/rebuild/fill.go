package rebuild

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cart-cqrs/cart/pkg/cart"
	"github.com/cart-cqrs/cart/pkg/envelope"
	"github.com/cart-cqrs/cart/pkg/readmodel"
	"github.com/cart-cqrs/cart/services/projector/internal/documents"
	"github.com/cart-cqrs/cart/services/projector/internal/engine"
)

// folding is one cart as the rebuild has folded it so far.
type folding struct {
	id    string
	state cart.State
	// stored is the version the rebuild placed in the generation last
	// (0: none), indexed the status the cart had then, and staged how many
	// entries after it the store holds staged.
	stored  int
	indexed cart.Status
	staged  int
	// seen is the last version the rebuild read (applied or parked).
	seen int
	// parkedFrom is the version from which the cart's events are parked
	// (0: none): they are not applied, and the ones not parked yet are
	// parked behind.
	parkedFrom int
	skipped    []int
	// entries are the history entries not handed to the writer yet,
	// encoded, each in its block; pending is set while there are any.
	entries [][]byte
	blocks  []*block
	pending bool
	// done is set once the cart is queued to be placed.
	done bool
	// park are events to park.
	park []documents.Parked
	// last is the rebuild's count of events when it read one of the cart:
	// the carts unseen for longest are forgotten first.
	last int64
}

// finished reports whether the cart takes no more events: checked out,
// and not parking them.
func (c *folding) finished() bool {
	return c.state.Status == cart.StatusCheckedOut && c.parkedFrom == 0
}

// filler streams the log into one generation: it reads and folds in one
// goroutine (PostgreSQL works on the rows ahead meanwhile), and writers
// store what was folded, each cart always by the same writer, in order.
type filler struct {
	r   *Rebuilder
	rep engine.Report
	// reported is how many carts rep was told of.
	reported int64
	gens     documents.Generations
	gen      int
	apply    documents.Applier
	dec      decoder
	carts    map[string]*folding
	// parked are the carts with parked events when the rebuild began:
	// their first parked version.
	parked map[string]int
	res    engine.Filled
	count  int64
	// pending are the carts with entries not handed to the writers yet
	// (and some handed since), pendingEvents how many entries they hold;
	// done are the carts that are done, to be placed.
	pending       []*folding
	pendingEvents int
	done          []*folding
	parking       []*folding
	// block is where the next history entry is encoded.
	block  *block
	writes []chan []Merge

	// The time reading and folding took, and writing (summed over the
	// writers): the larger limits the rebuild.
	folding time.Duration
	writing atomic.Int64
}

func (r *Rebuilder) Fill(ctx context.Context, gen int, rep engine.Report) (engine.Filled, error) {
	gens, err := r.store.Generations(ctx)
	if err != nil {
		return engine.Filled{}, err
	}
	if !gens.Has(gen) {
		return engine.Filled{}, fmt.Errorf("rebuild: generation %d is not written (%v): %w", gen, gens.Writes, engine.ErrStaleRecord)
	}
	f := &filler{r: r, rep: rep, gens: gens, gen: gen, carts: map[string]*folding{}, parked: map[string]int{}}
	f.apply = f.evolve
	if custom := r.cfg.Applier; custom != nil {
		f.apply = func(s cart.State, e envelope.Envelope) (cart.State, error) {
			return custom(s, e.Clone())
		}
	}
	if err := f.loadParked(ctx); err != nil {
		return engine.Filled{}, err
	}
	// The log's end now, after the generation was opened, bounds the
	// reading (see engine.Builder); what commits later reaches the
	// generation through the live writes.
	total, upTo, err := r.log.End(ctx)
	if err != nil {
		return engine.Filled{}, fmt.Errorf("rebuild: %w", err)
	}
	rep.Begin(total)

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	f.writes = make([]chan []Merge, writers)
	for i := range f.writes {
		ch := make(chan []Merge)
		f.writes[i] = ch
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f.writeAll(ctx, ch); err != nil {
				cancel(err)
			}
		}()
	}
	err = f.readAll(ctx, upTo)
	if err == nil {
		err = f.finish(ctx)
	}
	for _, ch := range f.writes {
		close(ch)
	}
	wg.Wait()
	if err != nil {
		cancel(err)
	}
	if err := context.Cause(ctx); err != nil {
		return engine.Filled{}, err
	}
	r.logger.InfoContext(ctx, "rebuild: generation filled", "generation", gen, "events", f.res.Events, "carts", f.res.Carts,
		"reading_folding", f.folding.Round(time.Millisecond), "writing", time.Duration(f.writing.Load()).Round(time.Millisecond))
	return f.res, nil
}

// readAll reads the log up to position upTo, page by page, and folds it.
func (f *filler) readAll(ctx context.Context, upTo int64) error {
	take := func(e *envelope.Envelope) error { return f.take(ctx, e) }
	for after := int64(0); ; {
		start := time.Now()
		n, last, err := f.r.log.Scan(ctx, after, upTo, f.r.cfg.PageSize, take)
		f.folding += time.Since(start)
		if err != nil {
			return fmt.Errorf("rebuild: %w", err)
		}
		f.res.Events += int64(n)
		f.rep.Read(int64(n), f.res.Carts-f.reported)
		f.reported = f.res.Carts
		if err := f.endPage(ctx); err != nil {
			return err
		}
		if n < f.r.cfg.PageSize {
			return nil
		}
		after = last
	}
}

// take folds one event of the log; e is valid only during the call.
func (f *filler) take(ctx context.Context, e *envelope.Envelope) error {
	f.count++
	c, ok := f.carts[e.StreamID]
	if !ok {
		id := strings.Clone(e.StreamID)
		c = &folding{id: id, parkedFrom: f.parked[id]}
		f.carts[id] = c
		f.res.Carts++
	}
	c.last = f.count
	if e.Version <= c.seen {
		return nil
	}
	ev := *e
	ev.StreamID = c.id // what the state keeps
	if ev.Version > c.seen+1 {
		// Versions the rebuild has not seen: a transaction that committed
		// late, behind a later position, or a cart it forgot.
		gap, err := engine.ReadGap(ctx, f.r.log, c.id, c.seen, ev.Version-1)
		if err != nil {
			return err
		}
		for _, g := range gap {
			if err := f.next(ctx, c, g); err != nil {
				return err
			}
		}
	}
	if err := f.next(ctx, c, ev); err != nil {
		return err
	}
	if len(c.entries) > 0 && !c.pending {
		c.pending = true
		f.pending = append(f.pending, c)
	}
	if c.finished() && !c.done {
		c.done = true
		f.done = append(f.done, c)
	}
	switch {
	case len(f.done) >= placeBatch:
		return f.placeDone(ctx)
	case f.pendingEvents >= f.r.cfg.WriteBatch:
		return f.stage(ctx)
	}
	return nil
}

// next takes the cart's next event: applied, or parked when the cart's
// events are parked from an earlier version or e cannot be applied.
func (f *filler) next(ctx context.Context, c *folding, e envelope.Envelope) error {
	c.seen = e.Version
	if c.parkedFrom > 0 && e.Version >= c.parkedFrom {
		f.park(c, e, fmt.Sprintf("waiting behind version %d, which could not be applied", c.parkedFrom))
		return nil
	}
	next, h, err := f.step(ctx, c, e)
	switch {
	case errors.Is(err, documents.ErrTransient):
		return fmt.Errorf("rebuild: cart %s v%d: %w", c.id, e.Version, err)
	case err != nil:
		f.r.logger.ErrorContext(ctx, "rebuild: parking an event that cannot be applied, and the cart's later events",
			"cart", c.id, "version", e.Version, "type", e.Type, "schema_version", e.SchemaVersion, "err", err)
		c.parkedFrom = e.Version
		f.park(c, e, err.Error())
		return nil
	}
	if err := f.encode(c, h); err != nil {
		return fmt.Errorf("rebuild: cart %s v%d history: %w", c.id, e.Version, err)
	}
	c.state = next
	f.pendingEvents++
	return nil
}

// evolve is the default Applier: documents.Evolve, decoding the current
// schema versions itself.
func (f *filler) evolve(s cart.State, e envelope.Envelope) (cart.State, error) {
	ev, ok := f.dec.decode(e.Type, e.SchemaVersion, e.Data)
	if !ok {
		return documents.Evolve(s, e)
	}
	return cart.Evolve(s, cart.Recorded{CartID: e.StreamID, Version: e.Version, OccurredAt: e.OccurredAt, Event: ev}), nil
}

// step applies e to the cart. An event that cannot be applied may be one an
// operator skipped: the cart's skipped versions are read from the current
// generation then (rarely, so not for every cart).
func (f *filler) step(ctx context.Context, c *folding, e envelope.Envelope) (cart.State, readmodel.HistoryEntry, error) {
	next, h, err := documents.Step(f.apply, c.state, e, slices.Contains(c.skipped, e.Version))
	if err == nil || errors.Is(err, documents.ErrTransient) {
		return next, h, err
	}
	skipped, serr := f.skippedOf(ctx, c.id)
	if serr != nil {
		return next, h, fmt.Errorf("%w: %w", documents.ErrTransient, serr)
	}
	if !slices.Contains(skipped, e.Version) {
		return next, h, err
	}
	c.skipped = skipped
	return documents.Step(f.apply, c.state, e, true)
}

// encode adds a history entry to the cart's, encoded into the current
// block.
func (f *filler) encode(c *folding, h readmodel.HistoryEntry) error {
	need := len(h.Data) + 1024
	if f.block == nil || cap(f.block.buf)-len(f.block.buf) < need {
		if f.block != nil {
			f.block.release() // the filler's own reference
		}
		if need > blockSize/4 {
			f.block = &block{buf: make([]byte, 0, 4*need)}
		} else {
			f.block = blocks.Get().(*block)
		}
		f.block.refs.Store(1)
	}
	at := len(f.block.buf)
	b, err := f.r.store.AppendEntry(f.block.buf, h)
	if err != nil {
		return err
	}
	f.block.buf = b
	f.block.refs.Add(1)
	if c.entries == nil {
		c.entries, c.blocks = make([][]byte, 0, 4), make([]*block, 0, 4)
	}
	c.entries, c.blocks = append(c.entries, b[at:len(b):len(b)]), append(c.blocks, f.block)
	return nil
}

func (f *filler) park(c *folding, e envelope.Envelope, why string) {
	if len(c.park) == 0 {
		f.parking = append(f.parking, c)
	}
	now := time.Now().UTC()
	c.park = append(c.park, documents.Parked{Event: e.Clone(), Error: why, Attempts: 1, FirstParkedAt: now, LastAttemptAt: now})
}

// placeBatch is how many carts that are done are placed at once.
const placeBatch = 1000

// endPage parks what the page parked, and forgets carts beyond MaxCarts.
func (f *filler) endPage(ctx context.Context) error {
	if len(f.parking) > 0 {
		changes := make([]documents.Change, len(f.parking))
		for i, c := range f.parking {
			changes[i] = documents.Change{CartID: c.id, ParkedLen: -1, Park: c.park}
			c.park = nil
		}
		f.parking = f.parking[:0]
		res, err := f.r.store.Save(ctx, f.gens, changes)
		if err != nil {
			return fmt.Errorf("rebuild: park events: %w", err)
		}
		for i, r := range res {
			if r.Err != nil {
				return fmt.Errorf("rebuild: park events of cart %s: %w", changes[i].CartID, r.Err)
			}
		}
	}
	// The carts handed over since leave the pending list.
	keep := f.pending[:0]
	for _, c := range f.pending {
		if c.pending {
			keep = append(keep, c)
		}
	}
	clear(f.pending[len(keep):])
	f.pending = keep
	if len(f.carts) <= f.r.cfg.MaxCarts {
		return nil
	}
	if err := f.placeDone(ctx); err != nil {
		return err
	}
	var forget []*folding
	for _, c := range f.carts {
		if c.parkedFrom == 0 {
			forget = append(forget, c)
		}
	}
	slices.SortFunc(forget, func(a, b *folding) int { return cmp.Compare(a.last, b.last) })
	forget = forget[:min(len(forget), len(f.carts)-f.r.cfg.MaxCarts*3/4)]
	for _, c := range forget {
		delete(f.carts, c.id)
	}
	return f.hand(ctx, forget, true)
}

// placeDone places the carts that are done, and forgets them.
func (f *filler) placeDone(ctx context.Context) error {
	for _, c := range f.done {
		delete(f.carts, c.id)
	}
	err := f.hand(ctx, f.done, true)
	clear(f.done)
	f.done = f.done[:0]
	return err
}

// stage stages the entries of the carts not done.
func (f *filler) stage(ctx context.Context) error {
	if err := f.placeDone(ctx); err != nil {
		return err
	}
	if err := f.hand(ctx, f.pending, false); err != nil {
		return err
	}
	clear(f.pending)
	f.pending = f.pending[:0]
	return nil
}

// finish places every cart not placed yet, at the end of the log.
func (f *filler) finish(ctx context.Context) error {
	if err := f.placeDone(ctx); err != nil {
		return err
	}
	all := make([]*folding, 0, len(f.carts))
	for _, c := range f.carts {
		all = append(all, c)
	}
	return f.hand(ctx, all, true)
}

// loadParked notes the carts with parked events: the rebuild stops each
// of them where its parked events begin.
func (f *filler) loadParked(ctx context.Context) error {
	ids, err := f.r.store.ParkedCarts(ctx)
	if err != nil || len(ids) == 0 {
		return err
	}
	recs, err := f.r.store.Load(ctx, f.gens, ids)
	if err != nil {
		return err
	}
	for id, rec := range recs {
		if len(rec.Parked) > 0 {
			f.parked[id] = rec.Parked[0].Event.Version
		}
	}
	return nil
}

func (f *filler) skippedOf(ctx context.Context, cartID string) ([]int, error) {
	recs, err := f.r.store.Load(ctx, f.gens, []string{cartID})
	if err != nil {
		return nil, err
	}
	return documents.SkippedVersions(recs[cartID].Docs), nil
}
