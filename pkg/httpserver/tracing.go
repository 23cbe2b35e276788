package httpserver

import (
	"net/http"

	"github.com/labstack/echo/v4"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/cart-cqrs/cart/pkg/telemetry"
)

// untraced are the paths probes and scrapers call every few seconds: a span
// each would bury the requests worth tracing.
var untraced = map[string]bool{"/healthz": true, "/readyz": true}

// traceRequests returns what starts a server span per request (otelhttp:
// the W3C trace context of the request is its parent, the HTTP semantic
// conventions its attributes) around next, named after the matched route,
// e.g. "POST /v1/carts/:cartId/add-item", once echo has routed the request.
// It is for while tracing is active (telemetry.Active); otherwise
// carryTraceContext does what is needed.
func traceRequests(service string) func(c echo.Context, next echo.HandlerFunc) error {
	traced := echo.WrapMiddleware(otelhttp.NewMiddleware(service,
		otelhttp.WithPropagators(telemetry.Propagator),
		otelhttp.WithFilter(func(r *http.Request) bool { return !untraced[r.URL.Path] }),
	))
	return func(c echo.Context, next echo.HandlerFunc) error { return traced(nameSpan(next))(c) }
}

// carryTraceContext puts the caller's trace context, if any, in the
// request's context while nothing records spans: what a command stores then
// continues the caller's trace.
func carryTraceContext(c echo.Context) {
	req := c.Request()
	if req.Header.Get("Traceparent") != "" {
		ctx := telemetry.Propagator.Extract(req.Context(), propagation.HeaderCarrier(req.Header))
		c.SetRequest(req.WithContext(ctx))
	}
}

// nameSpan names the request's span after the route echo matched.
func nameSpan(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if span := trace.SpanFromContext(c.Request().Context()); span.IsRecording() {
			route := routeLabel(c)
			span.SetName(c.Request().Method + " " + route)
			span.SetAttributes(attribute.String("http.route", route))
		}
		return next(c)
	}
}
