package problem_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/cart-cqrs/cart/pkg/cart"
	"github.com/cart-cqrs/cart/pkg/problem"
)

// newEcho returns an echo with the shared handler, a fixed request id and a
// route that returns whatever error the test puts in the X-Case header.
func newEcho(t *testing.T, logs *bytes.Buffer, errs map[string]error) *echo.Echo {
	t.Helper()
	e := echo.New()
	e.HTTPErrorHandler = problem.HTTPErrorHandler(slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	e.Use(func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			c.Response().Header().Set(echo.HeaderXRequestID, "req-1")
			return next(c)
		}
	})
	e.GET("/fail", func(c echo.Context) error { return errs[c.Request().Header.Get("X-Case")] })
	e.HEAD("/fail", func(c echo.Context) error { return errs[c.Request().Header.Get("X-Case")] })
	e.POST("/bind", func(c echo.Context) error {
		var v struct{ N int }
		if err := c.Bind(&v); err != nil {
			return err
		}
		return c.NoContent(http.StatusNoContent)
	})
	e.GET("/limited", func(c echo.Context) error {
		c.Response().Header().Set("Retry-After", "7")
		return echo.ErrTooManyRequests
	})
	e.GET("/committed", func(c echo.Context) error {
		if err := c.String(http.StatusOK, "partial"); err != nil {
			return err
		}
		return errors.New("late failure")
	})
	return e
}

func TestHTTPErrorHandler(t *testing.T) {
	errs := map[string]error{
		"malformed":     problem.New(problem.Malformed, "bad-json", "body is not JSON"),
		"unauthorized":  problem.New(problem.Unauthorized, "unauthorized", "missing bearer token"),
		"forbidden":     problem.New(problem.Forbidden, "", "not yours"),
		"notfound":      problem.New(problem.NotFound, "cart-not-found", "cart not found"),
		"conflict":      problem.New(problem.Conflict, "version-conflict", "concurrent update"),
		"precondition":  problem.New(problem.PreconditionFailed, "version-mismatch", "If-Match does not match"),
		"toolarge":      problem.New(problem.TooLarge, "", "too big"),
		"mediatype":     problem.New(problem.UnsupportedMediaType, "", "use JSON"),
		"invalid":       problem.New(problem.Invalid, "invalid-quantity", "quantity must be between 1 and 99"),
		"ratelimited":   problem.New(problem.RateLimited, "", "slow down"),
		"unavailable":   problem.Wrap(problem.Unavailable, "redis-down", errors.New("dial tcp 10.0.0.7:6379: refused")),
		"internal":      problem.Wrap(problem.Internal, "", errors.New("secret table foo")),
		"wrapped":       fmt.Errorf("handler: %w", problem.New(problem.Conflict, "version-conflict", "concurrent update")),
		"cartInvalid":   fmt.Errorf("decide: %w", cart.ErrInvalidQuantity),
		"cartNotFound":  cart.ErrNotFound,
		"cartConflict":  cart.ErrCheckedOut,
		"cartForbidden": cart.ErrReasonNotPermitted,
		"echo401":       echo.ErrUnauthorized,
		"echo413":       echo.ErrStatusRequestEntityTooLarge,
		"echoNested":    echo.NewHTTPError(http.StatusBadRequest).SetInternal(echo.ErrUnsupportedMediaType),
		"deadline":      fmt.Errorf("postgres: load cart: %w", context.DeadlineExceeded),
		"plain":         errors.New("postgres: pq: relation \"secret\" does not exist"),
	}
	tests := []struct {
		name, method, path, caseID, body, contentType string
		header                                        http.Header
		status                                        int
		code                                          string
		detail                                        string
	}{
		{name: "Malformed", caseID: "malformed", status: 400, code: "bad-json", detail: "body is not JSON"},
		{name: "Unauthorized", caseID: "unauthorized", status: 401, code: "unauthorized"},
		{name: "Forbidden", caseID: "forbidden", status: 403, code: "forbidden"},
		{name: "NotFound", caseID: "notfound", status: 404, code: "cart-not-found"},
		{name: "Conflict", caseID: "conflict", status: 409, code: "version-conflict"},
		{name: "PreconditionFailed", caseID: "precondition", status: 412, code: "version-mismatch"},
		{name: "TooLarge", caseID: "toolarge", status: 413, code: "body-too-large"},
		{name: "UnsupportedMediaType", caseID: "mediatype", status: 415, code: "unsupported-media-type"},
		{name: "Invalid", caseID: "invalid", status: 422, code: "invalid-quantity"},
		{name: "RateLimited", caseID: "ratelimited", status: 429, code: "rate-limited"},
		{name: "UnavailableHidesCause", caseID: "unavailable", status: 503, code: "redis-down", detail: "Service unavailable"},
		{name: "InternalHidesCause", caseID: "internal", status: 500, code: "internal", detail: "internal error"},
		{name: "WrappedProblem", caseID: "wrapped", status: 409, code: "version-conflict"},
		{name: "CartInvalid", caseID: "cartInvalid", status: 422, code: "invalid-quantity", detail: "quantity must be between 1 and 99"},
		{name: "CartNotFound", caseID: "cartNotFound", status: 404, code: "cart-not-found"},
		{name: "CartConflict", caseID: "cartConflict", status: 409, code: "cart-checked-out"},
		{name: "CartForbidden", caseID: "cartForbidden", status: 403, code: "reason-not-permitted"},
		{name: "Echo401", caseID: "echo401", status: 401, code: "unauthorized"},
		{name: "Echo413", caseID: "echo413", status: 413, code: "body-too-large"},
		{name: "EchoNestedUsesInner", caseID: "echoNested", status: 415, code: "unsupported-media-type"},
		{name: "DeadlineExceeded", caseID: "deadline", status: 503, code: "timeout"},
		{name: "Unknown", caseID: "plain", status: 500, code: "internal", detail: "internal error"},
		{name: "UnknownRoute", path: "/nope", status: 404, code: "not-found"},
		{name: "MethodNotAllowed", method: http.MethodDelete, path: "/fail", status: 405, code: "method-not-allowed"},
		{name: "BindMalformed", method: http.MethodPost, path: "/bind", body: "{", contentType: "application/json", status: 400, code: "malformed-request"},
		{name: "BindUnsupportedMediaType", method: http.MethodPost, path: "/bind", body: "N=1", contentType: "text/plain", status: 415, code: "unsupported-media-type"},
		{name: "RetryAfterKept", path: "/limited", status: 429, code: "rate-limited", header: http.Header{"Retry-After": {"7"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs bytes.Buffer
			e := newEcho(t, &logs, errs)
			method, path := tt.method, tt.path
			if method == "" {
				method = http.MethodGet
			}
			if path == "" {
				path = "/fail"
			}
			req := httptest.NewRequest(method, path, strings.NewReader(tt.body))
			req.Header.Set("X-Case", tt.caseID)
			if tt.contentType != "" {
				req.Header.Set(echo.HeaderContentType, tt.contentType)
			}
			rec := httptest.NewRecorder()
			e.ServeHTTP(rec, req)

			if rec.Code != tt.status {
				t.Fatalf("status = %d, want %d; body %s", rec.Code, tt.status, rec.Body)
			}
			if ct := rec.Header().Get(echo.HeaderContentType); ct != problem.ContentType {
				t.Errorf("content type = %q, want %q", ct, problem.ContentType)
			}
			var b problem.Body
			if err := json.Unmarshal(rec.Body.Bytes(), &b); err != nil {
				t.Fatalf("body is not JSON: %v: %s", err, rec.Body)
			}
			if b.Code != tt.code || b.Status != tt.status || b.Type != problem.TypeBase+tt.code || b.Instance != path || b.Title == "" {
				t.Errorf("body = %+v, want code %q status %d instance %q", b, tt.code, tt.status, path)
			}
			if b.RequestID != "req-1" {
				t.Errorf("requestId = %q, want req-1", b.RequestID)
			}
			if tt.detail != "" && b.Detail != tt.detail {
				t.Errorf("detail = %q, want %q", b.Detail, tt.detail)
			}
			for k := range tt.header {
				if got := rec.Header().Get(k); got != tt.header.Get(k) {
					t.Errorf("header %s = %q, want %q", k, got, tt.header.Get(k))
				}
			}
			// Only our failures are errors in the logs, an unavailable
			// dependency a warning; nothing internal leaks out.
			wantLevel := ""
			switch {
			case tt.status == http.StatusServiceUnavailable:
				wantLevel = "WARN"
			case tt.status >= 500:
				wantLevel = "ERROR"
			}
			for _, level := range []string{"WARN", "ERROR"} {
				if logged := strings.Contains(logs.String(), `"level":"`+level+`"`); logged != (level == wantLevel) {
					t.Errorf("%s log = %v for status %d; logs: %s", level, logged, tt.status, logs.String())
				}
			}
			if strings.Contains(rec.Body.String(), "secret") || strings.Contains(rec.Body.String(), "10.0.0.7") {
				t.Errorf("body leaks an internal error: %s", rec.Body)
			}
		})
	}
}

func TestHTTPErrorHandler_InternalLogsRequest(t *testing.T) {
	var logs bytes.Buffer
	e := newEcho(t, &logs, map[string]error{"plain": errors.New("boom in postgres")})
	req := httptest.NewRequest(http.MethodGet, "/fail", nil)
	req.Header.Set("X-Case", "plain")
	e.ServeHTTP(httptest.NewRecorder(), req)

	var entry map[string]any
	if err := json.Unmarshal(logs.Bytes(), &entry); err != nil {
		t.Fatalf("log is not one JSON line: %v: %s", err, logs.String())
	}
	for k, want := range map[string]any{"level": "ERROR", "method": "GET", "path": "/fail", "requestId": "req-1", "error": "boom in postgres"} {
		if entry[k] != want {
			t.Errorf("log %s = %v, want %v", k, entry[k], want)
		}
	}
}

func TestHTTPErrorHandler_WWWAuthenticate(t *testing.T) {
	e := newEcho(t, &bytes.Buffer{}, map[string]error{"u": problem.New(problem.Unauthorized, "invalid-token", "token is invalid")})
	for name, tc := range map[string]struct{ auth, want string }{
		"NoToken":       {"", "Bearer"},
		"OtherScheme":   {"Basic Zm9vOmJhcg==", "Bearer"},
		"RejectedToken": {"Bearer abc.def.ghi", `Bearer error="invalid_token"`},
	} {
		t.Run(name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodGet, "/fail", nil)
			req.Header.Set("X-Case", "u")
			if tc.auth != "" {
				req.Header.Set(echo.HeaderAuthorization, tc.auth)
			}
			rec := httptest.NewRecorder()
			e.ServeHTTP(rec, req)
			if got := rec.Header().Get(echo.HeaderWWWAuthenticate); got != tc.want {
				t.Errorf("WWW-Authenticate = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestHTTPErrorHandler_HeadHasNoBody(t *testing.T) {
	e := newEcho(t, &bytes.Buffer{}, map[string]error{"c": cart.ErrCheckedOut})
	req := httptest.NewRequest(http.MethodHead, "/fail", nil)
	req.Header.Set("X-Case", "c")
	rec := httptest.NewRecorder()
	e.ServeHTTP(rec, req)
	if rec.Code != http.StatusConflict || rec.Body.Len() != 0 {
		t.Errorf("HEAD: status %d, body %q; want 409 and no body", rec.Code, rec.Body)
	}
}

func TestHTTPErrorHandler_CommittedOnlyLogs(t *testing.T) {
	var logs bytes.Buffer
	e := newEcho(t, &logs, nil)
	rec := httptest.NewRecorder()
	e.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/committed", nil))
	if rec.Code != http.StatusOK || rec.Body.String() != "partial" {
		t.Errorf("committed response was rewritten: %d %q", rec.Code, rec.Body)
	}
	if !strings.Contains(logs.String(), "late failure") {
		t.Errorf("late error not logged: %s", logs.String())
	}
}

func TestWrap(t *testing.T) {
	cause := errors.New("quantity 0 is out of range")
	if p := problem.Wrap(problem.Invalid, "invalid-quantity", cause); p.Detail != cause.Error() || !errors.Is(p, cause) {
		t.Errorf("client kind: detail %q, unwraps %v", p.Detail, errors.Is(p, cause))
	}
	if p := problem.Wrap(problem.Internal, "", cause); p.Detail != "" || !errors.Is(p, cause) {
		t.Errorf("internal kind: detail %q must be empty, unwraps %v", p.Detail, errors.Is(p, cause))
	}
}
