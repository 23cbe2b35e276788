package engine_test

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/cart-cqrs/cart/pkg/envelope"
	"github.com/cart-cqrs/cart/pkg/natstest"
	"github.com/cart-cqrs/cart/pkg/polltest"
	"github.com/cart-cqrs/cart/services/projector/internal/engine"
)

// recorder is a projection that records what it is handed and answers
// each cart with out (Done when nil).
type recorder struct {
	name string
	out  func(c *engine.Cart) engine.Outcome

	mu    sync.Mutex
	calls [][]handed
}

// handed is one cart's events as a projection was handed them.
type handed struct {
	cart      string
	versions  []int
	delivered []int
}

var _ engine.Projection = (*recorder)(nil)

func (r *recorder) Name() string { return r.name }

func (r *recorder) Apply(_ context.Context, carts []*engine.Cart) []engine.Outcome {
	outs := make([]engine.Outcome, len(carts))
	call := make([]handed, len(carts))
	for i, c := range carts {
		call[i].cart = c.ID
		for _, e := range c.Events {
			call[i].versions = append(call[i].versions, e.Version)
			call[i].delivered = append(call[i].delivered, e.Delivered)
		}
		if r.out != nil {
			outs[i] = r.out(c)
		} else {
			outs[i] = engine.Done(c)
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, call)
	return outs
}

// handed returns the carts of every application so far.
func (r *recorder) handed() [][]handed {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.calls)
}

// events counts the events the projection was handed.
func (r *recorder) events() int { return countEvents(r.handed()...) }

func countEvents(calls ...[]handed) int {
	n := 0
	for _, call := range calls {
		for _, h := range call {
			n += len(h.versions)
		}
	}
	return n
}

// runEngine runs an engine on the test's stream until the test ends or the
// returned stop, which waits for Run to return, is called.
func runEngine(t *testing.T, env natstest.Env, cfg engine.Config, projections ...engine.Projection) (stop func()) {
	t.Helper()
	nc, err := nats.Connect(env.URL, nats.Name("engine "+t.Name()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	metrics, err := engine.NewMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	cfg.Stream, cfg.SubjectPrefix, cfg.Durable = env.Stream, env.SubjectPrefix, durable
	eng := engine.New(cfg, js, metrics, slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn})),
		projections...)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := eng.Run(ctx); err != nil {
			t.Errorf("engine: %v", err)
		}
	})
	stop = func() { cancel(); wg.Wait() }
	t.Cleanup(stop)
	return stop
}

const durable = "projections"

// backlog is what the consumer has not delivered yet, and what it
// delivered and has not seen settled.
// allAcknowledged waits until the consumer holds no unacknowledged message.
func allAcknowledged(t *testing.T, ctx context.Context, env natstest.Env) {
	t.Helper()
	polltest.Until(t, 10*time.Second, "every message acknowledged after the stop", func() error {
		if _, unacked, err := backlog(ctx, env); err != nil || unacked > 0 {
			return fmt.Errorf("%d unacknowledged (%v)", unacked, err)
		}
		return nil
	})
}

// drained is nil once the consumer has nothing pending or unacknowledged.
func drained(ctx context.Context, env natstest.Env) error {
	pending, unacked, err := backlog(ctx, env)
	if err != nil {
		return err
	}
	if pending+unacked > 0 {
		return fmt.Errorf("%d pending, %d unacknowledged", pending, unacked)
	}
	return nil
}

func backlog(ctx context.Context, env natstest.Env) (pending, unacked int, err error) {
	c, err := env.JS.Consumer(ctx, env.Stream, durable)
	if err != nil {
		return 0, 0, err
	}
	ci, err := c.Info(ctx)
	if err != nil {
		return 0, 0, err
	}
	return int(ci.NumPending), ci.NumAckPending, nil
}

// interleave is the carts' first events, then their second ones, and so
// on: each cart's events spread over the stream.
func interleave(carts [][]envelope.Envelope) []envelope.Envelope {
	var out []envelope.Envelope
	for k := 0; ; k++ {
		more := false
		for _, c := range carts {
			if k < len(c) {
				out = append(out, c[k])
				more = true
			}
		}
		if !more {
			return out
		}
	}
}

// TestTrailing_CoalescesABurst: under a burst, the trailing projection is
// applied to a batch's worth of events at a time, gathered from the
// batches the eager one took one by one — each cart once per application,
// its events in version order — and the messages it has not taken yet stay
// unacknowledged until the engine stops and applies them.
func TestTrailing_CoalescesABurst(t *testing.T) {
	env := natstest.MustNATS(t)
	env.MustStream(t)
	ctx := t.Context()
	const batch = 8
	eager, counts := &recorder{name: "eager"}, &recorder{name: "counts"}
	// A window that does not end during the test: only a batch's worth
	// held, or the stop, applies the trailing projection.
	stop := runEngine(t, env, engine.Config{BatchSize: batch, TrailingWindow: time.Hour}, eager, engine.Trailing(counts))
	burst := interleave(history(t, 3, 12))
	env.MustPublish(t, "", burst...)

	polltest.Until(t, 30*time.Second, "the burst taken, all but what is held acknowledged", func() error {
		if n := eager.events(); n != len(burst) {
			return fmt.Errorf("the eager projection took %d of %d events", n, len(burst))
		}
		pending, unacked, err := backlog(ctx, env)
		if err != nil {
			return err
		}
		if held := len(burst) - counts.events(); pending > 0 || unacked != held || held >= batch {
			return fmt.Errorf("%d pending, %d unacknowledged, %d held", pending, unacked, held)
		}
		return nil
	})
	for i, call := range counts.handed() {
		if n := countEvents(call); n < batch {
			t.Errorf("application %d: %d events, fewer than a batch's worth", i, n)
		}
	}

	stop()
	calls := counts.handed()
	t.Logf("%d events: the eager projection applied %d times, the trailing one %d times", len(burst), len(eager.handed()), len(calls))
	if max := len(burst)/batch + 1; len(calls) > max {
		t.Errorf("the trailing projection was applied %d times to %d events, want at most %d", len(calls), len(burst), max)
	}
	seen := map[string]int{}
	for i, call := range calls {
		carts := map[string]bool{}
		for _, h := range call {
			if carts[h.cart] {
				t.Errorf("application %d: cart %s handed twice", i, h.cart)
			}
			carts[h.cart] = true
			if !slices.IsSorted(h.versions) {
				t.Errorf("application %d: cart %s versions %v out of order", i, h.cart, h.versions)
			}
			for _, v := range h.versions {
				seen[fmt.Sprintf("%s v%d", h.cart, v)]++
			}
		}
	}
	for _, e := range burst {
		if n := seen[fmt.Sprintf("%s v%d", e.StreamID, e.Version)]; n != 1 {
			t.Errorf("cart %s v%d handed to the trailing projection %d times, want once", e.StreamID, e.Version, n)
		}
	}
	allAcknowledged(t, ctx, env)
}

// TestTrailing_WindowAppliesALoneEvent: one event and no more traffic: the
// trailing projection takes it after the window, and it is acknowledged.
func TestTrailing_WindowAppliesALoneEvent(t *testing.T) {
	env := natstest.MustNATS(t)
	env.MustStream(t)
	ctx := t.Context()
	eager, counts := &recorder{name: "eager"}, &recorder{name: "counts"}
	runEngine(t, env, engine.Config{TrailingWindow: 50 * time.Millisecond}, eager, engine.Trailing(counts))
	env.MustPublish(t, "", history(t, 4, 1)[0][0])

	polltest.Until(t, 30*time.Second, "the lone event applied by both and acknowledged", func() error {
		if a, b := eager.events(), counts.events(); a != 1 || b != 1 {
			return fmt.Errorf("the eager projection took %d events, the trailing one %d", a, b)
		}
		return drained(ctx, env)
	})
}

// TestTrailing_StopAppliesWhatIsHeld: what is held for the trailing
// projection, unacknowledged, is applied and acknowledged when the engine
// stops.
func TestTrailing_StopAppliesWhatIsHeld(t *testing.T) {
	env := natstest.MustNATS(t)
	env.MustStream(t)
	ctx := t.Context()
	eager, counts := &recorder{name: "eager"}, &recorder{name: "counts"}
	stop := runEngine(t, env, engine.Config{TrailingWindow: time.Hour}, eager, engine.Trailing(counts))
	evs := history(t, 5, 1)[0]
	env.MustPublish(t, "", evs...)

	polltest.Until(t, 30*time.Second, "the events taken by the eager projection, held for the trailing one", func() error {
		if n := eager.events(); n != len(evs) {
			return fmt.Errorf("the eager projection took %d of %d events", n, len(evs))
		}
		if _, unacked, err := backlog(ctx, env); err != nil || unacked != len(evs) {
			return fmt.Errorf("%d unacknowledged (%v), want %d", unacked, err, len(evs))
		}
		return nil
	})
	if n := counts.events(); n != 0 {
		t.Fatalf("the trailing projection took %d events before the window or the stop", n)
	}
	stop()
	if calls := counts.handed(); len(calls) != 1 || countEvents(calls...) != len(evs) {
		t.Errorf("after the stop the trailing projection was handed %v, want the %d events at once", calls, len(evs))
	}
	allAcknowledged(t, ctx, env)
}

// TestTrailing_RetryRedelivers: a trailing projection that wants an event
// again gets it redelivered; the eager one sees it again too, a duplicate.
func TestTrailing_RetryRedelivers(t *testing.T) {
	env := natstest.MustNATS(t)
	env.MustStream(t)
	ctx := t.Context()
	eager := &recorder{name: "eager"}
	counts := &recorder{name: "counts", out: func(c *engine.Cart) engine.Outcome {
		if c.Events[0].Delivered == 1 {
			return engine.Outcome{}
		}
		return engine.Done(c)
	}}
	runEngine(t, env, engine.Config{TrailingWindow: 20 * time.Millisecond, RetryDelay: 50 * time.Millisecond},
		eager, engine.Trailing(counts))
	ev := history(t, 6, 1)[0][0]
	env.MustPublish(t, "", ev)

	polltest.Until(t, 30*time.Second, "the event redelivered, taken and acknowledged", func() error {
		if n := counts.events(); n != 2 {
			return fmt.Errorf("the trailing projection took %d deliveries", n)
		}
		return drained(ctx, env)
	})
	for name, r := range map[string]*recorder{"eager": eager, "trailing": counts} {
		var got []string
		for _, call := range r.handed() {
			for _, h := range call {
				got = append(got, fmt.Sprintf("v%v delivered %v", h.versions, h.delivered))
			}
		}
		if want := []string{"v[1] delivered [1]", "v[1] delivered [2]"}; !slices.Equal(got, want) {
			t.Errorf("the %s projection was handed %v, want %v", name, got, want)
		}
	}
}
