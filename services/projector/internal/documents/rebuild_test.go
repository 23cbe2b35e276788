package documents_test

// The rebuild's tests live with the projector's: a rebuild is only correct
// together with the live projectors it hands over with.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	goredis "github.com/redis/go-redis/v9"

	"github.com/cart-cqrs/cart/pkg/cart"
	"github.com/cart-cqrs/cart/pkg/envelope"
	"github.com/cart-cqrs/cart/pkg/eventlog"
	"github.com/cart-cqrs/cart/pkg/pgtest"
	"github.com/cart-cqrs/cart/pkg/readmodel"
	"github.com/cart-cqrs/cart/services/projector/internal/documents"
	"github.com/cart-cqrs/cart/services/projector/internal/engine"
	"github.com/cart-cqrs/cart/services/projector/internal/postgres"
	"github.com/cart-cqrs/cart/services/projector/internal/rebuild"
	"github.com/cart-cqrs/cart/services/projector/internal/redisstore"
)

// rebuilder returns a builder of the documents' generations (bcfg) whose
// fills are a Rebuilder's (cfg).
func (f *fixture) rebuilder(tb testing.TB, cfg rebuild.Config, bcfg engine.BuildConfig) *engine.Builder {
	tb.Helper()
	level := slog.LevelWarn
	if _, ok := tb.(*testing.B); ok {
		level = slog.LevelInfo // the time each stage took
	}
	logger := slog.New(slog.NewTextHandler(tb.Output(), &slog.HandlerOptions{Level: level}))
	metrics, err := engine.NewMetrics(prometheus.NewRegistry())
	if err != nil {
		tb.Fatal(err)
	}
	store := redisstore.New(f.redis.Client, f.keys.Prefix)
	return engine.NewBuilder(documents.Name, bcfg, rebuild.Generations{Store: store},
		rebuild.New(cfg, store, postgres.NewLog(f.pool), logger), metrics, logger)
}

// readCurrent reads a cart's document from the generation readers use now,
// in one atomic step: a reader sees one generation or the other, never a
// switch half done.
var readCurrent = goredis.NewScript(`
local g = redis.call('GET', KEYS[1]) or '1'
return redis.call('HGET', ARGV[1] .. 'g' .. g .. ':cart:{' .. ARGV[2] .. '}', 'version') or ''
`)

func TestRebuild_UnderConcurrentWritesSwitchesAtomically(t *testing.T) {
	f := mustFixture(t)
	const seeded = 150
	var ids []string
	for i := range seeded {
		id := newID()
		ids = append(ids, id)
		f.publish(t, f.record(t, id, script("customer-"+id, 3+i%9, i%3 == 0)...), "")
	}
	// Two live instances share the consumer, as in production.
	f.startProjector(t, documents.Config{}, engine.Config{BatchSize: 32})
	f.startProjector(t, documents.Config{}, engine.Config{BatchSize: 32})
	f.waitDocs(t, ids...)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	// Readers: every seeded cart is there in whatever generation is current,
	// and its version never goes back.
	wg.Add(1)
	go func() {
		defer wg.Done()
		seen := map[string]int{}
		for ctx.Err() == nil {
			for _, id := range ids {
				v, err := readCurrent.Run(ctx, f.redis.Client, []string{readmodel.CurrentGeneration(f.keys.Prefix)}, f.keys.Prefix, id).Text()
				if ctx.Err() != nil {
					return
				}
				n, cerr := strconv.Atoi(v)
				switch {
				case err != nil:
					errs <- fmt.Errorf("read cart %s: %w", id, err)
					return
				case cerr != nil:
					errs <- fmt.Errorf("cart %s missing from the current generation (version %q)", id, v)
					return
				case n < seen[id]:
					errs <- fmt.Errorf("cart %s went back from version %d to %d", id, seen[id], n)
					return
				}
				seen[id] = n
			}
		}
	}()
	// Writers: new carts and the open seeded carts keep changing.
	var open []string
	for i, id := range ids {
		if i%3 != 0 {
			open = append(open, id)
		}
	}
	written := make(chan int, 1)
	wg.Add(1)
	go func() {
		defer wg.Done()
		n := 0
		defer func() { written <- n }()
		for i := 0; ctx.Err() == nil; i++ {
			id := open[i%len(open)]
			ev := cart.Event(cart.ItemAdded{ProductID: "789", Name: "Milk frother", UnitPrice: 3499, Currency: "EUR", Quantity: 1})
			if i%4 == 3 {
				id = newID()
				ev = cart.Opened{CustomerID: "late-" + id}
			}
			if err := f.append(ctx, id, ev); err != nil {
				if ctx.Err() == nil {
					errs <- err
				}
				return
			}
			n++
		}
	}()

	rb := f.rebuilder(t, rebuild.Config{PageSize: 97, WriteBatch: 150}, engine.BuildConfig{DrainWait: 300 * time.Millisecond})
	res, err := rb.Build(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// A little more traffic after the switch, then quiet.
	time.Sleep(100 * time.Millisecond)
	cancel()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	t.Logf("%s; %d events written meanwhile", res, <-written)
	if res.Generation != 2 || res.Events < seeded*3 || res.Dropped == 0 {
		t.Errorf("result = %+v", res)
	}

	f.waitSettled(t, durable)
	f.keys.Generation = 2
	eventually(t, func(ctx context.Context) error { return f.checkReplay(ctx, t) })
	cur, err := f.redis.Client.Get(context.Background(), readmodel.CurrentGeneration(f.keys.Prefix)).Result()
	if err != nil || cur != "2" {
		t.Errorf("current generation = %q, %v; want 2", cur, err)
	}
	left, err := f.redis.Client.Keys(context.Background(), readmodel.Keys{Prefix: f.keys.Prefix, Generation: 1}.Pattern()).Result()
	if err != nil || len(left) != 0 {
		t.Errorf("generation 1 keys left: %d (%v)", len(left), err)
	}

	t.Run("Again", func(t *testing.T) {
		// The next rebuild starts from generation 2; the projectors follow.
		res, err := f.rebuilder(t, rebuild.Config{}, engine.BuildConfig{DrainWait: time.Millisecond}).Build(context.Background())
		if err != nil || res.Generation != 3 {
			t.Fatalf("second rebuild = %+v, %v", res, err)
		}
		id := open[0]
		f.publish(t, f.record(t, id, cart.CheckedOut{}), "")
		f.keys.Generation = 3
		f.waitDocs(t, id)
		eventually(t, func(ctx context.Context) error { return f.checkReplay(ctx, t) })
	})
}

// append records one event of a cart and publishes it, as the command
// service and its relay would: once recorded, it is published even when
// ctx ends meanwhile. It fails without failing the test, so that another
// goroutine may call it.
func (f *fixture) append(ctx context.Context, cartID string, ev cart.Event) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	f.mu.Lock()
	version := len(f.events[cartID]) + 1
	f.mu.Unlock()
	env, err := envelope.New(newID(), cartID, version, ev, envelope.Metadata{Actor: "test"}, time.Now().UTC().Truncate(time.Microsecond))
	if err != nil {
		return err
	}
	if err := pgtest.InsertEvents(ctx, f.pool, []envelope.Envelope{env}); err != nil {
		return fmt.Errorf("insert %s v%d: %w", cartID, version, err)
	}
	f.mu.Lock()
	f.events[cartID] = append(f.events[cartID], env)
	f.mu.Unlock()
	data, err := envelope.MarshalCloudEvent(env, source)
	if err != nil {
		return err
	}
	if _, err := f.nats.JS.Publish(ctx, envelope.Subject(f.nats.SubjectPrefix, cartID, env.Type), data); err != nil {
		return fmt.Errorf("publish %s v%d: %w", cartID, version, err)
	}
	return nil
}

// checkReplay compares the generation of f.keys with a replay of the whole
// event log in PostgreSQL: every cart's document and history, and every
// customer's open cart.
func (f *fixture) checkReplay(ctx context.Context, tb testing.TB) error {
	var all []envelope.Envelope
	for after := int64(0); ; {
		page, err := eventlog.ReadAll(ctx, f.pool, after, 1000)
		if err != nil {
			return err
		}
		all = append(all, page...)
		if len(page) < 1000 {
			break
		}
		after = page[len(page)-1].Position
	}
	byCart := map[string][]envelope.Envelope{}
	for _, e := range all {
		byCart[e.StreamID] = append(byCart[e.StreamID], e)
	}
	openOf := map[string]string{}
	for id, envs := range byCart {
		var (
			s       cart.State
			entries []readmodel.HistoryEntry
		)
		for _, e := range envs {
			r, err := e.Recorded()
			if err != nil {
				tb.Fatal(err)
			}
			s, entries = cart.Evolve(s, r), append(entries, readmodel.NewHistoryEntry(e))
		}
		want, err := json.Marshal(readmodel.FromState(s))
		if err != nil {
			tb.Fatal(err)
		}
		version, doc, err := f.stored(ctx, id)
		if err != nil {
			return err
		}
		if doc != string(want) || version != strconv.Itoa(s.Version) {
			return fmt.Errorf("generation %d cart %s:\n got v%s %s\nwant v%d %s", f.keys.Generation, id, version, doc, s.Version, want)
		}
		if err := f.checkEntries(ctx, id, entries); err != nil {
			return fmt.Errorf("generation %d: %w", f.keys.Generation, err)
		}
		if s.Status == cart.StatusOpen {
			openOf[s.CustomerID] = id
		} else if _, ok := openOf[s.CustomerID]; !ok {
			openOf[s.CustomerID] = ""
		}
	}
	for customer, want := range openOf {
		got, err := f.openCart(ctx, customer)
		if err != nil {
			return err
		}
		if got != want {
			return fmt.Errorf("generation %d: open cart of %s = %q, want %q", f.keys.Generation, customer, got, want)
		}
	}
	return nil
}

func TestRebuild_OneAtATime(t *testing.T) {
	f := mustFixture(t)
	store := redisstore.New(f.redis.Client, f.keys.Prefix)
	ok, err := store.Lock(context.Background(), "someone else", time.Minute)
	if err != nil || !ok {
		t.Fatalf("Lock = %v, %v", ok, err)
	}
	if _, err := f.rebuilder(t, rebuild.Config{}, engine.BuildConfig{}).Build(context.Background()); !errors.Is(err, engine.ErrBuilding) {
		t.Fatalf("rebuild while another runs: err = %v, want ErrBuilding", err)
	}
}

func TestRebuild_ParksWhatItCannotApplyAndKeepsSkips(t *testing.T) {
	f := mustFixture(t)
	p := f.startProjector(t, documents.Config{MaxDeliver: 1}, engine.Config{})
	skipped, parkedCart := newID(), newID()
	for _, id := range []string{skipped, parkedCart} {
		f.publish(t, f.record(t, id, script("c-"+id, 3, false)...), "")
		bad := f.poison(t, id)
		f.insert(t, []envelope.Envelope{bad})
		f.publish(t, []envelope.Envelope{bad}, "")
		f.publish(t, f.record(t, id, cart.ItemAdded{ProductID: "456", Name: "Ceramic mug", UnitPrice: 1250, Currency: "EUR", Quantity: 1}), "")
	}
	f.waitSettled(t, durable)
	if _, err := p.proj.Skip(context.Background(), skipped); err != nil {
		t.Fatal(err)
	}
	f.waitCart(t, skipped, -1, 4)
	// Redis loses the parked events: the rebuild finds the poison again.
	store := redisstore.New(f.redis.Client, f.keys.Prefix)
	if ids, err := store.ParkedCarts(context.Background()); err != nil || len(ids) != 1 {
		t.Fatalf("parked carts = %v, %v", ids, err)
	}
	if err := f.redis.Client.Del(context.Background(), f.keys.Prefix+"parked:{"+parkedCart+"}", f.keys.Prefix+"parked-carts", f.keys.Prefix+"parked-count").Err(); err != nil {
		t.Fatal(err)
	}

	if _, err := f.rebuilder(t, rebuild.Config{PageSize: 3, WriteBatch: 4}, engine.BuildConfig{DrainWait: time.Millisecond}).Build(context.Background()); err != nil {
		t.Fatal(err)
	}
	f.keys.Generation = 2
	f.waitCart(t, skipped, -1, 4)
	f.waitCart(t, parkedCart, 3)
	if got := versions(parked(t, p.proj, parkedCart)); !slices.Equal(got, []int{4, 5}) {
		t.Fatalf("parked by the rebuild: %v, want [4 5]", got)
	}
	n, err := store.ParkedEvents(context.Background())
	if err != nil || n != 2 {
		t.Fatalf("parked events = %d, %v; want 2", n, err)
	}
	// And the live projector releases them into the new generation.
	if _, err := p.proj.Skip(context.Background(), parkedCart); err != nil {
		t.Fatal(err)
	}
	f.waitCart(t, parkedCart, -1, 4)
}

func TestRebuildCart_RepairsACorruptedDocument(t *testing.T) {
	f := mustFixture(t)
	p := f.startProjector(t, documents.Config{}, engine.Config{})
	id, other := newID(), newID()
	f.publish(t, f.record(t, id, script("cora", 6, false)...), "")
	f.waitDocs(t, id)
	ctx := context.Background()
	if err := f.redis.Client.HSet(ctx, f.keys.Cart(id), readmodel.FieldDoc, `{"cartId":"`+id+`","lines":[{"productId":"123"`).Err(); err != nil {
		t.Fatal(err)
	}
	if err := f.redis.Client.Del(ctx, f.keys.OpenCart("cora")).Err(); err != nil {
		t.Fatal(err)
	}
	// The live projector cannot fold onto the unreadable document: the
	// event waits, and other carts flow.
	f.publish(t, f.record(t, id, cart.QuantityChanged{ProductID: "123", OldQuantity: 2, NewQuantity: 5}), "")
	f.publish(t, f.record(t, other, script("otto", 3, false)...), "")
	f.waitDocs(t, other)

	n, err := p.proj.RebuildCart(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if n != 7 {
		t.Errorf("RebuildCart read %d events, want 7", n)
	}
	f.waitDocs(t, id)
	f.waitOpenCart(t, "cora", id)
	f.waitSettled(t, durable)

	if _, err := p.proj.RebuildCart(ctx, newID()); !errors.Is(err, documents.ErrUnknownCart) {
		t.Errorf("RebuildCart of an unknown cart: err = %v, want ErrUnknownCart", err)
	}
}

func TestRebuild_AbandonedWhenCancelled(t *testing.T) {
	f := mustFixture(t)
	f.startProjector(t, documents.Config{}, engine.Config{})
	var ids []string
	for i := range 20 {
		id := newID()
		ids = append(ids, id)
		f.publish(t, f.record(t, id, script("c-"+id, 5, i%2 == 0)...), "")
	}
	f.waitDocs(t, ids...)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// The rebuild is stopped half way: its 40th event cancels it.
	var n atomic.Int32
	stopping := func(s cart.State, e envelope.Envelope) (cart.State, error) {
		if n.Add(1) == 40 {
			cancel()
		}
		return documents.Evolve(s, e)
	}
	rb := f.rebuilder(t, rebuild.Config{PageSize: 10, WriteBatch: 10, Applier: stopping}, engine.BuildConfig{})
	if _, err := rb.Build(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled rebuild: err = %v, want context.Canceled", err)
	}
	if p := rb.Progress(); p.Phase != engine.PhaseFailed || p.Events == 0 || p.Events >= 100 {
		t.Errorf("progress = %+v", p)
	}
	c := context.Background()
	vals, err := f.redis.Client.MGet(c, readmodel.CurrentGeneration(f.keys.Prefix), f.keys.Prefix+"generation:writes").Result()
	if err != nil || vals[0] != "1" || vals[1] != "1" {
		t.Errorf("generations after the abandoned rebuild = %v, %v; want 1 and 1", vals, err)
	}
	if left, err := f.redis.Client.Keys(c, readmodel.Keys{Prefix: f.keys.Prefix, Generation: 2}.Pattern()).Result(); err != nil || len(left) != 0 {
		t.Errorf("generation 2 keys left: %d (%v)", len(left), err)
	}
	// The live projector goes on in generation 1; the lock is free again.
	id := ids[1]
	f.publish(t, f.record(t, id, cart.CheckedOut{}), "")
	f.waitDocs(t, id)
	if _, err := f.rebuilder(t, rebuild.Config{}, engine.BuildConfig{DrainWait: time.Millisecond}).Build(c); err != nil {
		t.Fatalf("next rebuild: %v", err)
	}
}
