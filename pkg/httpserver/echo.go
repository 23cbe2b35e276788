// Package httpserver is the HTTP plumbing the three services share: an echo
// instance with the shared problem handler, request ids, access logs, a body
// limit, Prometheus metrics and a strict edge (broken framing, ambiguous
// headers and wrong methods are the client's 4xx); the health endpoints; the
// management listener for /metrics; and a server that listens first and
// shuts down gracefully.
package httpserver

import (
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"math/rand/v2"
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
	s := &stack{logger: logger, metrics: newMetrics(reg, service), traced: traceRequests(service),
		bodyLimit: middleware.BodyLimit(BodyLimit), methods: &methods{e: e}}
	e.Use(s.middleware)
	return e
}

// stack is the shared middleware. Echo applies middleware anew for every
// request, each link a closure, so the links here are one middleware
// calling plain functions in turn: request id; the server span (inside it,
// so log lines of the span carry both); observe (outside recover, so it
// sees the status of a panic); headers that can be read two ways, and 405s;
// recover; the body limit; reading the body.
type stack struct {
	logger    *slog.Logger
	metrics   *metrics
	traced    func(c echo.Context, next echo.HandlerFunc) error
	bodyLimit echo.MiddlewareFunc
	methods   *methods
}

func (s *stack) middleware(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		requestID(c)
		if telemetry.Active() {
			return s.traced(c, func(c echo.Context) error { return s.observe(c, next) })
		}
		carryTraceContext(c)
		return s.observe(c, next)
	}
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
func requestID(c echo.Context) {
	req := c.Request()
	id := req.Header.Get(echo.HeaderXRequestID)
	if !saneRequestID.MatchString(id) {
		id = newRequestID()
	}
	corr := req.Header.Get(HeaderCorrelationID)
	if !saneCorrelationID.MatchString(corr) {
		corr = id
	}
	c.Response().Header().Set(echo.HeaderXRequestID, id)
	ctx := telemetry.WithCorrelationID(context.WithValue(req.Context(), requestIDKey{}, id), corr)
	c.SetRequest(req.WithContext(ctx))
}

// newRequestID makes a random (version 4) UUID. A request id must be
// unique, not secret: math/rand/v2's per-thread generator spares every
// request uuid.NewString's read of crypto/rand.
func newRequestID() string {
	var u uuid.UUID
	binary.LittleEndian.PutUint64(u[:8], rand.Uint64())
	binary.LittleEndian.PutUint64(u[8:], rand.Uint64())
	u[6] = u[6]&0x0f | 0x40 // version 4
	u[8] = u[8]&0x3f | 0x80 // the RFC 9562 variant
	return u.String()
}

// RequestID returns the id of the request in ctx (a request's context), or
// "" — for adapters that log on behalf of a request.
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// observe hands errors to the error handler itself, so that the access log
// and the metrics record the status the client actually got.
func (s *stack) observe(c echo.Context, next echo.HandlerFunc) error {
	c.Set(loggerKey, s.logger)
	start := time.Now()
	err := ambiguousHeaders(c.Request())
	if err == nil {
		next, err = s.methods.resolve(c, next)
	}
	if err == nil {
		err = s.recoverPanic(c, next)
	}
	if err != nil {
		c.Error(err)
	}
	elapsed := time.Since(start)
	req, res := c.Request(), c.Response()
	route := routeLabel(c)
	s.metrics.observe(methodLabel(req.Method), route, res.Status, elapsed)
	if ctx := req.Context(); s.logger.Enabled(ctx, slog.LevelDebug) {
		s.logger.LogAttrs(ctx, slog.LevelDebug, "http request",
			slog.String("method", req.Method),
			slog.String("route", route),
			slog.Int("status", res.Status),
			slog.Duration("duration", elapsed),
			slog.String("requestId", res.Header().Get(echo.HeaderXRequestID)),
		)
	}
	return nil
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

// recoverPanic turns a panic of next into a panicError, and applies the
// body limit on the way.
func (s *stack) recoverPanic(c echo.Context, next echo.HandlerFunc) (err error) {
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
	// A request without a body (net/http gives it NoBody) has nothing to
	// limit: the limit's reader and its closures are for those with one.
	if body := c.Request().Body; body != nil && body != http.NoBody {
		return s.bodyLimit(func(c echo.Context) error { return readBody(c, next) })(c)
	}
	return next(c)
}

const loggerKey = "httpserver.logger"

// loggerFrom returns NewEcho's logger to handlers mounted by this package.
func loggerFrom(c echo.Context) *slog.Logger {
	if l, ok := c.Get(loggerKey).(*slog.Logger); ok {
		return l
	}
	return slog.Default()
}
