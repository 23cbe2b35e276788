package httpapi_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/cart-cqrs/cart/pkg/eventlog"
)

// TestStrictBody: a body is read as the OpenAPI document spells it. A name in
// another case, a name sent twice, a null where the schema has none and an
// unknown name are each a 400 naming the member, and change nothing: before
// this, {"Quantity":1} was read as the quantity, the last of two quantities
// won, and "reason": null meant "customer".
func TestStrictBody(t *testing.T) {
	t.Parallel()
	a := mustAPI(t)
	id := a.mustCart(t, "alice")
	cartPath := func(cmd string) string { return "/v1/carts/" + id + "/" + cmd }
	mustOK(t, a.post(t, req{path: cartPath("add-item"), as: "alice", body: `{"productId": "123", "quantity": 2}`}), http.StatusOK)
	mustOK(t, a.post(t, req{path: cartPath("add-item"), as: "alice", body: `{"productId": "456", "quantity": 1}`}), http.StatusOK)

	for _, tc := range []struct {
		name, path, body, field string
	}{
		{"AddItem/NameUpperCase", cartPath("add-item"), `{"PRODUCTID": "123", "quantity": 1}`, "PRODUCTID"},
		{"AddItem/NameTitleCase", cartPath("add-item"), `{"productId": "123", "Quantity": 1}`, "Quantity"},
		{"AddItem/DuplicateQuantity", cartPath("add-item"), `{"productId": "123", "quantity": 1, "quantity": 50}`, "quantity"},
		{"AddItem/DuplicateEscapedName", cartPath("add-item"), `{"productId": "123", "quantity": 1, "quanti\u0074y": 50}`, "quantity"},
		{"AddItem/DuplicateProductID", cartPath("add-item"), `{"productId": "123", "productId": "456", "quantity": 1}`, "productId"},
		{"AddItem/NullQuantity", cartPath("add-item"), `{"productId": "123", "quantity": null}`, "quantity"},
		{"AddItem/NullProductID", cartPath("add-item"), `{"productId": null, "quantity": 1}`, "productId"},
		{"AddItem/UnknownName", cartPath("add-item"), `{"productId": "123", "quantity": 1, "unitPrice": 1}`, "unitPrice"},
		{"AddItem/UnknownNull", cartPath("add-item"), `{"productId": "123", "quantity": 1, "note": null}`, "note"},
		{"RemoveItem/NullReason", cartPath("remove-item"), `{"productId": "123", "reason": null}`, "reason"},
		{"RemoveItem/ReasonTitleCase", cartPath("remove-item"), `{"productId": "123", "Reason": "customer"}`, "Reason"},
		{"RemoveItem/DuplicateReason", cartPath("remove-item"), `{"productId": "123", "reason": "customer", "reason": "product-unavailable"}`, "reason"},
		{"RemoveItem/NameUpperCase", cartPath("remove-item"), `{"PRODUCTID": "123"}`, "PRODUCTID"},
		{"ChangeQuantity/NameTitleCase", cartPath("change-quantity"), `{"productId": "123", "Quantity": 5}`, "Quantity"},
		{"ChangeQuantity/DuplicateQuantity", cartPath("change-quantity"), `{"productId": "123", "quantity": 5, "quantity": 7}`, "quantity"},
		{"ChangeQuantity/NullQuantity", cartPath("change-quantity"), `{"productId": "123", "quantity": null}`, "quantity"},
		{"ChangeQuantity/UnknownName", cartPath("change-quantity"), `{"productId": "123", "quantity": 5, "delta": 1}`, "delta"},
		{"Checkout/UnknownName", cartPath("checkout"), `{"express": true}`, "express"},
		{"Checkout/UnknownNull", cartPath("checkout"), `{"express": null}`, "express"},
		{"Open/UnknownName", "/v1/carts", `{"customerId": "bob"}`, "customerId"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before, events := a.stream(t, id), a.eventCount(t)
			p := mustProblem(t, a.post(t, req{path: tc.path, as: "alice", body: tc.body}), http.StatusBadRequest, "malformed-body")
			if !strings.Contains(p.Detail, fmt.Sprintf("%q", tc.field)) {
				t.Errorf("detail %q does not name %q", p.Detail, tc.field)
			}
			if after := a.stream(t, id); after != before {
				t.Errorf("the cart changed:\nbefore %s\nafter  %s", before, after)
			}
			if n := a.eventCount(t); n != events {
				t.Errorf("%d events written", n-events)
			}
		})
	}

	// The names as documented still work, escaped or not.
	mustOK(t, a.post(t, req{path: cartPath("change-quantity"), as: "alice", body: `{"product\u0049d": "123", "quantity": 5}`}), http.StatusOK)
	mustOK(t, a.post(t, req{path: cartPath("remove-item"), as: "alice", body: `{"productId": "456", "reason": "customer"}`}), http.StatusOK)
	if got := a.stream(t, id); !strings.HasPrefix(got, "v5:") {
		t.Errorf("after two accepted commands the cart is %s, want v5", got)
	}
}

// stream describes a cart's history as stored: its version, then each
// event's type and data.
func (a *api) stream(t *testing.T, cartID string) string {
	t.Helper()
	evs, err := eventlog.ReadStream(t.Context(), a.pool, cartID, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	if len(evs) > 0 {
		fmt.Fprintf(&b, "v%d:", evs[len(evs)-1].Version)
	}
	for _, e := range evs {
		fmt.Fprintf(&b, " %s %s %s;", e.EventID, e.Type, e.Data)
	}
	return b.String()
}
