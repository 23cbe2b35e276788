package rebuild

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/cart-cqrs/cart/pkg/cart"
	"github.com/cart-cqrs/cart/pkg/envelope"
	"github.com/cart-cqrs/cart/pkg/eventlog"
	"github.com/cart-cqrs/cart/pkg/readmodel"
	"github.com/cart-cqrs/cart/services/projector/internal/projector"
)

// folding is one cart as the rebuild has folded it so far.
type folding struct {
	state cart.State
	// stored is the version the rebuild last merged into the generation.
	stored int
	// seen is the last version the rebuild read (applied or parked).
	seen int
	// parkedFrom is the version from which the cart's events are parked
	// (0: none): they are not applied, and the ones not parked yet are
	// parked behind.
	parkedFrom int
	skipped    []int
}

// filler folds the log page by page into one generation. Three stages
// overlap: reading the next page, folding this one, and writing the last.
type filler struct {
	r      *Rebuilder
	gens   projector.Generations
	gen    int
	carts  map[string]*folding
	parked map[string]int // parked carts when the rebuild began: first parked version
	res    Result
	// pending are the merges folded and not written yet, one per cart: a
	// cart whose events span several pages is written once for them all.
	pending       []*Merge
	byCart        map[string]*Merge
	pendingEvents int
	// busy is the time each stage spent working (not waiting for the
	// others), for the log: the largest is what limits the rebuild.
	mu                                  sync.Mutex // reading: the readers run at once
	reading, folding, encoding, writing time.Duration
}

func (r *Rebuilder) fill(ctx context.Context, gens projector.Generations, gen int) (Result, error) {
	f := &filler{r: r, gens: gens, gen: gen, carts: map[string]*folding{}, parked: map[string]int{}, byCart: map[string]*Merge{}}
	if err := f.loadParked(ctx); err != nil {
		return Result{}, err
	}
	var total int64
	if err := r.events.QueryRow(ctx, `SELECT count(*) FROM events`).Scan(&total); err != nil {
		return Result{}, fmt.Errorf("rebuild: count events: %w", err)
	}
	r.update(func(p *Progress) { p.Phase, p.Generation, p.Total = PhaseFilling, gen, total })
	if r.metrics != nil {
		r.metrics.RebuildTotal.Set(float64(total))
	}

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	// Four stages overlap: reading pages, folding them, encoding the
	// merges and writing them.
	pages := make(chan []envelope.Envelope, 2)
	writes := make(chan []Merge, 2)
	encoded := make(chan encodedChunk, 4)
	var wg sync.WaitGroup
	wg.Add(3)
	go func() {
		defer wg.Done()
		defer close(pages)
		if err := f.read(ctx, pages); err != nil {
			cancel(err)
		}
	}()
	go func() {
		defer wg.Done()
		defer close(encoded)
		for merges := range writes {
			if ctx.Err() != nil {
				continue // drain
			}
			start := time.Now()
			err := f.encode(ctx, merges, encoded)
			f.encoding += time.Since(start)
			if err != nil {
				cancel(err)
			}
		}
	}()
	go func() {
		defer wg.Done()
		for chunk := range encoded {
			if ctx.Err() != nil {
				continue // drain
			}
			start := time.Now()
			if err := f.write(ctx, chunk); err != nil {
				cancel(err)
			}
			f.writing += time.Since(start)
		}
	}()
	// flush sends the pending merges to be written: all of them, or only
	// those of checked-out carts (no event will be added to them).
	flush := func(all bool) {
		var merges []Merge
		keep := f.pending[:0]
		events := 0
		for _, m := range f.pending {
			if all || m.State.Status == cart.StatusCheckedOut {
				merges = append(merges, *m)
				delete(f.byCart, m.CartID)
			} else {
				keep = append(keep, m)
				events += len(m.History)
			}
		}
		clear(f.pending[len(keep):])
		f.pending, f.pendingEvents = keep, events
		if len(merges) == 0 {
			return
		}
		select {
		case writes <- merges:
		case <-ctx.Done():
		}
	}
	for page := range pages {
		if ctx.Err() != nil {
			continue // drain
		}
		start := time.Now()
		err := f.fold(ctx, page)
		f.folding += time.Since(start)
		if err != nil {
			cancel(err)
			continue
		}
		flush(f.pendingEvents >= r.cfg.WriteBatch)
	}
	if ctx.Err() == nil {
		flush(true)
	}
	close(writes)
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return Result{}, err
	}
	r.logger.InfoContext(ctx, "rebuild: generation filled", "generation", gen, "events", f.res.Events, "carts", f.res.Carts,
		"reading", f.reading.Round(time.Millisecond), "folding", f.folding.Round(time.Millisecond),
		"encoding", f.encoding.Round(time.Millisecond), "writing", f.writing.Round(time.Millisecond))
	return f.res, nil
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

// fold folds one page onto the carts and adds them to the pending merges.
// Events of a cart whose parked events begin at or before them are parked
// behind.
func (f *filler) fold(ctx context.Context, page []envelope.Envelope) error {
	// The page's events, grouped by cart in order of first appearance,
	// each cart's in version order.
	ordinal := make(map[string]int32, len(page)/4)
	ord := make([]int32, len(page))
	idx := make([]int32, len(page))
	for i, e := range page {
		o, ok := ordinal[e.StreamID]
		if !ok {
			o = int32(len(ordinal))
			ordinal[e.StreamID] = o
		}
		ord[i], idx[i] = o, int32(i)
	}
	slices.SortFunc(idx, func(a, b int32) int {
		if ord[a] != ord[b] {
			return int(ord[a] - ord[b])
		}
		return page[a].Version - page[b].Version
	})
	var parks []projector.Change
	evs := make([]envelope.Envelope, 0, 64)
	for start := 0; start < len(idx); {
		id := page[idx[start]].StreamID
		end := start + 1
		for end < len(idx) && page[idx[end]].StreamID == id {
			end++
		}
		evs = evs[:0]
		for _, i := range idx[start:end] {
			evs = append(evs, page[i])
		}
		start = end
		c, ok := f.carts[id]
		if !ok {
			c = &folding{parkedFrom: f.parked[id]}
			if m, ok := f.byCart[id]; ok {
				// Forgotten once checked out, and still pending.
				c.state, c.stored, c.seen = m.State, m.State.Version, m.State.Version
			} else {
				f.res.Carts++
			}
			f.carts[id] = c
		}
		base := c.stored
		history := make([]readmodel.HistoryEntry, 0, len(evs))
		var park []projector.Parked
		for _, e := range evs {
			if e.Version <= c.seen {
				continue
			}
			if e.Version > c.seen+1 {
				// Versions the rebuild has not seen: a transaction that
				// committed late, behind a later position.
				gap, err := readStream(ctx, f.r.events, id, c.seen, e.Version-1)
				if err != nil {
					return err
				}
				for _, g := range gap {
					if history, park, err = f.next(ctx, c, g, history, park); err != nil {
						return err
					}
				}
			}
			var err error
			if history, park, err = f.next(ctx, c, e, history, park); err != nil {
				return err
			}
		}
		if len(history) > 0 {
			if m, ok := f.byCart[id]; ok {
				m.State, m.Skipped, m.History = c.state, c.skipped, append(m.History, history...)
			} else {
				m := &Merge{CartID: id, Base: base, State: c.state, History: history, Skipped: c.skipped}
				f.byCart[id] = m
				f.pending = append(f.pending, m)
			}
			f.pendingEvents += len(history)
			c.stored = c.state.Version
		}
		if len(park) > 0 {
			parks = append(parks, projector.Change{CartID: id, ParkedLen: -1, Park: park})
		}
		if c.state.Status == cart.StatusCheckedOut && c.parkedFrom == 0 {
			// A checked-out cart takes no more events: forget it.
			delete(f.carts, id)
		}
	}
	if len(parks) > 0 {
		if err := f.park(ctx, parks); err != nil {
			return err
		}
	}
	f.r.update(func(p *Progress) { p.Events += int64(len(page)); p.Carts = f.res.Carts })
	f.res.Events += int64(len(page))
	if f.r.metrics != nil {
		f.r.metrics.RebuildApplied.Add(float64(len(page)))
	}
	return nil
}

// next takes the cart's next event: applied, or parked when the cart's
// events are parked from an earlier version or e cannot be applied.
func (f *filler) next(ctx context.Context, c *folding, e envelope.Envelope, history []readmodel.HistoryEntry, park []projector.Parked) ([]readmodel.HistoryEntry, []projector.Parked, error) {
	c.seen = e.Version
	if c.parkedFrom > 0 && e.Version >= c.parkedFrom {
		return history, append(park, parked(e, fmt.Sprintf("waiting behind version %d, which could not be applied", c.parkedFrom))), nil
	}
	next, h, err := f.step(ctx, c, e)
	switch {
	case errors.Is(err, projector.ErrTransient):
		return history, park, fmt.Errorf("rebuild: cart %s v%d: %w", e.StreamID, e.Version, err)
	case err != nil:
		f.r.logger.ErrorContext(ctx, "rebuild: parking an event that cannot be applied, and the cart's later events",
			"cart", e.StreamID, "version", e.Version, "type", e.Type, "schema_version", e.SchemaVersion, "err", err)
		c.parkedFrom = e.Version
		return history, append(park, parked(e, err.Error())), nil
	}
	c.state = next
	return append(history, h), park, nil
}

// step applies e to the cart. An event that cannot be applied may be one an
// operator skipped: the cart's skipped versions are read from the current
// generation then (rarely, so not for every cart).
func (f *filler) step(ctx context.Context, c *folding, e envelope.Envelope) (cart.State, readmodel.HistoryEntry, error) {
	next, h, err := projector.Step(f.r.cfg.Applier, c.state, e, slices.Contains(c.skipped, e.Version))
	if err == nil || errors.Is(err, projector.ErrTransient) {
		return next, h, err
	}
	skipped, serr := f.skippedOf(ctx, e.StreamID)
	if serr != nil {
		return next, h, fmt.Errorf("%w: %w", projector.ErrTransient, serr)
	}
	if !slices.Contains(skipped, e.Version) {
		return next, h, err
	}
	c.skipped = skipped
	return projector.Step(f.r.cfg.Applier, c.state, e, true)
}

func (f *filler) skippedOf(ctx context.Context, cartID string) ([]int, error) {
	recs, err := f.r.store.Load(ctx, f.gens, []string{cartID})
	if err != nil {
		return nil, err
	}
	return projector.SkippedVersions(recs[cartID].Docs), nil
}

func (f *filler) park(ctx context.Context, parks []projector.Change) error {
	res, err := f.r.store.Save(ctx, f.gens, parks)
	if err != nil {
		return fmt.Errorf("rebuild: park events: %w", err)
	}
	for i, e := range res {
		if e != nil {
			return fmt.Errorf("rebuild: park events of cart %s: %w", parks[i].CartID, e)
		}
	}
	return nil
}

func parked(e envelope.Envelope, why string) projector.Parked {
	now := time.Now().UTC()
	return projector.Parked{Event: e, Error: why, Attempts: 1, FirstParkedAt: now, LastAttemptAt: now}
}

// mergeChunk is how many carts one write carries.
const mergeChunk = 1000

// encodedChunk is merges and their encoding.
type encodedChunk struct {
	merges []Merge
	batch  MergeBatch
}

// encode encodes the merges for the store, a batch per chunk.
func (f *filler) encode(ctx context.Context, merges []Merge, out chan<- encodedChunk) error {
	for chunk := range slices.Chunk(merges, mergeChunk) {
		batch, err := f.r.store.EncodeMerges(f.gen, chunk)
		if err != nil {
			return err
		}
		select {
		case out <- encodedChunk{merges: chunk, batch: batch}:
		case <-ctx.Done():
			return nil
		}
	}
	return nil
}

// write stores one batch; a cart the generation holds out of step with the
// rebuild is read whole and stored whole.
func (f *filler) write(ctx context.Context, chunk encodedChunk) error {
	res, err := chunk.batch.Write(ctx)
	if err != nil {
		return err
	}
	for i, r := range res {
		if r != Reset {
			continue
		}
		if err := f.whole(ctx, chunk.merges[i].CartID); err != nil {
			return err
		}
	}
	return nil
}

// whole reads a cart's stream and stores its fold as a whole, stopping
// where it has parked events or an event cannot be applied (the page fold
// parks those).
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
	var (
		s       cart.State
		history []readmodel.HistoryEntry
	)
	for i, e := range envs {
		if e.Version != i+1 || (len(rec.Parked) > 0 && e.Version >= rec.Parked[0].Event.Version) {
			break
		}
		next, h, err := projector.Step(f.r.cfg.Applier, s, e, slices.Contains(skipped, e.Version))
		if err != nil {
			break
		}
		s, history = next, append(history, h)
	}
	if len(history) == 0 {
		return nil
	}
	batch, err := f.r.store.EncodeMerges(f.gen, []Merge{{CartID: cartID, State: s, History: history, Skipped: skipped, Whole: true}})
	if err != nil {
		return err
	}
	res, err := batch.Write(ctx)
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
