package app

import (
	"log/slog"

	goredis "github.com/redis/go-redis/v9"

	"github.com/cart-cqrs/cart/pkg/eventlog"
	"github.com/cart-cqrs/cart/services/projector/internal/analytics"
	"github.com/cart-cqrs/cart/services/projector/internal/documents"
	"github.com/cart-cqrs/cart/services/projector/internal/engine"
	"github.com/cart-cqrs/cart/services/projector/internal/postgres"
	"github.com/cart-cqrs/cart/services/projector/internal/rebuild"
	"github.com/cart-cqrs/cart/services/projector/internal/redisstore"
)

// projections are the projector's projections, in the order the engine
// feeds them, and the builders of their generations: the cart documents,
// then the product analytics — trailing, as nobody waits for them, so
// that one application covers several small batches. Adding one is adding
// it here.
type projections struct {
	documents *documents.Projector
	store     *redisstore.Store
	all       []engine.Projection
	builders  []*engine.Builder
}

func newProjections(cfg Config, rdb goredis.UniversalClient, pool eventlog.RowQuerier, metrics *engine.Metrics,
	docMetrics *documents.Metrics, logger *slog.Logger) *projections {
	log := postgres.NewLog(pool)
	store := redisstore.New(rdb, cfg.RedisPrefix)
	cacheSize := cfg.CartCacheSize
	if cacheSize == 0 {
		cacheSize = -1 // off
	}
	docs := documents.New(documents.Config{MaxDeliver: cfg.MaxDeliver, CacheSize: cacheSize}, store, log, docMetrics, logger)
	counts := redisstore.NewCounting(rdb, cfg.RedisPrefix, analytics.Name, analytics.Counted)
	an := engine.NewCounting(analytics.Name, analytics.Rules{}, counts, log, cfg.AnalyticsBuildPage, metrics, logger)
	return &projections{
		documents: docs,
		store:     store,
		all:       []engine.Projection{docs, engine.Trailing(an)},
		builders: []*engine.Builder{
			engine.NewBuilder(documents.Name, engine.BuildConfig{DrainWait: cfg.RebuildDrainWait, CheckEvery: cfg.AnalyticsCheckEvery},
				rebuild.Generations{Store: store}, rebuild.New(rebuild.Config{PageSize: cfg.RebuildPageSize}, store, log, logger), metrics, logger),
			engine.NewBuilder(analytics.Name, engine.BuildConfig{DrainWait: cfg.RebuildDrainWait, CheckEvery: cfg.AnalyticsCheckEvery, AutoBuild: true},
				counts, an, metrics, logger),
		},
	}
}
