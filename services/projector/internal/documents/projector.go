package documents

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/cart-cqrs/cart/services/projector/internal/engine"
)

// Name is the projection's name in metrics and logs.
const Name = "documents"

// Config tunes the cart documents projection.
type Config struct {
	// MaxDeliver is how many deliveries an event that cannot be applied
	// gets before it is parked, and its cart's later events behind it
	// (default 5).
	MaxDeliver int
	// Applier folds an event onto a cart (default Evolve).
	Applier Applier
	// ParkedRefresh is how often the parked-events gauge is read from the
	// store (default 10s); parking and releasing refresh it at once.
	ParkedRefresh time.Duration
	// CacheSize is how many open carts' documents are remembered between
	// batches (default 4096; negative: none), each as this projector
	// stored it last, so that a cart's next events are folded without
	// reading it from the store first. A cart takes a couple of hundred
	// bytes. See records.
	CacheSize int
}

func (c Config) withDefaults() Config {
	if c.MaxDeliver <= 0 {
		c.MaxDeliver = 5
	}
	if c.Applier == nil {
		c.Applier = Evolve
	}
	if c.ParkedRefresh <= 0 {
		c.ParkedRefresh = 10 * time.Second
	}
	if c.CacheSize == 0 {
		c.CacheSize = 4096
	}
	return c
}

// Projector is the cart documents projection (engine.Projection): it folds
// a batch's events onto the stored documents of every generation written.
type Projector struct {
	cfg     Config
	store   Store
	log     engine.Log
	metrics *Metrics
	logger  *slog.Logger
	cache   *records

	mu   sync.Mutex
	gens *Generations // nil until read
	// parked wakes the parked-events gauge's refresh.
	parked chan struct{}
}

// New returns the projection; log is read to repair gaps and histories.
func New(cfg Config, store Store, log engine.Log, metrics *Metrics, logger *slog.Logger) *Projector {
	cfg = cfg.withDefaults()
	return &Projector{
		cfg: cfg, store: store, log: log, metrics: metrics, logger: logger,
		cache: newRecords(cfg.CacheSize), parked: make(chan struct{}, 1),
	}
}

// Name implements engine.Projection.
func (p *Projector) Name() string { return Name }

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
		p.logger.InfoContext(ctx, "documents: writing read-model generations", "generations", g.Writes, "current", g.Current)
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
			p.logger.WarnContext(ctx, "documents: count parked events", "err", err)
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
