package httpserver

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"golang.org/x/time/rate"

	"github.com/cart-cqrs/cart/pkg/auth"
	"github.com/cart-cqrs/cart/pkg/problem"
)

// CodeRateLimited is the problem code of a request over the rate limit.
const CodeRateLimited = "rate-limited"

// RateLimit gives every caller a token bucket of l.Burst requests refilled
// at l.RatePerSecond. The caller is the authenticated subject
// (auth.FromContext), so mount it after auth.Middleware — e.g. on the /v1
// group; without a principal it falls back to the client IP (echo's
// IPExtractor if one is set, else the peer address: forwarding headers are
// not trusted by default). Over the limit the request ends with 429
// "rate-limited" and a Retry-After in whole seconds (at least 1). Buckets
// live in memory, so the limit is per instance; idle ones are forgotten
// after l.RateLimitExpiry. RatePerSecond 0 returns a middleware that does
// nothing.
func RateLimit(l Limits, logger *slog.Logger) echo.MiddlewareFunc {
	return rateLimit(l, logger, time.Now)
}

func rateLimit(l Limits, logger *slog.Logger, now func() time.Time) echo.MiddlewareFunc {
	if l.RatePerSecond <= 0 {
		return func(next echo.HandlerFunc) echo.HandlerFunc { return next }
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	store := newRateStore(l, now)
	return middleware.RateLimiterWithConfig(middleware.RateLimiterConfig{
		IdentifierExtractor: func(c echo.Context) (string, error) { return callerID(c), nil },
		Store:               store,
		DenyHandler: func(c echo.Context, id string, err error) error {
			wait := time.Second
			var ra *retryAfter
			if errors.As(err, &ra) {
				wait = ra.wait
			}
			secs := max(1, int(math.Ceil(wait.Seconds())))
			c.Response().Header().Set(echo.HeaderRetryAfter, strconv.Itoa(secs))
			logger.LogAttrs(c.Request().Context(), slog.LevelDebug, "rate limited",
				slog.String("caller", id), slog.Int("retryAfterSeconds", secs))
			return problem.New(problem.RateLimited, CodeRateLimited,
				fmt.Sprintf("too many requests; retry in %d s", secs))
		},
	})
}

// callerID names the bucket: the subject when authenticated, else the IP.
func callerID(c echo.Context) string {
	if p, ok := auth.FromContext(c); ok {
		return "sub:" + p.Subject
	}
	if c.Echo().IPExtractor != nil {
		return "ip:" + c.RealIP()
	}
	return "ip:" + echo.ExtractIPDirect()(c.Request())
}

// retryAfter is how a denied Allow tells the deny handler when to retry.
type retryAfter struct{ wait time.Duration }

func (r *retryAfter) Error() string { return fmt.Sprintf("rate limited: retry after %v", r.wait) }

// rateStore is echo's RateLimiterStore with one token bucket per caller.
// Unlike echo's memory store it reports how long a denied caller must wait.
// Idle buckets are swept during Allow, so there is no goroutine to own.
type rateStore struct {
	limit  rate.Limit
	burst  int
	expiry time.Duration
	now    func() time.Time

	mu        sync.Mutex
	buckets   map[string]*bucket
	lastSweep time.Time
}

type bucket struct {
	lim  *rate.Limiter
	seen time.Time
}

var _ middleware.RateLimiterStore = (*rateStore)(nil)

func newRateStore(l Limits, now func() time.Time) *rateStore {
	burst := l.Burst
	if burst <= 0 {
		burst = max(1, int(math.Ceil(l.RatePerSecond)))
	}
	expiry := l.RateLimitExpiry
	if expiry <= 0 {
		expiry = DefaultRateLimitExpiry
	}
	// A bucket idle for a full refill is full: forgetting it loses nothing.
	// Forgetting it sooner would hand out free tokens.
	refill := time.Duration(float64(burst) / l.RatePerSecond * float64(time.Second))
	expiry = max(expiry, refill)
	return &rateStore{
		limit:     rate.Limit(l.RatePerSecond),
		burst:     burst,
		expiry:    expiry,
		now:       now,
		buckets:   make(map[string]*bucket),
		lastSweep: now(),
	}
}

// Allow takes a token from id's bucket, or reports how long until one is
// there (without taking it, so a denied request costs the caller nothing).
func (s *rateStore) Allow(id string) (bool, error) {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if now.Sub(s.lastSweep) > s.expiry {
		for k, b := range s.buckets {
			if now.Sub(b.seen) > s.expiry {
				delete(s.buckets, k)
			}
		}
		s.lastSweep = now
	}
	b, ok := s.buckets[id]
	if !ok {
		b = &bucket{lim: rate.NewLimiter(s.limit, s.burst)}
		s.buckets[id] = b
	}
	b.seen = now
	r := b.lim.ReserveN(now, 1)
	if !r.OK() {
		return false, &retryAfter{wait: s.expiry}
	}
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, &retryAfter{wait: d}
	}
	return true, nil
}
