package analytics_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/cart-cqrs/cart/pkg/cart"
	"github.com/cart-cqrs/cart/pkg/envelope"
	"github.com/cart-cqrs/cart/pkg/eventlog"
	"github.com/cart-cqrs/cart/pkg/natstest"
	"github.com/cart-cqrs/cart/pkg/pgtest"
	"github.com/cart-cqrs/cart/pkg/polltest"
	"github.com/cart-cqrs/cart/pkg/readmodel"
	"github.com/cart-cqrs/cart/pkg/redistest"
	"github.com/cart-cqrs/cart/services/projector/internal/analytics"
	"github.com/cart-cqrs/cart/services/projector/internal/engine"
	"github.com/cart-cqrs/cart/services/projector/internal/postgres"
	"github.com/cart-cqrs/cart/services/projector/internal/redisstore"
)

// fixture is one test's event log, stream, and the history it wrote.
type fixture struct {
	pool *pgxpool.Pool
	nats natstest.Env
}

func mustFixture(tb testing.TB) *fixture {
	tb.Helper()
	pool, _ := pgtest.MustPool(tb)
	f := &fixture{pool: pool, nats: natstest.MustNATS(tb)}
	f.nats.MustStream(tb)
	return f
}

// insert appends events to the event log as the command service does.
func (f *fixture) insert(tb testing.TB, envs ...envelope.Envelope) {
	tb.Helper()
	if err := pgtest.InsertEvents(context.Background(), f.pool, envs); err != nil {
		tb.Fatal(err)
	}
}

// publish sends events as the relay does (natstest.Env.MustPublish).
func (f *fixture) publish(tb testing.TB, suffix string, envs ...envelope.Envelope) {
	tb.Helper()
	f.nats.MustPublish(tb, suffix, envs...)
}

// log is every event of the event log.
func (f *fixture) log(tb testing.TB) []envelope.Envelope {
	tb.Helper()
	var out []envelope.Envelope
	after := int64(0)
	for {
		page, err := eventlog.ReadAll(context.Background(), f.pool, after, 10000)
		if err != nil {
			tb.Fatal(err)
		}
		if len(page) == 0 {
			return out
		}
		out = append(out, page...)
		after = page[len(page)-1].Position
	}
}

// projection is one running analytics projection (the engine's consumer
// and builder) under a Redis prefix of its own.
type projection struct {
	name    string
	redis   redistest.Env
	counts  *redisstore.Counting
	builder *engine.Builder
	metrics *engine.Metrics
	stop    func()
}

// buildConfig is how a test's projection builds: the engine's build
// settings and the page size of its reads of the log.
type buildConfig struct {
	engine.BuildConfig
	PageSize int
}

// start runs a projection until stop or the test's end: its builder builds
// a first generation from the event log at once, and its consumer (unless
// live is false) applies the stream.
func (f *fixture) start(tb testing.TB, name string, live bool, build buildConfig) *projection {
	tb.Helper()
	r := redistest.MustRedis(tb)
	nc, err := nats.Connect(f.nats.URL, nats.Name("analytics "+name))
	if err != nil {
		tb.Fatal(err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		tb.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	metrics, err := engine.NewMetrics(reg)
	if err != nil {
		tb.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(tb.Output(), &slog.HandlerOptions{Level: slog.LevelWarn})).With("projection", name)
	if build.PageSize == 0 {
		build.PageSize = 500
	}
	if build.DrainWait == 0 {
		build.DrainWait = 50 * time.Millisecond
	}
	if build.CheckEvery == 0 {
		build.CheckEvery = 200 * time.Millisecond
	}
	build.AutoBuild = true
	counts := redisstore.NewCounting(r.Client, r.Prefix, analytics.Name, analytics.Counted)
	counting := engine.NewCounting(analytics.Name, analytics.Rules{}, counts, postgres.NewLog(f.pool), build.PageSize, metrics, logger)
	eng := engine.New(engine.Config{
		Stream: f.nats.Stream, SubjectPrefix: f.nats.SubjectPrefix, Durable: "analytics-" + name,
		BatchSize: 64, IdleWait: 100 * time.Millisecond, RetryDelay: 50 * time.Millisecond,
	}, js, metrics, logger, counting)
	builder := engine.NewBuilder(analytics.Name, build.BuildConfig, counts, counting, metrics, logger)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	runs := []func(context.Context) error{builder.Run}
	if live {
		runs = append(runs, eng.Run)
	}
	for _, run := range runs {
		wg.Go(func() {
			if err := run(ctx); err != nil {
				tb.Errorf("%s: %v", name, err)
			}
		})
	}
	var once sync.Once
	p := &projection{name: name, redis: r, counts: counts, builder: builder, metrics: metrics}
	p.stop = func() {
		once.Do(func() {
			cancel()
			wg.Wait()
			nc.Close()
		})
	}
	tb.Cleanup(p.stop)
	return p
}

// products are the products of the generation readers use.
func (p *projection) products(ctx context.Context) (map[string]readmodel.ProductAnalytics, int, error) {
	rec, err := p.counts.Read(ctx)
	if err != nil {
		return nil, 0, err
	}
	if rec.Current == 0 {
		return nil, 0, errors.New("no current generation yet")
	}
	members, err := p.counts.Members(ctx, rec.Current)
	if err != nil {
		return nil, 0, err
	}
	ps := make(map[string]readmodel.ProductAnalytics, len(members))
	for id, fields := range members {
		pa, err := readmodel.ParseProductAnalytics(id, fields)
		if err != nil {
			return nil, 0, err
		}
		pa.NameAt = ""
		ps[id] = pa
	}
	return ps, rec.Current, nil
}

// awaitEqual polls until the projection serves want.
func (p *projection) awaitEqual(tb testing.TB, want map[string]readmodel.ProductAnalytics) {
	tb.Helper()
	polltest.Until(tb, 60*time.Second, p.name+" serves the expected analytics", func() error {
		got, _, err := p.products(context.Background())
		if err != nil {
			return err
		}
		return diff(got, want)
	})
}

// diff describes how got differs from want.
func diff(got, want map[string]readmodel.ProductAnalytics) error {
	for _, id := range slices.Sorted(maps.Keys(want)) {
		if !reflect.DeepEqual(got[id], want[id]) {
			return fmt.Errorf("product %s:\n got %+v\nwant %+v", id, got[id], want[id])
		}
	}
	for id := range got {
		if _, ok := want[id]; !ok {
			return fmt.Errorf("product %s is not expected: %+v", id, got[id])
		}
	}
	return nil
}

// expected computes, independently of the projection's own fold, what it
// must serve for the event log: it follows each cart with the domain's
// state and takes a checkout's lines from the checked-out event.
func expected(envs []envelope.Envelope) map[string]readmodel.ProductAnalytics {
	byCart := map[string][]envelope.Envelope{}
	for _, e := range envs {
		byCart[e.StreamID] = append(byCart[e.StreamID], e)
	}
	out := map[string]*readmodel.ProductAnalytics{}
	latest := map[string]string{}
	get := func(id string) *readmodel.ProductAnalytics {
		p, ok := out[id]
		if !ok {
			p = &readmodel.ProductAnalytics{ProductID: id, DwellToCheckout: readmodel.Histogram{}, DwellToRemoval: readmodel.Histogram{}}
			out[id] = p
		}
		return p
	}
	ms := func(from, to time.Time) time.Duration {
		return time.Duration(to.UnixMilli()-from.UnixMilli()) * time.Millisecond
	}
	for id, evs := range byCart {
		slices.SortFunc(evs, func(a, b envelope.Envelope) int { return a.Version - b.Version })
		var s cart.State
		started := map[string]time.Time{}
		addedTo := map[string]bool{}
		for _, env := range evs {
			r, err := env.Recorded()
			if err != nil || s.Status == cart.StatusCheckedOut {
				continue
			}
			switch e := r.Event.(type) {
			case cart.ItemAdded:
				p := get(e.ProductID)
				p.Added++
				if !addedTo[e.ProductID] {
					addedTo[e.ProductID] = true
					p.AddedToCarts++
				}
				if _, ok := s.Line(e.ProductID); ok {
					p.QuantityRaised++
				} else {
					started[e.ProductID] = r.OccurredAt
				}
				if key := fmt.Sprintf("%017d|%s|%010d", r.OccurredAt.UnixMicro(), id, r.Version); key > latest[e.ProductID] {
					latest[e.ProductID], p.Name = key, e.Name
				}
			case cart.ItemRemoved:
				p := get(e.ProductID)
				if e.Reason == cart.ReasonProductUnavailable {
					p.RemovedBySystem++
				} else {
					p.RemovedByCustomer++
				}
				if _, ok := s.Line(e.ProductID); ok {
					p.DwellToRemoval[readmodel.DwellBucket(ms(started[e.ProductID], r.OccurredAt))]++
				}
			case cart.QuantityChanged:
				p := get(e.ProductID)
				switch {
				case e.NewQuantity > e.OldQuantity:
					p.QuantityRaised++
				case e.NewQuantity < e.OldQuantity:
					p.QuantityLowered++
				}
			case cart.CheckedOut:
				for _, l := range e.Lines {
					p := get(l.ProductID)
					p.CheckedOut++
					p.DwellToCheckout[readmodel.DwellBucket(ms(started[l.ProductID], r.OccurredAt))]++
				}
			}
			s = cart.Evolve(s, r)
		}
	}
	res := make(map[string]readmodel.ProductAnalytics, len(out))
	for id, p := range out {
		res[id] = *p
	}
	return res
}
