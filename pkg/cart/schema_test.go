package cart_test

import (
	"encoding/json"
	"fmt"
	"reflect"
	"testing"

	"github.com/cart-cqrs/cart/pkg/cart"
	"github.com/cart-cqrs/cart/pkg/cart/carttest"
)

// TestStoredSchemaVersions decodes one stored event of every type and every
// schema version ever written (package carttest): old versions stay readable
// forever, and upcast to today's event.
func TestStoredSchemaVersions(t *testing.T) {
	espresso := cart.ItemAdded{ProductID: "123", Name: "Espresso beans 1 kg", UnitPrice: 1899, Currency: "EUR", Quantity: 2}
	want := map[string]cart.Event{
		"cart.opened.v1":                cart.Opened{CustomerID: "alice"},
		"cart.item-added.v1":            espresso,
		"cart.item-added.v2":            espresso,
		"cart.item-removed.v1":          cart.ItemRemoved{ProductID: "123", Quantity: 2, Reason: cart.ReasonProductUnavailable},
		"cart.item-quantity-changed.v1": cart.QuantityChanged{ProductID: "456", OldQuantity: 2, NewQuantity: 3},
		"cart.checked-out.v1": cart.CheckedOut{Lines: []cart.Line{{ProductID: "456", Name: "Ceramic mug", UnitPrice: 1250, Currency: "EUR", Quantity: 3, LineTotal: 3750}},
			ItemCount: 3, Total: 3750, Currency: "EUR"},
	}
	seen := map[string]bool{}
	for _, s := range carttest.MustStoredEvents(t) {
		t.Run(s.Name(), func(t *testing.T) {
			got, err := cart.Decode(s.Type, s.SchemaVersion, s.Data)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want[s.Name()]) {
				t.Fatalf("Decode() = %#v, want %#v", got, want[s.Name()])
			}
			seen[s.Name()] = true
		})
	}
	// Every version of every type up to today's has a stored example.
	for typ, cur := range cart.SchemaVersion {
		for v := 1; v <= cur; v++ {
			if name := fmt.Sprintf("%s.v%d", typ, v); !seen[name] {
				t.Errorf("no stored example carttest/events/%s.json", name)
			}
		}
	}
}

// TestItemAddedWrittenAsV2: new events are written in today's schema, with
// the price as an amount in a currency.
func TestItemAddedWrittenAsV2(t *testing.T) {
	typ, v, data, err := cart.Encode(cart.ItemAdded{ProductID: "123", Name: "Espresso", UnitPrice: 1899, Currency: "EUR", Quantity: 2})
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(data, &got); err != nil {
		t.Fatal(err)
	}
	price, _ := got["unitPrice"].(map[string]any)
	if typ != cart.TypeItemAdded || v != 2 || price["amount"] != 1899.0 || price["currency"] != "EUR" || got["currency"] != nil {
		t.Fatalf("Encode() = %s v%d %s", typ, v, data)
	}
}
