package analytics_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/cart-cqrs/cart/pkg/envelope"
	"github.com/cart-cqrs/cart/pkg/polltest"
	"github.com/cart-cqrs/cart/pkg/readmodel"
	"github.com/cart-cqrs/cart/services/projector/internal/analytics"
	"github.com/cart-cqrs/cart/services/projector/internal/engine"
)

// writer writes a history to the event log and publishes it the way a
// relay under trouble does: now and then an event twice, or late (after
// later ones of its cart, so the projection repairs a gap from the log).
type writer struct {
	f    *fixture
	h    *history
	rng  *rand.Rand
	late []envelope.Envelope
	n    int
}

func newWriter(f *fixture, h *history, seed uint64) *writer {
	return &writer{f: f, h: h, rng: rand.New(rand.NewPCG(seed, 99))}
}

// write writes about n events (all that are left when n < 0), publishes
// the late ones, and reports whether the history has more.
func (w *writer) write(tb testing.TB, n int) bool {
	tb.Helper()
	defer func() {
		w.f.publish(tb, "", w.late...)
		w.late = nil
	}()
	more := true
	for start := w.n; more && (n < 0 || w.n-start < n); {
		// Commands of many carts commit at once, as under load.
		var batch []envelope.Envelope
		for len(batch) < 30 {
			evs := w.h.next(tb)
			if evs == nil {
				more = false
				break
			}
			batch = append(batch, evs...)
		}
		w.f.insert(tb, batch...)
		w.n += len(batch)
		var now, again []envelope.Envelope
		for _, e := range batch {
			switch r := w.rng.IntN(100); {
			case r < 5:
				w.late = append(w.late, e)
			case r < 10:
				now, again = append(now, e), append(again, e)
			default:
				now = append(now, e)
			}
		}
		w.f.publish(tb, "", now...)
		w.f.publish(tb, "-again", again...)
		if len(w.late) > 20 {
			w.f.publish(tb, "", w.late...)
			w.late = nil
		}
	}
	return more
}

// TestLiveEqualsBuiltFromHistory is the point of the projection: built
// from history that predates it, it equals the projection that ran live
// from the start, and one started while events were flowing — and all
// equal an independent computation from the event log.
func TestLiveEqualsBuiltFromHistory(t *testing.T) {
	f := mustFixture(t)
	live := f.start(t, "live", true, buildConfig{})
	polltest.Until(t, 10*time.Second, "a first generation, of the empty log", func() error {
		_, _, err := live.products(context.Background())
		return err
	})

	h := newHistory(1, 400)
	h.poison = true
	w := newWriter(f, h, 1)
	w.write(t, 1500)
	during := f.start(t, "during", true, buildConfig{PageSize: 97})
	w.write(t, -1)
	// Only a build from history: no consumer.
	fromHistory := f.start(t, "history", false, buildConfig{})

	log := f.log(t)
	want := expected(log)
	t.Logf("history: %d events of %d carts, %d products", len(log), len(h.carts), len(want))
	if p := want["p1"]; p.RemovedBySystem == 0 || p.CheckedOut == 0 || p.QuantityLowered == 0 || p.AddedNeverCheckedOut() == 0 ||
		p.DwellToRemoval.Count() == 0 {
		t.Fatalf("the history is not varied enough: %+v", p)
	}
	for _, p := range []*projection{live, during, fromHistory} {
		p.awaitEqual(t, want)
		undecodable := testutil.ToFloat64(metric(t, p, "live")) + testutil.ToFloat64(metric(t, p, "build"))
		if undecodable < 1 {
			t.Errorf("%s: the event of an unknown schema version was not counted as undecodable", p.name)
		}
	}

	t.Run("RedeliveriesChangeNothing", func(t *testing.T) {
		f.publish(t, "-redelivered", log...)
		polltest.Until(t, 30*time.Second, "the live consumer took every redelivery", func() error {
			info, err := f.nats.JS.Consumer(t.Context(), f.nats.Stream, "analytics-live")
			if err != nil {
				return err
			}
			ci, err := info.Info(t.Context())
			if err != nil {
				return err
			}
			if ci.NumPending > 0 || ci.NumAckPending > 0 {
				return fmt.Errorf("%d pending, %d unacknowledged", ci.NumPending, ci.NumAckPending)
			}
			return nil
		})
		got, _, err := live.products(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if err := diff(got, want); err != nil {
			t.Error(err)
		}
	})
}

func metric(t *testing.T, p *projection, path string) prometheus.Collector {
	t.Helper()
	return p.metrics.Undecodable.WithLabelValues(analytics.Name, path)
}

// TestRebuildUnderLiveWrites: a rebuild into a new generation while events
// keep coming equals a replay of the log, readers are switched to it, and
// the old generation's keys are gone.
func TestRebuildUnderLiveWrites(t *testing.T) {
	f := mustFixture(t)
	p := f.start(t, "live", true, buildConfig{PageSize: 150})
	h := newHistory(2, 400)
	w := newWriter(f, h, 2)
	w.write(t, 1500)
	p.awaitEqual(t, expected(f.log(t)))
	_, old, err := p.products(t.Context())
	if err != nil {
		t.Fatal(err)
	}

	var (
		wg   sync.WaitGroup
		res  engine.Result
		rerr error
	)
	wg.Go(func() { res, rerr = p.builder.Rebuild(context.WithoutCancel(t.Context())) })
	during := 0
	for more := true; more; {
		more = w.write(t, 30)
		if p.builder.Progress().Phase == engine.PhaseFilling {
			during++
		}
	}
	wg.Wait()
	if rerr != nil {
		t.Fatal(rerr)
	}
	if during == 0 {
		t.Error("no event was written while the rebuild was filling its generation")
	}
	t.Logf("%s", res)
	p.awaitEqual(t, expected(f.log(t)))
	gens, err := p.counts.Read(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if gens != (engine.Record{Current: res.Generation}) || res.Generation <= old {
		t.Errorf("generations after the rebuild = %+v, rebuilt %d, old %d", gens, res.Generation, old)
	}
	keys, _, err := p.redis.Client.Scan(t.Context(), 0, readmodel.AnalyticsKeys{Prefix: p.redis.Prefix, Generation: old}.Pattern(), 100000).Result()
	if err != nil || len(keys) > 0 {
		t.Errorf("generation %d still has %d keys (%v), e.g. %v", old, len(keys), err, keys[:min(3, len(keys))])
	}
}

// TestRedisWipedHeals: when Redis loses the analytics, the projectors'
// check builds them again from the event log.
func TestRedisWipedHeals(t *testing.T) {
	f := mustFixture(t)
	p := f.start(t, "live", true, buildConfig{BuildConfig: engine.BuildConfig{CheckEvery: 50 * time.Millisecond}})
	w := newWriter(f, newHistory(3, 60), 3)
	w.write(t, -1)
	want := expected(f.log(t))
	p.awaitEqual(t, want)
	keys, _, err := p.redis.Client.Scan(t.Context(), 0, p.redis.Prefix+"*", 100000).Result()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.redis.Client.Del(t.Context(), keys...).Err(); err != nil {
		t.Fatal(err)
	}
	p.awaitEqual(t, want)

	// Only the current generation's meta lost (evicted, say): readers
	// cannot use the generation, so it is built again, and the rest of
	// the old one goes.
	_, gen, err := p.products(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	old := readmodel.AnalyticsKeys{Prefix: p.redis.Prefix, Generation: gen}
	if err := p.redis.Client.Del(t.Context(), old.Meta()).Err(); err != nil {
		t.Fatal(err)
	}
	polltest.Until(t, 30*time.Second, "a new generation, and the old one dropped", func() error {
		gens, err := p.counts.Read(t.Context())
		if err != nil {
			return err
		}
		left, _, err := p.redis.Client.Scan(t.Context(), 0, old.Pattern(), 100000).Result()
		if err != nil {
			return err
		}
		if gens != (engine.Record{Current: gens.Current}) || gens.Current == gen || len(left) > 0 {
			return fmt.Errorf("generations %+v, %d keys left of generation %d", gens, len(left), gen)
		}
		return nil
	})
	p.awaitEqual(t, want)
}
