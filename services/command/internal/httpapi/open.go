package httpapi

import (
	"net/http"

	"github.com/labstack/echo/v4"
)

// open handles POST /v1/carts: 201 with Location when a cart was opened, 200
// when the caller's open cart already existed. The body is empty or {}.
func (h *Handler) open(c echo.Context) error {
	var req struct{}
	if err := decode(c, &req, true); err != nil {
		return err
	}
	by, md, err := caller(c)
	if err != nil {
		return err
	}
	idem, err := idempotencyRequest(c, by.ID, req)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	if idem != nil {
		resp, err := h.carts.OpenIdempotent(ctx, *idem, by, md)
		if err != nil {
			return err
		}
		return send(c, resp)
	}
	id, version, created, err := h.carts.Open(ctx, by, md)
	if err != nil {
		return err
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
		c.Response().Header().Set(echo.HeaderLocation, "/v1/carts/"+id)
	}
	return respond(c, status, id, version)
}
