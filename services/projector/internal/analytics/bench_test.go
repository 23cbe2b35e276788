package analytics_test

import (
	"context"
	"log/slog"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cart-cqrs/cart/pkg/envelope"
	"github.com/cart-cqrs/cart/pkg/pgtest"
	"github.com/cart-cqrs/cart/pkg/redistest"
	"github.com/cart-cqrs/cart/services/projector/internal/analytics"
	"github.com/cart-cqrs/cart/services/projector/internal/engine"
	"github.com/cart-cqrs/cart/services/projector/internal/postgres"
	"github.com/cart-cqrs/cart/services/projector/internal/redisstore"
)

// BenchmarkBuild measures a build from history: ANALYTICS_BENCH_CARTS carts
// (default 20,000, some 7 events each) in the event log, built into a new
// generation per iteration; it reports events/s.
func BenchmarkBuild(b *testing.B) {
	carts := 20000
	if v, err := strconv.Atoi(os.Getenv("ANALYTICS_BENCH_CARTS")); err == nil && v > 0 {
		carts = v
	}
	_, dbURL := pgtest.MustPool(b)
	pool, err := postgres.NewPool(context.Background(), dbURL)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(pool.Close)
	h := newHistory(42, carts)
	var batch []envelope.Envelope
	total := 0
	for {
		evs := h.next(b)
		batch = append(batch, evs...)
		if len(batch) >= 10000 || evs == nil {
			if err := pgtest.InsertEvents(context.Background(), pool, batch); err != nil {
				b.Fatal(err)
			}
			total += len(batch)
			batch = batch[:0]
		}
		if evs == nil {
			break
		}
	}
	if _, err := pool.Exec(context.Background(), `ANALYZE events`); err != nil {
		b.Fatal(err)
	}
	r := redistest.MustRedis(b)
	metrics, err := engine.NewMetrics(prometheus.NewRegistry())
	if err != nil {
		b.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	counts := redisstore.NewCounting(r.Client, r.Prefix, analytics.Name, analytics.Counted)
	counting := engine.NewCounting(analytics.Name, analytics.Rules{}, counts, postgres.NewLog(pool), 0, metrics, logger)
	builder := engine.NewBuilder(analytics.Name, engine.BuildConfig{DrainWait: time.Millisecond, AutoBuild: true}, counts, counting, metrics, logger)
	b.ResetTimer()
	var elapsed time.Duration
	for b.Loop() {
		res, err := builder.Build(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		if res.Events != int64(total) {
			b.Fatalf("built %d events, the log holds %d", res.Events, total)
		}
		elapsed += res.Duration
	}
	b.ReportMetric(float64(total)*float64(b.N)/elapsed.Seconds(), "events/s")
}
