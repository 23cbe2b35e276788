package httpserver_test

import (
	"log/slog"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/cart-cqrs/cart/pkg/auth"
	"github.com/cart-cqrs/cart/pkg/envconf"
	"github.com/cart-cqrs/cart/pkg/httpserver"
)

var authCfg = auth.Config{
	HS256Secret: []byte("0123456789abcdef0123456789abcdef"),
	Issuer:      "https://issuer.test",
	Audience:    "cart-api",
}

const shop = "https://shop.example.com"

// MustServeAPI wires the limits as the services do: CORS on the echo
// instance, then auth and the rate limit on /v1. /open is rate limited
// without auth (the IP fallback).
func MustServeAPI(tb testing.TB, l httpserver.Limits) string {
	tb.Helper()
	logger := slog.New(slog.DiscardHandler)
	v, err := auth.NewVerifier(authCfg)
	if err != nil {
		tb.Fatal(err)
	}
	e := httpserver.NewEcho(logger, prometheus.NewRegistry(), "test")
	httpserver.CORS(e, l)
	limit := httpserver.RateLimit(l, logger)
	v1 := e.Group("/v1", auth.Middleware(v), limit)
	v1.GET("/me", func(c echo.Context) error {
		p, _ := auth.FromContext(c)
		c.Response().Header().Set("ETag", `"1"`)
		return c.String(http.StatusOK, p.Subject)
	})
	v1.POST("/carts", func(c echo.Context) error { return c.NoContent(http.StatusCreated) })
	e.GET("/open", func(c echo.Context) error { return c.NoContent(http.StatusNoContent) }, limit)
	return "http://" + MustRun(tb, e, logger)
}

func token(tb testing.TB, sub string) string {
	tb.Helper()
	tok, err := auth.Issue(authCfg, sub, "", time.Hour, time.Now())
	if err != nil {
		tb.Fatal(err)
	}
	return tok
}

func request(tb testing.TB, method, url string, header http.Header) (*http.Response, []byte) {
	tb.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		tb.Fatal(err)
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	return mustDo(tb, req)
}

func as(tb testing.TB, sub string) http.Header {
	return http.Header{"Authorization": {"Bearer " + token(tb, sub)}}
}

func TestRateLimit(t *testing.T) {
	// 0.01/s: a spent bucket stays spent for the whole test.
	url := MustServeAPI(t, httpserver.Limits{RatePerSecond: 0.01, Burst: 2, CORSAllowedOrigins: []string{shop}})

	t.Run("PerCustomer", func(t *testing.T) {
		alice := as(t, "alice")
		for i := range 2 {
			if res, body := request(t, http.MethodGet, url+"/v1/me", alice); res.StatusCode != http.StatusOK {
				t.Fatalf("request %d: status = %d: %s", i, res.StatusCode, body)
			}
		}
		alice.Set("Origin", shop)
		res, body := request(t, http.MethodPost, url+"/v1/carts", alice)
		mustProblem(t, res, body, http.StatusTooManyRequests, "rate-limited")
		secs, err := strconv.Atoi(res.Header.Get("Retry-After"))
		if err != nil || secs < 1 || secs > 100 {
			t.Errorf("Retry-After = %q, want whole seconds in [1, 100]", res.Header.Get("Retry-After"))
		}
		// A browser can read the 429 and its Retry-After.
		if res.Header.Get("Access-Control-Allow-Origin") != shop || !strings.Contains(res.Header.Get("Access-Control-Expose-Headers"), "Retry-After") {
			t.Errorf("429 lacks CORS headers: %v", res.Header)
		}
		// Another customer has a bucket of their own.
		if res, body := request(t, http.MethodGet, url+"/v1/me", as(t, "bob")); res.StatusCode != http.StatusOK || string(body) != "bob" {
			t.Errorf("bob: status = %d: %s", res.StatusCode, body)
		}
		// The limit runs after auth: no token is still a 401.
		res, body = request(t, http.MethodGet, url+"/v1/me", nil)
		mustProblem(t, res, body, http.StatusUnauthorized, "unauthorized")
	})
	t.Run("IPWithoutPrincipal", func(t *testing.T) {
		for i := range 2 {
			if res, _ := request(t, http.MethodGet, url+"/open", nil); res.StatusCode != http.StatusNoContent {
				t.Fatalf("request %d: status = %d", i, res.StatusCode)
			}
		}
		// Forwarding headers are not trusted unless an IPExtractor says so.
		res, body := request(t, http.MethodGet, url+"/open", http.Header{"X-Forwarded-For": {"203.0.113.9"}, "X-Real-Ip": {"203.0.113.10"}})
		mustProblem(t, res, body, http.StatusTooManyRequests, "rate-limited")
		if res.Header.Get("Retry-After") == "" {
			t.Error("no Retry-After")
		}
	})
	t.Run("Off", func(t *testing.T) {
		url := MustServeAPI(t, httpserver.Limits{RatePerSecond: 0, Burst: 1})
		h := as(t, "carol")
		for i := range 20 {
			if res, body := request(t, http.MethodGet, url+"/v1/me", h); res.StatusCode != http.StatusOK {
				t.Fatalf("request %d: status = %d: %s", i, res.StatusCode, body)
			}
		}
	})
}

func TestCORS(t *testing.T) {
	url := MustServeAPI(t, httpserver.Limits{CORSAllowedOrigins: []string{shop, "http://localhost:5173"}})
	preflight := func(origin string) http.Header {
		return http.Header{
			"Origin":                         {origin},
			"Access-Control-Request-Method":  {"POST"},
			"Access-Control-Request-Headers": {"authorization,content-type,idempotency-key,if-match"},
		}
	}

	t.Run("PreflightAllowedWithoutToken", func(t *testing.T) {
		for _, origin := range []string{shop, "http://localhost:5173"} {
			res, _ := request(t, http.MethodOptions, url+"/v1/carts", preflight(origin))
			h := res.Header
			if res.StatusCode != http.StatusNoContent || h.Get("Access-Control-Allow-Origin") != origin {
				t.Fatalf("%s: status = %d, headers %v", origin, res.StatusCode, h)
			}
			if got := h.Get("Access-Control-Allow-Methods"); got != "GET,POST,OPTIONS" {
				t.Errorf("Allow-Methods = %q", got)
			}
			allowHeaders := strings.Split(h.Get("Access-Control-Allow-Headers"), ",")
			for _, want := range []string{"Authorization", "Content-Type", "Idempotency-Key", "If-Match", "If-None-Match", "X-Correlation-Id", "X-Request-Id"} {
				if !slices.Contains(allowHeaders, want) {
					t.Errorf("Allow-Headers %v lacks %s", allowHeaders, want)
				}
			}
			if got := h.Get("Access-Control-Max-Age"); got != "600" {
				t.Errorf("Max-Age = %q, want 600", got)
			}
			if h.Get("Access-Control-Allow-Credentials") != "" {
				t.Error("credentials allowed")
			}
			if !slices.Contains(h.Values("Vary"), "Origin") {
				t.Errorf("Vary = %v, want Origin", h.Values("Vary"))
			}
		}
	})
	t.Run("DisallowedOrigins", func(t *testing.T) {
		for _, origin := range []string{"https://evil.example", "https://x.shop.example.com", "http://shop.example.com", "https://shop.example.com:8443", "null", "*"} {
			res, _ := request(t, http.MethodOptions, url+"/v1/carts", preflight(origin))
			if got := res.Header.Get("Access-Control-Allow-Origin"); got != "" {
				t.Errorf("preflight from %s: Allow-Origin = %q", origin, got)
			}
			res, _ = request(t, http.MethodGet, url+"/v1/me", http.Header{"Origin": {origin}})
			if got := res.Header.Get("Access-Control-Allow-Origin"); got != "" {
				t.Errorf("GET from %s: Allow-Origin = %q", origin, got)
			}
		}
	})
	t.Run("ActualRequestExposesHeaders", func(t *testing.T) {
		h := as(t, "alice")
		h.Set("Origin", shop)
		res, body := request(t, http.MethodGet, url+"/v1/me", h)
		if res.StatusCode != http.StatusOK || res.Header.Get("Access-Control-Allow-Origin") != shop {
			t.Fatalf("status = %d, headers %v: %s", res.StatusCode, res.Header, body)
		}
		expose := strings.Split(res.Header.Get("Access-Control-Expose-Headers"), ",")
		for _, want := range []string{"ETag", "Location", "Retry-After", "X-Request-Id", "Idempotent-Replayed", "X-Read-Model-Version"} {
			if !slices.Contains(expose, want) {
				t.Errorf("Expose-Headers %v lacks %s", expose, want)
			}
		}
		// A 401 is readable by the browser too.
		res, body = request(t, http.MethodGet, url+"/v1/me", http.Header{"Origin": {shop}})
		mustProblem(t, res, body, http.StatusUnauthorized, "unauthorized")
		if res.Header.Get("Access-Control-Allow-Origin") != shop {
			t.Errorf("401 without Allow-Origin: %v", res.Header)
		}
	})
	t.Run("NotConfigured", func(t *testing.T) {
		url := MustServeAPI(t, httpserver.Limits{})
		for _, method := range []string{http.MethodOptions, http.MethodGet} {
			res, _ := request(t, method, url+"/v1/me", preflight(shop))
			for k := range res.Header {
				if strings.HasPrefix(k, "Access-Control-") {
					t.Errorf("%s: %s = %q without configured origins", method, k, res.Header.Get(k))
				}
			}
			if slices.Contains(res.Header.Values("Vary"), "Origin") {
				t.Errorf("%s: Vary: Origin without configured origins", method)
			}
		}
	})
}

func TestLimitsFromEnv(t *testing.T) {
	t.Run("Defaults", func(t *testing.T) {
		r := envconf.New(envconf.Map(nil))
		got := httpserver.LimitsFromEnv(r)
		want := httpserver.Limits{RatePerSecond: 20, Burst: 40}
		if err := r.Err(); err != nil || !reflect.DeepEqual(got, want) || got.Validate() != nil {
			t.Errorf("LimitsFromEnv = %+v (%v), want %+v", got, err, want)
		}
	})
	t.Run("Set", func(t *testing.T) {
		r := envconf.New(envconf.Map(map[string]string{
			"RATE_LIMIT_RPS":       "0",
			"RATE_LIMIT_BURST":     "5",
			"CORS_ALLOWED_ORIGINS": " https://shop.example.com, http://localhost:5173 ,,",
		}))
		got := httpserver.LimitsFromEnv(r)
		want := httpserver.Limits{RatePerSecond: 0, Burst: 5, CORSAllowedOrigins: []string{shop, "http://localhost:5173"}}
		if err := r.Err(); err != nil || !reflect.DeepEqual(got, want) || got.Validate() != nil {
			t.Errorf("LimitsFromEnv = %+v (%v), want %+v", got, err, want)
		}
	})
	t.Run("ErrMalformed", func(t *testing.T) {
		r := envconf.New(envconf.Map(map[string]string{"RATE_LIMIT_RPS": "fast", "RATE_LIMIT_BURST": "1.5"}))
		httpserver.LimitsFromEnv(r)
		if r.Err() == nil {
			t.Error("malformed numbers not reported")
		}
	})
	for name, l := range map[string]httpserver.Limits{
		"NegativeRate":     {RatePerSecond: -1},
		"NegativeBurst":    {Burst: -1},
		"WildcardOrigin":   {CORSAllowedOrigins: []string{"*"}},
		"WildcardSubdom":   {CORSAllowedOrigins: []string{"https://*.example.com"}},
		"OriginWithPath":   {CORSAllowedOrigins: []string{"https://shop.example.com/"}},
		"OriginNoScheme":   {CORSAllowedOrigins: []string{"shop.example.com"}},
		"OriginFileScheme": {CORSAllowedOrigins: []string{"file://x"}},
		"OriginUpperCase":  {CORSAllowedOrigins: []string{"https://Shop.example.com"}},
	} {
		t.Run("Err"+name, func(t *testing.T) {
			if l.Validate() == nil {
				t.Errorf("Validate accepted %+v", l)
			}
		})
	}
}
