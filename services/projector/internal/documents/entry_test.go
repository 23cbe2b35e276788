package documents

import (
	"encoding/json"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/cart-cqrs/cart/pkg/cart"
	"github.com/cart-cqrs/cart/pkg/readmodel"
)

func testState(id string, version int, zone *time.Location) cart.State {
	at := time.Date(2026, 11, 2, 9, 0, 0, 123456789, zone)
	s := cart.Evolve(cart.State{}, cart.Recorded{CartID: id, Version: 1, OccurredAt: at, Event: cart.Opened{CustomerID: "ça-va"}})
	products := []cart.ItemAdded{
		{ProductID: "123", Name: "Espresso beans 1 kg", UnitPrice: 1899, Currency: "EUR", Quantity: 1},
		{ProductID: "456", Name: "Ceramic \"mug\"", UnitPrice: -1, Currency: "EUR", Quantity: 99},
	}
	for v := 2; v <= version; v++ {
		s = cart.Evolve(s, cart.Recorded{CartID: id, Version: v, OccurredAt: at.Add(time.Duration(v) * time.Hour), Event: products[v%2]})
	}
	return s
}

func TestEntry_RoundTrip(t *testing.T) {
	open := testState("c", 4, time.UTC)
	out := cart.Evolve(open, cart.Recorded{CartID: "c", Version: 5, OccurredAt: open.UpdatedAt.Add(time.Minute), Event: cart.CheckedOut{}})
	other := testState("not-c", 2, time.UTC)
	tests := map[string][]Doc{
		"None":    {},
		"Absent":  {{Stamp: Stamp{1}}},
		"Empty":   {{Version: 1, HistoryLen: 1, Stamp: Stamp{2}, State: testState("c", 1, time.UTC)}},
		"Lines":   {{Version: 4, HistoryLen: 3, Stamp: Stamp{3, 4}, State: open, Skipped: []int{2, 3}}},
		"Out":     {{Version: 5, HistoryLen: 5, Stamp: Stamp{5}, State: out}},
		"OtherID": {{Version: 2, HistoryLen: 2, Stamp: Stamp{6}, State: other}},
		"NoLines": {{Version: 1, HistoryLen: 1, Stamp: Stamp{7}, State: cart.State{CartID: "c", Version: 1, Lines: []cart.Line{}}}},
		"Two":     {{Version: 4, HistoryLen: 4, Stamp: Stamp{8}, State: open}, {Stamp: Stamp{9}, HistoryLen: 2}},
	}
	for name, docs := range tests {
		t.Run(name, func(t *testing.T) {
			e, ok := encodeDocs("c", docs)
			if !ok {
				t.Fatal("not encoded")
			}
			got, ok := decodeDocs("c", e)
			if !ok || !reflect.DeepEqual(got, docs) {
				t.Fatalf("decoded %+v, %v\nwant %+v", got, ok, docs)
			}
		})
	}
	t.Run("ErrCorrupt", func(t *testing.T) {
		if _, ok := encodeDocs("c", []Doc{{Corrupt: errCorrupt}}); ok {
			t.Fatal("a document that could not be read was encoded")
		}
	})
	t.Run("ErrTruncated", func(t *testing.T) {
		e, _ := encodeDocs("c", tests["Two"])
		for n := range len(e) {
			if _, ok := decodeDocs("c", e[:n]); ok {
				t.Fatalf("%d of %d bytes decoded", n, len(e))
			}
		}
	})
}

// The times are written again as stored: in their zone, to the nanosecond.
func TestEntry_TimesKeepTheirZone(t *testing.T) {
	s := testState("c", 3, time.FixedZone("CET", 3600))
	e, _ := encodeDocs("c", []Doc{{Version: 3, State: s, Stamp: Stamp{1}}})
	docs, ok := decodeDocs("c", e)
	if !ok {
		t.Fatal("not decoded")
	}
	want, _ := json.Marshal(readmodel.FromState(s))
	got, _ := json.Marshal(readmodel.FromState(docs[0].State))
	if string(got) != string(want) {
		t.Fatalf("document\n got %s\nwant %s", got, want)
	}
}

// A cart of three lines, as in a shop, takes a few hundred bytes at most.
func TestEntry_IsCompact(t *testing.T) {
	s := testState("0195a3c0-0000-7000-8000-000000000001", 3, time.UTC)
	s.Lines = append(s.Lines, cart.Line{ProductID: "789", Name: "Milk frother", UnitPrice: 3499, Currency: "EUR", Quantity: 1, LineTotal: 3499})
	e, _ := encodeDocs(s.CartID, []Doc{{Version: 3, HistoryLen: 3, State: s, Stamp: Stamp{1}}})
	if len(e) > 200 {
		t.Errorf("%d bytes for a cart of %d lines", len(e), len(s.Lines))
	}
}

func TestRecords_Bounded(t *testing.T) {
	const size = 8
	c := newRecords(size)
	docs := []Doc{{Version: 1, HistoryLen: 1, Stamp: Stamp{1}, State: testState("x", 1, time.UTC)}}
	for i := range 100 {
		c.put("t", fmt.Sprint(i), docs)
		if _, ok := c.get("t", "0"); !ok {
			t.Fatalf("after %d carts, the one used all along was forgotten", i+1)
		}
		if n := c.len(); n > size {
			t.Fatalf("%d carts remembered, at most %d", n, size)
		}
	}
	if _, ok := c.get("t", "1"); ok {
		t.Error("the least recently used cart is still remembered")
	}
	if _, ok := c.get("t", "99"); !ok {
		t.Error("the last cart stored was forgotten")
	}
	// Other generations: what was remembered is of no use.
	if _, ok := c.get("u", "99"); ok {
		t.Error("a cart remembered under other generations was returned")
	}
	c.put("u", "a", docs)
	if _, ok := c.get("t", "99"); ok || c.len() != 1 {
		t.Errorf("%d carts after the generations changed, want 1", c.len())
	}
	c.drop("a")
	if c.len() != 0 {
		t.Errorf("%d carts after the last was dropped", c.len())
	}
	if newRecords(-1) != nil {
		t.Error("a negative size remembers")
	}
}

func TestRemember_KeepsOnlyWhatTheGuardCanCheck(t *testing.T) {
	gens := Generations{Current: 1, Writes: []int{1}, Token: "t"}
	open := testState("c", 2, time.UTC)
	next := cart.Evolve(open, cart.Recorded{CartID: "c", Version: 3, OccurredAt: open.UpdatedAt, Event: cart.CheckedOut{}})
	from := Record{Docs: []Doc{{Version: 1, HistoryLen: 1, Stamp: Stamp{1}, State: testState("c", 1, time.UTC)}}}
	write := Write{CartID: "c", From: 1, HistoryLen: 1, State: open, Changed: true, History: make([]readmodel.HistoryEntry, 1), Stamp: Stamp{1}}
	tests := map[string]struct {
		from   Record
		change Change
		stamps []Stamp
		want   bool
	}{
		"OK":         {from, Change{CartID: "c", Writes: []Write{write}}, []Stamp{{2}}, true},
		"NoStamp":    {from, Change{CartID: "c", Writes: []Write{write}}, []Stamp{{}}, false},
		"Parked":     {from, Change{CartID: "c", Writes: []Write{write}, Park: make([]Parked, 1)}, []Stamp{{2}}, false},
		"WasParked":  {Record{Docs: from.Docs, Parked: make([]Parked, 1)}, Change{CartID: "c", Writes: []Write{write}, Unpark: 1}, []Stamp{{2}}, false},
		"CheckedOut": {from, Change{CartID: "c", Writes: []Write{{CartID: "c", From: 2, HistoryLen: 2, State: next, Changed: true}}}, []Stamp{{2}}, false},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			p := &Projector{cache: newRecords(4)}
			p.remember(gens, "c", tt.from, tt.change, tt.stamps)
			docs, ok := p.cache.get(gens.Token, "c")
			if ok != tt.want {
				t.Fatalf("remembered: %v, want %v", ok, tt.want)
			}
			if ok && (docs[0].Version != 2 || docs[0].HistoryLen != 2 || docs[0].Stamp != tt.stamps[0]) {
				t.Fatalf("remembered %+v", docs[0])
			}
		})
	}
}
