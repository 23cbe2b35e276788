package httpapi

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/cart-cqrs/cart/pkg/readmodel"
)

func TestPeekHead(t *testing.T) {
	stored, err := json.Marshal(readmodel.Cart{
		CartID: "c1", CustomerID: "alice", Status: "checked-out", Version: 7,
		Lines:     []readmodel.Line{{ProductID: "456", Name: `Mug "status":"open"`, UnitPrice: 1250, Currency: "EUR", Quantity: 3, LineTotal: 3750}},
		ItemCount: 3, Total: 3750, Currency: "EUR", CreatedAt: time.Unix(0, 0).UTC(), UpdatedAt: time.Unix(60, 0).UTC(),
	})
	if err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]struct {
		doc  string
		want head
	}{
		"OKAsStored": {string(stored), head{CustomerID: "alice", Status: "checked-out", Version: 7}},
		"OKAnyOrder": {`{"lines":[{"status":"open"}],"version":2,"status":"open","extra":{"a":[1,2]},"customerId":"bob"}`,
			head{CustomerID: "bob", Status: "open", Version: 2}},
		"OKMissingMembers": {`{"cartId":"c"}`, head{}},
		"OKEmpty":          {`{}`, head{}},
	} {
		t.Run(name, func(t *testing.T) {
			got, err := peekHead([]byte(c.doc))
			if err != nil || got != c.want {
				t.Errorf("peekHead(%s) = %+v, %v; want %+v", c.doc, got, err, c.want)
			}
		})
	}
	for name, doc := range map[string]string{
		"ErrNotAnObject": `["customerId","alice"]`,
		"ErrTrailing":    `{"customerId":"alice"} x`,
		"ErrWrongType":   `{"customerId":42}`,
		"ErrTruncated":   `{"cartId":"c","customerId":"al`,
		"ErrEmpty":       ``,
		"ErrGarbage":     `{"cartId" "c"}`,
	} {
		t.Run(name, func(t *testing.T) {
			if got, err := peekHead([]byte(doc)); err == nil {
				t.Errorf("peekHead(%s) = %+v, want an error", doc, got)
			}
		})
	}
}
