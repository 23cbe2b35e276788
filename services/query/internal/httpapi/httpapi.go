// Package httpapi serves the cart read model over HTTP: the JSON documents
// the projector stored, with ETags from their versions. Every route is
// behind bearer authentication, and a caller sees only its own carts.
package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/cart-cqrs/cart/pkg/auth"
	"github.com/cart-cqrs/cart/pkg/problem"
	"github.com/cart-cqrs/cart/pkg/readmodel"
)

// Problem codes of the query API.
const (
	CodeCartNotFound         = "cart-not-found"
	CodeNoOpenCart           = "no-open-cart"
	CodeReadModelUnavailable = "read-model-unavailable"
)

// Carts is the read model as the handlers need it. Documents come back as
// stored, so the response is byte for byte what the projector wrote.
type Carts interface {
	Cart(ctx context.Context, cartID string) (doc []byte, found bool, err error)
	OpenCart(ctx context.Context, customerID string) (doc []byte, found bool, err error)
}

// Handler holds the query handlers' dependencies.
type Handler struct {
	carts Carts
}

// Register mounts the /v1 query routes on e, behind auth.Middleware(v).
func Register(e *echo.Echo, v *auth.Verifier, carts Carts) {
	h := &Handler{carts: carts}
	g := e.Group("/v1", auth.Middleware(v))
	g.GET("/carts/:cartId", h.GetCart)
	g.GET("/customers/me/cart", h.GetMyCart)
}

// document is a stored document with the fields the handlers decide on.
type document struct {
	raw []byte
	readmodel.Cart
}

func decode(raw []byte) (document, error) {
	d := document{raw: raw}
	if err := json.Unmarshal(raw, &d.Cart); err != nil {
		return document{}, fmt.Errorf("httpapi: decode cart document: %w", err)
	}
	return d, nil
}

// unavailable turns a read-model error into a 503 — unless the client went
// away or the request timed out, which the shared handler reports itself.
func unavailable(err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return problem.Wrap(problem.Unavailable, CodeReadModelUnavailable, err)
}

func principal(c echo.Context) (auth.Principal, error) {
	p, ok := auth.FromContext(c)
	if !ok {
		return auth.Principal{}, errors.New("httpapi: no principal: route is not behind auth.Middleware")
	}
	return p, nil
}

func validCartID(id string) bool {
	_, err := uuid.Parse(id)
	return err == nil && len(id) == 36
}

// serve writes the document with its ETag, or 304 when If-None-Match
// matches it.
func serve(c echo.Context, d document) error {
	etag := `"` + strconv.Itoa(d.Version) + `"`
	h := c.Response().Header()
	h.Set(echo.HeaderCacheControl, "private, no-cache")
	h.Set("ETag", etag)
	if inm := c.Request().Header.Get("If-None-Match"); inm != "" && noneMatchHits(inm, etag) {
		return c.NoContent(http.StatusNotModified)
	}
	return c.JSONBlob(http.StatusOK, d.raw)
}

// noneMatchHits applies RFC 9110 §13.1.2: "*" matches any current
// representation; otherwise the list is compared weakly (W/ is ignored).
func noneMatchHits(header, etag string) bool {
	if strings.TrimSpace(header) == "*" {
		return true
	}
	for tag := range strings.SplitSeq(header, ",") {
		if strings.TrimPrefix(strings.TrimSpace(tag), "W/") == etag {
			return true
		}
	}
	return false
}
