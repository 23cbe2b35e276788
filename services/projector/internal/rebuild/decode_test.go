package rebuild

import (
	"fmt"
	"reflect"
	"testing"

	"github.com/cart-cqrs/cart/pkg/cart"
)

// The decoder reads what cart.Decode reads, or leaves it to cart.Decode.
func check(t *testing.T, typ string, schemaVersion int, data []byte) bool {
	t.Helper()
	var d decoder
	got, ok := d.decode(typ, schemaVersion, data)
	if !ok {
		return false
	}
	want, err := cart.Decode(typ, schemaVersion, data)
	if err != nil {
		t.Fatalf("%s v%d %s: decoded %#v, cart.Decode fails: %v", typ, schemaVersion, data, got, err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%s v%d %s:\n got %#v\nwant %#v", typ, schemaVersion, data, got, want)
	}
	return true
}

func TestDecoder_ReadsTheStoredShapes(t *testing.T) {
	for _, c := range []struct {
		typ  string
		data string
	}{
		// As PostgreSQL writes jsonb out: keys by length, ", " and ": ".
		{cart.TypeOpened, `{"customerId": "alice"}`},
		{cart.TypeItemAdded, `{"name": "Crème brûlée", "quantity": 2, "productId": "123", "unitPrice": {"amount": 1899, "currency": "EUR"}}`},
		{cart.TypeItemRemoved, `{"reason": "product-unavailable", "quantity": 3, "productId": "123"}`},
		{cart.TypeQuantityChanged, `{"productId": "123", "newQuantity": 5, "oldQuantity": 2}`},
		{cart.TypeCheckedOut, `{"lines": [{"name": "Espresso", "currency": "EUR", "quantity": 2, "lineTotal": 3798, "productId": "123", "unitPrice": 1899}], "total": 3798, "currency": "EUR", "itemCount": 2}`},
		{cart.TypeCheckedOut, `{"lines": [], "total": 0, "currency": "", "itemCount": 0}`},
		{cart.TypeCheckedOut, `{}`},
		{cart.TypeItemAdded, `{"quantity": -0, "unitPrice": {}}`},
	} {
		if !check(t, c.typ, cart.SchemaVersion[c.typ], []byte(c.data)) {
			t.Errorf("%s %s: left to cart.Decode", c.typ, c.data)
		}
	}
}

func TestDecoder_LeavesTheRestToCartDecode(t *testing.T) {
	for _, c := range []struct {
		typ  string
		sv   int
		data string
	}{
		{cart.TypeItemAdded, 1, `{"name": "Espresso", "currency": "EUR", "quantity": 2, "productId": "123", "unitPrice": 1899}`},
		{cart.TypeOpened, 1, `{"customerId": "a\"b"}`},
		{cart.TypeOpened, 1, `{"CustomerID": "alice"}`},
		{cart.TypeOpened, 1, `{"customerId": "alice", "customerId": "bob"}`},
		{cart.TypeOpened, 1, `{"customerId": null}`},
		{cart.TypeOpened, 1, `{"customerId": "alice"} x`},
		{cart.TypeOpened, 1, `{"customerId": "\xff"}`},
		{cart.TypeItemRemoved, 1, `{"quantity": 1.0}`},
		{cart.TypeItemRemoved, 1, `{"quantity": 1e2}`},
		{cart.TypeItemRemoved, 1, `{"quantity": 01}`},
		{cart.TypeItemRemoved, 1, `{"quantity": 1234567890123456789}`},
		{cart.TypeCheckedOut, 1, `{"lines": null}`},
		{cart.TypeCheckedOut, 2, `{}`},
		{"cart.renamed", 1, `{}`},
	} {
		if check(t, c.typ, c.sv, []byte(c.data)) {
			t.Errorf("%s v%d %s: decoded, want it left to cart.Decode", c.typ, c.sv, c.data)
		}
	}
}

// Every field of every event survives the decoder: a field added to an
// event fails here until the decoder reads it.
func TestDecoder_ReadsEveryField(t *testing.T) {
	for _, e := range []cart.Event{cart.Opened{}, cart.ItemAdded{}, cart.ItemRemoved{}, cart.QuantityChanged{}, cart.CheckedOut{}} {
		v := reflect.New(reflect.TypeOf(e)).Elem()
		fill(v, 1)
		typ, sv, data, err := cart.Encode(v.Interface().(cart.Event))
		if err != nil {
			t.Fatal(err)
		}
		if !check(t, typ, sv, data) {
			t.Errorf("%s %s: left to cart.Decode", typ, data)
		}
	}
}

// fill sets every field of v to a value that is not zero.
func fill(v reflect.Value, n int) {
	switch v.Kind() {
	case reflect.String:
		v.SetString(fmt.Sprintf("s%d", n))
	case reflect.Int, reflect.Int64:
		v.SetInt(int64(n))
	case reflect.Struct:
		for i := range v.NumField() {
			fill(v.Field(i), n*10+i)
		}
	case reflect.Slice:
		s := reflect.MakeSlice(v.Type(), 2, 2)
		for i := range 2 {
			fill(s.Index(i), n*10+i)
		}
		v.Set(s)
	default:
		panic("fill: " + v.Kind().String())
	}
}

func FuzzDecoder(f *testing.F) {
	types := []string{cart.TypeOpened, cart.TypeItemAdded, cart.TypeItemRemoved, cart.TypeQuantityChanged, cart.TypeCheckedOut}
	f.Add(uint8(1), 2, []byte(`{"name": "Espresso", "quantity": 2, "productId": "123", "unitPrice": {"amount": 1899, "currency": "EUR"}}`))
	f.Add(uint8(4), 1, []byte(`{"lines": [{"name": "E", "currency": "EUR", "quantity": 2, "lineTotal": 3798, "productId": "123", "unitPrice": 1899}], "total": 3798}`))
	f.Add(uint8(0), 1, []byte(`{"customerId": "bj\u00f6rk"}`))
	f.Fuzz(func(t *testing.T, typ uint8, sv int, data []byte) {
		check(t, types[int(typ)%len(types)], sv, data)
	})
}
