package readmodel_test

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/cart-cqrs/cart/pkg/cart"
	"github.com/cart-cqrs/cart/pkg/cart/carttest"
	"github.com/cart-cqrs/cart/pkg/envelope"
	"github.com/cart-cqrs/cart/pkg/readmodel"
)

// FuzzHistoryEntry feeds the query service's history reader any list
// element, as a corrupted or hand-edited Redis list could hold: the JSON
// decodes into a HistoryEntry or fails, its Envelope decodes (Recorded) into
// an event or an error, and the event folds — never a panic. An entry that
// decodes is written back by the projector's encoding unchanged.
//
// Seeds: the entry of every stored event example (package carttest)
// and the edge cases in testdata/fuzz/FuzzHistoryEntry.
func FuzzHistoryEntry(f *testing.F) {
	at := time.Date(2026, 3, 1, 9, 30, 0, 123456000, time.UTC)
	for i, ev := range carttest.MustStoredEvents(f) {
		e := envelope.Envelope{
			EventID: fmt.Sprintf("0195a3c0-0000-7000-8000-%012d", i+1), StreamID: "c1", StreamType: envelope.StreamTypeCart,
			Version: i + 1, Type: ev.Type, SchemaVersion: ev.SchemaVersion, Data: ev.Data, OccurredAt: at,
			Metadata: envelope.Metadata{Actor: "alice", CorrelationID: "req-1", CausationID: "req-1"},
		}
		b, err := json.Marshal(readmodel.NewHistoryEntry(e))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var h readmodel.HistoryEntry
		if err := json.Unmarshal(b, &h); err != nil {
			return
		}
		e := h.Envelope("c1")
		if e.StreamID != "c1" || e.Version != h.Version || e.Type != h.Type {
			t.Fatalf("Envelope() = %+v for %+v", e, h)
		}
		if r, err := e.Recorded(); err == nil {
			if r.Event == nil || r.Version != h.Version || !r.OccurredAt.Equal(h.OccurredAt) {
				t.Fatalf("Recorded() = %+v for %+v", r, h)
			}
			s := cart.Fold(cart.State{}, r)
			_ = readmodel.FromState(s)
		}
		again, err := json.Marshal(readmodel.NewHistoryEntry(e))
		if err != nil {
			return // e.g. a time past year 9999 or data that is not JSON: refused, not a panic
		}
		var back readmodel.HistoryEntry
		if err := json.Unmarshal(again, &back); err != nil {
			t.Fatalf("entry written by the projector does not read back: %v\n%s", err, again)
		}
		if back.Version != h.Version || back.Type != h.Type || back.SchemaVersion != h.SchemaVersion ||
			back.EventID != h.EventID || !back.OccurredAt.Equal(h.OccurredAt) {
			t.Fatalf("round trip:\n%+v\n%+v", back, h)
		}
	})
}

// FuzzParseUpdate feeds the update subscription any Pub/Sub payload: it
// parses or fails, never panics, and what it parses is written back by
// Update.String unchanged.
func FuzzParseUpdate(f *testing.F) {
	for _, u := range []readmodel.Update{
		{CartID: "0195a3c0-0000-7000-8000-0000000000aa", Version: 7, CustomerID: "alice"},
		{CartID: "c1", Version: 1, CustomerID: "Alice Smith"},
		{CartID: "c1", Version: 3},
	} {
		f.Add(u.String())
	}
	for _, p := range []string{"", "c1", "c1 4", "c1 x alice", "c1 0", "c1 -1", " 3 alice", "c1 +3 a", "c1 99999999999999999999 a", "c1 3  "} {
		f.Add(p)
	}
	f.Fuzz(func(t *testing.T, payload string) {
		u, err := readmodel.ParseUpdate(payload)
		if err != nil {
			return
		}
		if u.CartID == "" || u.Version < 1 {
			t.Fatalf("ParseUpdate(%q) = %+v", payload, u)
		}
		back, err := readmodel.ParseUpdate(u.String())
		if err != nil || back != u {
			t.Fatalf("ParseUpdate(%q) = %+v, %v; want %+v", u.String(), back, err, u)
		}
	})
}
