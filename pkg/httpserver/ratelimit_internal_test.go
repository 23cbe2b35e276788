package httpserver

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/cart-cqrs/cart/pkg/problem"
)

// clock is a settable time source, so bucket arithmetic is tested exactly.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func TestRateLimit_RetryAfterRoundsUp(t *testing.T) {
	clk := &clock{t: time.Unix(1_700_000_000, 0)}
	e := echo.New()
	e.HTTPErrorHandler = problem.HTTPErrorHandler(slog.New(slog.DiscardHandler))
	e.GET("/", func(c echo.Context) error { return c.NoContent(http.StatusNoContent) },
		rateLimit(Limits{RatePerSecond: 4, Burst: 1}, nil, clk.Now))
	get := func() *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		e.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
		return rec
	}
	if rec := get(); rec.Code != http.StatusNoContent {
		t.Fatalf("first: %d", rec.Code)
	}
	rec := get()
	if rec.Code != http.StatusTooManyRequests || rec.Header().Get("Retry-After") != "1" {
		t.Fatalf("second: %d, Retry-After %q; want 429 and 1 (250ms rounded up)", rec.Code, rec.Header().Get("Retry-After"))
	}
	// The denied request took no token: one refill later we are served.
	clk.Advance(250 * time.Millisecond)
	if rec := get(); rec.Code != http.StatusNoContent {
		t.Errorf("after the refill: %d", rec.Code)
	}
}

func TestRateStore_ForgetsIdleCallers(t *testing.T) {
	clk := &clock{t: time.Unix(1_700_000_000, 0)}
	s := newRateStore(Limits{RatePerSecond: 10, Burst: 10, RateLimitExpiry: time.Minute}, clk.Now)
	for _, id := range []string{"a", "b"} {
		if ok, err := s.Allow(id); !ok || err != nil {
			t.Fatalf("Allow(%s) = %v, %v", id, ok, err)
		}
	}
	clk.Advance(2 * time.Minute)
	if ok, _ := s.Allow("c"); !ok {
		t.Fatal("Allow(c) refused")
	}
	s.mu.Lock()
	n := len(s.buckets)
	s.mu.Unlock()
	if n != 1 {
		t.Errorf("%d buckets after the idle ones expired, want 1", n)
	}
}

func TestRateStore_ExpiryCoversARefill(t *testing.T) {
	s := newRateStore(Limits{RatePerSecond: 0.01, Burst: 2, RateLimitExpiry: time.Minute}, time.Now)
	if s.expiry < 200*time.Second {
		t.Errorf("expiry = %v; forgetting a bucket before it refills (200s) hands out free requests", s.expiry)
	}
	if d := newRateStore(Limits{RatePerSecond: 20}, time.Now); d.burst != 20 || d.expiry != DefaultRateLimitExpiry {
		t.Errorf("defaults: burst %d, expiry %v", d.burst, d.expiry)
	}
}
