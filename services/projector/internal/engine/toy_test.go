package engine_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/cart-cqrs/cart/pkg/cart"
	"github.com/cart-cqrs/cart/pkg/envelope"
	"github.com/cart-cqrs/cart/pkg/polltest"
	"github.com/cart-cqrs/cart/pkg/readmodel"
	"github.com/cart-cqrs/cart/services/projector/internal/analytics"
	"github.com/cart-cqrs/cart/services/projector/internal/engine"
	"github.com/cart-cqrs/cart/services/projector/internal/postgres"
	"github.com/cart-cqrs/cart/services/projector/internal/redisstore"
)

// The proof that a projection is small: a third counting projection, the
// number of events per event type, is these rules and two constructor
// calls (newTypes). The engine gives it the live consumer, deduplication,
// gap repair, generations, builds and rebuilds.

const (
	typesName    = "types"
	typesCounted = "type"
	typesField   = "count"
)

// typeRules count events by type. The state is how many events of the
// cart were counted: the rules need to remember nothing else.
type typeRules struct{}

var _ engine.Rules[int] = typeRules{}

func (typeRules) Fold(n int, events []envelope.Envelope) (int, engine.Delta, []engine.Undecodable, error) {
	d := engine.Delta{}
	for _, e := range events {
		d.Member(e.Type).Add[typesField]++
	}
	return n + len(events), d, nil, nil
}

func (typeRules) Encode(n int) (string, error) { return strconv.Itoa(n), nil }

func (typeRules) Decode(_ int, raw string) (int, error) {
	if raw == "" {
		return 0, nil
	}
	return strconv.Atoi(raw)
}

// types is the toy projection wired to a fixture's stores.
type types struct {
	store    *redisstore.Counting
	counting *engine.Counting[int]
	builder  *engine.Builder
}

func (f *fixture) newTypes(pageSize int) *types {
	store := redisstore.NewCounting(f.redis.Client, f.redis.Prefix, typesName, typesCounted)
	counting := engine.NewCounting(typesName, typeRules{}, store, postgres.NewLog(f.pool), pageSize, f.metrics, f.logger)
	return &types{store: store, counting: counting,
		builder: engine.NewBuilder(typesName, engine.BuildConfig{DrainWait: 10 * time.Millisecond, AutoBuild: true},
			store, counting, f.metrics, f.logger)}
}

// served are the counts by type of the generation readers use.
func (p *types) served(ctx context.Context) (map[string]int64, int, error) {
	rec, err := p.store.Read(ctx)
	if err != nil {
		return nil, 0, err
	}
	if rec.Current == 0 {
		return nil, 0, errors.New("no current generation")
	}
	counts, err := countsOf(ctx, p.store, rec.Current)
	return counts, rec.Current, err
}

func countsOf(ctx context.Context, s *redisstore.Counting, gen int) (map[string]int64, error) {
	members, err := s.Members(ctx, gen)
	if err != nil {
		return nil, err
	}
	out := make(map[string]int64, len(members))
	for typ, fields := range members {
		n, err := strconv.ParseInt(fields[typesField], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("type %s: %v", typ, fields)
		}
		out[typ] = n
	}
	return out, nil
}

// sameCounts says how got differs from want.
func sameCounts(got, want map[string]int64) error {
	if !maps.Equal(got, want) {
		return fmt.Errorf("counts by type:\n got %v\nwant %v", got, want)
	}
	return nil
}

// generationKeys counts the keys of a generation of the toy projection.
func (f *fixture) generationKeys(tb testing.TB, gen int) int {
	tb.Helper()
	k := readmodel.CounterKeys{Prefix: f.redis.Prefix, Projection: typesName, Counted: typesCounted, Generation: gen}
	n := 0
	iter := f.redis.Client.Scan(context.Background(), 0, k.Pattern(), 1000).Iterator()
	for iter.Next(context.Background()) {
		n++
	}
	if err := iter.Err(); err != nil {
		tb.Fatal(err)
	}
	return n
}

// TestToy_Live: events committed and published — some twice, some late,
// after later versions of their cart — reach the toy projection through
// the one engine it shares with the product analytics, and its counts are
// the event log's, each event counted once, also after the whole log is
// delivered again. The toy is trailing: it takes the batches merged, a
// cart's events from several of them at once.
func TestToy_Live(t *testing.T) {
	f := mustFixture(t, true)
	ctx := t.Context()
	toy := f.newTypes(0)
	counts := redisstore.NewCounting(f.redis.Client, f.redis.Prefix, analytics.Name, analytics.Counted)
	an := engine.NewCounting(analytics.Name, analytics.Rules{}, counts, postgres.NewLog(f.pool), 0, f.metrics, f.logger)
	anBuilder := engine.NewBuilder(analytics.Name, engine.BuildConfig{AutoBuild: true}, counts, an, f.metrics, f.logger)
	// First generations, of the empty log: from here on, the live writes
	// fill them.
	for _, b := range []*engine.Builder{toy.builder, anBuilder} {
		if _, err := b.Build(ctx); err != nil {
			t.Fatal(err)
		}
	}

	nc, err := nats.Connect(f.nats.URL, nats.Name("engine toy"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	const durable = "projections"
	eng := engine.New(engine.Config{Stream: f.nats.Stream, SubjectPrefix: f.nats.SubjectPrefix, Durable: durable,
		BatchSize: 32, RetryDelay: 50 * time.Millisecond}, js, f.metrics, f.logger, an, engine.Trailing(toy.counting))
	runCtx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := eng.Run(runCtx); err != nil {
			t.Errorf("engine: %v", err)
		}
	})
	t.Cleanup(func() { stop(); wg.Wait() })

	carts := history(t, 1, 120)
	var late []envelope.Envelope
	for i, evs := range carts {
		f.insert(t, evs...)
		var now, again []envelope.Envelope
		for _, e := range evs {
			switch {
			case i%7 == 0 && e.Version == 1 && len(evs) > 1:
				late = append(late, e) // published after its cart's later versions: a gap
			case i%5 == 0:
				now, again = append(now, e), append(again, e) // a duplicate
			default:
				now = append(now, e)
			}
		}
		f.publish(t, "", now...)
		f.publish(t, "-again", again...)
	}
	f.publish(t, "", late...)
	log := flatten(carts)
	want := f.typesInLog(t)
	if len(late) == 0 || want[cart.TypeCheckedOut] == 0 || want[cart.TypeItemRemoved] == 0 {
		t.Fatalf("the history is not varied enough: %d late, %v", len(late), want)
	}
	polltest.Until(t, 60*time.Second, "the toy projection counts the log's events", func() error {
		got, _, err := toy.served(ctx)
		if err != nil {
			return err
		}
		return sameCounts(got, want)
	})
	polltest.Until(t, 60*time.Second, "the analytics, fed by the same engine, count the log's adds", func() error {
		rec, err := counts.Read(ctx)
		if err != nil {
			return err
		}
		members, err := counts.Members(ctx, rec.Current)
		if err != nil {
			return err
		}
		added := int64(0)
		for id, fields := range members {
			p, err := readmodel.ParseProductAnalytics(id, fields)
			if err != nil {
				return err
			}
			added += p.Added
		}
		if added != want[cart.TypeItemAdded] {
			return fmt.Errorf("analytics count %d adds, the log holds %d", added, want[cart.TypeItemAdded])
		}
		return nil
	})

	t.Run("RedeliveriesChangeNothing", func(t *testing.T) {
		f.publish(t, "-redelivered", log...)
		polltest.Until(t, 30*time.Second, "the engine took every redelivery", func() error {
			c, err := f.nats.JS.Consumer(ctx, f.nats.Stream, durable)
			if err != nil {
				return err
			}
			ci, err := c.Info(ctx)
			if err != nil {
				return err
			}
			if ci.NumPending > 0 || ci.NumAckPending > 0 {
				return fmt.Errorf("%d pending, %d unacknowledged", ci.NumPending, ci.NumAckPending)
			}
			return nil
		})
		got, _, err := toy.served(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := sameCounts(got, want); err != nil {
			t.Error(err)
		}
		// Applied counts what the stream brought and the projection
		// stored: never a duplicate, and at most the late events were
		// read from the log instead.
		applied := int(testutil.ToFloat64(f.metrics.Applied.WithLabelValues(typesName)))
		t.Logf("applied %d events from the stream, %d late, a log of %d", applied, len(late), len(log))
		if applied > len(log) || applied < len(log)-len(late) {
			t.Errorf("applied %d events of a log of %d (%d late)", applied, len(log), len(late))
		}
	})
}

// TestToy_BuildAndRebuild: with the events only in the event log, a build
// gives the toy projection a generation that counts them; a rebuild
// switches readers to a new generation with the same counts and drops the
// old one's keys.
func TestToy_BuildAndRebuild(t *testing.T) {
	f := mustFixture(t, false)
	ctx := t.Context()
	log := flatten(history(t, 2, 300))
	f.insert(t, log...)
	want := f.typesInLog(t)
	toy := f.newTypes(37) // pages end inside carts

	first, err := toy.builder.Build(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if first.Events != int64(len(log)) || first.Projection != typesName {
		t.Errorf("build: %+v, the log holds %d events", first, len(log))
	}
	got, gen, err := toy.served(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if gen != first.Generation {
		t.Errorf("readers use generation %d, the build made %d", gen, first.Generation)
	}
	if err := sameCounts(got, want); err != nil {
		t.Error(err)
	}
	if p := toy.builder.Progress(); p.Phase != engine.PhaseDone || p.Events != int64(len(log)) || p.Total != int64(len(log)) {
		t.Errorf("progress after the build: %+v", p)
	}
	if f.generationKeys(t, first.Generation) == 0 {
		t.Fatalf("generation %d has no keys", first.Generation)
	}

	second, err := toy.builder.Rebuild(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if second.Generation <= first.Generation || second.Events != int64(len(log)) {
		t.Errorf("rebuild: %+v after generation %d", second, first.Generation)
	}
	rec, err := toy.store.Read(ctx)
	if err != nil || rec != (engine.Record{Current: second.Generation}) {
		t.Errorf("generations after the rebuild = %+v, %v", rec, err)
	}
	got, _, err = toy.served(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := sameCounts(got, want); err != nil {
		t.Error(err)
	}
	if n := f.generationKeys(t, first.Generation); n > 0 {
		t.Errorf("the old generation %d still has %d keys", first.Generation, n)
	}
}
