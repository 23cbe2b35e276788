package httpapi

import (
	"net/http"

	"github.com/labstack/echo/v4"
)

// open handles POST /v1/carts: 201 with Location when a cart was opened, 200
// when the caller's open cart already existed. The body is empty or {}.
func (h *Handler) open(c echo.Context) error {
	if err := decode(c, &struct{}{}, true); err != nil {
		return err
	}
	by, md, err := caller(c)
	if err != nil {
		return err
	}
	id, version, created, err := h.carts.Open(c.Request().Context(), by, md)
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
