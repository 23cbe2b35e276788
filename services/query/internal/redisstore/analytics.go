package redisstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cart-cqrs/cart/pkg/readmodel"
)

// analyticsMaxAge is how long the current analytics generation is cached:
// a build's switch reaches readers within it, and the projector keeps the
// previous generation (PROJECTOR_REBUILD_DRAIN, 2s) longer than that.
const analyticsMaxAge = time.Second

// Analytics reads the product analytics the projector keeps, from the
// generation readers use. It is safe for concurrent use.
type Analytics struct {
	rdb    redis.Cmdable
	prefix string

	mu     sync.Mutex
	gen    readmodel.AnalyticsGeneration
	readAt time.Time
}

// NewAnalytics returns a reader of the product analytics under prefix.
func NewAnalytics(rdb redis.Cmdable, prefix string) *Analytics {
	return &Analytics{rdb: rdb, prefix: prefix}
}

// Generation returns the generation readers use (cached up to a second);
// Number 0 when none was built yet.
func (a *Analytics) Generation(ctx context.Context) (readmodel.AnalyticsGeneration, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.gen.Number > 0 && time.Since(a.readAt) < analyticsMaxAge {
		return a.gen, nil
	}
	g, err := a.read(ctx)
	if err != nil {
		return readmodel.AnalyticsGeneration{}, err
	}
	a.gen, a.readAt = g, time.Now()
	return g, nil
}

func (a *Analytics) read(ctx context.Context) (readmodel.AnalyticsGeneration, error) {
	raw, err := a.rdb.HGet(ctx, readmodel.AnalyticsGenerations(a.prefix), readmodel.AnalyticsCurrent).Result()
	switch {
	case errors.Is(err, redis.Nil):
		return readmodel.AnalyticsGeneration{}, nil
	case err != nil:
		return readmodel.AnalyticsGeneration{}, fmt.Errorf("redis: current analytics generation: %w", err)
	}
	n, err := strconv.Atoi(raw)
	if err != nil || n < 1 {
		return readmodel.AnalyticsGeneration{}, fmt.Errorf("redis: current analytics generation %q is not a positive integer", raw)
	}
	builtAt, err := a.rdb.HGet(ctx, readmodel.AnalyticsKeys{Prefix: a.prefix, Generation: n}.Meta(), readmodel.AnalyticsFieldBuiltAt).Result()
	switch {
	case errors.Is(err, redis.Nil):
		// Switched away from and dropped between the two reads: the next
		// read finds the new one.
		return readmodel.AnalyticsGeneration{}, nil
	case err != nil:
		return readmodel.AnalyticsGeneration{}, fmt.Errorf("redis: analytics generation %d: %w", n, err)
	}
	at, err := time.Parse(time.RFC3339Nano, builtAt)
	if err != nil {
		return readmodel.AnalyticsGeneration{}, fmt.Errorf("redis: analytics generation %d built at %q: %w", n, builtAt, err)
	}
	return readmodel.AnalyticsGeneration{Number: n, BuiltAt: at}, nil
}

// Products returns every product of the generation readers use, read in
// one MULTI so that the counters agree with one another.
func (a *Analytics) Products(ctx context.Context) (readmodel.AnalyticsGeneration, []readmodel.ProductAnalytics, error) {
	g, err := a.Generation(ctx)
	if err != nil || g.Number == 0 {
		return g, nil, err
	}
	k := readmodel.AnalyticsKeys{Prefix: a.prefix, Generation: g.Number}
	ids, err := a.rdb.SMembers(ctx, k.Products()).Result()
	if err != nil {
		return g, nil, fmt.Errorf("redis: analytics products: %w", err)
	}
	cmds := make([]*redis.MapStringStringCmd, len(ids))
	if len(ids) > 0 {
		if _, err := a.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
			for i, id := range ids {
				cmds[i] = p.HGetAll(ctx, k.Product(id))
			}
			return nil
		}); err != nil {
			return g, nil, fmt.Errorf("redis: analytics products: %w", err)
		}
	}
	out := make([]readmodel.ProductAnalytics, 0, len(ids))
	for i, id := range ids {
		fields := cmds[i].Val()
		if len(fields) == 0 {
			continue // the generation was dropped meanwhile
		}
		p, err := readmodel.ParseProductAnalytics(id, fields)
		if err != nil {
			return g, nil, fmt.Errorf("redis: %w", err)
		}
		out = append(out, p)
	}
	return g, out, nil
}

// Product returns one product of the generation readers use; found is
// false when it has none.
func (a *Analytics) Product(ctx context.Context, productID string) (readmodel.AnalyticsGeneration, readmodel.ProductAnalytics, bool, error) {
	g, err := a.Generation(ctx)
	if err != nil || g.Number == 0 {
		return g, readmodel.ProductAnalytics{}, false, err
	}
	k := readmodel.AnalyticsKeys{Prefix: a.prefix, Generation: g.Number}
	fields, err := a.rdb.HGetAll(ctx, k.Product(productID)).Result()
	if err != nil {
		return g, readmodel.ProductAnalytics{}, false, fmt.Errorf("redis: analytics product: %w", err)
	}
	if len(fields) == 0 {
		return g, readmodel.ProductAnalytics{}, false, nil
	}
	p, err := readmodel.ParseProductAnalytics(productID, fields)
	if err != nil {
		return g, readmodel.ProductAnalytics{}, false, fmt.Errorf("redis: %w", err)
	}
	return g, p, true, nil
}
