// Package httpapi is the command service's HTTP interface: one echo handler
// per cart command under /v1, each turning a request into a cart command,
// running it through the repository and answering with the cart's new
// version. A command sent with an Idempotency-Key is answered, on a retry,
// with its first response. The write side's errors become problems in one
// table (errors.go); the shared problem handler writes them as RFC 9457
// bodies.
package httpapi

import (
	"context"
	"fmt"
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/cart-cqrs/cart/pkg/auth"
	"github.com/cart-cqrs/cart/pkg/cart"
	"github.com/cart-cqrs/cart/pkg/envelope"
	"github.com/cart-cqrs/cart/services/command/internal/idempotency"
)

// Carts is what the handlers need from the write side.
type Carts interface {
	// Open returns the caller's open cart, or opens one (created).
	Open(ctx context.Context, by cart.Actor, md envelope.Metadata) (cartID string, version int, created bool, err error)
	// Update runs decide on the cart's current state and appends the events
	// it returns, atomically and with optimistic concurrency.
	Update(ctx context.Context, cartID string, by cart.Actor, md envelope.Metadata,
		decide func(cart.State) ([]cart.Event, error)) (version int, err error)
	// OpenIdempotent and UpdateIdempotent are Open and Update under an
	// idempotency key: the first request with the key runs and stores its
	// response (idempotency.Succeeded), with its events; a retry gets that
	// response back (Replayed) and runs nothing, and another request with
	// the key an *idempotency.KeyReusedError.
	OpenIdempotent(ctx context.Context, req idempotency.Request, by cart.Actor, md envelope.Metadata) (idempotency.Response, error)
	UpdateIdempotent(ctx context.Context, req idempotency.Request, cartID string, by cart.Actor, md envelope.Metadata,
		decide func(cart.State) ([]cart.Event, error)) (idempotency.Response, error)
	// Product returns a catalog entry, or nil when the product is unknown.
	Product(ctx context.Context, id string) (*cart.Product, error)
}

// Handler serves the cart commands.
type Handler struct {
	carts Carts
}

// Mount registers the command routes on e under /v1, behind authentication
// and then mw (the per-customer rate limit, which needs the caller), and
// registers cart_commands_total with reg (nil: counted, not exported).
func Mount(e *echo.Echo, carts Carts, verifier *auth.Verifier, reg prometheus.Registerer, mw ...echo.MiddlewareFunc) error {
	m, err := newCommandMetrics(reg)
	if err != nil {
		return fmt.Errorf("httpapi: metrics: %w", err)
	}
	h := &Handler{carts: carts}
	v1 := e.Group("/v1", append([]echo.MiddlewareFunc{auth.Middleware(verifier)}, mw...)...)
	route := func(command string, h echo.HandlerFunc) echo.HandlerFunc { return m.count(command, answer(h)) }
	v1.POST("/carts", route("open", h.open))
	v1.POST("/carts/:cartId/add-item", route("add-item", h.addItem))
	v1.POST("/carts/:cartId/remove-item", route("remove-item", h.removeItem))
	v1.POST("/carts/:cartId/change-quantity", route("change-quantity", h.changeQuantity))
	v1.POST("/carts/:cartId/checkout", route("checkout", h.checkout))
	return nil
}

// Result is the body of every successful command: the cart and its stream
// version after the command (also sent as the ETag). It is the body an
// idempotency key stores, so that a replay reads the same.
type Result = idempotency.Result

func respond(c echo.Context, status int, cartID string, version int) error {
	c.Response().Header().Set("ETag", etag(version))
	return c.JSON(status, Result{CartID: cartID, Version: version})
}

func etag(version int) string { return `"` + strconv.Itoa(version) + `"` }

// update runs cmd, decoded from body, on the cart named in the path,
// honouring If-Match and Idempotency-Key, and answers 200 with the new
// version.
func (h *Handler) update(c echo.Context, body any, cmd cart.Command) error {
	return h.updateWith(c, body, func() (cart.Command, error) { return cmd, nil })
}

// updateWith is update for a command that reads something (the catalog) to
// be made: command runs each time the command is decided.
func (h *Handler) updateWith(c echo.Context, body any, command func() (cart.Command, error)) error {
	by, md, err := caller(c)
	if err != nil {
		return err
	}
	precondition, err := ifMatch(c.Request().Header)
	if err != nil {
		return err
	}
	idem, err := idempotencyRequest(c, by.ID, body)
	if err != nil {
		return err
	}
	cartID := canonical(c.Param("cartId"))
	decide := func(s cart.State) ([]cart.Event, error) {
		cmd, err := command()
		if err != nil {
			return nil, err
		}
		// Ownership first: If-Match must not tell a stranger the version.
		evs, err := cart.Decide(s, by, cmd)
		if err != nil {
			return nil, err
		}
		if err := precondition(s.Version); err != nil {
			return nil, err
		}
		return evs, nil
	}
	ctx := c.Request().Context()
	if idem != nil {
		resp, err := h.carts.UpdateIdempotent(ctx, *idem, cartID, by, md, decide)
		if err != nil {
			return err
		}
		return send(c, resp)
	}
	version, err := h.carts.Update(ctx, cartID, by, md, decide)
	if err != nil {
		return err
	}
	return respond(c, http.StatusOK, cartID, version)
}
