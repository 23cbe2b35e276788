package httpapi

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/cart-cqrs/cart/pkg/problem"
	"github.com/cart-cqrs/cart/services/command/internal/idempotency"
)

// idempotencyRequest reads the Idempotency-Key header of a command whose
// decoded body is body: nil without the header, a 400 problem when it is
// malformed or sent twice. The key is the caller's (keys of two callers never
// collide), and the request it names is the method, the route with the
// actual cart id as stored (lower case) and the canonical body.
func idempotencyRequest(c echo.Context, caller string, body any) (*idempotency.Request, error) {
	values := c.Request().Header.Values(idempotency.Header)
	if len(values) == 0 {
		return nil, nil
	}
	if len(values) > 1 || !idempotency.ValidKey(values[0]) {
		return nil, problem.New(problem.Malformed, CodeInvalidKey,
			"Idempotency-Key must be sent once, as 1 to 255 printable ASCII characters")
	}
	method, path := c.Request().Method, c.Path()
	if id := c.Param("cartId"); id != "" {
		path = strings.Replace(path, ":cartId", canonical(id), 1)
	}
	hash, err := idempotency.Fingerprint(method, path, body)
	if err != nil {
		return nil, fmt.Errorf("httpapi: %w", err)
	}
	return &idempotency.Request{Caller: caller, Key: values[0], Method: method, Path: path, Hash: hash}, nil
}

// send writes a response stored under an idempotency key — this request's or,
// Replayed, an earlier one's — as it was first sent: status, body, ETag and,
// for a new cart, Location.
func send(c echo.Context, r idempotency.Response) error {
	h := c.Response().Header()
	h.Set("ETag", etag(r.Version))
	if r.Status == http.StatusCreated {
		h.Set(echo.HeaderLocation, "/v1/carts/"+r.CartID)
	}
	if r.Replayed {
		h.Set(idempotency.ReplayedHeader, "true")
	}
	return c.JSONBlob(r.Status, r.Body)
}
