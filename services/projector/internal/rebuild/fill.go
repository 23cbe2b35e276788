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
	"github.com/cart-cqrs/cart/pkg/eventlog"
	"github.com/cart-cqrs/cart/pkg/readmodel"
	"github.com/cart-cqrs/cart/services/projector/internal/postgres"
	"github.com/cart-cqrs/cart/services/projector/internal/projector"
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
	park []projector.Parked
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
	r     *Rebuilder
	gens  projector.Generations
	gen   int
	apply projector.Applier
	dec   decoder
	carts map[string]*folding
	// parked are the carts with parked events when the rebuild began:
	// their first parked version.
	parked map[string]int
	res    Result
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

// block is a buffer history entries are encoded into: the entries of
// many carts, written at different times; it is used again once they all
// are.
type block struct {
	buf  []byte
	refs atomic.Int32
}

// blockSize is the size of the blocks.
const blockSize = 64 << 10

var blocks = sync.Pool{New: func() any { return &block{buf: make([]byte, 0, blockSize)} }}

func (b *block) release() {
	if b.refs.Add(-1) == 0 && cap(b.buf) == blockSize {
		b.buf = b.buf[:0]
		blocks.Put(b)
	}
}

func (r *Rebuilder) fill(ctx context.Context, gens projector.Generations, gen int) (Result, error) {
	f := &filler{r: r, gens: gens, gen: gen, carts: map[string]*folding{}, parked: map[string]int{}}
	f.apply = f.evolve
	if custom := r.cfg.Applier; custom != nil {
		f.apply = func(s cart.State, e envelope.Envelope) (cart.State, error) {
			return custom(s, postgres.CloneEnvelope(e))
		}
	}
	if err := f.loadParked(ctx); err != nil {
		return Result{}, err
	}
	// The log's end now, after T0, bounds the reading (see the package
	// doc); what commits later reaches the generation through the live
	// projectors.
	var total, upTo int64
	if err := r.events.QueryRow(ctx, `SELECT count(*), coalesce(max(position), 0) FROM events`).Scan(&total, &upTo); err != nil {
		return Result{}, fmt.Errorf("rebuild: count events: %w", err)
	}
	r.update(func(p *Progress) { p.Phase, p.Generation, p.Total = PhaseFilling, gen, total })
	if r.metrics != nil {
		r.metrics.RebuildTotal.Set(float64(total))
	}

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
	err := f.readAll(ctx, upTo)
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
		return Result{}, err
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
		n, last, err := postgres.ReadLog(ctx, f.r.events, after, upTo, f.r.cfg.PageSize, take)
		f.folding += time.Since(start)
		if err != nil {
			return fmt.Errorf("rebuild: %w", err)
		}
		f.res.Events += int64(n)
		f.r.update(func(p *Progress) { p.Events += int64(n); p.Carts = f.res.Carts })
		if f.r.metrics != nil {
			f.r.metrics.RebuildApplied.Add(float64(n))
		}
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
		gap, err := readStream(ctx, f.r.events, c.id, c.seen, ev.Version-1)
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
	case errors.Is(err, projector.ErrTransient):
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

// evolve is the default Applier: projector.Evolve, decoding the current
// schema versions itself.
func (f *filler) evolve(s cart.State, e envelope.Envelope) (cart.State, error) {
	ev, ok := f.dec.decode(e.Type, e.SchemaVersion, e.Data)
	if !ok {
		return projector.Evolve(s, e)
	}
	return cart.Evolve(s, cart.Recorded{CartID: e.StreamID, Version: e.Version, OccurredAt: e.OccurredAt, Event: ev}), nil
}

// step applies e to the cart. An event that cannot be applied may be one an
// operator skipped: the cart's skipped versions are read from the current
// generation then (rarely, so not for every cart).
func (f *filler) step(ctx context.Context, c *folding, e envelope.Envelope) (cart.State, readmodel.HistoryEntry, error) {
	next, h, err := projector.Step(f.apply, c.state, e, slices.Contains(c.skipped, e.Version))
	if err == nil || errors.Is(err, projector.ErrTransient) {
		return next, h, err
	}
	skipped, serr := f.skippedOf(ctx, c.id)
	if serr != nil {
		return next, h, fmt.Errorf("%w: %w", projector.ErrTransient, serr)
	}
	if !slices.Contains(skipped, e.Version) {
		return next, h, err
	}
	c.skipped = skipped
	return projector.Step(f.apply, c.state, e, true)
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
	c.park = append(c.park, projector.Parked{Event: postgres.CloneEnvelope(e), Error: why, Attempts: 1, FirstParkedAt: now, LastAttemptAt: now})
}

// placeBatch is how many carts that are done are placed at once.
const placeBatch = 1000

// endPage parks what the page parked, and forgets carts beyond MaxCarts.
func (f *filler) endPage(ctx context.Context) error {
	if len(f.parking) > 0 {
		changes := make([]projector.Change, len(f.parking))
		for i, c := range f.parking {
			changes[i] = projector.Change{CartID: c.id, ParkedLen: -1, Park: c.park}
			c.park = nil
		}
		f.parking = f.parking[:0]
		res, err := f.r.store.Save(ctx, f.gens, changes)
		if err != nil {
			return fmt.Errorf("rebuild: park events: %w", err)
		}
		for i, e := range res {
			if e != nil {
				return fmt.Errorf("rebuild: park events of cart %s: %w", changes[i].CartID, e)
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

// hand hands carts over to the writers: their entries to be staged, or
// the carts to be placed. Carts with nothing new are left out.
func (f *filler) hand(ctx context.Context, carts []*folding, place bool) error {
	lanes := make([][]Merge, len(f.writes))
	for _, c := range carts {
		if len(c.entries) == 0 && (!place || c.staged == 0) {
			continue
		}
		m := Merge{
			CartID: c.id, Base: c.stored, State: c.state, Staged: c.staged, Entries: c.entries,
			Skipped: slices.Clone(c.skipped), Place: place, blocks: c.blocks,
		}
		f.pendingEvents -= len(c.entries)
		c.entries, c.blocks, c.pending = nil, nil, false
		if place {
			m.Index = c.stored == 0 || c.state.Status != c.indexed
			c.stored, c.indexed, c.staged = c.state.Version, c.state.Status, 0
		} else {
			c.staged += len(m.Entries)
		}
		lane := int(c.id[len(c.id)-1]) % len(lanes)
		lanes[lane] = append(lanes[lane], m)
	}
	for i, merges := range lanes {
		if len(merges) == 0 {
			continue
		}
		select {
		case f.writes[i] <- merges:
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	}
	return nil
}

// mergeChunk is how many carts one call of the store carries, and writers
// how many write at once: a cart's merges always go to the same one, in
// order (its entries staged before it is placed).
const (
	mergeChunk = 500
	writers    = 2
)

// writeAll stores the merges handed to one writer, in order.
func (f *filler) writeAll(ctx context.Context, batches <-chan []Merge) error {
	for merges := range batches {
		for chunk := range slices.Chunk(merges, mergeChunk) {
			if err := ctx.Err(); err != nil {
				return err
			}
			start := time.Now()
			err := f.write(ctx, chunk)
			f.writing.Add(int64(time.Since(start)))
			if err != nil {
				return err
			}
		}
	}
	return nil
}

// write stores one chunk; a cart the generation holds out of step with the
// rebuild is read whole and stored whole.
func (f *filler) write(ctx context.Context, merges []Merge) error {
	res, err := f.r.store.WriteMerges(ctx, f.gen, merges)
	if err != nil {
		return err
	}
	for _, m := range merges {
		for _, b := range m.blocks {
			b.release()
		}
	}
	for i, r := range res {
		if r != Reset {
			continue
		}
		if err := f.whole(ctx, merges[i].CartID); err != nil {
			return err
		}
	}
	return nil
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
	return projector.SkippedVersions(recs[cartID].Docs), nil
}

// whole reads a cart's stream and stores its fold as a whole, stopping
// where it has parked events or an event cannot be applied (the fold of
// the log parks those).
func (f *filler) whole(ctx context.Context, cartID string) error {
	envs, err := eventlog.ReadStream(ctx, f.r.events, cartID, 0, 0)
	if err != nil {
		return err
	}
	recs, err := f.r.store.Load(ctx, f.gens, []string{cartID})
	if err != nil {
		return err
	}
	rec := recs[cartID]
	skipped := projector.SkippedVersions(rec.Docs)
	apply := f.r.cfg.Applier // not f.apply: its decoder is the reader's
	if apply == nil {
		apply = projector.Evolve
	}
	var (
		s       cart.State
		entries [][]byte
	)
	for i, e := range envs {
		if e.Version != i+1 || (len(rec.Parked) > 0 && e.Version >= rec.Parked[0].Event.Version) {
			break
		}
		next, h, err := projector.Step(apply, s, e, slices.Contains(skipped, e.Version))
		if err != nil {
			break
		}
		b, err := f.r.store.AppendEntry(nil, h)
		if err != nil {
			return fmt.Errorf("rebuild: cart %s v%d history: %w", cartID, e.Version, err)
		}
		s, entries = next, append(entries, b)
	}
	if len(entries) == 0 {
		return nil
	}
	res, err := f.r.store.WriteMerges(ctx, f.gen, []Merge{{CartID: cartID, State: s, Entries: entries, Skipped: skipped, Place: true, Index: true}})
	if err != nil {
		return err
	}
	if res[0] == Reset {
		return fmt.Errorf("rebuild: cart %s: whole write refused", cartID)
	}
	return nil
}

// readStream reads a cart's versions after..upTo and insists on all.
func readStream(ctx context.Context, q eventlog.Querier, cartID string, after, upTo int) ([]envelope.Envelope, error) {
	envs, err := eventlog.ReadStream(ctx, q, cartID, after, upTo)
	if err != nil {
		return nil, err
	}
	for i, e := range envs {
		if e.Version != after+1+i {
			return nil, fmt.Errorf("rebuild: cart %s: version %d at %d: events missing from the event log", cartID, e.Version, after+1+i)
		}
	}
	if len(envs) != upTo-after {
		return nil, fmt.Errorf("rebuild: cart %s versions %d..%d: found %d: events missing from the event log", cartID, after+1, upTo, len(envs))
	}
	return envs, nil
}
