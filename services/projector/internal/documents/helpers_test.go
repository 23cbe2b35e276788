package documents_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	goredis "github.com/redis/go-redis/v9"

	"github.com/cart-cqrs/cart/pkg/cart"
	"github.com/cart-cqrs/cart/pkg/envelope"
	"github.com/cart-cqrs/cart/pkg/jsontest"
	"github.com/cart-cqrs/cart/pkg/natstest"
	"github.com/cart-cqrs/cart/pkg/pgtest"
	"github.com/cart-cqrs/cart/pkg/polltest"
	"github.com/cart-cqrs/cart/pkg/readmodel"
	"github.com/cart-cqrs/cart/pkg/redistest"
	"github.com/cart-cqrs/cart/services/projector/internal/documents"
	"github.com/cart-cqrs/cart/services/projector/internal/engine"
	"github.com/cart-cqrs/cart/services/projector/internal/postgres"
	"github.com/cart-cqrs/cart/services/projector/internal/redisstore"
)

const (
	durable = "cart-projector"
	source  = "urn:cart-cqrs:test"
)

// fixture is one test's PostgreSQL database, stream and Redis key prefix,
// plus the events it has recorded per cart.
type fixture struct {
	pool   *pgxpool.Pool
	dbURL  string
	nats   natstest.Env
	redis  redistest.Env
	keys   readmodel.Keys
	mu     sync.Mutex
	events map[string][]envelope.Envelope
}

func mustFixture(tb testing.TB) *fixture {
	tb.Helper()
	pool, dbURL := pgtest.MustPool(tb)
	f := &fixture{pool: pool, dbURL: dbURL, nats: natstest.MustNATS(tb), redis: redistest.MustRedis(tb), events: map[string][]envelope.Envelope{}}
	f.keys = readmodel.Keys{Prefix: f.redis.Prefix, Generation: 1}
	f.nats.MustStream(tb)
	return f
}

// instance is a running projector: the documents projection fed by an
// engine of its own, on its own NATS connection.
type instance struct {
	metrics *documents.Metrics
	engine  *engine.Metrics
	proj    *documents.Projector
	stop    func()
}

// applied is how many events the instance applied to the documents.
func (i *instance) applied() int { return counter(i.engine.Applied.WithLabelValues(documents.Name)) }

// startProjector runs a projector until stop is called or the test ends:
// the documents projection of cfg, fed by an engine of ecfg (on the
// fixture's stream, the shared durable consumer unless ecfg names another).
func (f *fixture) startProjector(tb testing.TB, cfg documents.Config, ecfg engine.Config) *instance {
	tb.Helper()
	ecfg.Stream, ecfg.SubjectPrefix = f.nats.Stream, f.nats.SubjectPrefix
	if ecfg.Durable == "" {
		ecfg.Durable = durable
	}
	if ecfg.RetryDelay == 0 {
		ecfg.RetryDelay = 50 * time.Millisecond
	}
	if ecfg.IdleWait == 0 {
		ecfg.IdleWait = 200 * time.Millisecond
	}
	nc, err := nats.Connect(f.nats.URL, nats.Name("projector "+tb.Name()))
	if err != nil {
		tb.Fatalf("connect: %v", err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		tb.Fatalf("jetstream: %v", err)
	}
	reg := prometheus.NewRegistry()
	metrics, err := documents.NewMetrics(reg)
	if err != nil {
		tb.Fatal(err)
	}
	engMetrics, err := engine.NewMetrics(reg)
	if err != nil {
		tb.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(tb.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	p := documents.New(cfg, redisstore.New(f.redis.Client, f.keys.Prefix), postgres.NewLog(f.pool), metrics, logger)
	eng := engine.New(ecfg, js, engMetrics, logger, p)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- eng.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				tb.Errorf("engine Run: %v", err)
			}
			nc.Close()
		})
	}
	tb.Cleanup(stop)
	return &instance{metrics: metrics, engine: engMetrics, proj: p, stop: stop}
}

// record appends events to a cart's stream in PostgreSQL, with the next
// versions, and returns their envelopes (not yet published).
func (f *fixture) record(tb testing.TB, cartID string, evs ...cart.Event) []envelope.Envelope {
	tb.Helper()
	envs := f.build(tb, cartID, evs...)
	f.insert(tb, envs)
	return envs
}

// build makes the envelopes of a cart's next events and counts them as the
// cart's, without storing them anywhere.
func (f *fixture) build(tb testing.TB, cartID string, evs ...cart.Event) []envelope.Envelope {
	tb.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []envelope.Envelope
	for _, ev := range evs {
		version := len(f.events[cartID]) + 1
		at := time.Now().UTC().Truncate(time.Microsecond) // PostgreSQL's precision
		env, err := envelope.New(newID(), cartID, version, ev,
			envelope.Metadata{Actor: "test", CorrelationID: "corr-" + strconv.Itoa(version)}, at)
		if err != nil {
			tb.Fatal(err)
		}
		f.events[cartID] = append(f.events[cartID], env)
		out = append(out, env)
	}
	return out
}

// insert appends envelopes to the event log as the command service does.
func (f *fixture) insert(tb testing.TB, envs []envelope.Envelope) {
	tb.Helper()
	if err := pgtest.InsertEvents(context.Background(), f.pool, envs); err != nil {
		tb.Fatal(err)
	}
}

// publish sends events as the relay does: CloudEvent JSON on the event's
// subject with Nats-Msg-Id = event id (or the given suffix appended, to get
// a duplicate past the stream's deduplication).
func (f *fixture) publish(tb testing.TB, envs []envelope.Envelope, msgIDSuffix string) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, e := range envs {
		data, err := envelope.MarshalCloudEvent(e, source)
		if err != nil {
			tb.Fatal(err)
		}
		msg := nats.NewMsg(envelope.Subject(f.nats.SubjectPrefix, e.StreamID, e.Type))
		msg.Data = data
		msg.Header.Set(jetstream.MsgIDHeader, e.EventID+msgIDSuffix)
		msg.Header.Set("Content-Type", envelope.ContentType)
		if _, err := f.nats.JS.PublishMsg(ctx, msg); err != nil {
			tb.Fatalf("publish %s v%d: %v", e.StreamID, e.Version, err)
		}
	}
}

// want is the document the query service must serve for a cart, the fold of
// every event recorded for it, and its version.
func (f *fixture) want(tb testing.TB, cartID string) (string, int) {
	tb.Helper()
	doc, entries := f.expect(tb, cartID, -1)
	return doc, len(entries)
}

// expect is a cart's document and history after its first upTo recorded
// events (all when upTo < 0), the skipped versions passed over.
func (f *fixture) expect(tb testing.TB, cartID string, upTo int, skipped ...int) (string, []readmodel.HistoryEntry) {
	tb.Helper()
	f.mu.Lock()
	envs := slices.Clone(f.events[cartID])
	f.mu.Unlock()
	if upTo >= 0 {
		envs = envs[:upTo]
	}
	var (
		s       cart.State
		entries []readmodel.HistoryEntry
	)
	for _, e := range envs {
		next, h, err := documents.Step(documents.Evolve, s, e, slices.Contains(skipped, e.Version))
		if err != nil {
			tb.Fatal(err)
		}
		s, entries = next, append(entries, h)
	}
	b, err := json.Marshal(readmodel.FromState(s))
	if err != nil {
		tb.Fatal(err)
	}
	return string(b), entries
}

// stored is a cart's document as Redis holds it.
func (f *fixture) stored(ctx context.Context, cartID string) (version, doc string, err error) {
	vals, err := f.redis.Client.HMGet(ctx, f.keys.Cart(cartID), readmodel.FieldVersion, readmodel.FieldDoc).Result()
	if err != nil {
		return "", "", err
	}
	version, _ = vals[0].(string)
	doc, _ = vals[1].(string)
	return version, doc, nil
}

// waitDocs polls until every cart's document is the fold of its events and
// its history holds each of them once.
func (f *fixture) waitDocs(tb testing.TB, cartIDs ...string) {
	tb.Helper()
	for _, id := range cartIDs {
		f.waitCart(tb, id, -1)
	}
}

// waitCart polls until a cart's document and history are those of its
// first upTo events (all when upTo < 0), the skipped versions passed over.
func (f *fixture) waitCart(tb testing.TB, cartID string, upTo int, skipped ...int) {
	tb.Helper()
	eventually(tb, func(ctx context.Context) error {
		return f.checkCart(ctx, tb, cartID, upTo, skipped...)
	})
}

func (f *fixture) checkCart(ctx context.Context, tb testing.TB, cartID string, upTo int, skipped ...int) error {
	want, entries := f.expect(tb, cartID, upTo, skipped...)
	if err := f.checkEntries(ctx, cartID, entries); err != nil {
		return err
	}
	version, doc, err := f.stored(ctx, cartID)
	if err != nil {
		return err
	}
	if doc != want {
		return fmt.Errorf("cart %s:\n got %s\nwant %s", cartID, doc, want)
	}
	if version != strconv.Itoa(len(entries)) {
		return fmt.Errorf("cart %s: version field %q, want %d", cartID, version, len(entries))
	}
	return nil
}

// history is a cart's history list as Redis holds it.
func (f *fixture) history(ctx context.Context, cartID string) ([]readmodel.HistoryEntry, error) {
	raw, err := f.redis.Client.LRange(ctx, f.keys.History(cartID), 0, -1).Result()
	if err != nil {
		return nil, err
	}
	out := make([]readmodel.HistoryEntry, len(raw))
	for i, r := range raw {
		if err := json.Unmarshal([]byte(r), &out[i]); err != nil {
			return nil, fmt.Errorf("cart %s history entry %d: %w", cartID, i, err)
		}
	}
	return out, nil
}

// checkHistory reports how a cart's history differs from the events
// recorded for it: each once, in version order, as stored.
func (f *fixture) checkHistory(ctx context.Context, cartID string) error {
	f.mu.Lock()
	want := make([]readmodel.HistoryEntry, len(f.events[cartID]))
	for i, e := range f.events[cartID] {
		want[i] = readmodel.NewHistoryEntry(e)
	}
	f.mu.Unlock()
	return f.checkEntries(ctx, cartID, want)
}

func (f *fixture) checkEntries(ctx context.Context, cartID string, want []readmodel.HistoryEntry) error {
	got, err := f.history(ctx, cartID)
	if err != nil {
		return err
	}
	return diffEntries(cartID, got, want)
}

func diffEntries(cartID string, got, want []readmodel.HistoryEntry) error {
	if len(got) != len(want) {
		return fmt.Errorf("cart %s: %d history entries, want %d", cartID, len(got), len(want))
	}
	for i, w := range want {
		g := got[i]
		if !g.OccurredAt.Equal(w.OccurredAt) || !jsontest.Equal(g.Data, w.Data) {
			return fmt.Errorf("cart %s history entry %d:\n got %+v\nwant %+v", cartID, i, g, w)
		}
		g.OccurredAt, g.Data, w.Data = w.OccurredAt, nil, nil
		if !reflect.DeepEqual(g, w) {
			return fmt.Errorf("cart %s history entry %d:\n got %+v\nwant %+v", cartID, i, g, w)
		}
	}
	return nil
}

// openCart is the customer's open-cart index, "" when absent.
func (f *fixture) openCart(ctx context.Context, customerID string) (string, error) {
	id, err := f.redis.Client.Get(ctx, f.keys.OpenCart(customerID)).Result()
	if errors.Is(err, goredis.Nil) {
		return "", nil
	}
	return id, err
}

func (f *fixture) waitOpenCart(tb testing.TB, customerID, want string) {
	tb.Helper()
	eventually(tb, func(ctx context.Context) error {
		got, err := f.openCart(ctx, customerID)
		if err == nil && got != want {
			err = fmt.Errorf("open cart of %s = %q, want %q", customerID, got, want)
		}
		return err
	})
}

// waitSettled polls until the durable consumer has nothing pending and
// nothing waiting for an ack: every message was acked or terminated.
func (f *fixture) waitSettled(tb testing.TB, name string) {
	tb.Helper()
	eventually(tb, func(ctx context.Context) error {
		cons, err := f.nats.JS.Consumer(ctx, f.nats.Stream, name)
		if err != nil {
			return err
		}
		info, err := cons.Info(ctx)
		if err != nil {
			return err
		}
		if info.NumPending != 0 || info.NumAckPending != 0 {
			return fmt.Errorf("consumer %s: %d pending, %d awaiting ack", name, info.NumPending, info.NumAckPending)
		}
		return nil
	})
}

// eventually polls check, each run bounded by 5 s, until it passes or 20
// seconds have gone by.
func eventually(tb testing.TB, check func(ctx context.Context) error) {
	tb.Helper()
	polltest.Until(tb, 20*time.Second, "eventually", func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return check(ctx)
	})
}

func counter(c prometheus.Counter) int { return int(testutil.ToFloat64(c)) }

// script is a realistic stream of n events for a customer's cart: opened,
// lines added, changed and removed, and checked out when checkout is set.
func script(customerID string, n int, checkout bool) []cart.Event {
	products := []cart.ItemAdded{
		{ProductID: "123", Name: "Espresso beans 1 kg", UnitPrice: 1899, Currency: "EUR", Quantity: 1},
		{ProductID: "456", Name: "Ceramic mug", UnitPrice: 1250, Currency: "EUR", Quantity: 2},
		{ProductID: "789", Name: "Milk frother", UnitPrice: 3499, Currency: "EUR", Quantity: 1},
	}
	evs := []cart.Event{cart.Opened{CustomerID: customerID}}
	s := cart.State{}
	qty := map[string]int{}
	body := n - 1
	if checkout {
		body--
	}
	for i := range body {
		p := products[i%len(products)]
		switch {
		case i%4 == 3 && qty[p.ProductID] > 0:
			evs = append(evs, cart.QuantityChanged{ProductID: p.ProductID, OldQuantity: qty[p.ProductID], NewQuantity: qty[p.ProductID] + 1})
			qty[p.ProductID]++
		case i%5 == 4 && qty[p.ProductID] > 0:
			evs = append(evs, cart.ItemRemoved{ProductID: p.ProductID, Quantity: qty[p.ProductID], Reason: cart.ReasonCustomer})
			delete(qty, p.ProductID)
		default:
			evs = append(evs, p)
			qty[p.ProductID] += p.Quantity
		}
	}
	if checkout {
		for i, e := range evs {
			s = cart.Evolve(s, cart.Recorded{CartID: "x", Version: i + 1, Event: e})
		}
		evs = append(evs, cart.CheckedOut{Lines: s.Lines, ItemCount: s.ItemCount(), Total: s.Total(), Currency: s.Currency()})
	}
	return evs
}

func newID() string { return uuid.Must(uuid.NewV7()).String() }
