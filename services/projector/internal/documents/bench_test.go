package documents_test

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cart-cqrs/cart/pkg/envelope"
	"github.com/cart-cqrs/cart/pkg/pgtest"
	"github.com/cart-cqrs/cart/pkg/readmodel"
	"github.com/cart-cqrs/cart/services/projector/internal/documents"
	"github.com/cart-cqrs/cart/services/projector/internal/engine"
	"github.com/cart-cqrs/cart/services/projector/internal/postgres"
	"github.com/cart-cqrs/cart/services/projector/internal/rebuild"
)

// BenchmarkProject_20k measures how fast one projector applies 20,000 events
// (2,000 carts × 10) from a full stream into an empty Redis generation:
//
//	go test -run '^$' -bench Project_20k -benchtime 3x ./internal/documents
func BenchmarkProject_20k(b *testing.B) {
	f := mustFixture(b)
	const carts, events = 2000, 10
	var all []envelope.Envelope
	for i := range carts {
		id := newID()
		all = append(all, f.build(b, id, script("customer-"+id, events, i%2 == 0)...)...)
	}
	publishAsync(b, f, all)

	n := 0
	for b.Loop() {
		n++
		f.keys = readmodel.Keys{Prefix: fmt.Sprintf("%sbench%d:", f.redis.Prefix, n), Generation: 1}
		name := fmt.Sprintf("bench-%d", n)
		start := time.Now()
		p := f.startProjector(b, documents.Config{}, engine.Config{Durable: name, BatchSize: 256, MaxAckPending: 1024})
		f.waitSettled(b, name)
		elapsed := time.Since(start)
		p.stop()
		if got := p.applied(); got != len(all) {
			b.Fatalf("applied %d, want %d", got, len(all))
		}
		b.ReportMetric(float64(len(all))/elapsed.Seconds(), "events/s")
	}
}

func publishAsync(tb testing.TB, f *fixture, envs []envelope.Envelope) {
	tb.Helper()
	for _, e := range envs {
		data, err := envelope.MarshalCloudEvent(e, source)
		if err != nil {
			tb.Fatal(err)
		}
		msg := nats.NewMsg(envelope.Subject(f.nats.SubjectPrefix, e.StreamID, e.Type))
		msg.Data = data
		msg.Header.Set(jetstream.MsgIDHeader, e.EventID)
		msg.Header.Set("Content-Type", envelope.ContentType)
		if _, err := f.nats.JS.PublishMsgAsync(msg); err != nil {
			tb.Fatal(err)
		}
	}
	select {
	case <-f.nats.JS.PublishAsyncComplete():
	case <-time.After(time.Minute):
		tb.Fatal("publishing did not complete in a minute")
	}
}

// BenchmarkRebuild measures a full rebuild of 200,000 events (20,000 carts
// × 10) from PostgreSQL into a new Redis generation, with no live traffic.
// active is how many carts are in progress at once, which sets how the
// carts' events interleave in the log (and so how many carts one page
// touches): a shop has a few thousand carts open at a time, the worst case
// is every cart's events spread over the whole log.
//
//	go test -run '^$' -bench Rebuild -benchtime 3x ./internal/documents
func BenchmarkRebuild(b *testing.B) {
	for _, active := range []int{2000, 20000} {
		b.Run(fmt.Sprintf("200k/active=%d", active), func(b *testing.B) {
			f := mustFixture(b)
			n := seedLog(b, f, 20000, 10, active)
			// The projector's own pool set-up, as the rebuild command has it.
			pool, err := postgres.NewPool(context.Background(), f.dbURL)
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(pool.Close)
			f.pool = pool
			prefix := f.keys.Prefix
			i := 0
			for b.Loop() {
				i++
				f.keys.Prefix = fmt.Sprintf("%sbench%d:", prefix, i)
				cpu := cpuTime(b)
				res, err := f.rebuilder(b, rebuild.Config{}, engine.BuildConfig{DrainWait: time.Millisecond}).Build(context.Background())
				if err != nil {
					b.Fatal(err)
				}
				// This process's CPU per event: what the machine's other load
				// does not change much, unlike events/s.
				b.ReportMetric(float64((cpuTime(b)-cpu).Microseconds())/float64(res.Events), "cpu-µs/event")
				if res.Events != int64(n) {
					b.Fatalf("rebuilt %d events, want %d", res.Events, n)
				}
				b.ReportMetric(float64(res.Events)/res.Duration.Seconds(), "events/s")
			}
		})
	}
}

// cpuTime is the CPU time this process used so far.
func cpuTime(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// seedLog writes carts × perCart events to the event log with COPY, the
// carts' events interleaved as when active carts are in progress at once.
func seedLog(tb testing.TB, f *fixture, carts, perCart, active int) int {
	tb.Helper()
	at := time.Now().UTC().Truncate(time.Microsecond)
	var log []envelope.Envelope
	for start := 0; start < carts; start += active {
		batch := make([][]envelope.Envelope, 0, active)
		for range min(active, carts-start) {
			id := newID()
			batch = append(batch, f.build(tb, id, script("customer-"+id, perCart, true)...))
		}
		for v := range perCart {
			for _, envs := range batch {
				e := envs[v]
				at = at.Add(time.Microsecond)
				e.OccurredAt = at
				log = append(log, e)
			}
		}
	}
	if err := pgtest.InsertEvents(context.Background(), f.pool, log); err != nil {
		tb.Fatal(err)
	}
	if _, err := f.pool.Exec(context.Background(), `ANALYZE events`); err != nil {
		tb.Fatal(err)
	}
	return len(log)
}
