package cart_test

import (
	"testing"

	"github.com/cart-cqrs/cart/pkg/cart"
)

// BenchmarkDecode decodes the events the projector applies most.
func BenchmarkDecode(b *testing.B) {
	events := []cart.Event{
		cart.ItemAdded{ProductID: "123", Name: "Espresso beans 1 kg", UnitPrice: 1899, Currency: "EUR", Quantity: 2},
		cart.QuantityChanged{ProductID: "123", OldQuantity: 2, NewQuantity: 3},
		cart.ItemRemoved{ProductID: "123", Quantity: 3, Reason: "customer"},
	}
	type stored struct {
		typ     string
		version int
		data    []byte
	}
	var in []stored
	for _, e := range events {
		typ, v, data, err := cart.Encode(e)
		if err != nil {
			b.Fatal(err)
		}
		in = append(in, stored{typ, v, data})
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		s := in[i%len(in)]
		if _, err := cart.Decode(s.typ, s.version, s.data); err != nil {
			b.Fatal(err)
		}
	}
}
