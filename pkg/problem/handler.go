package problem

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/cart-cqrs/cart/pkg/cart"
)

// ContentType is the media type of every error body (RFC 9457).
const ContentType = "application/problem+json"

// TypeBase prefixes a code to form the problem's "type" URI.
const TypeBase = "https://cart-cqrs.dev/problems/"

// StatusClientClosedRequest is recorded (nginx's 499) when the client went
// away before we answered: not our failure, and nobody reads the body.
const StatusClientClosedRequest = 499

// Body is the RFC 9457 document, with the code and request id as extensions.
type Body struct {
	Type      string `json:"type"`
	Title     string `json:"title"`
	Status    int    `json:"status"`
	Detail    string `json:"detail,omitempty"`
	Instance  string `json:"instance,omitempty"`
	Code      string `json:"code"`
	RequestID string `json:"requestId,omitempty"`
}

// echoCodes names the statuses echo produces by itself (router, binder,
// body limit, middlewares) with stable codes.
var echoCodes = map[int]string{
	http.StatusBadRequest:            "malformed-request",
	http.StatusUnauthorized:          "unauthorized",
	http.StatusForbidden:             "forbidden",
	http.StatusNotFound:              "not-found",
	http.StatusMethodNotAllowed:      "method-not-allowed",
	http.StatusNotAcceptable:         "not-acceptable",
	http.StatusRequestTimeout:        "request-timeout",
	http.StatusConflict:              "conflict",
	http.StatusPreconditionFailed:    "precondition-failed",
	http.StatusRequestEntityTooLarge: "body-too-large",
	http.StatusUnsupportedMediaType:  "unsupported-media-type",
	http.StatusUnprocessableEntity:   "invalid",
	http.StatusTooManyRequests:       "rate-limited",
	http.StatusInternalServerError:   "internal",
	http.StatusServiceUnavailable:    "unavailable",
}

// outcome is what the client will see, plus what the logs need.
type outcome struct {
	body  Body
	cause error // logged, never sent
}

// classify maps err to an outcome using errors.As/errors.Is only: an error's
// text never decides its status.
func classify(c echo.Context, err error) outcome {
	var (
		pe *Error
		ce *cart.Error
		he *echo.HTTPError
	)
	switch {
	case errors.As(err, &pe):
		o := fromKind(pe.Kind, pe.code(), pe.Detail)
		o.cause = err
		return o
	case errors.As(err, &ce):
		kind := Internal
		switch ce.Kind {
		case cart.KindInvalid:
			kind = Invalid
		case cart.KindNotFound:
			kind = NotFound
		case cart.KindConflict:
			kind = Conflict
		case cart.KindForbidden:
			kind = Forbidden
		}
		detail := ce.Message
		if kind == Internal {
			detail = ""
		}
		o := fromKind(kind, ce.Code, detail)
		o.cause = err
		return o
	case errors.As(err, &he):
		return fromHTTPError(he, err)
	case errors.Is(err, context.DeadlineExceeded):
		o := fromKind(Unavailable, "timeout", "the request timed out; retry later")
		o.cause = err
		return o
	case errors.Is(err, context.Canceled) && c.Request().Context().Err() != nil:
		return outcome{
			body: Body{Status: StatusClientClosedRequest, Code: "client-closed-request",
				Title: "Client closed request"},
			cause: err,
		}
	default:
		o := fromKind(Internal, "", "")
		o.cause = err
		return o
	}
}

func fromKind(kind Kind, code, detail string) outcome {
	if code == "" {
		code = kind.String()
	}
	if detail == "" {
		if kind == Internal {
			detail = "internal error"
		} else {
			detail = kind.Title()
		}
	}
	return outcome{body: Body{Status: kind.Status(), Title: kind.Title(), Code: code, Detail: detail}}
}

func fromHTTPError(he *echo.HTTPError, err error) outcome {
	// echo nests HTTPErrors (e.g. a middleware re-wrapping the binder's);
	// the innermost one is the most specific.
	var inner *echo.HTTPError
	if he.Internal != nil && errors.As(he.Internal, &inner) {
		he = inner
	}
	status := he.Code
	if status < 400 || status > 599 {
		status = http.StatusInternalServerError
	}
	code, ok := echoCodes[status]
	if !ok {
		code = "http-" + strconv.Itoa(status)
	}
	title := http.StatusText(status)
	if k, ok := kindForStatus(status); ok {
		title = k.Title()
	}
	detail := title
	if status >= 500 {
		detail = "internal error"
		if status == http.StatusServiceUnavailable {
			detail = title
		}
	} else if m, ok := he.Message.(string); ok && m != "" {
		detail = m
	} else if m, ok := he.Message.(error); ok {
		detail = m.Error()
	}
	return outcome{body: Body{Status: status, Title: title, Code: code, Detail: detail}, cause: err}
}

// HTTPErrorHandler returns echo's central error handler: it classifies the
// error, writes the problem body and logs — our failures (500) at error
// level with the request id the client was given, 503s (a dependency down,
// the read model behind) at warn, the client's mistakes at debug.
func HTTPErrorHandler(logger *slog.Logger) echo.HTTPErrorHandler {
	if logger == nil {
		logger = slog.Default()
	}
	return func(err error, c echo.Context) {
		req, res := c.Request(), c.Response()
		o := classify(c, err)
		b := o.body
		b.Type = TypeBase + b.Code
		b.Instance = req.URL.Path
		b.RequestID = res.Header().Get(echo.HeaderXRequestID)

		// Our bugs are errors; a dependency that is down or a read model
		// that is behind is worth a warning (metrics and /readyz tell the
		// rest); the callers' mistakes are theirs, logged for debugging only.
		level := slog.LevelDebug
		switch {
		case b.Status == http.StatusServiceUnavailable:
			level = slog.LevelWarn
		case b.Status >= 500:
			level = slog.LevelError
		}
		attrs := []slog.Attr{
			slog.String("method", req.Method),
			slog.String("path", req.URL.Path),
			slog.String("requestId", b.RequestID),
			slog.Int("status", b.Status),
			slog.String("code", b.Code),
			slog.Any("error", o.cause),
		}
		ctx := req.Context()
		if res.Committed {
			logger.LogAttrs(ctx, level, "error after the response was committed", attrs...)
			return
		}
		logger.LogAttrs(ctx, level, "request failed", attrs...)

		if b.Status == http.StatusUnauthorized {
			res.Header().Set(echo.HeaderWWWAuthenticate, wwwAuthenticate(req))
		}
		if req.Method == http.MethodHead {
			err = c.NoContent(b.Status)
		} else {
			var data []byte
			if data, err = json.Marshal(b); err == nil {
				err = c.Blob(b.Status, ContentType, data)
			}
		}
		if err != nil {
			logger.LogAttrs(ctx, slog.LevelDebug, "write problem response",
				slog.String("requestId", b.RequestID), slog.Any("error", err))
		}
	}
}

// wwwAuthenticate follows RFC 6750 §3: a bare challenge when no token was
// sent, error="invalid_token" when one was sent and refused.
func wwwAuthenticate(req *http.Request) string {
	scheme, token, ok := strings.Cut(req.Header.Get(echo.HeaderAuthorization), " ")
	if ok && strings.EqualFold(scheme, "Bearer") && strings.TrimSpace(token) != "" {
		return `Bearer error="invalid_token"`
	}
	return "Bearer"
}

// Describe returns the status and problem code that HTTPErrorHandler answers
// err with, for metrics that count outcomes by what the client saw.
func Describe(c echo.Context, err error) (status int, code string) {
	o := classify(c, err)
	return o.body.Status, o.body.Code
}
