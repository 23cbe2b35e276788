// Package engine runs the projector's projections: one durable consumer on
// the cart events, whose batches it decodes and groups by cart once and hands
// to every registered projection; builds of a projection's generations from
// the event log, with progress, one at a time over all processes; and the
// metrics, named per projection.
//
// A projection is small: a name and what it does with a cart's events.
// Counting projections (Counting: a pure fold per cart and counters it adds
// up) get the rest from the engine — per-cart compare-and-set, gap repair
// from the event log, generations and builds. The cart documents, which keep
// a history and park what they cannot apply, implement Projection and
// Filler themselves and use the engine for everything else.
//
// A message is acknowledged once every projection is done with its event
// (stored, found a duplicate, or parked); if any wants it again, it is
// redelivered, and the others see a duplicate then.
package engine

import (
	"context"
	"log/slog"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/trace"

	"github.com/cart-cqrs/cart/pkg/envelope"
	"github.com/cart-cqrs/cart/pkg/telemetry"
)

// Projection is one read model kept from the cart events.
type Projection interface {
	// Name names the projection in metrics and logs.
	Name() string
	// Apply brings the carts' read model, in every generation it writes, up
	// to their events and returns one outcome per cart, in order. It must
	// not keep the carts after it returns.
	Apply(ctx context.Context, carts []*Cart) []Outcome
}

// Cart is a batch's events of one cart, in version order (a redelivery may
// repeat a version).
type Cart struct {
	ID     string
	Events []Event
	// Ctx carries the trace and correlation id of the cart's newest event,
	// for the cart's spans and log lines.
	Ctx context.Context
}

// Event is one delivered event.
type Event struct {
	envelope.Envelope
	// Delivered is how often its message was delivered, this time included.
	Delivered int
	// Span is the message's processing span.
	Span trace.Span
}

// Outcome is what a projection did with one cart's events. The zero
// Outcome has every event delivered again.
type Outcome struct {
	// RetryFrom is the index of the first event the projection wants
	// delivered again (with every later one); len(Events) when none.
	RetryFrom int
	// Applied are the times of the events it applied, for its lag.
	Applied []time.Time
}

// Done is the outcome of a cart whose events a projection took all of.
func Done(c *Cart) Outcome { return Outcome{RetryFrom: len(c.Events)} }

// Engine feeds every projection from one durable consumer.
type Engine struct {
	cfg         Config
	projections []Projection
	metrics     *Metrics
	logger      *slog.Logger
	loop        *loop
}

// New returns an engine that feeds the projections, in this order.
func New(cfg Config, js jetstream.JetStream, metrics *Metrics, logger *slog.Logger, projections ...Projection) *Engine {
	e := &Engine{cfg: cfg.withDefaults(), projections: projections, metrics: metrics, logger: logger}
	for _, p := range projections {
		// Every projection's series exist from the start, at zero.
		metrics.Applied.WithLabelValues(p.Name())
		metrics.Lag.WithLabelValues(p.Name())
	}
	e.loop = newLoop(e.cfg, js, e.Process, logger)
	return e
}

// Attached reports whether the engine has its consumer and is pulling.
func (e *Engine) Attached() bool { return e.loop.Attached() }

// Run pulls and projects batches until ctx ends. A batch already pulled is
// finished and acknowledged before Run returns; Run then returns nil.
func (e *Engine) Run(ctx context.Context) error { return e.loop.Run(ctx) }

// Process hands one batch to every projection and acks, naks or
// terminates each message.
func (e *Engine) Process(ctx context.Context, msgs []jetstream.Msg) {
	start := time.Now()
	defer func() { e.metrics.BatchDuration.Observe(time.Since(start).Seconds()) }()
	carts, held := e.decode(ctx, msgs)
	defer func() {
		for _, c := range carts {
			for _, ev := range c.Events {
				ev.Span.End()
			}
		}
	}()
	retryFrom := make([]int, len(carts))
	for i, c := range carts {
		retryFrom[i] = len(c.Events)
	}
	for _, p := range e.projections {
		outs := p.Apply(ctx, carts)
		now := time.Now()
		applied, lag := e.metrics.Applied.WithLabelValues(p.Name()), e.metrics.Lag.WithLabelValues(p.Name())
		for i, o := range outs {
			retryFrom[i] = min(retryFrom[i], o.RetryFrom)
			applied.Add(float64(len(o.Applied)))
			for _, at := range o.Applied {
				lag.Observe(now.Sub(at).Seconds())
			}
		}
	}
	for i, c := range carts {
		for k, m := range held[i] {
			var err error
			if k < retryFrom[i] {
				err = m.Ack()
			} else {
				err = m.NakWithDelay(e.cfg.RetryDelay)
			}
			if err != nil {
				e.logger.ErrorContext(ctx, "projector: settle message", "cart", c.ID, "subject", m.Subject(), "err", err)
			}
		}
	}
}

// decode turns messages into carts, in order of first appearance, with
// their messages in the same order as the events, and terminates what is
// not a cart event: no projection could ever take it. A cart event whose
// data this code cannot read is kept: the projections decide.
func (e *Engine) decode(ctx context.Context, msgs []jetstream.Msg) ([]*Cart, [][]jetstream.Msg) {
	byCart := make(map[string]int)
	var carts []*Cart
	var held [][]jetstream.Msg
	for _, m := range msgs {
		env, err := envelope.UnmarshalCartEvent(m.Data())
		if err != nil {
			e.metrics.Terminated.Inc()
			e.logger.ErrorContext(ctx, "projector: terminating a message that is not a cart event",
				"subject", m.Subject(), slog.Uint64("seq", streamSeq(m)), "err", err)
			if err := m.Term(); err != nil {
				e.logger.ErrorContext(ctx, "projector: term", "subject", m.Subject(), "err", err)
			}
			continue
		}
		i, ok := byCart[env.StreamID]
		if !ok {
			i = len(carts)
			byCart[env.StreamID] = i
			carts = append(carts, &Cart{ID: env.StreamID})
			held = append(held, nil)
		}
		ev := Event{Envelope: env, Delivered: delivered(m)}
		_, ev.Span = e.traceProcessing(ctx, m, env, ev.Delivered)
		carts[i].Events = append(carts[i].Events, ev)
		held[i] = append(held[i], m)
	}
	for i, c := range carts {
		// A redelivery may arrive after a later version; the version, not
		// the arrival, is the cart's order. Stable, so duplicates keep
		// their order.
		idx := make([]int, len(c.Events))
		for k := range idx {
			idx[k] = k
		}
		slices.SortStableFunc(idx, func(a, b int) int { return c.Events[a].Version - c.Events[b].Version })
		evs, ms := make([]Event, len(idx)), make([]jetstream.Msg, len(idx))
		for k, j := range idx {
			evs[k], ms[k] = c.Events[j], held[i][j]
		}
		c.Events, held[i] = evs, ms
		newest := evs[len(evs)-1]
		c.Ctx = trace.ContextWithSpan(telemetry.WithCorrelationID(ctx, newest.Metadata.CorrelationID), newest.Span)
	}
	return carts, held
}

func streamSeq(m jetstream.Msg) uint64 {
	md, err := m.Metadata()
	if err != nil {
		return 0
	}
	return md.Sequence.Stream
}

// delivered is how often the message was delivered, this time included.
func delivered(m jetstream.Msg) int {
	md, err := m.Metadata()
	if err != nil {
		return 1
	}
	return int(md.NumDelivered)
}
