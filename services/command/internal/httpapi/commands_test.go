package httpapi_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/cart-cqrs/cart/pkg/cart"
	"github.com/cart-cqrs/cart/pkg/eventlog"
	"github.com/cart-cqrs/cart/services/command/internal/httpapi"
)

func TestAddItem(t *testing.T) {
	t.Parallel()
	a := mustAPI(t)
	id := a.mustCart(t, "alice")
	path := "/v1/carts/" + id + "/add-item"

	res := mustOK(t, a.post(t, req{path: path, as: "alice", body: `{"productId": "123", "quantity": 2}`}), http.StatusOK)
	if res.CartID != id || res.Version != 2 {
		t.Fatalf("add-item = %+v, want %s v2", res, id)
	}
	t.Run("UpperCaseIDAnswersStoredID", func(t *testing.T) {
		res := mustOK(t, a.post(t, req{path: "/v1/carts/" + strings.ToUpper(id) + "/add-item", as: "alice",
			body: `{"productId": "456", "quantity": 1}`}), http.StatusOK)
		if res.CartID != id || res.Version != 3 {
			t.Fatalf("add-item = %+v, want %s v3", res, id)
		}
	})

	before := a.eventCount(t)
	for _, tc := range []struct {
		name   string
		r      req
		status int
		code   string
	}{
		{"UnknownProduct", req{body: `{"productId": "nope", "quantity": 1}`}, 422, "unknown-product"},
		{"MissingProduct", req{body: `{"quantity": 1}`}, 422, "invalid-product-id"},
		{"UnavailableProduct", req{body: `{"productId": "999", "quantity": 1}`}, 409, "product-unavailable"},
		{"ZeroQuantity", req{body: `{"productId": "123", "quantity": 0}`}, 422, "invalid-quantity"},
		{"TooMany", req{body: `{"productId": "123", "quantity": 100}`}, 422, "invalid-quantity"},
		{"LineOver99", req{body: `{"productId": "123", "quantity": 98}`}, 409, "quantity-limit"},
		{"QuantityAsString", req{body: `{"productId": "123", "quantity": "2"}`}, 400, "malformed-body"},
		{"FractionalQuantity", req{body: `{"productId": "123", "quantity": 1.5}`}, 400, "malformed-body"},
		{"ProductIDAsNumber", req{body: `{"productId": 123, "quantity": 1}`}, 400, "malformed-body"},
		{"UnknownField", req{body: `{"productId": "123", "quantity": 1, "price": 1}`}, 400, "malformed-body"},
		{"MalformedJSON", req{body: `{"productId": "123", "quantity": 1`}, 400, "malformed-body"},
		{"SyntaxError", req{body: `{"productId" "123"}`}, 400, "malformed-body"},
		{"TrailingData", req{body: `{"productId": "123", "quantity": 1} {}`}, 400, "malformed-body"},
		{"TrailingGarbage", req{body: `{"productId": "123", "quantity": 1}x`}, 400, "malformed-body"},
		{"NotAnObject", req{body: `[1]`}, 400, "malformed-body"},
		{"Null", req{body: `null`}, 400, "malformed-body"},
		{"EmptyBody", req{}, 400, "malformed-body"},
		{"NoContentType", req{body: `{"productId": "123", "quantity": 1}`, header: map[string]string{echo.HeaderContentType: ""}}, 415, "unsupported-media-type"},
		{"FormContentType", req{body: `{"productId": "123", "quantity": 1}`, header: map[string]string{echo.HeaderContentType: "application/x-www-form-urlencoded"}}, 415, "unsupported-media-type"},
		{"SomeoneElsesCart", req{as: "bob", body: `{"productId": "123", "quantity": 1}`}, 404, "cart-not-found"},
		{"NotAUUID", req{path: "/v1/carts/not-a-uuid/add-item", body: `{"productId": "123", "quantity": 1}`}, 404, "cart-not-found"},
		{"UnknownCart", req{path: "/v1/carts/0195a3c0-0000-7000-8000-000000000000/add-item", body: `{"productId": "123", "quantity": 1}`}, 404, "cart-not-found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.r
			if r.path == "" {
				r.path = path
			}
			if r.as == "" {
				r.as = "alice"
			}
			mustProblem(t, a.post(t, r), tc.status, tc.code)
		})
	}
	if n := a.eventCount(t); n != before {
		t.Fatalf("refused requests wrote %d events", n-before)
	}
	t.Run("CharsetParameterAccepted", func(t *testing.T) {
		mustOK(t, a.post(t, req{path: path, as: "alice", body: `{"productId": "789", "quantity": 1}`,
			header: map[string]string{echo.HeaderContentType: "application/json; charset=utf-8"}}), http.StatusOK)
	})
}

func TestRemoveItem(t *testing.T) {
	t.Parallel()
	a := mustAPI(t)
	id := a.mustCart(t, "alice")
	path := "/v1/carts/" + id + "/remove-item"
	mustOK(t, a.post(t, req{path: "/v1/carts/" + id + "/add-item", as: "alice", body: `{"productId": "123", "quantity": 2}`}), http.StatusOK)
	mustOK(t, a.post(t, req{path: "/v1/carts/" + id + "/add-item", as: "alice", body: `{"productId": "456", "quantity": 1}`}), http.StatusOK)

	t.Run("CustomerMayNotClaimUnavailable", func(t *testing.T) {
		mustProblem(t, a.post(t, req{path: path, as: "alice", body: `{"productId": "123", "reason": "product-unavailable"}`}),
			http.StatusForbidden, "reason-not-permitted")
	})
	t.Run("InvalidReason", func(t *testing.T) {
		mustProblem(t, a.post(t, req{path: path, as: "alice", body: `{"productId": "123", "reason": "bored"}`}),
			http.StatusUnprocessableEntity, "invalid-reason")
	})
	t.Run("OK", func(t *testing.T) {
		if res := mustOK(t, a.post(t, req{path: path, as: "alice", body: `{"productId": "123"}`}), http.StatusOK); res.Version != 4 {
			t.Fatalf("version = %d, want 4", res.Version)
		}
	})
	t.Run("NotInCart", func(t *testing.T) {
		mustProblem(t, a.post(t, req{path: path, as: "alice", body: `{"productId": "123"}`}), http.StatusConflict, "item-not-in-cart")
	})
	t.Run("SystemCallerUnavailable", func(t *testing.T) {
		res := mustOK(t, a.post(t, req{path: path, as: "catalog-sync", role: "system",
			body: `{"productId": "456", "reason": "product-unavailable"}`}), http.StatusOK)
		if res.Version != 5 {
			t.Fatalf("version = %d, want 5", res.Version)
		}
		evs, err := eventlog.ReadStream(t.Context(), a.pool, id, 4, 0)
		if err != nil || len(evs) != 1 {
			t.Fatalf("events after v4: %d, %v", len(evs), err)
		}
		r, err := evs[0].Recorded()
		if err != nil {
			t.Fatal(err)
		}
		want := cart.ItemRemoved{ProductID: "456", Quantity: 1, Reason: cart.ReasonProductUnavailable}
		if r.Event != want || evs[0].Metadata.Actor != "catalog-sync" {
			t.Fatalf("event %+v by %q; want %+v by catalog-sync", r.Event, evs[0].Metadata.Actor, want)
		}
	})
}

func TestChangeQuantity(t *testing.T) {
	t.Parallel()
	a := mustAPI(t)
	id := a.mustCart(t, "alice")
	path := "/v1/carts/" + id + "/change-quantity"
	mustOK(t, a.post(t, req{path: "/v1/carts/" + id + "/add-item", as: "alice", body: `{"productId": "123", "quantity": 2}`}), http.StatusOK)

	if res := mustOK(t, a.post(t, req{path: path, as: "alice", body: `{"productId": "123", "quantity": 5}`}), http.StatusOK); res.Version != 3 {
		t.Fatalf("version = %d, want 3", res.Version)
	}
	t.Run("SameQuantityIsANoOp", func(t *testing.T) {
		before := a.eventCount(t)
		if res := mustOK(t, a.post(t, req{path: path, as: "alice", body: `{"productId": "123", "quantity": 5}`}), http.StatusOK); res.Version != 3 {
			t.Fatalf("version = %d, want 3", res.Version)
		}
		if n := a.eventCount(t); n != before {
			t.Fatalf("a no-op wrote %d events", n-before)
		}
	})
	t.Run("OutOfRange", func(t *testing.T) {
		mustProblem(t, a.post(t, req{path: path, as: "alice", body: `{"productId": "123", "quantity": 100}`}), 422, "invalid-quantity")
	})
	t.Run("NotInCart", func(t *testing.T) {
		mustProblem(t, a.post(t, req{path: path, as: "alice", body: `{"productId": "456", "quantity": 1}`}), 409, "item-not-in-cart")
	})
}

func TestCheckout(t *testing.T) {
	t.Parallel()
	a := mustAPI(t)
	id := a.mustCart(t, "alice")
	path := "/v1/carts/" + id + "/checkout"

	mustProblem(t, a.post(t, req{path: path, as: "alice"}), http.StatusConflict, "cart-empty")
	mustOK(t, a.post(t, req{path: "/v1/carts/" + id + "/add-item", as: "alice", body: `{"productId": "123", "quantity": 1}`}), http.StatusOK)
	mustProblem(t, a.post(t, req{path: path, as: "alice", body: `{"express": true}`}), http.StatusBadRequest, "malformed-body")
	mustProblem(t, a.post(t, req{path: path, as: "bob"}), http.StatusNotFound, "cart-not-found")

	if res := mustOK(t, a.post(t, req{path: path, as: "alice", body: `{}`}), http.StatusOK); res.Version != 3 {
		t.Fatalf("version = %d, want 3", res.Version)
	}
	t.Run("CheckedOutCartIsAConflict", func(t *testing.T) {
		mustProblem(t, a.post(t, req{path: path, as: "alice"}), http.StatusConflict, "cart-checked-out")
		mustProblem(t, a.post(t, req{path: "/v1/carts/" + id + "/add-item", as: "alice", body: `{"productId": "123", "quantity": 1}`}),
			http.StatusConflict, "cart-checked-out")
	})
	t.Run("EmptyBodyWithoutContentType", func(t *testing.T) {
		other := a.mustCart(t, "carol")
		mustOK(t, a.post(t, req{path: "/v1/carts/" + other + "/add-item", as: "carol", body: `{"productId": "456", "quantity": 1}`}), http.StatusOK)
		hr := httptest.NewRequest(http.MethodPost, "/v1/carts/"+other+"/checkout", http.NoBody)
		hr.Header.Set(echo.HeaderAuthorization, "Bearer "+token(t, "carol", ""))
		rec := httptest.NewRecorder()
		a.e.ServeHTTP(rec, hr)
		mustOK(t, rec, http.StatusOK)
	})
}

func TestIfMatch(t *testing.T) {
	t.Parallel()
	a := mustAPI(t)
	id := a.mustCart(t, "alice")
	path := "/v1/carts/" + id + "/add-item"
	body := `{"productId": "123", "quantity": 1}`
	for _, tc := range []struct {
		ifMatch string
		status  int
		code    string
	}{
		{`"1"`, 200, ""},
		{`"1"`, 412, "version-mismatch"}, // now at 2
		{`W/"2"`, 412, "version-mismatch"},
		{`"7", "2"`, 200, ""},
		{`*`, 200, ""},
		{`3`, 400, "malformed-if-match"},
	} {
		rec := a.post(t, req{path: path, as: "alice", body: body, header: map[string]string{"If-Match": tc.ifMatch}})
		if tc.status == 200 {
			mustOK(t, rec, 200)
		} else {
			mustProblem(t, rec, tc.status, tc.code)
		}
	}
	t.Run("StrangerGets404NotTheVersion", func(t *testing.T) {
		mustProblem(t, a.post(t, req{path: path, as: "bob", body: body, header: map[string]string{"If-Match": `"1"`}}),
			http.StatusNotFound, "cart-not-found")
	})
}

func TestMetadata(t *testing.T) {
	t.Parallel()
	a := mustAPI(t)
	traceparent := "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	rec := a.post(t, req{path: "/v1/carts", as: "alice", header: map[string]string{
		httpapi.HeaderCorrelationID: "order-flow-42", echo.HeaderXRequestID: "req-abc", "Traceparent": traceparent,
	}})
	id := mustOK(t, rec, http.StatusCreated).CartID
	if got := rec.Header().Get(httpapi.HeaderCorrelationID); got != "order-flow-42" {
		t.Errorf("response X-Correlation-Id = %q", got)
	}
	rec = a.post(t, req{path: "/v1/carts/" + id + "/add-item", as: "alice", body: `{"productId": "123", "quantity": 1}`,
		header: map[string]string{httpapi.HeaderCorrelationID: "bad id with spaces", echo.HeaderXRequestID: "req-def"}})
	mustOK(t, rec, http.StatusOK)

	evs, err := eventlog.ReadStream(t.Context(), a.pool, id, 0, 0)
	if err != nil || len(evs) != 2 {
		t.Fatalf("events = %d, %v", len(evs), err)
	}
	if md := evs[0].Metadata; md.Actor != "alice" || md.CorrelationID != "order-flow-42" || md.CausationID != "req-abc" || md.TraceParent != traceparent {
		t.Errorf("open metadata = %+v", md)
	}
	if md := evs[1].Metadata; md.CorrelationID != "req-def" || md.CausationID != "req-def" {
		t.Errorf("add-item metadata = %+v; an insane correlation id falls back to the request id", md)
	}
}

// TestBodyTooLarge: a chunked body over the limit is cut off while decoding.
func TestBodyTooLarge(t *testing.T) {
	t.Parallel()
	a := mustAPI(t)
	id := a.mustCart(t, "alice")
	body := `{"productId": "` + strings.Repeat("x", 100<<10) + `", "quantity": 1}`
	hr := httptest.NewRequest(http.MethodPost, "/v1/carts/"+id+"/add-item", io.MultiReader(strings.NewReader(body)))
	hr.ContentLength = -1
	hr.Header.Set(echo.HeaderContentType, echo.MIMEApplicationJSON)
	hr.Header.Set(echo.HeaderAuthorization, "Bearer "+token(t, "alice", ""))
	rec := httptest.NewRecorder()
	a.e.ServeHTTP(rec, hr)
	mustProblem(t, rec, http.StatusRequestEntityTooLarge, "body-too-large")
}
