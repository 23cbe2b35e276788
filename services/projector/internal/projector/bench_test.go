package projector_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cart-cqrs/cart/pkg/envelope"
	"github.com/cart-cqrs/cart/pkg/readmodel"
	"github.com/cart-cqrs/cart/services/projector/internal/projector"
)

// BenchmarkProject_20k measures how fast one projector applies 20,000 events
// (2,000 carts × 10) from a full stream into an empty Redis generation:
//
//	go test -run '^$' -bench Project_20k -benchtime 3x ./internal/projector
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
		p := f.startProjector(b, projector.Config{Durable: name, BatchSize: 256, MaxAckPending: 1024})
		f.waitSettled(b, name)
		elapsed := time.Since(start)
		p.stop()
		if got := counter(p.metrics.Applied); got != len(all) {
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
