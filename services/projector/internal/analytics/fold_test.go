package analytics

import (
	"errors"
	"maps"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/cart-cqrs/cart/pkg/cart"
	"github.com/cart-cqrs/cart/pkg/envelope"
	"github.com/cart-cqrs/cart/pkg/readmodel"
)

var t0 = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

// at is an event of the cart under test, the given time after t0.
type at struct {
	after time.Duration
	event cart.Event
}

// stream makes a cart's stored events, versions 1.. in order.
func stream(t *testing.T, cartID string, evs ...at) []envelope.Envelope {
	t.Helper()
	out := make([]envelope.Envelope, len(evs))
	for i, e := range evs {
		env, err := envelope.New(uuid.NewString(), cartID, i+1, e.event, envelope.Metadata{Actor: "test"}, t0.Add(e.after))
		if err != nil {
			t.Fatal(err)
		}
		out[i] = env
	}
	return out
}

func added(id string, qty int) cart.ItemAdded {
	return cart.ItemAdded{ProductID: id, Name: "Product " + id, UnitPrice: 100, Currency: "EUR", Quantity: qty}
}

func removed(id, reason string) cart.ItemRemoved {
	return cart.ItemRemoved{ProductID: id, Quantity: 1, Reason: reason}
}

func changed(id string, from, to int) cart.QuantityChanged {
	return cart.QuantityChanged{ProductID: id, OldQuantity: from, NewQuantity: to}
}

// dwell is a histogram holding one duration.
func dwell(d time.Duration) map[int]int64 { return map[int]int64{readmodel.DwellBucket(d): 1} }

// counts is a product delta without its name, for comparisons.
func counts(d Delta) map[string]ProductDelta {
	out := map[string]ProductDelta{}
	for id, p := range d.Products {
		c := *p
		c.Name, c.NameAt = "", ""
		out[id] = c
	}
	return out
}

func TestFold(t *testing.T) {
	id := uuid.NewString()
	opened := at{0, cart.Opened{CustomerID: "c"}}
	checkout := func(after time.Duration) at {
		return at{after, cart.CheckedOut{ItemCount: 1, Total: 100, Currency: "EUR"}}
	}
	for name, tc := range map[string]struct {
		events []at
		want   map[string]ProductDelta
		state  CartState
	}{
		"AddedThenCheckedOut": {
			events: []at{opened, {time.Minute, added("p1", 1)}, checkout(11 * time.Minute)},
			want:   map[string]ProductDelta{"p1": {Added: 1, AddedToCarts: 1, CheckedOut: 1, DwellToCheckout: dwell(10 * time.Minute)}},
			state:  CartState{Version: 3, CheckedOut: true},
		},
		"ReAddRaisesAndKeepsTheLinesStart": {
			events: []at{opened, {time.Minute, added("p1", 1)}, {5 * time.Minute, added("p1", 2)}, checkout(21 * time.Minute)},
			want: map[string]ProductDelta{"p1": {Added: 2, AddedToCarts: 1, QuantityRaised: 1, CheckedOut: 1,
				DwellToCheckout: dwell(20 * time.Minute)}},
			state: CartState{Version: 4, CheckedOut: true},
		},
		"RemovalThenReAddStartsANewLine": {
			events: []at{opened, {time.Minute, added("p1", 1)}, {2 * time.Minute, removed("p1", cart.ReasonCustomer)},
				{4 * time.Minute, added("p1", 1)}, checkout(7 * time.Minute)},
			want: map[string]ProductDelta{"p1": {Added: 2, AddedToCarts: 1, RemovedByCustomer: 1, CheckedOut: 1,
				DwellToRemoval: dwell(time.Minute), DwellToCheckout: dwell(3 * time.Minute)}},
			state: CartState{Version: 5, CheckedOut: true},
		},
		"RemovedBySystem": {
			events: []at{opened, {time.Minute, added("p1", 1)}, {time.Hour, removed("p1", cart.ReasonProductUnavailable)}},
			want: map[string]ProductDelta{"p1": {Added: 1, AddedToCarts: 1, RemovedBySystem: 1,
				DwellToRemoval: dwell(59 * time.Minute)}},
			state: CartState{Version: 3, Added: []string{"p1"}},
		},
		"RemovalWithoutReasonIsTheCustomers": {
			events: []at{opened, {0, added("p1", 1)}, {time.Second, removed("p1", "")}},
			want: map[string]ProductDelta{"p1": {Added: 1, AddedToCarts: 1, RemovedByCustomer: 1,
				DwellToRemoval: dwell(time.Second)}},
			state: CartState{Version: 3, Added: []string{"p1"}},
		},
		"QuantityUpDownAndSame": {
			events: []at{opened, {0, added("p1", 2)}, {1, changed("p1", 2, 5)}, {2, changed("p1", 5, 1)},
				{3, changed("p1", 1, 1)}, {4, changed("p1", 1, 3)}},
			want:  map[string]ProductDelta{"p1": {Added: 1, AddedToCarts: 1, QuantityRaised: 2, QuantityLowered: 1}},
			state: CartState{Version: 6, Lines: map[string]int64{"p1": t0.UnixMilli()}, Added: []string{"p1"}},
		},
		"AbandonedCartKeepsItsLines": {
			events: []at{opened, {time.Minute, added("p2", 1)}, {2 * time.Minute, added("p1", 1)}, {3 * time.Minute, removed("p2", cart.ReasonCustomer)}},
			want: map[string]ProductDelta{
				"p1": {Added: 1, AddedToCarts: 1},
				"p2": {Added: 1, AddedToCarts: 1, RemovedByCustomer: 1, DwellToRemoval: dwell(2 * time.Minute)},
			},
			state: CartState{Version: 4, Lines: map[string]int64{"p1": t0.Add(2 * time.Minute).UnixMilli()}, Added: []string{"p1", "p2"}},
		},
		"CheckoutBuysEveryOpenLine": {
			events: []at{opened, {0, added("p1", 1)}, {time.Second, added("p2", 1)}, {time.Hour, checkout(time.Hour).event}},
			want: map[string]ProductDelta{
				"p1": {Added: 1, AddedToCarts: 1, CheckedOut: 1, DwellToCheckout: dwell(time.Hour)},
				"p2": {Added: 1, AddedToCarts: 1, CheckedOut: 1, DwellToCheckout: dwell(time.Hour - time.Second)},
			},
			state: CartState{Version: 4, CheckedOut: true},
		},
		"NothingAfterTheCheckout": {
			events: []at{opened, {0, added("p1", 1)}, checkout(time.Second), {time.Minute, added("p2", 1)}},
			want:   map[string]ProductDelta{"p1": {Added: 1, AddedToCarts: 1, CheckedOut: 1, DwellToCheckout: dwell(time.Second)}},
			state:  CartState{Version: 4, CheckedOut: true},
		},
		"OpenedOnly": {
			events: []at{opened},
			want:   map[string]ProductDelta{},
			state:  CartState{Version: 1},
		},
	} {
		t.Run(name, func(t *testing.T) {
			evs := stream(t, id, tc.events...)
			s, d, res, err := Fold(CartState{}, evs)
			if err != nil {
				t.Fatal(err)
			}
			if got := counts(d); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("delta = %+v\nwant    %+v", got, tc.want)
			}
			if !equalState(s, tc.state) {
				t.Errorf("state = %+v, want %+v", s, tc.state)
			}
			if res.Folded != len(evs) || len(res.Undecodable) != 0 {
				t.Errorf("result = %+v", res)
			}
			// Folded again: every event is a duplicate.
			s2, d2, res2, err := Fold(s, evs)
			if err != nil || !equalState(s2, s) || len(d2.Products) != 0 || res2.Folded != 0 {
				t.Errorf("refold = %+v %+v %+v %v", s2, d2, res2, err)
			}
		})
	}
}

func TestFold_Undecodable(t *testing.T) {
	id := uuid.NewString()
	evs := stream(t, id, at{0, cart.Opened{CustomerID: "c"}}, at{time.Minute, added("p1", 1)}, at{2 * time.Minute, added("p2", 1)},
		at{3 * time.Minute, cart.CheckedOut{}})
	evs[1].SchemaVersion = 99 // a schema version this code does not know
	s, d, res, err := Fold(CartState{}, evs)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Undecodable) != 1 || res.Undecodable[0].Event.Version != 2 || !errors.Is(res.Undecodable[0].Err, cart.ErrUnknownEvent) {
		t.Fatalf("undecodable = %+v", res.Undecodable)
	}
	want := map[string]ProductDelta{"p2": {Added: 1, AddedToCarts: 1, CheckedOut: 1, DwellToCheckout: dwell(time.Minute)}}
	if got := counts(d); !reflect.DeepEqual(got, want) || s.Version != 4 || res.Folded != 4 {
		t.Errorf("delta = %+v, state %+v, result %+v", got, s, res)
	}
}

func TestFold_Gap(t *testing.T) {
	evs := stream(t, uuid.NewString(), at{0, cart.Opened{CustomerID: "c"}}, at{0, added("p1", 1)}, at{0, added("p2", 1)})
	if _, _, _, err := Fold(CartState{}, []envelope.Envelope{evs[0], evs[2]}); !errors.Is(err, ErrGap) {
		t.Errorf("a missing version: %v, want ErrGap", err)
	}
	if _, _, _, err := Fold(CartState{Version: 1}, evs[2:]); !errors.Is(err, ErrGap) {
		t.Errorf("a state behind the events: %v, want ErrGap", err)
	}
	s := CartState{Version: 1}
	if _, _, _, err := Fold(s, evs[1:]); err != nil || s.Version != 1 {
		t.Errorf("Fold changed its input or failed: %+v %v", s, err)
	}
}

func TestFold_NameIsTheLatest(t *testing.T) {
	a, b := uuid.NewString(), uuid.NewString()
	late := cart.ItemAdded{ProductID: "p1", Name: "New name", UnitPrice: 1, Currency: "EUR", Quantity: 1}
	early := cart.ItemAdded{ProductID: "p1", Name: "Old name", UnitPrice: 1, Currency: "EUR", Quantity: 1}
	ea := stream(t, a, at{0, cart.Opened{CustomerID: "a"}}, at{time.Hour, late})
	eb := stream(t, b, at{0, cart.Opened{CustomerID: "b"}}, at{time.Minute, early})
	for _, order := range [][][]envelope.Envelope{{ea, eb}, {eb, ea}} {
		var total Delta
		for _, evs := range order {
			_, d, _, err := Fold(CartState{}, evs)
			if err != nil {
				t.Fatal(err)
			}
			total.Merge(d)
		}
		if got := total.Products["p1"].Name; got != "New name" {
			t.Errorf("name = %q, want the latest item-added's", got)
		}
	}
}

// TestFold_Incremental: folding a cart's events in any number of steps,
// from its state as stored between them, gives the state and the sum of
// deltas of folding them at once.
func TestFold_Incremental(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for range 200 {
		id := uuid.NewString()
		evs := randomHistory(t, rng, id)
		whole, want, _, err := Fold(CartState{}, evs)
		if err != nil {
			t.Fatal(err)
		}
		var (
			s   CartState
			sum Delta
		)
		for i := 0; i < len(evs); {
			j := min(len(evs), i+1+rng.IntN(4))
			// Steps overlap now and then: redeliveries.
			from := max(0, i-rng.IntN(2))
			next, d, _, err := Fold(s, evs[from:j])
			if err != nil {
				t.Fatal(err)
			}
			raw, err := encodeState(next)
			if err != nil {
				t.Fatal(err)
			}
			if s, err = decodeState(next.Version, raw); err != nil {
				t.Fatal(err)
			}
			sum.Merge(d)
			i = j
		}
		if !equalState(s, whole) || !reflect.DeepEqual(normalize(sum), normalize(want)) {
			t.Fatalf("stepwise fold differs:\nstate %+v\n want %+v\ndelta %+v\n want %+v", s, whole, normalize(sum), normalize(want))
		}
	}
}

func equalState(a, b CartState) bool {
	return a.Version == b.Version && a.CheckedOut == b.CheckedOut && maps.Equal(a.Lines, b.Lines) &&
		len(a.Added) == len(b.Added) && (len(a.Added) == 0 || reflect.DeepEqual(a.Added, b.Added))
}

func normalize(d Delta) map[string]ProductDelta {
	out := map[string]ProductDelta{}
	for id, p := range d.Products {
		c := *p
		if len(c.DwellToCheckout) == 0 {
			c.DwellToCheckout = nil
		}
		if len(c.DwellToRemoval) == 0 {
			c.DwellToRemoval = nil
		}
		out[id] = c
	}
	return out
}

// randomHistory is a valid history of one cart: commands picked at random
// and decided by the domain.
func randomHistory(t *testing.T, rng *rand.Rand, cartID string) []envelope.Envelope {
	t.Helper()
	actor := cart.Actor{ID: "c", System: true}
	var (
		s   cart.State
		out []envelope.Envelope
	)
	when := t0
	do := func(c cart.Command) {
		evs, err := cart.Decide(s, actor, c)
		if err != nil {
			return
		}
		for _, ev := range evs {
			when = when.Add(time.Duration(rng.IntN(3600)) * time.Second)
			env, err := envelope.New(uuid.NewString(), cartID, s.Version+1, ev, envelope.Metadata{}, when)
			if err != nil {
				t.Fatal(err)
			}
			r, err := env.Recorded()
			if err != nil {
				t.Fatal(err)
			}
			s = cart.Evolve(s, r)
			out = append(out, env)
		}
	}
	do(cart.Open{})
	for range rng.IntN(15) {
		p := []string{"p1", "p2", "p3"}[rng.IntN(3)]
		switch rng.IntN(6) {
		case 0, 1:
			do(cart.AddItem{ProductID: p, Quantity: 1 + rng.IntN(3), Product: &cart.Product{ID: p, Name: p, UnitPrice: 10, Currency: "EUR", Available: true}})
		case 2:
			do(cart.RemoveItem{ProductID: p, Reason: []string{"", cart.ReasonCustomer, cart.ReasonProductUnavailable}[rng.IntN(3)]})
		case 3, 4:
			do(cart.ChangeQuantity{ProductID: p, Quantity: 1 + rng.IntN(9)})
		case 5:
			if rng.IntN(3) == 0 {
				do(cart.Checkout{})
			}
		}
	}
	return out
}

func TestStateEncoding(t *testing.T) {
	for _, s := range []CartState{
		{Version: 3},
		{Version: 7, Lines: map[string]int64{"p1": 1, "a b": -5}, Added: []string{"a b", "p1", "zz"}},
		{Version: 9, CheckedOut: true},
	} {
		raw, err := encodeState(s)
		if err != nil {
			t.Fatal(err)
		}
		got, err := decodeState(s.Version, raw)
		if err != nil || !equalState(got, s) {
			t.Errorf("decode(encode(%+v)) = %+v, %v (%q)", s, got, err, raw)
		}
	}
	if raw, _ := encodeState(CartState{Version: 2, CheckedOut: true, Lines: map[string]int64{"p": 1}, Added: []string{"p"}}); raw != `{"c":true}` {
		t.Errorf("a checked-out cart keeps %q", raw)
	}
	if _, err := decodeState(1, "{"); err == nil {
		t.Error("a malformed state decoded")
	}
	if s, err := decodeState(0, ""); err != nil || s.Version != 0 {
		t.Errorf("an absent state = %+v, %v", s, err)
	}
}
