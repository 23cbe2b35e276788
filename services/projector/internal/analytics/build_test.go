package analytics_test

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cart-cqrs/cart/pkg/pgtest"
	"github.com/cart-cqrs/cart/pkg/redistest"
	"github.com/cart-cqrs/cart/services/projector/internal/analytics"
	"github.com/cart-cqrs/cart/services/projector/internal/engine"
	"github.com/cart-cqrs/cart/services/projector/internal/postgres"
	"github.com/cart-cqrs/cart/services/projector/internal/redisstore"
)

// TestBuild_OneAtATime: a build refuses to start while another holds the
// lock.
func TestBuild_OneAtATime(t *testing.T) {
	r := redistest.MustRedis(t)
	pool, _ := pgtest.MustPool(t)
	metrics, err := engine.NewMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.DiscardHandler)
	s := redisstore.NewCounting(r.Client, r.Prefix, analytics.Name, analytics.Counted)
	counting := engine.NewCounting(analytics.Name, analytics.Rules{}, s, postgres.NewLog(pool), 0, metrics, logger)
	b := engine.NewBuilder(analytics.Name, engine.BuildConfig{AutoBuild: true}, s, counting, metrics, logger)
	ok, err := s.Lock(t.Context(), "someone else", time.Minute)
	if err != nil || !ok {
		t.Fatalf("lock: %v %v", ok, err)
	}
	if _, err := b.Build(t.Context()); !errors.Is(err, engine.ErrBuilding) {
		t.Errorf("Build under another's lock: %v, want ErrBuilding", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	if _, err := b.Rebuild(ctx); err == nil {
		t.Error("Rebuild did not wait for the lock")
	}
	if err := s.Unlock(t.Context(), "someone else"); err != nil {
		t.Fatal(err)
	}
	res, err := b.Build(t.Context())
	if err != nil || res.Generation != 1 {
		t.Fatalf("Build: %+v %v", res, err)
	}
	if gens, err := s.Read(t.Context()); err != nil || gens != (engine.Record{Current: 1}) {
		t.Errorf("generations = %+v, %v", gens, err)
	}
}
