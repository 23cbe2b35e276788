package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/cart-cqrs/cart/pkg/envelope"
)

// Rules are a counting projection's pure part: how it folds one cart's
// events into a small state of its own, and what they add to counters kept
// over all carts (a product's, say). The live writes, the gap repair and
// the builds all fold with them, so they agree.
type Rules[S any] interface {
	// Fold folds a cart's next events — the versions after s's, in order,
	// with no gap and no duplicate — onto s, which it must not change. It
	// returns the new state, what the events add to the counters, and the
	// events it passed over because it cannot read them (their versions
	// count, their effects do not). An error leaves the cart as it was,
	// to be tried again.
	Fold(s S, events []envelope.Envelope) (S, Delta, []Undecodable, error)
	// Encode and Decode are the state as the store keeps it; Decode gets
	// the version folded so far, and "" for a cart not seen yet.
	Encode(s S) (string, error)
	Decode(version int, raw string) (S, error)
}

// Undecodable is an event passed over, and why.
type Undecodable struct {
	Event envelope.Envelope
	Err   error
}

// Delta is what events add to the counters, by member id (a product id).
type Delta map[string]*Counters

// Counters are one member's increments, by field, and its label.
type Counters struct {
	// Label names the member (a product's name); LabelAt orders labels:
	// the store keeps the label with the greatest LabelAt (compared byte by
	// byte), so that it does not depend on the order carts are written in.
	// "" when the delta has none.
	Label, LabelAt string
	Add            map[string]int64
}

// Member returns the counters of id, created when absent.
func (d Delta) Member(id string) *Counters {
	c, ok := d[id]
	if !ok {
		c = &Counters{Add: map[string]int64{}}
		d[id] = c
	}
	return c
}

// Merge adds o to d.
func (d Delta) Merge(o Delta) {
	for id, oc := range o {
		c := d.Member(id)
		for f, n := range oc.Add {
			c.Add[f] += n
		}
		if oc.LabelAt != "" && oc.LabelAt > c.LabelAt {
			c.Label, c.LabelAt = oc.Label, oc.LabelAt
		}
	}
}

// Stored is a cart's state in one generation as the store keeps it.
type Stored struct {
	Version int
	State   string
}

// CartWrite is one cart's new state, to be stored if the generation still
// holds it at version From, and what it adds to the counters.
type CartWrite struct {
	CartID   string
	From, To int
	State    string
	Delta    Delta
}

// CountStore keeps counting projections' generations.
type CountStore interface {
	Generations
	// Load reads the carts' states in generation gen, in order; a cart the
	// generation has not seen is at version 0.
	Load(ctx context.Context, gen int, cartIDs []string) ([]Stored, error)
	// Write stores the writes in gen, each only if its cart is still at
	// From, and reports per write whether it conflicted (and was not
	// stored); ErrGenerationGone when gen is no longer listed.
	Write(ctx context.Context, gen int, writes []CartWrite) ([]bool, error)
}

// ErrGenerationGone is returned when a write finds its generation no
// longer listed (it is being dropped): nothing was written.
var ErrGenerationGone = errors.New("engine: generation no longer listed")

// Counting is a projection made of Rules: the engine keeps each cart's
// state per generation, guards every write with the cart's version,
// repairs gaps from the event log and fills generations from it.
type Counting[S any] struct {
	name     string
	rules    Rules[S]
	store    CountStore
	log      Log
	metrics  *Metrics
	logger   *slog.Logger
	pageSize int
}

// NewCounting returns the projection name made of rules. Its builds read
// the log pageSize events at a time (default 10,000).
func NewCounting[S any](name string, rules Rules[S], store CountStore, log Log, pageSize int, metrics *Metrics, logger *slog.Logger) *Counting[S] {
	if pageSize <= 0 {
		pageSize = 10000
	}
	for _, path := range []string{PathLive, PathBuild} {
		metrics.Undecodable.WithLabelValues(name, path)
	}
	return &Counting[S]{name: name, rules: rules, store: store, log: log, metrics: metrics, logger: logger, pageSize: pageSize}
}

// Name implements Projection.
func (c *Counting[S]) Name() string { return c.name }

// cartEvents are events of one cart to bring a generation up to: in
// version order, perhaps with duplicates, perhaps after a gap.
type cartEvents struct {
	cartID string
	events []envelope.Envelope
}

// applied is what bringing one cart up to date came to.
type applied struct {
	// err is set when the cart could not be brought up to date (its gap
	// could not be read, or it kept conflicting): try it again later.
	err error
	// from is the version the generation held, to the version it holds
	// now (gap events included).
	from, to    int
	undecodable []Undecodable
}

// Apply implements Projection: the batch goes to every generation listed,
// each cart with its own compare-and-set. The record is read after the
// fetch, which is what a build relies on (see Builder) — every time, not
// cached: a write into a listed generation cannot tell that a build has
// listed another one since.
func (c *Counting[S]) Apply(ctx context.Context, carts []*Cart) []Outcome {
	outs := make([]Outcome, len(carts))
	rec, err := c.store.Read(ctx)
	if err != nil {
		c.logger.ErrorContext(ctx, c.name+": read generations", "err", err)
		return outs // all retried
	}
	in := make([]cartEvents, len(carts))
	for i, ct := range carts {
		evs := make([]envelope.Envelope, len(ct.Events))
		for k := range ct.Events {
			evs[k] = ct.Events[k].Envelope
		}
		in[i] = cartEvents{cartID: ct.ID, events: evs}
	}
	failed := make([]bool, len(carts))
	primary := rec.Current
	if primary == 0 {
		primary = rec.Building
	}
	var observed []applied
	for _, gen := range rec.Writes() {
		res, err := c.apply(ctx, gen, in)
		switch {
		case errors.Is(err, ErrGenerationGone):
			continue // dropped since the record was read: it needs nothing more
		case err != nil:
			c.logger.ErrorContext(ctx, c.name+": apply batch", "generation", gen, "carts", len(in), "err", err)
			return make([]Outcome, len(carts))
		}
		for i, a := range res {
			if a.err != nil {
				failed[i] = true
				c.logger.WarnContext(carts[i].Ctx, c.name+": cart not applied, retrying later", "cart", carts[i].ID, "generation", gen, "err", a.err)
			}
		}
		if gen == primary {
			observed = res
		}
	}
	for i, ct := range carts {
		if failed[i] {
			continue
		}
		outs[i] = Done(ct)
		if observed == nil {
			continue
		}
		a := observed[i]
		outs[i].Applied = appliedTimes(in[i].events, a)
		c.passOver(ctx, PathLive, a.undecodable)
	}
	return outs
}

// appliedTimes are the times of the events (in version order) a apply
// took — not duplicates, nor the events a gap repair read from the log.
func appliedTimes(events []envelope.Envelope, a applied) []time.Time {
	var out []time.Time
	last := a.from
	for i := range events {
		if e := &events[i]; e.Version > last && e.Version <= a.to {
			out = append(out, e.OccurredAt)
			last = e.Version
		}
	}
	return out
}

func (c *Counting[S]) passOver(ctx context.Context, path string, us []Undecodable) {
	for _, u := range us {
		c.metrics.Undecodable.WithLabelValues(c.name, path).Inc()
		c.logger.WarnContext(ctx, c.name+": passing over an event that cannot be decoded", "cart", u.Event.StreamID,
			"version", u.Event.Version, "type", u.Event.Type, "schema_version", u.Event.SchemaVersion, "err", u.Err)
	}
}

// maxAttempts bounds how often one apply reloads carts whose write
// conflicted with another writer's.
const maxAttempts = 8

var errConflicts = errors.New("engine: cart kept changing concurrently")

// apply brings each cart of generation gen up to its events: it reads the
// carts' states, reads what they lack before the events from the event log,
// folds, and writes the new states with the counters' deltas — each cart
// only if it is still at the version read; the carts that conflicted are
// read and folded again. It is the one way anything is written into a
// generation: live, repairing a gap, or building from history.
//
// An error is returned when nothing could be tried (the store is down) or
// the generation is gone (ErrGenerationGone); otherwise each cart's outcome.
func (c *Counting[S]) apply(ctx context.Context, gen int, carts []cartEvents) ([]applied, error) {
	out := make([]applied, len(carts))
	todo := make([]int, len(carts))
	for i := range todo {
		todo[i] = i
	}
	for attempt := 1; len(todo) > 0; attempt++ {
		if attempt > maxAttempts {
			for _, i := range todo {
				out[i].err = errConflicts
			}
			break
		}
		ids := make([]string, len(todo))
		for k, i := range todo {
			ids[k] = carts[i].cartID
		}
		stored, err := c.store.Load(ctx, gen, ids)
		if err != nil {
			return nil, err
		}
		// What the events do not reach back to is read from the log, for
		// every cart at once.
		var spans []Span
		for k, i := range todo {
			spans = appendGaps(spans, carts[i], stored[k].Version)
		}
		var fromLog map[string][]envelope.Envelope
		var logErr error
		if len(spans) > 0 {
			fromLog, logErr = c.log.ReadSpans(ctx, spans)
		}
		var writes []CartWrite
		var idx []int
		for k, i := range todo {
			ct, st := carts[i], stored[k]
			next, err := nextEvents(ct.events, fromLog[ct.cartID], st.Version)
			if err == nil && len(next) == 0 {
				out[i] = applied{from: st.Version, to: st.Version}
				continue
			}
			var s S
			if err == nil {
				s, err = c.rules.Decode(st.Version, st.State)
			}
			var w CartWrite
			if err == nil {
				var ns S
				var delta Delta
				var undecodable []Undecodable
				ns, delta, undecodable, err = c.rules.Fold(s, next)
				w = CartWrite{CartID: ct.cartID, From: st.Version, To: next[len(next)-1].Version, Delta: delta}
				if err == nil {
					w.State, err = c.rules.Encode(ns)
				}
				out[i] = applied{from: st.Version, to: w.To, undecodable: undecodable}
			}
			if err != nil {
				if logErr != nil {
					err = errors.Join(err, logErr)
				}
				out[i] = applied{err: fmt.Errorf("%s: cart %s: %w", c.name, ct.cartID, err), from: st.Version}
				continue
			}
			writes = append(writes, w)
			idx = append(idx, i)
		}
		conflicted, err := c.store.Write(ctx, gen, writes)
		if err != nil {
			return nil, err
		}
		todo = todo[:0:0]
		for w, conflict := range conflicted {
			if conflict {
				todo = append(todo, idx[w])
			}
		}
	}
	return out, nil
}

// appendGaps adds the versions a generation at version have lacks before,
// or between, a cart's events.
func appendGaps(spans []Span, c cartEvents, have int) []Span {
	next := have + 1
	for _, e := range c.events {
		if e.Version < next {
			continue
		}
		if e.Version > next {
			spans = append(spans, Span{CartID: c.cartID, After: next - 1, UpTo: e.Version - 1})
		}
		next = e.Version + 1
	}
	return spans
}

// nextEvents merges a cart's events with those read from the log and
// returns the ones after version have, which must follow on without a gap.
func nextEvents(events, fromLog []envelope.Envelope, have int) ([]envelope.Envelope, error) {
	all := events
	if len(fromLog) > 0 {
		all = append(slices.Clone(events), fromLog...)
		slices.SortStableFunc(all, func(x, y envelope.Envelope) int { return x.Version - y.Version })
	}
	var out []envelope.Envelope
	next := have + 1
	for _, e := range all {
		switch {
		case e.Version < next:
			continue
		case e.Version > next:
			return nil, fmt.Errorf("cart %s at version %d, next event is version %d: %w", e.StreamID, next-1, e.Version, ErrGapOpen)
		}
		out = append(out, e)
		next++
	}
	return out, nil
}

// Fill implements Filler: it reads the whole log in (cart, version) order
// and brings every cart of generation gen up to date with it, a page at a
// time, the next page read while this one is applied.
func (c *Counting[S]) Fill(ctx context.Context, gen int, r Report) (Filled, error) {
	total, _, err := c.log.End(ctx)
	if err != nil {
		return Filled{}, err
	}
	r.Begin(total)
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	pages := make(chan []envelope.Envelope, 2)
	var wg sync.WaitGroup
	wg.Go(func() {
		defer close(pages)
		var after Key
		for {
			page, err := c.log.ReadPage(ctx, after, c.pageSize)
			if err != nil {
				cancel(err)
				return
			}
			if len(page) > 0 {
				select {
				case pages <- page:
				case <-ctx.Done():
					return
				}
			}
			if len(page) < c.pageSize {
				return
			}
			last := page[len(page)-1]
			after = Key{CartID: last.StreamID, Version: last.Version}
		}
	})
	var res Filled
	lastCart := ""
	for page := range pages {
		if ctx.Err() != nil {
			continue // drain
		}
		if err := c.fillPage(ctx, gen, page, r, &res, &lastCart); err != nil {
			cancel(err)
		}
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return Filled{}, err
	}
	return res, nil
}

// fillPage brings the page's carts up to date in gen.
func (c *Counting[S]) fillPage(ctx context.Context, gen int, page []envelope.Envelope, r Report, res *Filled, lastCart *string) error {
	var carts []cartEvents
	newCarts := int64(0)
	for i := 0; i < len(page); {
		j := i + 1
		for j < len(page) && page[j].StreamID == page[i].StreamID {
			j++
		}
		carts = append(carts, cartEvents{cartID: page[i].StreamID, events: page[i:j]})
		if page[i].StreamID != *lastCart {
			newCarts++
		}
		*lastCart = page[i].StreamID
		i = j
	}
	outs, err := c.apply(ctx, gen, carts)
	if err != nil {
		return err
	}
	for _, a := range outs {
		if a.err != nil {
			return a.err
		}
		res.Undecodable += int64(len(a.undecodable))
		c.passOver(ctx, PathBuild, a.undecodable)
	}
	res.Events += int64(len(page))
	res.Carts += newCarts
	r.Read(int64(len(page)), newCarts)
	return nil
}

// SortedMembers are d's member ids, sorted.
func (d Delta) SortedMembers() []string { return slices.Sorted(maps.Keys(d)) }
