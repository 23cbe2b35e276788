// Package httpserver is the HTTP plumbing the three services share: an echo
// instance with the shared problem handler, request ids, access logs, a body
// limit and Prometheus metrics; the health endpoints; and a server that
// listens first and shuts down gracefully.
package httpserver

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"runtime/debug"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/cart-cqrs/cart/pkg/problem"
	"github.com/cart-cqrs/cart/pkg/telemetry"
)

// BodyLimit is the largest request body accepted; commands are small JSON.
const BodyLimit = "64K"

// NewEcho returns an echo instance with the shared middleware stack. Metrics
// are registered in reg, labelled with service.
func NewEcho(logger *slog.Logger, reg *prometheus.Registry, service string) *echo.Echo {
	if logger == nil {
		logger = slog.Default()
	}
	e := echo.New()
	e.HideBanner = true
	e.HidePort = true
	e.HTTPErrorHandler = problem.HTTPErrorHandler(logger)
	m := newMetrics(reg, service)
	e.Use(requestID)
	e.Use(traceRequests(service)) // inside requestID, so log lines of the span carry both
	e.Use(
		observe(logger, m), // outside recover, so it sees the status of a panic
		recoverPanic,
		middleware.BodyLimit(BodyLimit),
	)
	return e
}

// HeaderCorrelationID names the id a client gives a whole interaction (many
// requests, and the events they cause).
const HeaderCorrelationID = "X-Correlation-Id"

var (
	// saneRequestID accepts ids that are safe to echo into headers and logs.
	saneRequestID = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,64}$`)
	// saneCorrelationID accepts ids that are safe to store and log.
	saneCorrelationID = regexp.MustCompile(`^[A-Za-z0-9._:/+=-]{1,128}$`)
)

type requestIDKey struct{}

// requestID reuses a sane incoming X-Request-Id (so a trace spans the
// gateway and us) or makes a new one, and returns it on the response. The
// request's correlation id (telemetry.CorrelationID) is the client's sane
// X-Correlation-Id, else the request id.
func requestID(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		req := c.Request()
		id := req.Header.Get(echo.HeaderXRequestID)
		if !saneRequestID.MatchString(id) {
			id = uuid.NewString()
		}
		corr := req.Header.Get(HeaderCorrelationID)
		if !saneCorrelationID.MatchString(corr) {
			corr = id
		}
		c.Response().Header().Set(echo.HeaderXRequestID, id)
		ctx := telemetry.WithCorrelationID(context.WithValue(req.Context(), requestIDKey{}, id), corr)
		c.SetRequest(req.WithContext(ctx))
		return next(c)
	}
}

// RequestID returns the id of the request in ctx (a request's context), or
// "" — for adapters that log on behalf of a request.
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// observe hands errors to the error handler itself, so that the access log
// and the metrics record the status the client actually got.
func observe(logger *slog.Logger, m *metrics) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			c.Set(loggerKey, logger)
			start := time.Now()
			if err := next(c); err != nil {
				c.Error(err)
			}
			elapsed := time.Since(start)
			req, res := c.Request(), c.Response()
			method, route := methodLabel(req.Method), routeLabel(c)
			m.observe(method, route, res.Status, elapsed)
			logger.LogAttrs(req.Context(), slog.LevelDebug, "http request",
				slog.String("method", req.Method),
				slog.String("route", route),
				slog.Int("status", res.Status),
				slog.Duration("duration", elapsed),
				slog.String("requestId", res.Header().Get(echo.HeaderXRequestID)),
			)
			return nil
		}
	}
}

// panicError carries a recovered panic to the error handler, which logs it
// once at error level, stack included.
type panicError struct {
	value any
	stack []byte
}

func (p *panicError) Error() string { return fmt.Sprintf("panic: %v", p.value) }

func (p *panicError) LogValue() slog.Value {
	return slog.GroupValue(slog.String("panic", fmt.Sprint(p.value)), slog.String("stack", string(p.stack)))
}

func recoverPanic(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) (err error) {
		defer func() {
			r := recover()
			if r == nil {
				return
			}
			if r == http.ErrAbortHandler { //nolint:errorlint // sentinel panic value, compared as net/http does
				panic(r)
			}
			err = &panicError{value: r, stack: debug.Stack()}
		}()
		return next(c)
	}
}

const loggerKey = "httpserver.logger"

// loggerFrom returns NewEcho's logger to handlers mounted by this package.
func loggerFrom(c echo.Context) *slog.Logger {
	if l, ok := c.Get(loggerKey).(*slog.Logger); ok {
		return l
	}
	return slog.Default()
}
