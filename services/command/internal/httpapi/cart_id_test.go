package httpapi_test

import (
	"net/http"
	"strings"
	"testing"
)

// TestCartIDSpelling: a cart id is a UUID, case-insensitive as RFC 9562 has
// it, so the owner's id in upper or mixed case names the same cart (the
// query API reads it the same way), and every answer carries the stored,
// lower-case spelling. The other textual forms of a UUID are not cart ids.
func TestCartIDSpelling(t *testing.T) {
	t.Parallel()
	a := mustAPI(t)
	id := a.mustCart(t, "alice")
	mixed := strings.ToUpper(id[:18]) + id[18:]

	version := 1
	for _, tc := range []struct{ name, id, cmd, body string }{
		{"UpperAddItem", strings.ToUpper(id), "add-item", `{"productId": "123", "quantity": 2}`},
		{"MixedAddItem", mixed, "add-item", `{"productId": "456", "quantity": 1}`},
		{"UpperChangeQuantity", strings.ToUpper(id), "change-quantity", `{"productId": "123", "quantity": 3}`},
		{"MixedRemoveItem", mixed, "remove-item", `{"productId": "456"}`},
		{"UpperCheckout", strings.ToUpper(id), "checkout", ``},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := mustOK(t, a.post(t, req{path: "/v1/carts/" + tc.id + "/" + tc.cmd, as: "alice", body: tc.body}), http.StatusOK)
			version++
			if res.CartID != id || res.Version != version {
				t.Fatalf("%s = %+v, want %s v%d", tc.cmd, res, id, version)
			}
		})
	}

	other := a.mustCart(t, "alice") // the first is checked out
	before := a.stream(t, other)
	for name, spelling := range map[string]string{
		"Braces":             "{" + other + "}",
		"URN":                "urn:uuid:" + other,
		"NoHyphens":          strings.ReplaceAll(other, "-", ""),
		"SomeoneElsesUpper":  strings.ToUpper(other),
		"UpperWithSpaceTail": strings.ToUpper(other) + " ",
	} {
		t.Run(name, func(t *testing.T) {
			as := "alice"
			if name == "SomeoneElsesUpper" {
				as = "bob"
			}
			mustProblem(t, a.post(t, req{path: "/v1/carts/" + strings.ReplaceAll(spelling, " ", "%20") + "/add-item", as: as,
				body: `{"productId": "123", "quantity": 1}`}), http.StatusNotFound, "cart-not-found")
			if after := a.stream(t, other); after != before {
				t.Errorf("the cart changed:\nbefore %s\nafter  %s", before, after)
			}
		})
	}
}
