package engine

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/cart-cqrs/cart/pkg/envelope"
)

// msg is a delivered message that records how it was settled.
type msg struct {
	jetstream.Msg // nil: a method the engine must not call panics
	data          []byte
	delivered     uint64
	settled       string
}

func (m *msg) Data() []byte         { return m.data }
func (m *msg) Subject() string      { return "cart.events.test" }
func (m *msg) Headers() nats.Header { return nil }
func (m *msg) Ack() error           { m.settled = "ack"; return nil }
func (m *msg) Term() error          { m.settled = "term"; return nil }
func (m *msg) NakWithDelay(time.Duration) error {
	m.settled = "nak"
	return nil
}
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
}
