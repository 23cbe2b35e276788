package readmodel_test

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/cart-cqrs/cart/pkg/cart"
	"github.com/cart-cqrs/cart/pkg/envelope"
	"github.com/cart-cqrs/cart/pkg/readmodel"
)

func TestHistoryEntry_RoundTripsTheStoredEvent(t *testing.T) {
	at := time.Date(2026, 11, 1, 10, 0, 0, 123000, time.UTC)
	e, err := envelope.New("0193e4a0-0000-7000-8000-000000000001", "c1", 2,
		cart.ItemRemoved{ProductID: "123", Quantity: 2, Reason: cart.ReasonProductUnavailable},
		envelope.Metadata{Actor: "catalog", CorrelationID: "corr", CausationID: "cause", TraceParent: "00-x-y-01"}, at)
	if err != nil {
		t.Fatal(err)
	}
	h := readmodel.NewHistoryEntry(e)
	b, err := json.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	var back readmodel.HistoryEntry
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	got := back.Envelope("c1")
	want := e
	want.Metadata.TraceParent = "" // not kept: it is the request's, not the cart's
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Envelope() =\n%+v\nwant\n%+v", got, want)
	}
	r, err := got.Recorded()
	if err != nil {
		t.Fatal(err)
	}
	if ev, ok := r.Event.(cart.ItemRemoved); !ok || ev.Reason != cart.ReasonProductUnavailable || r.Version != 2 || !r.OccurredAt.Equal(at) {
		t.Fatalf("Recorded() = %+v", r)
	}
}

func TestUpdate(t *testing.T) {
	t.Run("RoundTrip", func(t *testing.T) {
		for _, u := range []readmodel.Update{
			{CartID: "c1", Version: 7, CustomerID: "alice"},
			{CartID: "c1", Version: 1, CustomerID: "Alice Smith"},
			{CartID: "c1", Version: 3},
		} {
			got, err := readmodel.ParseUpdate(u.String())
			if err != nil || got != u {
				t.Errorf("ParseUpdate(%q) = %+v, %v; want %+v", u.String(), got, err, u)
			}
		}
		if got, err := readmodel.ParseUpdate("c1 4"); err != nil || got != (readmodel.Update{CartID: "c1", Version: 4}) {
			t.Errorf("ParseUpdate without customer = %+v, %v", got, err)
		}
	})
	t.Run("ErrMalformed", func(t *testing.T) {
		for _, p := range []string{"", "c1", "c1 x alice", "c1 0", "c1 -1", " 3 alice"} {
			if u, err := readmodel.ParseUpdate(p); err == nil {
				t.Errorf("ParseUpdate(%q) = %+v, want an error", p, u)
			}
		}
	})
}

func TestKeys_HistoryAndUpdates(t *testing.T) {
	k := readmodel.Keys{Prefix: "p:", Generation: 2}
	if got := k.History("c1"); got != "p:g2:cart:{c1}:history" {
		t.Errorf("History() = %q", got)
	}
	if got := k.Updates(); got != "p:g2:cart-updates" {
		t.Errorf("Updates() = %q", got)
	}
}
