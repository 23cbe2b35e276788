package redisstore_test

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/cart-cqrs/cart/pkg/cart"
	"github.com/cart-cqrs/cart/pkg/envelope"
	"github.com/cart-cqrs/cart/pkg/readmodel"
	"github.com/cart-cqrs/cart/pkg/redistest"
	"github.com/cart-cqrs/cart/services/projector/internal/analytics"
	"github.com/cart-cqrs/cart/services/projector/internal/engine"
	"github.com/cart-cqrs/cart/services/projector/internal/redisstore"
)

func mustCounting(t *testing.T) (*redisstore.Counting, redistest.Env) {
	t.Helper()
	r := redistest.MustRedis(t)
	return redisstore.NewCounting(r.Client, r.Prefix, analytics.Name, analytics.Counted), r
}

// generationKeys lists every key of generation gen (a full SCAN: the
// server is shared).
func generationKeys(t *testing.T, r redistest.Env, gen int) []string {
	t.Helper()
	var keys []string
	iter := r.Client.Scan(t.Context(), 0, readmodel.AnalyticsKeys{Prefix: r.Prefix, Generation: gen}.Pattern(), 1000).Iterator()
	for iter.Next(t.Context()) {
		keys = append(keys, iter.Val())
	}
	if err := iter.Err(); err != nil {
		t.Fatal(err)
	}
	return keys
}

// analyticsWrite is a new cart's write of its first two events (opened,
// p1 added) as the analytics rules compute it, expecting the cart at from.
func analyticsWrite(t *testing.T, from int) engine.CartWrite {
	t.Helper()
	id := uuid.NewString()
	var evs []envelope.Envelope
	for i, e := range []cart.Event{cart.Opened{CustomerID: "c"},
		cart.ItemAdded{ProductID: "p1", Name: "Espresso beans", UnitPrice: 1899, Currency: "EUR", Quantity: 1}} {
		env, err := envelope.New(uuid.NewString(), id, i+1, e, envelope.Metadata{Actor: "test"}, t0.Add(time.Duration(i)*time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		evs = append(evs, env)
	}
	rules := analytics.Rules{}
	s, err := rules.Decode(0, "")
	if err != nil {
		t.Fatal(err)
	}
	next, delta, _, err := rules.Fold(s, evs)
	if err != nil {
		t.Fatal(err)
	}
	state, err := rules.Encode(next)
	if err != nil {
		t.Fatal(err)
	}
	return engine.CartWrite{CartID: id, From: from, To: 2, State: state, Delta: delta}
}

// counterWrite is a write of cart id from version from to to adding n to
// member m's field "n".
func counterWrite(id string, from, to int, m string, n int64) engine.CartWrite {
	d := engine.Delta{}
	d.Member(m).Add["n"] = n
	return engine.CartWrite{CartID: id, From: from, To: to, State: fmt.Sprint(to), Delta: d}
}

func product(t *testing.T, s *redisstore.Counting, gen int, id string) (readmodel.ProductAnalytics, bool) {
	t.Helper()
	members, err := s.Members(t.Context(), gen)
	if err != nil {
		t.Fatal(err)
	}
	fields, ok := members[id]
	if !ok {
		return readmodel.ProductAnalytics{}, false
	}
	p, err := readmodel.ParseProductAnalytics(id, fields)
	if err != nil {
		t.Fatal(err)
	}
	return p, true
}

// TestCounting_WriteRefusesAnUnlistedGeneration: a write into a generation
// that is not (or no longer) listed creates nothing, so a late writer
// cannot bring back the keys of a generation being dropped.
func TestCounting_WriteRefusesAnUnlistedGeneration(t *testing.T) {
	s, r := mustCounting(t)
	ctx := t.Context()
	gen, err := s.Open(ctx, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Write(ctx, gen, []engine.CartWrite{analyticsWrite(t, 0)}); err != nil {
		t.Fatal(err)
	}
	if n, err := s.Unlist(ctx, engine.Building, gen); err != nil || n == 0 {
		t.Fatalf("unlist: %d keys, %v", n, err)
	}
	if _, err := s.Write(ctx, gen, []engine.CartWrite{analyticsWrite(t, 0)}); !errors.Is(err, engine.ErrGenerationGone) {
		t.Errorf("write into a dropped generation: %v, want ErrGenerationGone", err)
	}
	if keys := generationKeys(t, r, gen); len(keys) > 0 {
		t.Errorf("the dropped generation has keys again: %v", keys)
	}
	if rec, err := s.Read(ctx); err != nil || rec != (engine.Record{}) {
		t.Errorf("generations = %+v, %v", rec, err)
	}
}

// TestCounting_WriteCompareAndSet: a chunk is written only if every cart is
// still at the version its write was computed from; otherwise nothing of
// it is.
func TestCounting_WriteCompareAndSet(t *testing.T) {
	s, _ := mustCounting(t)
	ctx := t.Context()
	gen, err := s.Open(ctx, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	w := analyticsWrite(t, 0)
	if out, err := s.Write(ctx, gen, []engine.CartWrite{w}); err != nil || len(out) != 1 || out[0] {
		t.Fatalf("first write: %v %v", out, err)
	}
	fresh := analyticsWrite(t, 0)
	out, err := s.Write(ctx, gen, []engine.CartWrite{fresh, w})
	if err != nil || len(out) != 2 || !out[0] || !out[1] {
		t.Fatalf("a write from a stale version: %v %v", out, err)
	}
	if p, found := product(t, s, gen, "p1"); !found || p.Added != 1 || p.AddedToCarts != 1 || p.Name != "Espresso beans" {
		t.Errorf("p1 = %+v, %v; want counted once", p, found)
	}
	states, err := s.Load(ctx, gen, []string{fresh.CartID, w.CartID})
	if err != nil || len(states) != 2 || states[0] != (engine.Stored{}) || states[1] != (engine.Stored{Version: 2, State: w.State}) {
		t.Errorf("states = %+v, %v", states, err)
	}
}

// TestCounting_WriteChunks: a write of more carts than one script call
// takes conflicts chunk by chunk: the chunk with a stale cart writes
// nothing, the others are stored.
func TestCounting_WriteChunks(t *testing.T) {
	s, _ := mustCounting(t)
	ctx := t.Context()
	gen, err := s.Open(ctx, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	const n, stale = 300, 280
	ids := make([]string, n)
	writes := make([]engine.CartWrite, n)
	for i := range writes {
		ids[i] = uuid.NewString()
		writes[i] = counterWrite(ids[i], 0, 1, "m", 1)
	}
	if _, err := s.Write(ctx, gen, []engine.CartWrite{writes[stale]}); err != nil {
		t.Fatal(err)
	}
	out, err := s.Write(ctx, gen, writes)
	if err != nil || len(out) != n {
		t.Fatalf("write: %d outcomes, %v", len(out), err)
	}
	conflicts, chunk := 0, -1
	for i, c := range out {
		if c {
			conflicts++
			if chunk < 0 {
				chunk = i
			}
		}
	}
	if !out[stale] || chunk > stale || stale-chunk >= conflicts || conflicts >= n {
		t.Fatalf("conflicts: %d from %d, want one chunk holding write %d", conflicts, chunk, stale)
	}
	states, err := s.Load(ctx, gen, ids)
	if err != nil {
		t.Fatal(err)
	}
	for i, st := range states {
		want := 1
		if out[i] && i != stale {
			want = 0
		}
		if st.Version != want {
			t.Errorf("cart %d (conflicted %v) at version %d, want %d", i, out[i], st.Version, want)
		}
	}
	members, err := s.Members(ctx, gen)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := members["m"]["n"], fmt.Sprint(n-conflicts+1); got != want {
		t.Errorf("m.n = %s, want %s", got, want)
	}
}

// TestCounting_LabelIsTheLatest: a member keeps the label with the
// greatest sort key, whatever order the writes come in; zero increments
// are not stored.
func TestCounting_LabelIsTheLatest(t *testing.T) {
	s, _ := mustCounting(t)
	ctx := t.Context()
	gen, err := s.Open(ctx, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range []struct{ label, at string }{{"middle", "b"}, {"newest", "c"}, {"oldest", "a"}, {"", ""}} {
		w := counterWrite(uuid.NewString(), 0, 1, "m", 1)
		w.Delta["m"].Label, w.Delta["m"].LabelAt = l.label, l.at
		w.Delta["m"].Add["zero"] = 0
		if out, err := s.Write(ctx, gen, []engine.CartWrite{w}); err != nil || out[0] {
			t.Fatalf("write: %v %v", out, err)
		}
	}
	members, err := s.Members(ctx, gen)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"n": "4", "name": "newest", "nameAt": "c"}
	if got := members["m"]; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("m = %v, want %v", got, want)
	}
}

// TestCounting_ConcurrentWriters: many writers computing the same carts'
// writes from version 0 store each cart exactly once.
func TestCounting_ConcurrentWriters(t *testing.T) {
	s, _ := mustCounting(t)
	ctx := t.Context()
	gen, err := s.Open(ctx, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	const carts, writers = 50, 8
	ids := make([]string, carts)
	for i := range ids {
		ids[i] = uuid.NewString()
	}
	stored := make([]int, writers)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for _, id := range ids {
				out, err := s.Write(ctx, gen, []engine.CartWrite{counterWrite(id, 0, 1, "m", 1)})
				if err != nil {
					t.Error(err)
					return
				}
				if !out[0] {
					stored[w]++
				}
			}
		})
	}
	wg.Wait()
	total := 0
	for _, n := range stored {
		total += n
	}
	members, err := s.Members(ctx, gen)
	if err != nil {
		t.Fatal(err)
	}
	if total != carts || members["m"]["n"] != fmt.Sprint(carts) {
		t.Errorf("%d writes stored, m.n = %s; want each of %d carts once", total, members["m"]["n"], carts)
	}
}

// TestCounting_Record: the generations record moves only along a build's
// steps; a change that does not find what it expects is refused with
// ErrStaleRecord, and an unlisted generation loses its keys and refuses
// to be marked built.
func TestCounting_Record(t *testing.T) {
	s, r := mustCounting(t)
	ctx := t.Context()
	expect := func(want engine.Record) {
		t.Helper()
		if got, err := s.Read(ctx); err != nil || got != want {
			t.Fatalf("record = %+v, %v; want %+v", got, err, want)
		}
	}
	stale := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, engine.ErrStaleRecord) {
			t.Errorf("%s: %v, want ErrStaleRecord", what, err)
		}
	}
	expect(engine.Record{})
	g1, err := s.Open(ctx, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	expect(engine.Record{Building: g1})
	if ok, err := s.Serving(ctx, g1); err != nil || !ok {
		t.Errorf("serving %d: %v %v", g1, ok, err)
	}
	if _, err := s.Write(ctx, g1, []engine.CartWrite{analyticsWrite(t, 0)}); err != nil {
		t.Fatal(err)
	}
	if err := s.Built(ctx, g1, time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := s.Switch(ctx, g1); err != nil {
		t.Fatal(err)
	}
	expect(engine.Record{Current: g1})
	stale("switch to the current generation", s.Switch(ctx, g1))

	g2, err := s.Open(ctx, time.Now())
	if err != nil || g2 <= g1 {
		t.Fatalf("open: %d, %v; want after %d", g2, err, g1)
	}
	expect(engine.Record{Current: g1, Building: g2})
	if got := (engine.Record{Current: g1, Building: g2}).Writes(); len(got) != 2 {
		t.Errorf("writes = %v", got)
	}
	if err := s.Switch(ctx, g2); err != nil {
		t.Fatal(err)
	}
	expect(engine.Record{Current: g2, Previous: g1})
	_, err = s.Unlist(ctx, engine.Building, g1)
	stale("unlist the previous generation as building", err)
	// Drop deletes first and checks the record last (only the builder
	// calls it, with the record's dropping generation): try it on a
	// generation that was never opened.
	_, err = s.Drop(ctx, g2+1)
	stale("drop a generation not dropping", err)
	expect(engine.Record{Current: g2, Previous: g1})

	n, err := s.Unlist(ctx, engine.Previous, g1)
	if err != nil || n == 0 {
		t.Fatalf("unlist previous: %d keys, %v", n, err)
	}
	expect(engine.Record{Current: g2})
	if keys := generationKeys(t, r, g1); len(keys) > 0 {
		t.Errorf("generation %d still has keys: %v", g1, keys)
	}
	if ok, err := s.Serving(ctx, g1); err != nil || ok {
		t.Errorf("serving dropped %d: %v %v", g1, ok, err)
	}
	if err := s.Built(ctx, g1, time.Now()); !errors.Is(err, engine.ErrGenerationGone) {
		t.Errorf("mark a dropped generation built: %v, want ErrGenerationGone", err)
	}
	if keys := generationKeys(t, r, g1); len(keys) > 0 {
		t.Errorf("marking built brought back generation %d: %v", g1, keys)
	}
}
