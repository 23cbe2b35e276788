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
//
// A projection nobody waits for (the product analytics) is registered as
// Trailing: it is applied to several batches at once, after the others.
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
	cfg Config
	// eager are applied to each batch, trailing to the batches held.
	eager, trailing []Projection
	metrics         *Metrics
	logger          *slog.Logger
	loop            *loop
	// held is what the trailing projections have yet to take; only the
	// loop's goroutine touches it.
	held holding
}

// New returns an engine that feeds the projections, in this order, the
// trailing ones (see Trailing) after the others.
func New(cfg Config, js jetstream.JetStream, metrics *Metrics, logger *slog.Logger, projections ...Projection) *Engine {
	e := &Engine{cfg: cfg.withDefaults(), metrics: metrics, logger: logger}
	for _, p := range projections {
		if t, ok := p.(trailing); ok {
			e.trailing = append(e.trailing, t.Projection)
		} else {
			e.eager = append(e.eager, p)
		}
		// Every projection's series exist from the start, at zero.
		metrics.Applied.WithLabelValues(p.Name())
		metrics.Lag.WithLabelValues(p.Name())
	}
	e.loop = newLoop(e.cfg, js, e, logger)
	return e
}

// Attached reports whether the engine has its consumer and is pulling.
func (e *Engine) Attached() bool { return e.loop.Attached() }

// Run pulls and projects batches until ctx ends. A batch already pulled is
// finished and acknowledged, and what is held for the trailing projections
// applied and settled, before Run returns; Run then returns nil.
func (e *Engine) Run(ctx context.Context) error { return e.loop.Run(ctx) }

// Process hands one batch to every projection but the trailing ones and
// settles each message: it acks, naks or terminates it. With trailing
// projections, it holds for them the messages it would ack (see Trailing).
// Not safe for concurrent use: the engine's loop is its one caller.
func (e *Engine) Process(ctx context.Context, msgs []jetstream.Msg) {
	start := time.Now()
	defer func() { e.metrics.BatchDuration.Observe(time.Since(start).Seconds()) }()
	carts, cartMsgs := e.decode(ctx, msgs)
	retryFrom := e.apply(ctx, e.eager, carts)
	if len(e.trailing) == 0 {
		for i, c := range carts {
			e.settle(ctx, c, cartMsgs[i], retryFrom[i])
		}
		return
	}
	for i, c := range carts {
		// Wanted again: redelivered without waiting for the trailing
		// projections, which still take the event now.
		for k := retryFrom[i]; k < len(c.Events); k++ {
			e.settleOne(ctx, c.ID, cartMsgs[i][k], false, c.Events[k].Span)
			cartMsgs[i][k] = nil
		}
		e.held.add(c, cartMsgs[i], start)
	}
}

// apply hands the carts to the projections, counts what each applied and
// returns, per cart, the first event any of them wants again.
func (e *Engine) apply(ctx context.Context, projections []Projection, carts []*Cart) []int {
	retryFrom := make([]int, len(carts))
	for i, c := range carts {
		retryFrom[i] = len(c.Events)
	}
	for _, p := range projections {
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
	return retryFrom
}

// settle acks a cart's messages before retryFrom and naks the rest, which
// come later in version order, and ends their processing spans. A nil
// message was settled already.
func (e *Engine) settle(ctx context.Context, c *Cart, msgs []jetstream.Msg, retryFrom int) {
	for k, m := range msgs {
		if m != nil {
			e.settleOne(ctx, c.ID, m, k < retryFrom, c.Events[k].Span)
		}
	}
}

// settleOne acks or naks one message and ends its processing span: its
// processing is over once it is settled.
func (e *Engine) settleOne(ctx context.Context, cartID string, m jetstream.Msg, ack bool, span trace.Span) {
	defer span.End()
	var err error
	if ack {
		err = m.Ack()
	} else {
		err = m.NakWithDelay(e.cfg.RetryDelay)
	}
	if err != nil {
		e.logger.ErrorContext(ctx, "projector: settle message", "cart", cartID, "subject", m.Subject(), "err", err)
	}
}

// decode turns messages into carts, in order of first appearance, with
// their messages in the same order as the events, and terminates what is
// not a cart event: no projection could ever take it. A cart event whose
// data this code cannot read is kept: the projections decide.
func (e *Engine) decode(ctx context.Context, msgs []jetstream.Msg) ([]*Cart, [][]jetstream.Msg) {
	byCart := make(map[string]int)
	var carts []*Cart
	var cartMsgs [][]jetstream.Msg
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
			cartMsgs = append(cartMsgs, nil)
		}
		ev := Event{Envelope: env, Delivered: delivered(m)}
		_, ev.Span = e.traceProcessing(ctx, m, env, ev.Delivered)
		carts[i].Events = append(carts[i].Events, ev)
		cartMsgs[i] = append(cartMsgs[i], m)
	}
	for i, c := range carts {
		cartMsgs[i] = sortByVersion(c, cartMsgs[i])
		c.Ctx = cartContext(ctx, c)
	}
	return carts, cartMsgs
}

// sortByVersion puts a cart's events, and their messages alongside, in
// version order: a redelivery may arrive after a later version. Stable, so
// duplicates keep their order.
func sortByVersion(c *Cart, msgs []jetstream.Msg) []jetstream.Msg {
	if slices.IsSortedFunc(c.Events, func(a, b Event) int { return a.Version - b.Version }) {
		return msgs
	}
	idx := make([]int, len(c.Events))
	for k := range idx {
		idx[k] = k
	}
	slices.SortStableFunc(idx, func(a, b int) int { return c.Events[a].Version - c.Events[b].Version })
	evs, ms := make([]Event, len(idx)), make([]jetstream.Msg, len(idx))
	for k, j := range idx {
		evs[k], ms[k] = c.Events[j], msgs[j]
	}
	c.Events = evs
	return ms
}

// cartContext carries the trace and correlation id of the cart's newest
// event.
func cartContext(ctx context.Context, c *Cart) context.Context {
	newest := c.Events[len(c.Events)-1]
	return trace.ContextWithSpan(telemetry.WithCorrelationID(ctx, newest.Metadata.CorrelationID), newest.Span)
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
