package projector

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cart-cqrs/cart/pkg/eventlog"
)

// Config is how a projector consumes the stream.
type Config struct {
	// Stream is the JetStream stream holding the cart events.
	Stream string
	// SubjectPrefix is the subjects' prefix; the consumer takes <prefix>.>.
	SubjectPrefix string
	// Durable names the consumer that every projector instance shares.
	Durable string
	// BatchSize is the most messages projected in one batch.
	BatchSize int
	// AckWait is how long the server waits for an ack before redelivering;
	// it also bounds the time spent on one batch.
	AckWait time.Duration
	// MaxAckPending is the most unacknowledged messages across all instances.
	MaxAckPending int
	// IdleWait is how long one pull waits for a first message (default 1s);
	// it bounds how long shutdown waits for an idle pull.
	IdleWait time.Duration
	// RetryDelay is how long a message that cannot be applied yet waits
	// before it is redelivered (default 1s).
	RetryDelay time.Duration
	// MaxDeliver is how many deliveries an event that cannot be applied
	// gets before it is parked, and its cart's later events behind it
	// (default 5).
	MaxDeliver int
	// Applier folds an event onto a cart (default Evolve).
	Applier Applier
	// ParkedRefresh is how often the parked-events gauge is read from the
	// store (default 10s); parking and releasing refresh it at once.
	ParkedRefresh time.Duration
}

func (c Config) withDefaults() Config {
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
	if c.MaxDeliver <= 0 {
		c.MaxDeliver = 5
	}
	if c.Applier == nil {
		c.Applier = Evolve
	}
	if c.ParkedRefresh <= 0 {
		c.ParkedRefresh = 10 * time.Second
	}
	return c
}

// Projector is one instance of the projection: a pull loop on the shared
// durable consumer and the code that applies what it pulls.
type Projector struct {
	cfg      Config
	js       jetstream.JetStream
	store    Store
	events   eventlog.Querier
	metrics  *Metrics
	logger   *slog.Logger
	attached atomic.Bool

	mu   sync.Mutex
	gens *Generations // nil until read
	// parked wakes the parked-events gauge's refresh.
	parked chan struct{}
}

// New returns a projector. events is read only to repair gaps.
func New(cfg Config, js jetstream.JetStream, store Store, events eventlog.Querier, metrics *Metrics, logger *slog.Logger) *Projector {
	return &Projector{
		cfg: cfg.withDefaults(), js: js, store: store, events: events, metrics: metrics, logger: logger,
		parked: make(chan struct{}, 1),
	}
}

// generations returns the generations to write, read from the store the
// first time and when refresh is set (a save found them stale).
func (p *Projector) generations(ctx context.Context, refresh bool) (Generations, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.gens != nil && !refresh {
		return *p.gens, nil
	}
	g, err := p.store.Generations(ctx)
	if err != nil {
		return Generations{}, err
	}
	if p.gens != nil && !slices.Equal(p.gens.Writes, g.Writes) {
		p.logger.InfoContext(ctx, "projector: writing read-model generations", "generations", g.Writes, "current", g.Current)
	}
	p.gens = &g
	return g, nil
}

// RunParkedGauge keeps the parked-events gauge in step with the store
// until ctx ends: every ParkedRefresh, and at once after this instance
// parked or released events.
func (p *Projector) RunParkedGauge(ctx context.Context) error {
	t := time.NewTicker(p.cfg.ParkedRefresh)
	defer t.Stop()
	for {
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		n, err := p.store.ParkedEvents(rctx)
		cancel()
		switch {
		case err == nil:
			p.metrics.ParkedEvents.Set(float64(n))
		case ctx.Err() == nil:
			p.logger.WarnContext(ctx, "projector: count parked events", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-p.parked:
		}
	}
}

func (p *Projector) parkedChanged() {
	select {
	case p.parked <- struct{}{}:
	default:
	}
}

// Attached reports whether the projector has its consumer and is pulling.
func (p *Projector) Attached() bool { return p.attached.Load() }

// Run pulls and projects batches until ctx ends. A batch already pulled is
// finished and acknowledged before Run returns; Run then returns nil.
func (p *Projector) Run(ctx context.Context) error {
	defer p.attached.Store(false)
	for {
		cons, err := p.attach(ctx)
		if err != nil {
			return nil // ctx ended while waiting for the stream
		}
		err = p.pull(ctx, cons)
		if ctx.Err() != nil {
			p.flush()
			return nil
		}
		// The consumer was deleted or NATS went away: attach again.
		p.attached.Store(false)
		p.logger.WarnContext(ctx, "projector: pull failed, attaching again", "err", err)
		if !sleep(ctx, time.Second) {
			return nil
		}
	}
}

// attach waits for the stream (the command service's relay creates it) and
// creates or updates the durable consumer. It returns an error only when ctx
// ends.
func (p *Projector) attach(ctx context.Context) (jetstream.Consumer, error) {
	waiting := false
	for {
		cons, err := p.createConsumer(ctx)
		if err == nil {
			p.attached.Store(true)
			p.logger.InfoContext(ctx, "projector: attached", "stream", p.cfg.Stream, "durable", p.cfg.Durable)
			return cons, nil
		}
		switch {
		case ctx.Err() != nil:
		case errors.Is(err, jetstream.ErrStreamNotFound):
			if !waiting {
				p.logger.InfoContext(ctx, "projector: waiting for the stream", "stream", p.cfg.Stream)
				waiting = true
			}
		default:
			p.logger.WarnContext(ctx, "projector: attach", "err", err)
		}
		if !sleep(ctx, time.Second) {
			return nil, ctx.Err()
		}
	}
}

func (p *Projector) createConsumer(ctx context.Context) (jetstream.Consumer, error) {
	st, err := p.js.Stream(ctx, p.cfg.Stream)
	if err != nil {
		return nil, fmt.Errorf("nats: stream %s: %w", p.cfg.Stream, err)
	}
	cons, err := st.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{
		Durable:       p.cfg.Durable,
		Description:   "cart read models in Redis",
		FilterSubject: p.cfg.SubjectPrefix + ".>",
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       p.cfg.AckWait,
		MaxAckPending: p.cfg.MaxAckPending,
		DeliverPolicy: jetstream.DeliverAllPolicy,
	})
	if err != nil {
		return nil, fmt.Errorf("nats: consumer %s on %s: %w", p.cfg.Durable, p.cfg.Stream, err)
	}
	return cons, nil
}

// pull fetches and projects batches until ctx ends (nil) or a pull fails.
func (p *Projector) pull(ctx context.Context, cons jetstream.Consumer) error {
	for ctx.Err() == nil {
		msgs, err := p.fetch(cons)
		if len(msgs) > 0 {
			// The batch is finished even when ctx ends meanwhile: its
			// messages are ours until acked, and a half-done batch would
			// only wait AckWait to be redelivered.
			bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.cfg.AckWait)
			p.Process(bctx, msgs)
			cancel()
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// fetch waits up to IdleWait for a first message, then takes whatever else
// is already available up to BatchSize: a burst becomes one batch, and a
// lone event is not held back waiting for company. A pull is never cut
// short (a cancelled pull would strand messages the server already sent),
// so shutdown waits at most IdleWait.
func (p *Projector) fetch(cons jetstream.Consumer) ([]jetstream.Msg, error) {
	first, err := cons.Fetch(1, jetstream.FetchMaxWait(p.cfg.IdleWait))
	if err != nil {
		return nil, fmt.Errorf("nats: fetch: %w", err)
	}
	msgs, err := collect(first, nil)
	if err != nil || len(msgs) == 0 || p.cfg.BatchSize == 1 {
		return msgs, err
	}
	rest, err := cons.FetchNoWait(p.cfg.BatchSize - 1)
	if err != nil {
		return msgs, fmt.Errorf("nats: fetch: %w", err)
	}
	return collect(rest, msgs)
}

func collect(b jetstream.MessageBatch, msgs []jetstream.Msg) ([]jetstream.Msg, error) {
	for m := range b.Messages() {
		msgs = append(msgs, m)
	}
	if err := b.Error(); err != nil {
		return msgs, fmt.Errorf("nats: fetch: %w", err)
	}
	return msgs, nil
}

// flush makes sure the acks sent so far have reached the server.
func (p *Projector) flush() {
	if err := p.js.Conn().FlushTimeout(5 * time.Second); err != nil {
		p.logger.Error("projector: flush acks", "err", err)
	}
}

// sleep waits d or until ctx ends; it reports whether ctx is still alive.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
