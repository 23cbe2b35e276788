package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/cart-cqrs/cart/pkg/envelope"
)

// msg is a delivered message that records how, and how often, it was
// settled.
type msg struct {
	jetstream.Msg // nil: a method the engine must not call panics
	data          []byte
	delivered     uint64
	settled       string
	settles       int
}

func (m *msg) Data() []byte         { return m.data }
func (m *msg) Subject() string      { return "cart.events.test" }
func (m *msg) Headers() nats.Header { return nil }
func (m *msg) Ack() error           { m.settle("ack"); return nil }
func (m *msg) Term() error          { m.settle("term"); return nil }
func (m *msg) NakWithDelay(time.Duration) error {
	m.settle("nak")
	return nil
}
func (m *msg) settle(how string) { m.settled = how; m.settles++ }
func (m *msg) Metadata() (*jetstream.MsgMetadata, error) {
	return &jetstream.MsgMetadata{NumDelivered: m.delivered}, nil
}

// projection answers each cart with the outcome its function gives.
type projection struct {
	name  string
	out   func(c *Cart) Outcome
	carts [][]int // the versions it was handed, per call
}

func (p *projection) Name() string { return p.name }
func (p *projection) Apply(_ context.Context, carts []*Cart) []Outcome {
	outs := make([]Outcome, len(carts))
	for i, c := range carts {
		var vs []int
		for _, e := range c.Events {
			vs = append(vs, e.Version)
		}
		p.carts = append(p.carts, vs)
		outs[i] = p.out(c)
	}
	return outs
}

func event(t *testing.T, cartID string, version int) *msg {
	t.Helper()
	b, err := envelope.MarshalCloudEvent(envelope.Envelope{
		Position: int64(version), EventID: uuid.NewString(), StreamID: cartID, StreamType: envelope.StreamTypeCart,
		Version: version, Type: "cart.opened", SchemaVersion: 1, Data: json.RawMessage(`{"customerId":"c"}`),
		OccurredAt: time.Now().UTC(),
	}, "test")
	if err != nil {
		t.Fatal(err)
	}
	return &msg{data: b, delivered: 1}
}

// TestProcess: one batch goes to every projection, each cart's events in
// version order; a message is acked once every projection is done with its
// event, nak'ed when any wants it again, and terminated when it is no cart
// event at all.
func TestProcess(t *testing.T) {
	spans := countSpans(t)
	metrics, err := NewMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	a, b := uuid.NewString(), uuid.NewString()
	// Cart a's versions arrive out of order; cart b's second is redelivered.
	a2, a1, b1, junk, b2 := event(t, a, 2), event(t, a, 1), event(t, b, 1), &msg{data: []byte(`{"not":"an event"}`)}, event(t, b, 2)
	b2.delivered = 3
	all := &projection{name: "all", out: Done}
	// The second projection wants cart b again from its second event.
	some := &projection{name: "some", out: func(c *Cart) Outcome {
		if c.ID == b {
			return Outcome{RetryFrom: 1, Applied: []time.Time{c.Events[0].OccurredAt}}
		}
		return Done(c)
	}}
	e := New(Config{Stream: "S", SubjectPrefix: "cart.events", Durable: "d"}, nil, metrics,
		slog.New(slog.NewTextHandler(io.Discard, nil)), all, some)
	e.Process(t.Context(), []jetstream.Msg{a2, a1, b1, junk, b2})

	for name, p := range map[string]*projection{"all": all, "some": some} {
		if len(p.carts) != 2 || len(p.carts[0]) != 2 || p.carts[0][0] != 1 || p.carts[0][1] != 2 || p.carts[1][1] != 2 {
			t.Errorf("%s was handed %v, want [[1 2] [1 2]]", name, p.carts)
		}
	}
	for name, w := range map[string]struct {
		m    *msg
		want string
	}{"a1": {a1, "ack"}, "a2": {a2, "ack"}, "b1": {b1, "ack"}, "b2": {b2, "nak"}, "junk": {junk, "term"}} {
		if w.m.settled != w.want {
			t.Errorf("%s settled %q, want %q", name, w.m.settled, w.want)
		}
	}
	if got := testutil.ToFloat64(metrics.Applied.WithLabelValues("some")); got != 1 {
		t.Errorf("some applied %v, want 1", got)
	}
	if got := testutil.ToFloat64(metrics.Terminated); got != 1 {
		t.Errorf("terminated %v, want 1", got)
	}
	for _, s := range []struct {
		cart             string
		version, deliver int
	}{{a, 1, 1}, {a, 2, 1}, {b, 1, 1}, {b, 2, 3}} {
		if n := spans.ended(s.cart, s.version, s.deliver); n != 1 {
			t.Errorf("span of %s v%d (delivery %d) ended %d times, want once", s.cart, s.version, s.deliver, n)
		}
	}
}

// TestProcess_Trailing: a trailing projection is handed the held batches at
// once, each cart once with its events in version order (a redelivery's
// duplicate included); each message is settled once — at once when the
// eager projection wants it again, else when the trailing one is done — and
// its processing span ends then, once.
func TestProcess_Trailing(t *testing.T) {
	spans := countSpans(t)
	metrics, err := NewMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	a, b, c := uuid.NewString(), uuid.NewString(), uuid.NewString()
	a1, b1, b2 := event(t, a, 1), event(t, b, 1), event(t, b, 2)
	a3, a2, a1again, c1 := event(t, a, 3), event(t, a, 2), event(t, a, 1), event(t, c, 1)
	a1again.delivered = 2
	// The eager projection wants cart b again from its second event, the
	// trailing one cart c.
	docs := &projection{name: "docs", out: func(ct *Cart) Outcome {
		if ct.ID == b {
			return Outcome{RetryFrom: 1}
		}
		return Done(ct)
	}}
	counts := &projection{name: "counts", out: func(ct *Cart) Outcome {
		if ct.ID == c {
			return Outcome{}
		}
		return Done(ct)
	}}
	e := New(Config{Stream: "S", SubjectPrefix: "cart.events", Durable: "d", TrailingWindow: time.Minute}, nil, metrics,
		slog.New(slog.NewTextHandler(io.Discard, nil)), docs, Trailing(counts))

	e.Process(t.Context(), []jetstream.Msg{a1, b1, b2})
	if b2.settled != "nak" || a1.settles+b1.settles != 0 {
		t.Errorf("after the first batch: b2 %q, a1 and b1 settled %d times; want b2 nak'ed and the rest held",
			b2.settled, a1.settles+b1.settles)
	}
	if n := spans.ended(a, 1, 1); n != 0 {
		t.Errorf("a held message's span ended %d times", n)
	}
	e.Process(t.Context(), []jetstream.Msg{a3, a2, a1again, c1})
	if len(counts.carts) != 0 {
		t.Fatalf("the trailing projection was applied before the flush: %v", counts.carts)
	}
	if at, ok := e.due(); !ok || time.Until(at) < 30*time.Second {
		t.Errorf("held messages due at %v (%v), want about a minute from now", at, ok)
	}

	e.flush(t.Context())
	want := [][]int{{1, 1, 2, 3}, {1, 2}, {1}}
	if !slices.EqualFunc(counts.carts, want, slices.Equal) {
		t.Errorf("the trailing projection was handed %v, want %v", counts.carts, want)
	}
	if _, ok := e.due(); ok {
		t.Error("messages still held after the flush")
	}
	for name, w := range map[string]struct {
		m    *msg
		want string
	}{"a1": {a1, "ack"}, "a2": {a2, "ack"}, "a3": {a3, "ack"}, "a1 again": {a1again, "ack"},
		"b1": {b1, "ack"}, "b2": {b2, "nak"}, "c1": {c1, "nak"}} {
		if w.m.settled != w.want || w.m.settles != 1 {
			t.Errorf("%s settled %d times, last %q; want once, %q", name, w.m.settles, w.m.settled, w.want)
		}
	}
	for _, s := range []struct {
		cart             string
		version, deliver int
	}{{a, 1, 1}, {a, 2, 1}, {a, 3, 1}, {a, 1, 2}, {b, 1, 1}, {b, 2, 1}, {c, 1, 1}} {
		if n := spans.ended(s.cart, s.version, s.deliver); n != 1 {
			t.Errorf("span of %s v%d (delivery %d) ended %d times, want once", s.cart, s.version, s.deliver, n)
		}
	}
}

// TestProcess_TrailingHoldLimit: what is held is due at once when it
// reaches a batch's worth, without waiting out the window.
func TestProcess_TrailingHoldLimit(t *testing.T) {
	metrics, err := NewMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	counts := &projection{name: "counts", out: Done}
	e := New(Config{Stream: "S", SubjectPrefix: "cart.events", Durable: "d", BatchSize: 2, TrailingWindow: time.Hour}, nil,
		metrics, slog.New(slog.NewTextHandler(io.Discard, nil)), Trailing(counts))
	a := uuid.NewString()
	e.Process(t.Context(), []jetstream.Msg{event(t, a, 1)})
	if at, ok := e.due(); !ok || time.Until(at) < time.Minute {
		t.Errorf("one event held: due at %v (%v), want in about an hour", at, ok)
	}
	e.Process(t.Context(), []jetstream.Msg{event(t, a, 2)})
	if at, ok := e.due(); !ok || time.Until(at) > 0 {
		t.Errorf("a batch's worth held: due at %v (%v), want at once", at, ok)
	}
}

// spanCounter is a tracer provider that counts how often each processing
// span ends, by cart, version and delivery.
type spanCounter struct {
	noop.TracerProvider
	mu   sync.Mutex
	ends map[string]int
}

// countSpans makes the product's spans counted for the rest of the test.
func countSpans(t *testing.T) *spanCounter {
	t.Helper()
	c := &spanCounter{ends: map[string]int{}}
	before := otel.GetTracerProvider()
	otel.SetTracerProvider(c)
	t.Cleanup(func() { otel.SetTracerProvider(before) })
	return c
}

func spanKey(cart string, version, delivery int64) string {
	return fmt.Sprintf("%s v%d #%d", cart, version, delivery)
}

func (c *spanCounter) ended(cart string, version, delivery int) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ends[spanKey(cart, int64(version), int64(delivery))]
}

func (c *spanCounter) Tracer(string, ...trace.TracerOption) trace.Tracer { return countingTracer{c: c} }

type countingTracer struct {
	noop.Tracer
	c *spanCounter
}

func (t countingTracer) Start(ctx context.Context, _ string, opts ...trace.SpanStartOption) (context.Context, trace.Span) {
	var cart string
	var version, delivery int64
	cfg := trace.NewSpanStartConfig(opts...)
	for _, a := range cfg.Attributes() {
		switch a.Key {
		case "cart.id":
			cart = a.Value.AsString()
		case "cart.version":
			version = a.Value.AsInt64()
		case "messaging.message.delivery_count":
			delivery = a.Value.AsInt64()
		}
	}
	s := &countedSpan{c: t.c, key: spanKey(cart, version, delivery)}
	return trace.ContextWithSpan(ctx, s), s
}

type countedSpan struct {
	noop.Span
	c   *spanCounter
	key string
}

func (s *countedSpan) End(...trace.SpanEndOption) {
	s.c.mu.Lock()
	defer s.c.mu.Unlock()
	s.c.ends[s.key]++
}
