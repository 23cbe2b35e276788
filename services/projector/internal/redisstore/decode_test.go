package redisstore

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/cart-cqrs/cart/pkg/cart"
	"github.com/cart-cqrs/cart/pkg/readmodel"
)

// decodeCart reads what json.Unmarshal reads, or leaves it to it.
func checkDecodeCart(t *testing.T, b []byte) bool {
	t.Helper()
	var got readmodel.Cart
	if !decodeCart(b, &got) {
		return false
	}
	var want readmodel.Cart
	if err := json.Unmarshal(b, &want); err != nil {
		t.Fatalf("%s: decoded %+v, json.Unmarshal fails: %v", b, got, err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%s:\n got %+v\nwant %+v", b, got, want)
	}
	return true
}

func TestDecodeCart_ReadsWhatAppendDocWrites(t *testing.T) {
	at := time.Date(2026, 3, 1, 9, 30, 0, 123456789, time.UTC)
	out := at.Add(time.Hour)
	for _, s := range []cart.State{
		{},
		{CartID: "c", CustomerID: "b\u00e9a", Status: cart.StatusOpen, Version: 2, OpenedAt: at, UpdatedAt: at,
			Lines: []cart.Line{{ProductID: "123", Name: "Espresso", UnitPrice: 1899, Currency: "EUR", Quantity: 2, LineTotal: 3798}}},
		{CartID: "c", Status: cart.StatusCheckedOut, Version: 9, Lines: []cart.Line{}, OpenedAt: at.In(time.FixedZone("X", 3600)), UpdatedAt: out, CheckedOutAt: &out},
	} {
		b, err := appendDoc(nil, s)
		if err != nil {
			t.Fatal(err)
		}
		if !checkDecodeCart(t, b) {
			t.Errorf("%s: left to json.Unmarshal", b)
		}
	}
	for _, b := range []string{
		`{"cartId":"a\"b"}`, `{"CartID":"c"}`, `{"checkedOutAt":null}`, `{"version":1.0}`, `{"cartId":"c"} x`, `{"cartId":"c","cartId":"d"}`,
		`{"createdAt":"2026-13-01T00:00:00Z"}`,
	} {
		if checkDecodeCart(t, []byte(b)) {
			t.Errorf("%s: decoded, want it left to json.Unmarshal", b)
		}
	}
}

func FuzzDecodeCart(f *testing.F) {
	f.Add([]byte(`{"cartId":"c","customerId":"alice","status":"open","version":3,"lines":[{"productId":"123","name":"E","unitPrice":1899,"currency":"EUR","quantity":2,"lineTotal":3798}],"itemCount":2,"total":3798,"currency":"EUR","createdAt":"2026-03-01T09:30:00.123456789Z","updatedAt":"2026-03-01T09:30:00+01:00","checkedOutAt":"2026-03-01T10:30:00Z"}`))
	f.Add([]byte(`{"lines":[],"createdAt":"0001-01-01T00:00:00Z"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		checkDecodeCart(t, b)
	})
}
