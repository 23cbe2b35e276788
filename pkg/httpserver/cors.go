package httpserver

import (
	"net/http"
	"slices"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
)

// CORS lets the browser origins in l.CORSAllowedOrigins call the API. It
// runs before routing (e.Pre), so preflights are answered without a token
// and every response — 401 and 429 problems included — carries the
// headers a browser needs to read it. Origins match exactly; nothing else
// (no wildcard, no subdomain) gets Access-Control-Allow-Origin. Credentials
// are not allowed: the API authenticates with a bearer token, not cookies.
// With no origins configured it installs nothing.
func CORS(e *echo.Echo, l Limits) {
	if len(l.CORSAllowedOrigins) == 0 {
		return
	}
	allowed := slices.Clone(l.CORSAllowedOrigins)
	e.Pre(middleware.CORSWithConfig(middleware.CORSConfig{
		AllowOriginFunc: func(origin string) (bool, error) {
			return slices.Contains(allowed, origin), nil
		},
		AllowMethods: []string{http.MethodGet, http.MethodPost, http.MethodOptions},
		AllowHeaders: []string{
			echo.HeaderAuthorization, echo.HeaderContentType, "Idempotency-Key", "If-Match",
			"If-None-Match", "X-Correlation-Id", echo.HeaderXRequestID,
		},
		ExposeHeaders: []string{
			"ETag", echo.HeaderLocation, echo.HeaderRetryAfter, echo.HeaderXRequestID,
			"Idempotent-Replayed", "X-Read-Model-Version",
		},
		AllowCredentials: false,
		MaxAge:           int(CORSMaxAge.Seconds()),
	}))
}
