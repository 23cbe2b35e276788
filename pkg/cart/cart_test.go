package cart_test

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/cart-cqrs/cart/pkg/cart"
)

var (
	t0       = time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
	alice    = cart.Actor{ID: "alice"}
	bob      = cart.Actor{ID: "bob"}
	system   = cart.Actor{ID: "ops", System: true}
	espresso = &cart.Product{ID: "123", Name: "Espresso beans 1 kg", UnitPrice: 1899, Currency: "EUR", Available: true}
	mug      = &cart.Product{ID: "456", Name: "Ceramic mug", UnitPrice: 1250, Currency: "EUR", Available: true}
	grinder  = &cart.Product{ID: "999", Name: "Discontinued grinder", UnitPrice: 9900, Currency: "EUR", Available: false}
	dollar   = &cart.Product{ID: "777", Name: "Imported filter", UnitPrice: 500, Currency: "USD", Available: true}
)

// given builds a state by deciding and folding commands as alice, the way the
// command service does, so that tests speak in commands rather than events.
func given(tb testing.TB, cmds ...cart.Command) cart.State {
	tb.Helper()
	s := cart.State{}
	for _, c := range cmds {
		evs, err := cart.Decide(s, alice, c)
		if err != nil {
			tb.Fatalf("given %T: %v", c, err)
		}
		for _, e := range evs {
			s = cart.Evolve(s, cart.Recorded{CartID: "c1", Version: s.Version + 1, OccurredAt: t0.Add(time.Duration(s.Version) * time.Minute), Event: e})
		}
	}
	return s
}

func add(p *cart.Product, q int) cart.AddItem {
	return cart.AddItem{ProductID: p.ID, Quantity: q, Product: p}
}

func TestDecide(t *testing.T) {
	open := cart.Open{}
	full := []cart.Command{open}
	for i := range cart.MaxLines {
		p := *espresso
		p.ID = fmt.Sprint("p", i)
		full = append(full, add(&p, 1))
	}

	tests := []struct {
		name  string
		given []cart.Command
		by    cart.Actor
		cmd   cart.Command
		want  []cart.Event
		err   error
	}{
		{name: "Open/OK", by: alice, cmd: open, want: []cart.Event{cart.Opened{CustomerID: "alice"}}},
		{name: "Open/ErrAlreadyOpened", given: []cart.Command{open}, by: alice, cmd: open, err: cart.ErrAlreadyOpened},
		{name: "Open/ErrInvalidCustomer", by: cart.Actor{}, cmd: open, err: cart.ErrInvalidCustomer},

		{name: "AddItem/OK", given: []cart.Command{open}, by: alice, cmd: add(espresso, 2),
			want: []cart.Event{cart.ItemAdded{ProductID: "123", Name: "Espresso beans 1 kg", UnitPrice: 1899, Currency: "EUR", Quantity: 2}}},
		{name: "AddItem/OK to an existing line", given: []cart.Command{open, add(espresso, 2)}, by: alice, cmd: add(espresso, 97),
			want: []cart.Event{cart.ItemAdded{ProductID: "123", Name: "Espresso beans 1 kg", UnitPrice: 1899, Currency: "EUR", Quantity: 97}}},
		{name: "AddItem/ErrNotFound no cart", by: alice, cmd: add(espresso, 1), err: cart.ErrNotFound},
		{name: "AddItem/ErrNotFound someone else's cart", given: []cart.Command{open}, by: bob, cmd: add(espresso, 1), err: cart.ErrNotFound},
		{name: "AddItem/ErrCheckedOut", given: []cart.Command{open, add(espresso, 1), cart.Checkout{}}, by: alice, cmd: add(mug, 1), err: cart.ErrCheckedOut},
		{name: "AddItem/ErrInvalidQuantity zero", given: []cart.Command{open}, by: alice, cmd: add(espresso, 0), err: cart.ErrInvalidQuantity},
		{name: "AddItem/ErrInvalidQuantity 100", given: []cart.Command{open}, by: alice, cmd: add(espresso, 100), err: cart.ErrInvalidQuantity},
		{name: "AddItem/ErrInvalidQuantity negative", given: []cart.Command{open}, by: alice, cmd: add(espresso, -1), err: cart.ErrInvalidQuantity},
		{name: "AddItem/ErrInvalidProduct", given: []cart.Command{open}, by: alice, cmd: cart.AddItem{Quantity: 1}, err: cart.ErrInvalidProduct},
		{name: "AddItem/ErrInvalidProduct control character", given: []cart.Command{open}, by: alice, cmd: cart.AddItem{ProductID: "12\x003", Quantity: 1}, err: cart.ErrInvalidProduct},
		{name: "AddItem/ErrInvalidProduct too long", given: []cart.Command{open}, by: alice, cmd: cart.AddItem{ProductID: strings.Repeat("9", cart.MaxProductIDLen+1), Quantity: 1}, err: cart.ErrInvalidProduct},
		{name: "ChangeQuantity/ErrInvalidProduct invalid UTF-8", given: []cart.Command{open}, by: alice, cmd: cart.ChangeQuantity{ProductID: "\xff", Quantity: 1}, err: cart.ErrInvalidProduct},
		{name: "RemoveItem/ErrInvalidProduct newline", given: []cart.Command{open}, by: alice, cmd: cart.RemoveItem{ProductID: "1\n2"}, err: cart.ErrInvalidProduct},
		{name: "AddItem/ErrUnknownProduct", given: []cart.Command{open}, by: alice, cmd: cart.AddItem{ProductID: "nope", Quantity: 1}, err: cart.ErrUnknownProduct},
		{name: "AddItem/ErrProductUnavailable", given: []cart.Command{open}, by: alice, cmd: add(grinder, 1), err: cart.ErrProductUnavailable},
		{name: "AddItem/ErrCurrencyMismatch", given: []cart.Command{open, add(espresso, 1)}, by: alice, cmd: add(dollar, 1), err: cart.ErrCurrencyMismatch},
		{name: "AddItem/ErrQuantityLimit", given: []cart.Command{open, add(espresso, 50)}, by: alice, cmd: add(espresso, 50), err: cart.ErrQuantityLimit},
		{name: "AddItem/ErrLineLimit", given: full, by: alice, cmd: add(mug, 1), err: cart.ErrLineLimit},
		{name: "AddItem/OK existing line in a full cart", given: full, by: alice, cmd: cart.AddItem{ProductID: "p0", Quantity: 1, Product: &cart.Product{ID: "p0", Name: "x", UnitPrice: 1, Currency: "EUR", Available: true}},
			want: []cart.Event{cart.ItemAdded{ProductID: "p0", Name: "x", UnitPrice: 1, Currency: "EUR", Quantity: 1}}},

		{name: "RemoveItem/OK default reason", given: []cart.Command{open, add(espresso, 3)}, by: alice, cmd: cart.RemoveItem{ProductID: "123"},
			want: []cart.Event{cart.ItemRemoved{ProductID: "123", Quantity: 3, Reason: cart.ReasonCustomer}}},
		{name: "RemoveItem/OK system removes unavailable product", given: []cart.Command{open, add(espresso, 3)}, by: system, cmd: cart.RemoveItem{ProductID: "123", Reason: cart.ReasonProductUnavailable},
			want: []cart.Event{cart.ItemRemoved{ProductID: "123", Quantity: 3, Reason: cart.ReasonProductUnavailable}}},
		{name: "RemoveItem/ErrReasonNotPermitted", given: []cart.Command{open, add(espresso, 3)}, by: alice, cmd: cart.RemoveItem{ProductID: "123", Reason: cart.ReasonProductUnavailable}, err: cart.ErrReasonNotPermitted},
		{name: "RemoveItem/ErrInvalidReason", given: []cart.Command{open, add(espresso, 3)}, by: alice, cmd: cart.RemoveItem{ProductID: "123", Reason: "bored"}, err: cart.ErrInvalidReason},
		{name: "RemoveItem/ErrItemNotInCart", given: []cart.Command{open, add(espresso, 3)}, by: alice, cmd: cart.RemoveItem{ProductID: "456"}, err: cart.ErrItemNotInCart},
		{name: "RemoveItem/ErrInvalidProduct", given: []cart.Command{open}, by: alice, cmd: cart.RemoveItem{}, err: cart.ErrInvalidProduct},
		{name: "RemoveItem/ErrCheckedOut", given: []cart.Command{open, add(espresso, 1), cart.Checkout{}}, by: alice, cmd: cart.RemoveItem{ProductID: "123"}, err: cart.ErrCheckedOut},
		{name: "RemoveItem/ErrNotFound someone else's cart", given: []cart.Command{open, add(espresso, 1)}, by: bob, cmd: cart.RemoveItem{ProductID: "123"}, err: cart.ErrNotFound},

		{name: "ChangeQuantity/OK", given: []cart.Command{open, add(espresso, 2)}, by: alice, cmd: cart.ChangeQuantity{ProductID: "123", Quantity: 1},
			want: []cart.Event{cart.QuantityChanged{ProductID: "123", OldQuantity: 2, NewQuantity: 1}}},
		{name: "ChangeQuantity/OK unchanged is no event", given: []cart.Command{open, add(espresso, 2)}, by: alice, cmd: cart.ChangeQuantity{ProductID: "123", Quantity: 2}},
		{name: "ChangeQuantity/ErrInvalidQuantity", given: []cart.Command{open, add(espresso, 2)}, by: alice, cmd: cart.ChangeQuantity{ProductID: "123", Quantity: 0}, err: cart.ErrInvalidQuantity},
		{name: "ChangeQuantity/ErrInvalidQuantity 100", given: []cart.Command{open, add(espresso, 2)}, by: alice, cmd: cart.ChangeQuantity{ProductID: "123", Quantity: 100}, err: cart.ErrInvalidQuantity},
		{name: "ChangeQuantity/ErrItemNotInCart", given: []cart.Command{open}, by: alice, cmd: cart.ChangeQuantity{ProductID: "123", Quantity: 1}, err: cart.ErrItemNotInCart},
		{name: "ChangeQuantity/ErrCheckedOut", given: []cart.Command{open, add(espresso, 1), cart.Checkout{}}, by: alice, cmd: cart.ChangeQuantity{ProductID: "123", Quantity: 2}, err: cart.ErrCheckedOut},

		{name: "Checkout/OK", given: []cart.Command{open, add(espresso, 2), add(mug, 1)}, by: alice, cmd: cart.Checkout{},
			want: []cart.Event{cart.CheckedOut{Lines: []cart.Line{
				{ProductID: "123", Name: "Espresso beans 1 kg", UnitPrice: 1899, Currency: "EUR", Quantity: 2, LineTotal: 3798},
				{ProductID: "456", Name: "Ceramic mug", UnitPrice: 1250, Currency: "EUR", Quantity: 1, LineTotal: 1250},
			}, ItemCount: 3, Total: 5048, Currency: "EUR"}}},
		{name: "Checkout/ErrEmpty", given: []cart.Command{open}, by: alice, cmd: cart.Checkout{}, err: cart.ErrEmpty},
		{name: "Checkout/ErrEmpty after removing the last item", given: []cart.Command{open, add(espresso, 1), cart.RemoveItem{ProductID: "123"}}, by: alice, cmd: cart.Checkout{}, err: cart.ErrEmpty},
		{name: "Checkout/ErrCheckedOut", given: []cart.Command{open, add(espresso, 1), cart.Checkout{}}, by: alice, cmd: cart.Checkout{}, err: cart.ErrCheckedOut},
		{name: "Checkout/ErrNotFound", by: alice, cmd: cart.Checkout{}, err: cart.ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := given(t, tt.given...)
			before := fmt.Sprintf("%+v", s)
			got, err := cart.Decide(s, tt.by, tt.cmd)
			if !errors.Is(err, tt.err) || (err == nil) != (tt.err == nil) {
				t.Fatalf("Decide() error = %v, want %v", err, tt.err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("Decide() = %#v\nwant %#v", got, tt.want)
			}
			if after := fmt.Sprintf("%+v", s); after != before {
				t.Fatalf("Decide changed its state:\n%s\n%s", before, after)
			}
		})
	}
}

func TestErrorKinds(t *testing.T) {
	kinds := map[*cart.Error]cart.ErrorKind{
		cart.ErrNotFound: cart.KindNotFound, cart.ErrCheckedOut: cart.KindConflict, cart.ErrInvalidQuantity: cart.KindInvalid,
		cart.ErrUnknownProduct: cart.KindInvalid, cart.ErrProductUnavailable: cart.KindConflict, cart.ErrReasonNotPermitted: cart.KindForbidden,
	}
	for e, k := range kinds {
		var got *cart.Error
		if !errors.As(fmt.Errorf("wrapped: %w", e), &got) || got.Kind != k {
			t.Errorf("%s: kind %v, want %v", e.Code, got.Kind, k)
		}
	}
}

// TestArticleExample is the walk-through of the README: add 123×2, change
// 123→1, add 456×2, remove 123, change 456→3 ⇒ the cart holds 456×3.
func TestArticleExample(t *testing.T) {
	s := given(t, cart.Open{}, add(espresso, 2), cart.ChangeQuantity{ProductID: "123", Quantity: 1}, add(mug, 2),
		cart.RemoveItem{ProductID: "123"}, cart.ChangeQuantity{ProductID: "456", Quantity: 3})
	want := []cart.Line{{ProductID: "456", Name: "Ceramic mug", UnitPrice: 1250, Currency: "EUR", Quantity: 3, LineTotal: 3750}}
	if !reflect.DeepEqual(s.Lines, want) || s.Version != 6 || s.ItemCount() != 3 || s.Total() != 3750 || s.Status != cart.StatusOpen {
		t.Fatalf("state = %+v", s)
	}
}

func TestEvolve(t *testing.T) {
	at := func(v int) time.Time { return t0.Add(time.Duration(v) * time.Hour) }
	rec := func(v int, e cart.Event) cart.Recorded {
		return cart.Recorded{CartID: "c1", Version: v, OccurredAt: at(v), Event: e}
	}
	opened := cart.Fold(cart.State{}, rec(1, cart.Opened{CustomerID: "alice"}))
	withEspresso := cart.Evolve(opened, rec(2, cart.ItemAdded{ProductID: "123", Name: "Espresso", UnitPrice: 1000, Currency: "EUR", Quantity: 2}))
	checkedAt := at(3)

	tests := []struct {
		name string
		from cart.State
		r    cart.Recorded
		want cart.State
	}{
		{name: "Opened", from: cart.State{}, r: rec(1, cart.Opened{CustomerID: "alice"}),
			want: cart.State{CartID: "c1", CustomerID: "alice", Status: cart.StatusOpen, Version: 1, Lines: []cart.Line{}, OpenedAt: at(1), UpdatedAt: at(1)}},
		{name: "ItemAdded new line", from: opened, r: rec(2, cart.ItemAdded{ProductID: "123", Name: "Espresso", UnitPrice: 1000, Currency: "EUR", Quantity: 2}),
			want: cart.State{CartID: "c1", CustomerID: "alice", Status: cart.StatusOpen, Version: 2, OpenedAt: at(1), UpdatedAt: at(2),
				Lines: []cart.Line{{ProductID: "123", Name: "Espresso", UnitPrice: 1000, Currency: "EUR", Quantity: 2, LineTotal: 2000}}}},
		{name: "ItemAdded existing line takes the latest price", from: withEspresso, r: rec(3, cart.ItemAdded{ProductID: "123", Name: "Espresso", UnitPrice: 1100, Currency: "EUR", Quantity: 1}),
			want: cart.State{CartID: "c1", CustomerID: "alice", Status: cart.StatusOpen, Version: 3, OpenedAt: at(1), UpdatedAt: at(3),
				Lines: []cart.Line{{ProductID: "123", Name: "Espresso", UnitPrice: 1100, Currency: "EUR", Quantity: 3, LineTotal: 3300}}}},
		{name: "QuantityChanged", from: withEspresso, r: rec(3, cart.QuantityChanged{ProductID: "123", OldQuantity: 2, NewQuantity: 5}),
			want: cart.State{CartID: "c1", CustomerID: "alice", Status: cart.StatusOpen, Version: 3, OpenedAt: at(1), UpdatedAt: at(3),
				Lines: []cart.Line{{ProductID: "123", Name: "Espresso", UnitPrice: 1000, Currency: "EUR", Quantity: 5, LineTotal: 5000}}}},
		{name: "ItemRemoved", from: withEspresso, r: rec(3, cart.ItemRemoved{ProductID: "123", Quantity: 2, Reason: cart.ReasonCustomer}),
			want: cart.State{CartID: "c1", CustomerID: "alice", Status: cart.StatusOpen, Version: 3, OpenedAt: at(1), UpdatedAt: at(3), Lines: []cart.Line{}}},
		{name: "CheckedOut", from: withEspresso, r: rec(3, cart.CheckedOut{Lines: withEspresso.Lines, ItemCount: 2, Total: 2000, Currency: "EUR"}),
			want: cart.State{CartID: "c1", CustomerID: "alice", Status: cart.StatusCheckedOut, Version: 3, OpenedAt: at(1), UpdatedAt: at(3), CheckedOutAt: &checkedAt,
				Lines: []cart.Line{{ProductID: "123", Name: "Espresso", UnitPrice: 1000, Currency: "EUR", Quantity: 2, LineTotal: 2000}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := fmt.Sprintf("%+v", tt.from)
			got := cart.Evolve(tt.from, tt.r)
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("Evolve() =\n%+v\nwant\n%+v", got, tt.want)
			}
			if after := fmt.Sprintf("%+v", tt.from); after != before {
				t.Fatalf("Evolve changed its input:\n%s\n%s", before, after)
			}
		})
	}
}

func TestCodecRoundTrip(t *testing.T) {
	events := []cart.Event{
		cart.Opened{CustomerID: "alice"},
		cart.ItemAdded{ProductID: "123", Name: "Espresso", UnitPrice: 1899, Currency: "EUR", Quantity: 2},
		cart.ItemRemoved{ProductID: "123", Quantity: 2, Reason: cart.ReasonProductUnavailable},
		cart.QuantityChanged{ProductID: "456", OldQuantity: 2, NewQuantity: 3},
		cart.CheckedOut{Lines: []cart.Line{{ProductID: "456", Name: "Mug", UnitPrice: 1250, Currency: "EUR", Quantity: 3, LineTotal: 3750}}, ItemCount: 3, Total: 3750, Currency: "EUR"},
	}
	for _, e := range events {
		t.Run(e.EventType(), func(t *testing.T) {
			typ, v, data, err := cart.Encode(e)
			if err != nil {
				t.Fatal(err)
			}
			if typ != e.EventType() || v != cart.SchemaVersion[typ] {
				t.Fatalf("Encode() = %s v%d", typ, v)
			}
			got, err := cart.Decode(typ, v, data)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, e) {
				t.Fatalf("Decode(Encode()) = %#v, want %#v", got, e)
			}
		})
	}
}

func TestDecodeRefuses(t *testing.T) {
	tests := []struct {
		name, typ string
		v         int
		data      string
	}{
		{"unknown type", "cart.exploded", 1, `{}`},
		{"future schema version", cart.TypeOpened, 99, `{}`},
		{"zero schema version", cart.TypeOpened, 0, `{}`},
		{"malformed data", cart.TypeItemAdded, 1, `{"quantity": "two"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := cart.Decode(tt.typ, tt.v, []byte(tt.data)); err == nil {
				t.Fatal("Decode() succeeded")
			}
		})
	}
}

func TestVisibleTo(t *testing.T) {
	s := given(t, cart.Open{})
	for _, tt := range []struct {
		name  string
		state cart.State
		by    cart.Actor
		want  bool
	}{
		{"owner", s, alice, true},
		{"someone else", s, bob, false},
		{"system caller", s, system, true},
		{"no cart", cart.State{}, alice, false},
		{"no cart for a system caller", cart.State{}, system, false},
	} {
		if got := tt.state.VisibleTo(tt.by); got != tt.want {
			t.Errorf("%s: VisibleTo() = %v, want %v", tt.name, got, tt.want)
		}
	}
}
