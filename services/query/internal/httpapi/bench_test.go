package httpapi_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/cart-cqrs/cart/pkg/auth"
	"github.com/cart-cqrs/cart/pkg/httpserver"
	"github.com/cart-cqrs/cart/pkg/readmodel"
	"github.com/cart-cqrs/cart/pkg/redistest"
	"github.com/cart-cqrs/cart/services/query/internal/httpapi"
)

// benchCarts is how many carts (and customers) a read benchmark spreads its
// reads over, like the load generator's reads run.
const benchCarts = 64

// readBench is the query service's whole handler stack as the app builds
// it (shared middleware, auth, rate limit off) over a real Redis.
type readBench struct {
	h      http.Handler
	paths  []string
	tokens []string
}

// newReadBench stores benchCarts documents (with the owner field beside
// them when owner is set, else as documents written before it existed).
func newReadBench(b *testing.B, owner bool) *readBench {
	b.Helper()
	env := redistest.MustRedis(b)
	ctx := context.Background()
	logger := slog.New(slog.DiscardHandler)
	store := mustStore(b, env.Client, env.Prefix)
	v, err := auth.NewVerifier(authCfg)
	if err != nil {
		b.Fatal(err)
	}
	e := httpserver.NewEcho(logger, prometheus.NewRegistry(), "query-bench")
	httpapi.Register(e, v, store, httpapi.Options{Middleware: []echo.MiddlewareFunc{httpserver.RateLimit(httpserver.Limits{}, logger)}})
	rb := &readBench{h: e}
	keys := readmodel.Keys{Prefix: env.Prefix, Generation: 1}
	for i := range benchCarts {
		customer := "bench-" + strconv.Itoa(i)
		s := cartOf(customer, false)
		doc, err := json.Marshal(readmodel.FromState(s))
		if err != nil {
			b.Fatal(err)
		}
		fields := []any{readmodel.FieldVersion, s.Version, readmodel.FieldDoc, doc}
		if owner {
			fields = append(fields, readmodel.FieldOwner, customer)
		}
		if err := env.Client.HSet(ctx, keys.Cart(s.CartID), fields...).Err(); err != nil {
			b.Fatal(err)
		}
		tok, err := auth.Issue(authCfg, customer, "", time.Hour, time.Now())
		if err != nil {
			b.Fatal(err)
		}
		rb.paths = append(rb.paths, "/v1/carts/"+s.CartID+"?minVersion="+strconv.Itoa(s.Version))
		rb.tokens = append(rb.tokens, "Bearer "+tok)
	}
	return rb
}

// discard is a ResponseWriter that keeps only the status, so that the
// benchmark counts the handlers' allocations and not a recorder's.
type discard struct {
	h    http.Header
	code int
}

func (d *discard) Header() http.Header         { return d.h }
func (d *discard) Write(p []byte) (int, error) { return len(p), nil }
func (d *discard) WriteHeader(code int)        { d.code = code }

func (rb *readBench) run(b *testing.B, next func() bool) {
	reqs := make([]*http.Request, len(rb.paths))
	for i, p := range rb.paths {
		reqs[i] = httptest.NewRequest(http.MethodGet, p, nil)
		reqs[i].Header.Set(echo.HeaderAuthorization, rb.tokens[i])
	}
	w := &discard{h: http.Header{}}
	for i := 0; next(); i++ {
		clear(w.h)
		w.code = 0
		rb.h.ServeHTTP(w, reqs[i%len(reqs)])
		if w.code != http.StatusOK {
			b.Errorf("status %d", w.code)
			return
		}
	}
}

// reportCPU resets the timer and returns a func that reports the process's
// CPU time (user + system) per op: on a shared machine a steadier figure
// than ns/op, which mostly measures the Redis round trip and the neighbours.
func reportCPU(b *testing.B) func() {
	b.Helper()
	start := cpuTime(b)
	b.ResetTimer()
	return func() {
		b.StopTimer()
		b.ReportMetric(float64((cpuTime(b)-start).Nanoseconds())/float64(b.N), "cpu-ns/op")
	}
}

func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkGetCart is GET /v1/carts/{id}?minVersion=N, the read the load
// generator's reads run sends, through the whole stack: go test -bench
// GetCart -benchmem ./services/query/internal/httpapi/
func BenchmarkGetCart(b *testing.B) {
	for _, c := range []struct {
		name  string
		owner bool
	}{{"Owner", true}, {"NoOwner", false}} {
		b.Run(c.name, func(b *testing.B) {
			rb := newReadBench(b, c.owner)
			b.ReportAllocs()
			defer reportCPU(b)()
			rb.run(b, b.Loop)
		})
		for _, p := range []int{2, 8, 32} {
			// p goroutines per core: GOMAXPROCS=2 makes 2p concurrent reads.
			b.Run(c.name+"Parallel"+strconv.Itoa(p), func(b *testing.B) {
				rb := newReadBench(b, c.owner)
				b.ReportAllocs()
				b.SetParallelism(p)
				defer reportCPU(b)()
				b.RunParallel(func(pb *testing.PB) { rb.run(b, pb.Next) })
			})
		}
	}
}
