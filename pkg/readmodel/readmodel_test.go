package readmodel_test

import (
	"reflect"
	"testing"
	"time"

	"github.com/cart-cqrs/cart/pkg/cart"
	"github.com/cart-cqrs/cart/pkg/readmodel"
)

func TestDocumentRoundTrip(t *testing.T) {
	t0 := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
	s := cart.Fold(cart.State{},
		cart.Recorded{CartID: "c1", Version: 1, OccurredAt: t0, Event: cart.Opened{CustomerID: "alice"}},
		cart.Recorded{CartID: "c1", Version: 2, OccurredAt: t0.Add(time.Minute), Event: cart.ItemAdded{ProductID: "456", Name: "Mug", UnitPrice: 1250, Currency: "EUR", Quantity: 3}},
		cart.Recorded{CartID: "c1", Version: 3, OccurredAt: t0.Add(2 * time.Minute), Event: cart.CheckedOut{}},
	)
	doc := readmodel.FromState(s)
	if doc.ItemCount != 3 || doc.Total != 3750 || doc.Currency != "EUR" || doc.Status != "checked-out" || doc.Lines[0].LineTotal != 3750 || doc.CreatedAt != t0 {
		t.Fatalf("FromState() = %+v", doc)
	}
	if got := doc.State(); !reflect.DeepEqual(got, s) {
		t.Fatalf("State() =\n%+v\nwant\n%+v", got, s)
	}
}

func TestKeysShareTheCartHashTag(t *testing.T) {
	k := readmodel.Keys{Prefix: "p:", Generation: 2}
	if got := k.Cart("c1"); got != "p:g2:cart:{c1}" {
		t.Fatalf("Cart() = %q", got)
	}
	if got := k.OpenCart("alice"); got != "p:g2:customer:{alice}:open-cart" {
		t.Fatalf("OpenCart() = %q", got)
	}
}
