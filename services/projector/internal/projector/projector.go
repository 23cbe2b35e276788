package projector

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cart-cqrs/cart/pkg/eventlog"
	"github.com/cart-cqrs/cart/services/projector/internal/pull"
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
	// IdleWait is how long one pull request lives at the server before it is
	// renewed (default 1s, at least 1s).
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
	cfg     Config
	js      jetstream.JetStream
	store   Store
	events  eventlog.Querier
	metrics *Metrics
	logger  *slog.Logger
	loop    *pull.Loop

	mu   sync.Mutex
	gens *Generations // nil until read
	// parked wakes the parked-events gauge's refresh.
	parked chan struct{}
}

// New returns a projector. events is read only to repair gaps.
func New(cfg Config, js jetstream.JetStream, store Store, events eventlog.Querier, metrics *Metrics, logger *slog.Logger) *Projector {
	p := &Projector{
		cfg: cfg.withDefaults(), js: js, store: store, events: events, metrics: metrics, logger: logger,
		parked: make(chan struct{}, 1),
	}
	p.loop = pull.New(pull.Config{
		Stream: p.cfg.Stream, SubjectPrefix: p.cfg.SubjectPrefix, Durable: p.cfg.Durable,
		Description: "cart read models in Redis", BatchSize: p.cfg.BatchSize, AckWait: p.cfg.AckWait,
		MaxAckPending: p.cfg.MaxAckPending, IdleWait: p.cfg.IdleWait,
	}, js, "projector", p.Process, logger)
	return p
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
func (p *Projector) Attached() bool { return p.loop.Attached() }

// Run pulls and projects batches until ctx ends. A batch already pulled is
// finished and acknowledged before Run returns; Run then returns nil.
func (p *Projector) Run(ctx context.Context) error { return p.loop.Run(ctx) }
