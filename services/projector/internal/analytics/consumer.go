package analytics

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cart-cqrs/cart/pkg/envelope"
	"github.com/cart-cqrs/cart/services/projector/internal/pull"
)

// ConsumerConfig is how the live projection consumes the stream.
type ConsumerConfig struct {
	// Stream is the JetStream stream of cart events; the consumer takes
	// <SubjectPrefix>.>, as the cart projector does.
	Stream, SubjectPrefix string
	// Durable names the analytics consumer, which every projector instance
	// shares and which is not the cart projector's: the analytics never
	// slow the cart documents down.
	Durable string
	// BatchSize is the most messages applied at once (default 256).
	BatchSize int
	// AckWait is how long NATS waits for an ack before redelivering; it
	// bounds one batch too (default 30s).
	AckWait time.Duration
	// MaxAckPending is the most unacknowledged messages (default 1024).
	MaxAckPending int
	// IdleWait is how long one pull waits for a first message (default 1s).
	IdleWait time.Duration
	// RetryDelay is how long a message not applied waits to be redelivered
	// (default 1s).
	RetryDelay time.Duration
}

func (c ConsumerConfig) withDefaults() ConsumerConfig {
	if c.BatchSize <= 0 {
		c.BatchSize = 256
	}
	if c.AckWait <= 0 {
		c.AckWait = 30 * time.Second
	}
	if c.MaxAckPending <= 0 {
		c.MaxAckPending = 1024
	}
	if c.IdleWait <= 0 {
		c.IdleWait = time.Second
	}
	if c.RetryDelay <= 0 {
		c.RetryDelay = time.Second
	}
	return c
}

// Consumer applies the stream's events to every listed generation.
type Consumer struct {
	cfg     ConsumerConfig
	loop    *pull.Loop
	store   *Store
	log     Events
	metrics *Metrics
	logger  *slog.Logger
}

// NewConsumer returns the live projection; log is read to repair gaps.
func NewConsumer(cfg ConsumerConfig, js jetstream.JetStream, store *Store, log Events, metrics *Metrics, logger *slog.Logger) *Consumer {
	c := &Consumer{cfg: cfg.withDefaults(), store: store, log: log, metrics: metrics, logger: logger}
	// Every event from the stream's start: an event a generation lacks is
	// either read from the event log by the build that fills it or
	// delivered here after the build listed the generation (see the
	// package documentation).
	c.loop = pull.New(pull.Config{
		Stream: c.cfg.Stream, SubjectPrefix: c.cfg.SubjectPrefix, Durable: c.cfg.Durable,
		Description: "product analytics in Redis", BatchSize: c.cfg.BatchSize, AckWait: c.cfg.AckWait,
		MaxAckPending: c.cfg.MaxAckPending, IdleWait: c.cfg.IdleWait,
	}, js, "analytics", c.Process, logger)
	return c
}

// Run pulls and applies batches until ctx ends; the batch in hand is
// finished first. It returns nil.
func (c *Consumer) Run(ctx context.Context) error { return c.loop.Run(ctx) }

// group is a batch's messages of one cart.
type group struct {
	cartID string
	msgs   []jetstream.Msg
	events []envelope.Envelope
}

// Process applies one batch to every listed generation and acks what is
// stored in all of them; the rest is nak'ed and comes back. The
// generations are read after the fetch: see the package documentation for
// why that is enough.
func (c *Consumer) Process(ctx context.Context, msgs []jetstream.Msg) {
	groups := c.decode(ctx, msgs)
	if len(groups) == 0 {
		return
	}
	gens, err := c.store.Generations(ctx)
	if err != nil {
		c.logger.ErrorContext(ctx, "analytics: read generations", "err", err)
		c.settle(ctx, groups, func(int) bool { return false })
		return
	}
	carts := make([]cartEvents, len(groups))
	for i, g := range groups {
		carts[i] = cartEvents{cartID: g.cartID, events: g.events}
	}
	failed := make([]bool, len(groups))
	primary := gens.Current
	if primary == 0 {
		primary = gens.Building
	}
	for _, gen := range gens.Writes() {
		outs, err := apply(ctx, c.store, c.log, gen, carts)
		switch {
		case errors.Is(err, ErrGenerationGone):
			// Dropped since the record was read: it needs nothing more.
			continue
		case err != nil:
			c.logger.ErrorContext(ctx, "analytics: apply batch", "generation", gen, "carts", len(carts), "err", err)
			c.settle(ctx, groups, func(int) bool { return false })
			return
		}
		for i, o := range outs {
			if o.err != nil {
				failed[i] = true
				c.logger.WarnContext(ctx, "analytics: cart not applied, retrying later", "cart", groups[i].cartID, "generation", gen, "err", o.err)
			} else if gen == primary {
				c.observe(ctx, groups[i], o)
			}
		}
	}
	c.settle(ctx, groups, func(i int) bool { return !failed[i] })
}

// observe records the metrics of a cart applied to the readers'
// generation: the batch's events it took (not those the gap repair read
// from the log), their lag, and the undecodable events passed over.
func (c *Consumer) observe(ctx context.Context, g *group, o applied) {
	now := time.Now()
	n := eachApplied(g.events, o, func(e *envelope.Envelope) {
		c.metrics.Lag.Observe(now.Sub(e.OccurredAt).Seconds())
	})
	c.metrics.Applied.WithLabelValues(pathLive).Add(float64(n))
	for _, u := range o.res.Undecodable {
		c.metrics.Undecodable.WithLabelValues(pathLive).Inc()
		c.logger.WarnContext(ctx, "analytics: passing over an event that cannot be decoded", "cart", u.Event.StreamID,
			"version", u.Event.Version, "type", u.Event.Type, "schema_version", u.Event.SchemaVersion, "err", u.Err)
	}
}

// eachApplied calls fn with each of events (in version order) that the
// fold o took — not duplicates, nor the events a gap repair read from the
// log — and returns how many there were.
func eachApplied(events []envelope.Envelope, o applied, fn func(e *envelope.Envelope)) int {
	n, last := 0, o.from
	for i := range events {
		if e := &events[i]; e.Version > last && e.Version <= o.from+o.res.Folded {
			if fn != nil {
				fn(e)
			}
			n++
			last = e.Version
		}
	}
	return n
}

// decode groups the messages by cart, each cart's in version order, and
// terminates what is not a cart event: it could never be applied.
func (c *Consumer) decode(ctx context.Context, msgs []jetstream.Msg) []*group {
	byCart := map[string]*group{}
	var groups []*group
	for _, m := range msgs {
		env, err := envelope.UnmarshalCartEvent(m.Data())
		if err != nil {
			c.logger.ErrorContext(ctx, "analytics: terminating a message that is not a cart event", "subject", m.Subject(), "err", err)
			if err := m.Term(); err != nil {
				c.logger.ErrorContext(ctx, "analytics: term", "subject", m.Subject(), "err", err)
			}
			continue
		}
		g, ok := byCart[env.StreamID]
		if !ok {
			g = &group{cartID: env.StreamID}
			byCart[env.StreamID] = g
			groups = append(groups, g)
		}
		g.msgs = append(g.msgs, m)
		g.events = append(g.events, env)
	}
	for _, g := range groups {
		idx := make([]int, len(g.events))
		for i := range idx {
			idx[i] = i
		}
		slices.SortStableFunc(idx, func(a, b int) int { return g.events[a].Version - g.events[b].Version })
		msgs, evs := make([]jetstream.Msg, len(idx)), make([]envelope.Envelope, len(idx))
		for k, i := range idx {
			msgs[k], evs[k] = g.msgs[i], g.events[i]
		}
		g.msgs, g.events = msgs, evs
	}
	return groups
}

// settle acks the messages of the groups ok says were stored and naks the
// others.
func (c *Consumer) settle(ctx context.Context, groups []*group, ok func(int) bool) {
	for i, g := range groups {
		for _, m := range g.msgs {
			var err error
			if ok(i) {
				err = m.Ack()
			} else {
				err = m.NakWithDelay(c.cfg.RetryDelay)
			}
			if err != nil {
				c.logger.ErrorContext(ctx, "analytics: settle message", "subject", m.Subject(), "err", err)
			}
		}
	}
}
