package documents_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/cart-cqrs/cart/pkg/cart"
	"github.com/cart-cqrs/cart/pkg/envelope"
	"github.com/cart-cqrs/cart/services/projector/internal/documents"
	"github.com/cart-cqrs/cart/services/projector/internal/engine"
)

func TestProjector_AppliesInOrderAndIndexesOpenCart(t *testing.T) {
	f := mustFixture(t)
	f.startProjector(t, documents.Config{}, engine.Config{})
	first, second := newID(), newID()

	f.publish(t, f.record(t, first, script("alice", 6, false)...), "")
	f.waitDocs(t, first)
	f.waitOpenCart(t, "alice", first)

	f.publish(t, f.record(t, first, cart.CheckedOut{}), "")
	f.waitDocs(t, first)
	f.waitOpenCart(t, "alice", "")

	f.publish(t, f.record(t, second, cart.Opened{CustomerID: "alice"}, script("alice", 3, false)[1]), "")
	f.waitDocs(t, second)
	f.waitOpenCart(t, "alice", second)
}

func TestProjector_DuplicatesChangeNothing(t *testing.T) {
	f := mustFixture(t)
	carts := []string{newID(), newID(), newID()}
	var all []envelope.Envelope
	for i, id := range carts {
		all = append(all, f.record(t, id, script("customer-"+id, 6, i == 0)...)...)
	}
	p := f.startProjector(t, documents.Config{}, engine.Config{})
	// Each event twice: the second copy has another Nats-Msg-Id, as a relay
	// that lost its publish ack after the dedup window would send it.
	f.publish(t, all, "")
	f.publish(t, all, "-again")
	f.waitSettled(t, durable)
	f.waitDocs(t, carts...)
	if got := p.applied(); got != len(all) {
		t.Errorf("applied %d events, want %d (each once)", got, len(all))
	}
	if got := counter(p.metrics.Duplicates); got != len(all) {
		t.Errorf("%d duplicates, want %d", got, len(all))
	}
	before := map[string]string{}
	for _, id := range carts {
		_, before[id], _ = f.stored(context.Background(), id)
	}

	// Redeliver everything: a new consumer of the same name starts over.
	p.stop()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := f.nats.JS.DeleteConsumer(ctx, f.nats.Stream, durable); err != nil {
		t.Fatal(err)
	}
	again := f.startProjector(t, documents.Config{}, engine.Config{BatchSize: 4})
	eventually(t, func(context.Context) error {
		if counter(again.metrics.Duplicates) < 2*len(all) {
			return context.DeadlineExceeded
		}
		return nil
	})
	f.waitSettled(t, durable)
	if got := again.applied(); got != 0 {
		t.Errorf("redelivery applied %d events, want 0", got)
	}
	for _, id := range carts {
		if _, doc, _ := f.stored(context.Background(), id); doc != before[id] {
			t.Errorf("cart %s changed by redelivery:\n got %s\nwant %s", id, doc, before[id])
		}
		if err := f.checkHistory(context.Background(), id); err != nil {
			t.Errorf("history after redelivery: %v", err)
		}
	}
	f.waitOpenCart(t, "customer-"+carts[0], "") // checked out
	f.waitOpenCart(t, "customer-"+carts[1], carts[1])
}

func TestProjector_RepairsGapFromPostgres(t *testing.T) {
	f := mustFixture(t)
	p := f.startProjector(t, documents.Config{}, engine.Config{})
	id := newID()
	envs := f.record(t, id, script("bob", 3, false)...)

	f.publish(t, []envelope.Envelope{envs[0], envs[2]}, "") // v2 only in PostgreSQL
	f.waitDocs(t, id)
	if got := counter(p.metrics.GapsRepaired); got != 1 {
		t.Errorf("repaired %d gaps, want 1", got)
	}

	t.Run("NotYetInPostgres", func(t *testing.T) {
		// v5 arrives while v4 is nowhere yet: it waits for a redelivery.
		later := f.build(t, id, script("bob", 5, false)[3:]...)
		f.publish(t, later[1:], "")
		eventually(t, func(ctx context.Context) error {
			cons, err := f.nats.JS.Consumer(ctx, f.nats.Stream, durable)
			if err != nil {
				return err
			}
			info, err := cons.Info(ctx)
			if err == nil && info.NumRedelivered == 0 {
				err = errors.New("v5 not redelivered yet")
			}
			return err
		})
		if v, _, _ := f.stored(context.Background(), id); v != "3" {
			t.Fatalf("version = %s after a gap nobody can fill, want 3", v)
		}
		// Once v4 is in the event log, the redelivered v5 repairs it.
		f.insert(t, later)
		f.waitDocs(t, id)
	})
}

func TestProjector_TwoInstancesShareTheConsumer(t *testing.T) {
	f := mustFixture(t)
	const carts, events = 20, 10
	ids := make([]string, carts)
	perCart := make([][]envelope.Envelope, carts)
	for i := range ids {
		ids[i] = newID()
		perCart[i] = f.record(t, ids[i], script("customer-"+ids[i], events, i%2 == 0)...)
	}
	// Both instances start on a full stream with small batches, so each
	// cart's events are split between them: they see gaps (repaired from
	// PostgreSQL) and race on the same documents (the version guard).
	for i := range ids {
		f.publish(t, perCart[i], "")
	}
	a := f.startProjector(t, documents.Config{}, engine.Config{BatchSize: 7})
	b := f.startProjector(t, documents.Config{}, engine.Config{BatchSize: 7})
	f.waitDocs(t, ids...)
	f.waitSettled(t, durable)
	for i, id := range ids {
		want := id
		if i%2 == 0 {
			want = "" // checked out
		}
		f.waitOpenCart(t, "customer-"+id, want)
	}
	t.Logf("applied a=%d b=%d, duplicates a=%d b=%d, gaps repaired a=%d b=%d",
		a.applied(), b.applied(), counter(a.metrics.Duplicates),
		counter(b.metrics.Duplicates), counter(a.metrics.GapsRepaired), counter(b.metrics.GapsRepaired))
}

func TestProjector_TerminatesWhatIsNotACartEvent(t *testing.T) {
	f := mustFixture(t)
	p := f.startProjector(t, documents.Config{}, engine.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := f.nats.JS.Publish(ctx, f.nats.SubjectPrefix+".junk.item-added", []byte("not a cloudevent")); err != nil {
		t.Fatal(err)
	}
	unknown := `{"specversion":"1.0","id":"x1","source":"s","type":"cart.exploded","subject":"c","streamversion":1,"schemaversion":1,"data":{}}`
	if _, err := f.nats.JS.Publish(ctx, f.nats.SubjectPrefix+".c.exploded", []byte(unknown)); err != nil {
		t.Fatal(err)
	}
	ids := []string{newID(), newID()}
	for _, id := range ids {
		f.publish(t, f.record(t, id, script("carol-"+id, 4, false)...), "")
	}
	f.waitDocs(t, ids...)
	f.waitSettled(t, durable)
	if got := counter(p.engine.Terminated); got != 2 {
		t.Errorf("terminated %d messages, want 2", got)
	}
}
