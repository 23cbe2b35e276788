package httpserver_test

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/cart-cqrs/cart/pkg/cart"
	"github.com/cart-cqrs/cart/pkg/httpserver"
	"github.com/cart-cqrs/cart/pkg/polltest"
	"github.com/cart-cqrs/cart/pkg/problem"
	"github.com/cart-cqrs/cart/pkg/telemetry"
)

// syncBuffer is a log sink safe for the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type testServer struct {
	URL        string
	MetricsURL string // the management address's
	logs       *syncBuffer
}

// MustServe builds the shared echo stack with a few test routes, serves it
// on a real port and stops it (checking Run's result) at cleanup.
func MustServe(tb testing.TB, checks map[string]func(context.Context) error) *testServer {
	tb.Helper()
	logs := &syncBuffer{}
	logger := slog.New(telemetry.LogHandler(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	reg := prometheus.NewRegistry()
	e := httpserver.NewEcho(logger, reg, "test")
	httpserver.Health(e, checks)
	e.GET("/things/:id", func(c echo.Context) error { return c.String(http.StatusOK, c.Param("id")) })
	e.GET("/checked-out", func(c echo.Context) error { return cart.ErrCheckedOut })
	e.GET("/panic", func(c echo.Context) error { panic("boom") })
	e.POST("/echo", func(c echo.Context) error {
		var v map[string]any
		if err := c.Bind(&v); err != nil {
			return err
		}
		return c.JSON(http.StatusOK, v)
	})

	metrics, err := httpserver.ListenMetrics("127.0.0.1:0", reg, logger)
	if err != nil {
		tb.Fatal(err)
	}
	return &testServer{URL: "http://" + MustRun(tb, e, logger), MetricsURL: "http://" + mustRunServer(tb, metrics), logs: logs}
}

// MustRun serves h on a real port until cleanup, when it stops the server
// and checks Run's result. It returns the address.
func MustRun(tb testing.TB, h http.Handler, logger *slog.Logger, opts ...httpserver.ListenOption) string {
	tb.Helper()
	srv, err := httpserver.Listen("127.0.0.1:0", h, logger, opts...)
	if err != nil {
		tb.Fatalf("Listen: %v", err)
	}
	return mustRunServer(tb, srv)
}

// mustRunServer runs srv until cleanup, checking Run's result, and returns
// its address.
func mustRunServer(tb testing.TB, srv *httpserver.Server) string {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	tb.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			tb.Errorf("Run: %v", err)
		}
	})
	return srv.Addr()
}

func mustDo(tb testing.TB, req *http.Request) (*http.Response, []byte) {
	tb.Helper()
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		tb.Fatalf("read body: %v", err)
	}
	return res, body
}

func mustGet(tb testing.TB, url string) (*http.Response, []byte) {
	tb.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		tb.Fatal(err)
	}
	return mustDo(tb, req)
}

func mustProblem(tb testing.TB, res *http.Response, body []byte, status int, code string) problem.Body {
	tb.Helper()
	if res.StatusCode != status {
		tb.Fatalf("status = %d, want %d: %s", res.StatusCode, status, body)
	}
	if ct := res.Header.Get("Content-Type"); ct != problem.ContentType {
		tb.Errorf("content type = %q, want %q", ct, problem.ContentType)
	}
	var p problem.Body
	if err := json.Unmarshal(body, &p); err != nil {
		tb.Fatalf("not a problem body: %v: %s", err, body)
	}
	if p.Code != code {
		tb.Errorf("code = %q, want %q", p.Code, code)
	}
	if p.RequestID == "" || p.RequestID != res.Header.Get(echo.HeaderXRequestID) {
		tb.Errorf("requestId = %q, header %q", p.RequestID, res.Header.Get(echo.HeaderXRequestID))
	}
	return p
}

func TestListen_PortTaken(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	srv, err := httpserver.Listen(ln.Addr().String(), http.NotFoundHandler(), slog.New(slog.DiscardHandler))
	if err == nil {
		srv.Close()
		t.Fatal("Listen on a taken port succeeded")
	}
}

func TestRun_FinishesInFlightRequest(t *testing.T) {
	started := make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		time.Sleep(300 * time.Millisecond) // a slow handler, still running at shutdown
		io.WriteString(w, "done")
	})
	srv, err := httpserver.Listen("127.0.0.1:0", h, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ran := make(chan error, 1)
	go func() { ran <- srv.Run(ctx) }()

	type result struct {
		body string
		err  error
	}
	got := make(chan result, 1)
	go func() {
		res, err := http.Get("http://" + srv.Addr() + "/slow")
		if err != nil {
			got <- result{err: err}
			return
		}
		defer res.Body.Close()
		b, err := io.ReadAll(res.Body)
		got <- result{string(b), err}
	}()

	<-started
	cancel()
	select {
	case err := <-ran:
		if err != nil {
			t.Fatalf("Run = %v, want nil on a clean stop", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
	if r := <-got; r.err != nil || r.body != "done" {
		t.Fatalf("in-flight request: body %q, err %v; want it completed", r.body, r.err)
	}
	if _, err := http.Get("http://" + srv.Addr() + "/"); err == nil {
		t.Error("server still accepts connections after Run returned")
	}
}

func TestHealth(t *testing.T) {
	t.Run("Healthz", func(t *testing.T) {
		s := MustServe(t, nil)
		res, body := mustGet(t, s.URL+"/healthz")
		if res.StatusCode != http.StatusOK || !strings.Contains(string(body), `"status":"ok"`) {
			t.Errorf("healthz = %d %s", res.StatusCode, body)
		}
	})
	t.Run("ReadyzOK", func(t *testing.T) {
		s := MustServe(t, map[string]func(context.Context) error{
			"postgres": func(context.Context) error { return nil },
			"redis":    func(context.Context) error { return nil },
		})
		res, body := mustGet(t, s.URL+"/readyz")
		if res.StatusCode != http.StatusOK || !strings.Contains(string(body), `"redis":"ok"`) {
			t.Errorf("readyz = %d %s", res.StatusCode, body)
		}
	})
	t.Run("ReadyzFailingCheck", func(t *testing.T) {
		s := MustServe(t, map[string]func(context.Context) error{
			"postgres": func(context.Context) error { return nil },
			"redis":    func(context.Context) error { return errors.New("dial tcp 10.0.0.9:6379: connection refused") },
			"nats": func(ctx context.Context) error { // hangs until its timeout
				<-ctx.Done()
				return ctx.Err()
			},
		})
		start := time.Now()
		res, body := mustGet(t, s.URL+"/readyz")
		if elapsed := time.Since(start); elapsed > httpserver.CheckTimeout+time.Second {
			t.Errorf("readyz took %v; checks must be bounded", elapsed)
		}
		p := mustProblem(t, res, body, http.StatusServiceUnavailable, "not-ready")
		if p.Detail != "not ready: nats, redis" {
			t.Errorf("detail = %q", p.Detail)
		}
		if strings.Contains(string(body), "10.0.0.9") {
			t.Errorf("readyz leaks the check error: %s", body)
		}
		if !strings.Contains(s.logs.String(), "10.0.0.9") {
			t.Errorf("check error not logged: %s", s.logs.String())
		}
	})
}

func TestMetrics(t *testing.T) {
	s := MustServe(t, nil)
	mustGet(t, s.URL+"/things/42")
	mustGet(t, s.URL+"/things/43")
	mustGet(t, s.URL+"/checked-out")
	mustGet(t, s.URL+"/no/such/route")
	if res, _ := mustGet(t, s.URL+"/metrics"); res.StatusCode != http.StatusNotFound {
		t.Errorf("the API's port serves /metrics: %d", res.StatusCode)
	}
	_, body := mustGet(t, s.MetricsURL+"/metrics")
	for _, want := range []string{
		`http_requests_total{code="200",method="GET",route="/things/:id",service="test"} 2`,
		`http_requests_total{code="409",method="GET",route="/checked-out",service="test"} 1`,
		`http_requests_total{code="404",method="GET",route="unmatched",service="test"} 2`,
		`http_request_duration_seconds_count{method="GET",route="/things/:id",service="test"} 2`,
		"go_goroutines ",
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if strings.Contains(string(body), "/things/42") {
		t.Error("metrics use raw URLs instead of route templates")
	}
}

func TestPanicIsInternalProblem(t *testing.T) {
	s := MustServe(t, nil)
	res, body := mustGet(t, s.URL+"/panic")
	p := mustProblem(t, res, body, http.StatusInternalServerError, "internal")
	if p.Detail != "internal error" || strings.Contains(string(body), "boom") {
		t.Errorf("panic leaks to the client: %s", body)
	}
	logs := s.logs.String()
	if !strings.Contains(logs, `"level":"ERROR"`) || !strings.Contains(logs, "boom") || !strings.Contains(logs, "goroutine") {
		t.Errorf("panic not logged at error level with its stack: %s", logs)
	}
	// The server survives the panic.
	if res, _ := mustGet(t, s.URL+"/healthz"); res.StatusCode != http.StatusOK {
		t.Errorf("healthz after panic = %d", res.StatusCode)
	}
}

func TestBodyLimit(t *testing.T) {
	s := MustServe(t, nil)
	big := `{"pad":"` + strings.Repeat("x", 100<<10) + `"}`
	for name, chunked := range map[string]bool{"ContentLength": false, "Chunked": true} {
		t.Run(name, func(t *testing.T) {
			var r io.Reader = strings.NewReader(big)
			if chunked {
				r = io.MultiReader(r) // unknown length: sent chunked
			}
			req, err := http.NewRequest(http.MethodPost, s.URL+"/echo", r)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/json")
			res, body := mustDo(t, req)
			mustProblem(t, res, body, http.StatusRequestEntityTooLarge, "body-too-large")
		})
	}
	t.Run("SmallBodyOK", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodPost, s.URL+"/echo", strings.NewReader(`{"a":1}`))
		req.Header.Set("Content-Type", "application/json")
		if res, body := mustDo(t, req); res.StatusCode != http.StatusOK {
			t.Errorf("status = %d: %s", res.StatusCode, body)
		}
	})
}

func TestRequestID(t *testing.T) {
	s := MustServe(t, nil)
	for name, tc := range map[string]struct {
		in   string
		keep bool
	}{
		"SaneKept":      {"gw-7f3a.91:abc_DEF", true},
		"TooLong":       {strings.Repeat("a", 65), false},
		"UnsafeChars":   {"a b<script>", false},
		"MissingIsMade": {"", false},
	} {
		t.Run(name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, s.URL+"/checked-out", nil)
			if tc.in != "" {
				req.Header.Set(echo.HeaderXRequestID, tc.in)
			}
			res, body := mustDo(t, req)
			p := mustProblem(t, res, body, http.StatusConflict, "cart-checked-out")
			if got := res.Header.Get(echo.HeaderXRequestID); (got == tc.in) != tc.keep || len(got) == 0 || len(got) > 64 {
				t.Errorf("X-Request-Id = %q for incoming %q", got, tc.in)
			}
			if p.RequestID != res.Header.Get(echo.HeaderXRequestID) {
				t.Errorf("body requestId %q differs from header", p.RequestID)
			}
		})
	}
}

// TestAccessLogIDs: the access log line of a request carries the caller's
// trace (carried on even while nothing records spans) and the correlation
// id: the client's X-Correlation-Id when sane, else the request id.
func TestAccessLogIDs(t *testing.T) {
	s := MustServe(t, nil)
	for _, tc := range []struct{ path, correlation, want string }{
		{"/things/traced", "checkout-flow-7", "checkout-flow-7"},
		{"/things/insane", "has spaces", ""},
	} {
		req, _ := http.NewRequest(http.MethodGet, s.URL+tc.path, nil)
		req.Header.Set("Traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
		req.Header.Set(httpserver.HeaderCorrelationID, tc.correlation)
		res, _ := mustDo(t, req)
		id := res.Header.Get(echo.HeaderXRequestID)
		want := cmp.Or(tc.want, id)
		var line map[string]any
		// The line is written after the response went out.
		polltest.Until(t, 5*time.Second, "the access log line of "+tc.path, func() error {
			for l := range strings.Lines(s.logs.String()) {
				var m map[string]any
				if json.Unmarshal([]byte(l), &m) == nil && m["msg"] == "http request" && m["requestId"] == id {
					line = m
					return nil
				}
			}
			return errors.New("not logged yet")
		})
		if line[telemetry.LogTraceID] != "4bf92f3577b34da6a3ce929d0e0e4736" || line[telemetry.LogCorrelationID] != want {
			t.Errorf("%s: access log %v, want correlation id %q", tc.path, line, want)
		}
	}
}

func TestNewEcho_SharedRegistry(t *testing.T) {
	reg := prometheus.NewRegistry()
	httpserver.NewEcho(nil, reg, "a")
	httpserver.NewEcho(nil, reg, "b") // must not panic on duplicate registration
}
