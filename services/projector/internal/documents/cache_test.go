package documents_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"

	"github.com/cart-cqrs/cart/pkg/cart"
	"github.com/cart-cqrs/cart/pkg/envelope"
	"github.com/cart-cqrs/cart/pkg/readmodel"
	"github.com/cart-cqrs/cart/services/projector/internal/documents"
	"github.com/cart-cqrs/cart/services/projector/internal/engine"
	"github.com/cart-cqrs/cart/services/projector/internal/postgres"
	"github.com/cart-cqrs/cart/services/projector/internal/redisstore"
)

// counting counts the carts a projector reads from the store.
type counting struct {
	documents.Store
	loaded atomic.Int64
}

func (s *counting) Load(ctx context.Context, gens documents.Generations, cartIDs []string) (map[string]documents.Record, error) {
	s.loaded.Add(int64(len(cartIDs)))
	return s.Store.Load(ctx, gens, cartIDs)
}

// applier is a projector instance fed batches by hand, as its engine would.
type applier struct {
	proj    *documents.Projector
	store   *counting
	metrics *documents.Metrics
}

func (f *fixture) applier(tb testing.TB, cfg documents.Config) *applier {
	tb.Helper()
	metrics, err := documents.NewMetrics(prometheus.NewRegistry())
	if err != nil {
		tb.Fatal(err)
	}
	store := &counting{Store: redisstore.New(f.redis.Client, f.keys.Prefix)}
	logger := slog.New(slog.NewTextHandler(tb.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	return &applier{proj: documents.New(cfg, store, postgres.NewLog(f.pool), metrics, logger), store: store, metrics: metrics}
}

// apply hands the instance one batch of a cart's events, each delivered
// that many times, and returns how many it took.
func (a *applier) apply(tb testing.TB, delivered int, envs ...envelope.Envelope) int {
	tb.Helper()
	ctx := context.Background()
	c := &engine.Cart{ID: envs[0].StreamID, Ctx: ctx}
	for _, e := range envs {
		c.Events = append(c.Events, engine.Event{Envelope: e, Delivered: delivered, Span: trace.SpanFromContext(ctx)})
	}
	return a.proj.Apply(ctx, []*engine.Cart{c})[0].RetryFrom
}

// loads is how many carts the instance read from the store so far.
func (a *applier) loads() int { return int(a.store.loaded.Load()) }

func (a *applier) remembered(result string) int {
	return counter(a.metrics.Remembered.WithLabelValues(result))
}

func TestCache_NextBatchOfACartIsNotReadAgain(t *testing.T) {
	f := mustFixture(t)
	a := f.applier(t, documents.Config{})
	id := newID()
	envs := f.record(t, id, script("cam", 8, true)...)

	if n := a.apply(t, 1, envs[:3]...); n != 3 {
		t.Fatalf("took %d of 3 events", n)
	}
	if a.loads() != 1 {
		t.Fatalf("first batch read %d carts, want 1", a.loads())
	}
	for i := 3; i < len(envs); i++ {
		if n := a.apply(t, 1, envs[i]); n != 1 {
			t.Fatalf("event %d not taken", i+1)
		}
		f.waitCart(t, id, i+1)
	}
	if a.loads() != 1 {
		t.Errorf("the later batches read the cart %d times, want 0", a.loads()-1)
	}
	if got := a.remembered("hit"); got != len(envs)-3 {
		t.Errorf("%d hits, want %d", got, len(envs)-3)
	}
	// Checked out: nothing more comes, and a duplicate is read again.
	if n := a.apply(t, 2, envs[len(envs)-1]); n != 1 || a.loads() != 2 {
		t.Errorf("duplicate of the checkout: took %d, %d reads; want 1, 2", n, a.loads())
	}
	f.waitDocs(t, id)
}

// Two instances share the consumer: each batch of the cart may go to either
// one, which folds it onto what it stored last — often not the latest. The
// stale one's write is refused, it reads the cart again and applies its
// events once.
func TestCache_TwoInstancesTakingTurnsOnACart(t *testing.T) {
	f := mustFixture(t)
	a, b := f.applier(t, documents.Config{}), f.applier(t, documents.Config{})
	id := newID()
	envs := f.record(t, id, script("tia", 24, true)...)
	// Each turn hands events [from, upTo) to one instance.
	turns := []struct {
		to         *applier
		from, upTo int
	}{
		{a, 0, 3}, {b, 3, 5},
		{a, 5, 6}, // a remembers 3: the batch starts past 4, it reads the cart
		{a, 3, 7}, // redelivered: duplicates, then 7
		{b, 5, 8}, // b remembers 5: its write is refused, it reads the cart
		{a, 7, 8}, // a remembers 7: refused too; 8 is a duplicate
		{a, 8, 9}, {b, 9, 10}, {b, 7, 12}, {a, 10, 13}, {a, 13, 14},
		{b, 13, 15}, {a, 14, 16}, {b, 16, 17}, {a, 16, 18}, {b, 18, 20}, {a, 19, 24},
	}
	for i, turn := range turns {
		n := turn.to.apply(t, 1, envs[turn.from:turn.upTo]...)
		if want := turn.upTo - turn.from; n != want {
			t.Fatalf("turn %d: took %d of %d events", i, n, want)
		}
		if err := f.checkCart(context.Background(), t, id, turn.upTo); err != nil {
			t.Fatalf("turn %d: %v", i, err)
		}
	}
	f.waitDocs(t, id)
	if a.remembered("stale")+b.remembered("stale") == 0 {
		t.Error("no instance folded onto a stale record: the test shows nothing")
	}
	if a.remembered("hit") == 0 || b.remembered("hit") == 0 {
		t.Errorf("hits: %d and %d; want both above 0", a.remembered("hit"), b.remembered("hit"))
	}
}

// Another instance parks the cart's next event and then skips it, while
// this one remembers the cart from before: the poison redelivered to this
// one is not parked again on top of the skip.
func TestCache_ParkedEventsSkippedElsewhereAreSeen(t *testing.T) {
	f := mustFixture(t)
	const maxDeliver = 2
	a, b := f.applier(t, documents.Config{MaxDeliver: maxDeliver}), f.applier(t, documents.Config{MaxDeliver: maxDeliver})
	id := newID()
	envs := f.record(t, id, script("pia", 3, false)...)
	if n := a.apply(t, 1, envs...); n != 3 {
		t.Fatalf("took %d of 3", n)
	}
	bad := f.poison(t, id)
	f.insert(t, []envelope.Envelope{bad})
	behind := f.record(t, id, cart.ItemAdded{ProductID: "456", Name: "Ceramic mug", UnitPrice: 1250, Currency: "EUR", Quantity: 1})
	if n := b.apply(t, maxDeliver, bad, behind[0]); n != 2 {
		t.Fatalf("b took %d of 2 (parked)", n)
	}
	if got := versions(parked(t, b.proj, id)); fmt.Sprint(got) != "[4 5]" {
		t.Fatalf("parked %v, want [4 5]", got)
	}
	if _, err := b.proj.Skip(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	f.waitCart(t, id, -1, 4)

	// a still remembers version 3, and gets the poison again.
	loads := a.loads()
	later := f.record(t, id, cart.QuantityChanged{ProductID: "456", OldQuantity: 1, NewQuantity: 3})
	if n := a.apply(t, maxDeliver, bad, behind[0], later[0]); n != 3 {
		t.Fatalf("a took %d of 3", n)
	}
	if a.loads() != loads+1 {
		t.Errorf("a read the cart %d times, want once", a.loads()-loads)
	}
	if got := parked(t, a.proj, id); len(got) != 0 {
		t.Fatalf("parked again: %v", versions(got))
	}
	f.waitCart(t, id, -1, 4)
}

// The same instance releases a cart's parked events: its next batch folds
// onto the released cart.
func TestCache_ParkedEventsRetriedHereAreSeen(t *testing.T) {
	f := mustFixture(t)
	id := newID()
	envs := f.build(t, id, script("rih", 6, false)...)
	failing := &failing{eventID: envs[3].EventID}
	failing.broken.Store(true)
	a := f.applier(t, documents.Config{MaxDeliver: 1, Applier: failing.apply})
	f.insert(t, envs)
	a.apply(t, 1, envs[:3]...)
	a.apply(t, 1, envs[3:5]...)
	if got := versions(parked(t, a.proj, id)); fmt.Sprint(got) != "[4 5]" {
		t.Fatalf("parked %v, want [4 5]", got)
	}
	failing.broken.Store(false)
	if r, err := a.proj.Retry(context.Background(), id); err != nil || r.Version != 5 {
		t.Fatalf("Retry = %+v, %v", r, err)
	}
	if n := a.apply(t, 1, envs[5]); n != 1 {
		t.Fatal("event 6 not taken")
	}
	f.waitDocs(t, id)
}

// A rebuild starts: the generations written change under the instance,
// which remembers the cart in the old ones. Its next batch fills the new
// generation too.
func TestCache_GenerationsChangeIsSeen(t *testing.T) {
	f := mustFixture(t)
	a := f.applier(t, documents.Config{})
	id := newID()
	envs := f.record(t, id, script("gen", 5, false)...)
	a.apply(t, 1, envs[:4]...)
	store := redisstore.New(f.redis.Client, f.keys.Prefix)
	ctx := context.Background()
	gens, err := store.Generations(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.SetGenerations(ctx, gens, 1, []int{1, 2}); err != nil {
		t.Fatal(err)
	}
	if n := a.apply(t, 1, envs[4]); n != 1 {
		t.Fatal("event 5 not taken")
	}
	f.waitDocs(t, id)
	want, _ := f.want(t, id)
	doc, err := f.redis.Client.HGet(ctx, readmodel.Keys{Prefix: f.keys.Prefix, Generation: 2}.Cart(id), readmodel.FieldDoc).Result()
	if err != nil || doc != want {
		t.Fatalf("generation 2: %q, %v; want %s", doc, err, want)
	}
}

// Whatever replaces the stored document — here a writer that leaves the
// version as it was — the instance does not write over it from memory: it
// folds the next event onto what is stored.
func TestCache_DocumentReplacedAtTheSameVersionIsSeen(t *testing.T) {
	f := mustFixture(t)
	a := f.applier(t, documents.Config{})
	id := newID()
	envs := f.record(t, id, cart.Opened{CustomerID: "rep"},
		cart.ItemAdded{ProductID: "123", Name: "Espresso beans 1 kg", UnitPrice: 1899, Currency: "EUR", Quantity: 1})
	a.apply(t, 1, envs...)
	ctx := context.Background()
	_, doc, err := f.stored(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	renamed := strings.Replace(doc, "Espresso beans 1 kg", "Espresso beans, 1 kg", 1)
	if err := f.redis.Client.HSet(ctx, f.keys.Cart(id), readmodel.FieldDoc, renamed).Err(); err != nil {
		t.Fatal(err)
	}
	next := f.record(t, id, cart.QuantityChanged{ProductID: "123", OldQuantity: 1, NewQuantity: 2})
	if n := a.apply(t, 1, next...); n != 1 {
		t.Fatal("event 3 not taken")
	}
	_, doc, err = f.stored(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	var c readmodel.Cart
	if err := json.Unmarshal([]byte(doc), &c); err != nil {
		t.Fatal(err)
	}
	if c.Version != 3 || len(c.Lines) != 1 || c.Lines[0].Name != "Espresso beans, 1 kg" || c.Lines[0].Quantity != 2 {
		t.Fatalf("document %s: want version 3 folded onto the stored one", doc)
	}
	if a.remembered("stale") != 1 {
		t.Errorf("%d stale hits, want 1", a.remembered("stale"))
	}
}
