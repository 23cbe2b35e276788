package postgres_test

import (
	"context"
	"encoding/json"
	"net/url"
	"reflect"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/cart-cqrs/cart/pkg/cart"
	"github.com/cart-cqrs/cart/pkg/envelope"
	"github.com/cart-cqrs/cart/pkg/eventlog"
	"github.com/cart-cqrs/cart/pkg/pgtest"
	"github.com/cart-cqrs/cart/services/projector/internal/postgres"
)

// Log.Scan reads what eventlog.ReadAll reads, whatever protocol the
// connection speaks.
func TestLogScan_ReadsWhatReadAllReads(t *testing.T) {
	ctx := context.Background()
	seed, dbURL := pgtest.MustPool(t)
	at := time.Date(2026, 11, 2, 9, 0, 0, 123456000, time.UTC)
	a, b := uuid.NewString(), uuid.NewString()
	var envs []envelope.Envelope
	for i, ev := range []struct {
		cart string
		e    cart.Event
		md   envelope.Metadata
	}{
		{a, cart.Opened{CustomerID: "alice"}, envelope.Metadata{Actor: "alice", CorrelationID: "c-1", TraceParent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}},
		{b, cart.Opened{CustomerID: "bj\u00f6rk \"b\""}, envelope.Metadata{Actor: "bj\u00f6rk \"b\"", CausationID: "x\ny"}},
		{a, cart.ItemAdded{ProductID: "123", Name: "Espresso", UnitPrice: 1899, Currency: "EUR", Quantity: 2}, envelope.Metadata{}},
		{a, cart.CheckedOut{Lines: []cart.Line{{ProductID: "123", Quantity: 2}}, ItemCount: 2, Total: 3798, Currency: "EUR"}, envelope.Metadata{Actor: "system"}},
	} {
		e, err := envelope.New(uuid.NewString(), ev.cart, 1+i/2, ev.e, ev.md, at.Add(time.Duration(i)*time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		envs = append(envs, e)
	}
	envs[3].Version = 3
	if err := pgtest.InsertEvents(ctx, seed, envs); err != nil {
		t.Fatal(err)
	}
	want, err := eventlog.ReadAll(ctx, seed, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	simple, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	q := simple.Query()
	q.Set("default_query_exec_mode", "simple_protocol")
	simple.RawQuery = q.Encode()
	for name, url := range map[string]string{"Extended": dbURL, "SimpleProtocol": simple.String()} {
		t.Run(name, func(t *testing.T) {
			pool, err := postgres.NewPool(ctx, url)
			if err != nil {
				t.Fatal(err)
			}
			defer pool.Close()
			var got []envelope.Envelope
			keep := func(e *envelope.Envelope) error {
				got = append(got, e.Clone())
				return nil
			}
			log := postgres.NewLog(pool)
			n, last, err := log.Scan(ctx, 0, want[3].Position, 3, keep)
			if err != nil || n != 3 || last != want[2].Position {
				t.Fatalf("first page: %d events up to %d, %v", n, last, err)
			}
			if n, _, err = log.Scan(ctx, last, want[3].Position, 3, keep); err != nil || n != 1 {
				t.Fatalf("second page: %d events, %v", n, err)
			}
			if len(got) != len(want) {
				t.Fatalf("read %d events, want %d", len(got), len(want))
			}
			for i := range want {
				g, w := got[i], want[i]
				var gd, wd any
				if err := json.Unmarshal(g.Data, &gd); err != nil {
					t.Fatal(err)
				}
				_ = json.Unmarshal(w.Data, &wd)
				if !reflect.DeepEqual(gd, wd) {
					t.Errorf("event %d data %s, want %s", i, g.Data, w.Data)
				}
				g.Data, w.Data = nil, nil
				if !reflect.DeepEqual(g, w) {
					t.Errorf("event %d:\n got %+v\nwant %+v", i, g, w)
				}
			}
		})
	}
}
