package engine_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cart-cqrs/cart/pkg/envelope"
	"github.com/cart-cqrs/cart/services/projector/internal/engine"
	"github.com/cart-cqrs/cart/services/projector/internal/postgres"
)

// listed opens a generation of the toy projection and makes it the
// readers', empty, as a first build of an empty log would.
func (p *types) listed(t *testing.T) int {
	t.Helper()
	gen, err := p.store.Open(t.Context(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := p.store.Switch(t.Context(), gen); err != nil {
		t.Fatal(err)
	}
	return gen
}

// delivered is a batch of a cart's events as the engine hands it over.
func delivered(ctx context.Context, evs ...envelope.Envelope) *engine.Cart {
	c := &engine.Cart{ID: evs[0].StreamID, Ctx: ctx}
	for _, e := range evs {
		c.Events = append(c.Events, engine.Event{Envelope: e, Delivered: 1})
	}
	return c
}

// byType counts events by type, as the toy projection should.
func byType(evs []envelope.Envelope) map[string]int64 {
	out := map[string]int64{}
	for _, e := range evs {
		out[e.Type]++
	}
	return out
}

// longCart is the events of a cart with at least n of them.
func longCart(t *testing.T, n int) []envelope.Envelope {
	t.Helper()
	for _, evs := range history(t, 7, 50) {
		if len(evs) >= n {
			return evs
		}
	}
	t.Fatalf("no cart of %d events", n)
	return nil
}

// TestCounting_ApplyRepairsAGap: a cart's later version arriving first is
// brought up to it from the event log; only the delivered event counts as
// applied, and an earlier version delivered afterwards is a duplicate.
func TestCounting_ApplyRepairsAGap(t *testing.T) {
	f := mustFixture(t, false)
	ctx := t.Context()
	toy := f.newTypes(0)
	gen := toy.listed(t)
	evs := longCart(t, 3)
	f.insert(t, evs...)
	last := evs[len(evs)-1]

	outs := toy.counting.Apply(ctx, []*engine.Cart{delivered(ctx, last)})
	if len(outs) != 1 || outs[0].RetryFrom != 1 || len(outs[0].Applied) != 1 || !outs[0].Applied[0].Equal(last.OccurredAt) {
		t.Fatalf("outcome %+v, want the delivered event taken and applied", outs)
	}
	stored, err := toy.store.Load(ctx, gen, []string{last.StreamID})
	if err != nil || stored[0].Version != len(evs) {
		t.Errorf("stored %+v, %v; want version %d", stored, err, len(evs))
	}
	got, err := countsOf(ctx, toy.store, gen)
	if err != nil {
		t.Fatal(err)
	}
	if err := sameCounts(got, byType(evs)); err != nil {
		t.Error(err)
	}

	outs = toy.counting.Apply(ctx, []*engine.Cart{delivered(ctx, evs[1])})
	if outs[0].RetryFrom != 1 || len(outs[0].Applied) != 0 {
		t.Errorf("a duplicate: outcome %+v, want taken, nothing applied", outs[0])
	}
	if got, err = countsOf(ctx, toy.store, gen); err != nil {
		t.Fatal(err)
	}
	if err := sameCounts(got, byType(evs)); err != nil {
		t.Errorf("after a duplicate: %v", err)
	}
}

// TestCounting_ApplyGapOpen: when the event log lacks the versions before
// a delivered event too, the cart is left as it was, to be delivered again.
func TestCounting_ApplyGapOpen(t *testing.T) {
	f := mustFixture(t, false)
	ctx := t.Context()
	toy := f.newTypes(0)
	gen := toy.listed(t)
	evs := longCart(t, 3)
	f.insert(t, evs[2:]...) // versions 1 and 2 missing from the log

	outs := toy.counting.Apply(ctx, []*engine.Cart{delivered(ctx, evs[2])})
	if outs[0].RetryFrom != 0 || len(outs[0].Applied) != 0 {
		t.Errorf("outcome %+v, want retried", outs[0])
	}
	stored, err := toy.store.Load(ctx, gen, []string{evs[0].StreamID})
	if err != nil || stored[0].Version != 0 {
		t.Errorf("stored %+v, %v; want nothing", stored, err)
	}
	if got, err := countsOf(ctx, toy.store, gen); err != nil || len(got) > 0 {
		t.Errorf("counts %v, %v; want none", got, err)
	}
}

// racing is a store whose first write lets another writer in between the
// load and the write.
type racing struct {
	engine.CountStore
	once      sync.Once
	between   func()
	conflicts atomic.Int64
}

func (r *racing) Write(ctx context.Context, gen int, writes []engine.CartWrite) ([]bool, error) {
	r.once.Do(r.between)
	out, err := r.CountStore.Write(ctx, gen, writes)
	for _, c := range out {
		if c {
			r.conflicts.Add(1)
		}
	}
	return out, err
}

// TestCounting_ApplyConflict: a writer whose carts another writer changed
// after it read them reads them again, and every event counts once.
func TestCounting_ApplyConflict(t *testing.T) {
	f := mustFixture(t, false)
	ctx := t.Context()
	toy := f.newTypes(0)
	gen := toy.listed(t)
	carts := history(t, 4, 20)
	log := flatten(carts)
	f.insert(t, log...)
	batch := func() []*engine.Cart {
		var out []*engine.Cart
		for _, evs := range carts {
			out = append(out, delivered(ctx, evs...))
		}
		return out
	}

	var other []engine.Outcome
	store := &racing{CountStore: toy.store, between: func() { other = toy.counting.Apply(ctx, batch()) }}
	first := engine.NewCounting(typesName, typeRules{}, store, postgres.NewLog(f.pool), 0, f.metrics, f.logger)
	outs := first.Apply(ctx, batch())
	if store.conflicts.Load() == 0 {
		t.Fatal("the writes did not conflict")
	}
	applied := 0
	for i, o := range append(outs, other...) {
		if o.RetryFrom != len(carts[i%len(carts)]) {
			t.Errorf("cart %d: outcome %+v, want all taken", i%len(carts), o)
		}
		applied += len(o.Applied)
	}
	if applied != len(log) {
		t.Errorf("the writers applied %d events between them, want each of %d once", applied, len(log))
	}
	got, err := countsOf(ctx, toy.store, gen)
	if err != nil {
		t.Fatal(err)
	}
	if err := sameCounts(got, f.typesInLog(t)); err != nil {
		t.Error(err)
	}
}

// TestCounting_ConcurrentApplies: many writers applying the same carts at
// once end with every event counted once.
func TestCounting_ConcurrentApplies(t *testing.T) {
	f := mustFixture(t, false)
	ctx := t.Context()
	toy := f.newTypes(0)
	gen := toy.listed(t)
	carts := history(t, 5, 30)
	log := flatten(carts)
	f.insert(t, log...)

	const writers = 8
	var applied atomic.Int64
	var wg sync.WaitGroup
	for range writers {
		wg.Go(func() {
			var batch []*engine.Cart
			for _, evs := range carts {
				batch = append(batch, delivered(ctx, evs...))
			}
			w := engine.NewCounting(typesName, typeRules{}, toy.store, postgres.NewLog(f.pool), 0, f.metrics, f.logger)
			for i, o := range w.Apply(ctx, batch) {
				if o.RetryFrom != len(carts[i]) {
					t.Errorf("cart %d: outcome %+v, want all taken", i, o)
				}
				applied.Add(int64(len(o.Applied)))
			}
		})
	}
	wg.Wait()
	if n := applied.Load(); n != int64(len(log)) {
		t.Errorf("the writers applied %d events between them, want each of %d once", n, len(log))
	}
	got, err := countsOf(ctx, toy.store, gen)
	if err != nil {
		t.Fatal(err)
	}
	if err := sameCounts(got, f.typesInLog(t)); err != nil {
		t.Error(err)
	}
}
