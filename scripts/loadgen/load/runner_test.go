package load

import (
	"context"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cart-cqrs/cart/pkg/auth"
)

var testAuth = auth.Config{
	HS256Secret: []byte("load-test-secret-load-test-secret-32"),
	Issuer:      "load-test", Audience: "cart",
}

func testConfig(url, scenario string, mode Mode) Config {
	return Config{
		CommandURL: url, QueryURL: url, Scenario: scenario, Mix: Scenarios[scenario], Mode: mode,
		Clients: 4, Customers: 12, CustomerPrefix: "t", SetupLines: 3,
		Duration: 500 * time.Millisecond, Warmup: 0, Drain: 5 * time.Second, Rate: 2000,
		Auth: testAuth, Products: SeededProducts, Seed: 42, Timeout: 5 * time.Second,
	}
}

// TestRunCountsWhatTheServiceSaw: every command a run sends is one the
// service accepts (bar the failures it injects), and the run's counts are
// the service's.
func TestRunCountsWhatTheServiceSaw(t *testing.T) {
	for _, mode := range []Mode{Closed, Open} {
		t.Run(string(mode), func(t *testing.T) {
			fake := newFakeAPI(t, testAuth, 7)
			srv := httptest.NewServer(fake)
			defer srv.Close()

			res, err := Run(context.Background(), testConfig(srv.URL, "lag", mode))
			if err != nil {
				t.Fatal(err)
			}
			fake.mu.Lock()
			defer fake.mu.Unlock()
			for _, v := range fake.violations {
				t.Errorf("the service would refuse: %s", v)
			}
			var sent int64
			for op, n := range fake.accepted {
				sent += int64(n)
				if got := res.Ops[op].OK; got != int64(n) {
					t.Errorf("%s: run counts %d successes, the service answered %d", op, got, n)
				}
			}
			if sent == 0 {
				t.Fatal("no command was sent")
			}
			if got := res.Failures["add-item: 503 unavailable"]; got != int64(fake.injected) {
				t.Errorf("run counts %d failed adds, the service failed %d", got, fake.injected)
			}
			if fake.adds >= fake.failEvery && fake.injected == 0 {
				t.Errorf("%d adds and no failure injected", fake.adds)
			}
			// Every command that wrote is read back once; an open that found
			// the cart (after a failure) wrote nothing.
			if res.Lag == nil || res.Lag.OK != sent-int64(fake.reopened) {
				t.Errorf("lag measured %v times for %d writes", res.Lag, sent-int64(fake.reopened))
			}
			if res.Commands().OK != sent || res.NotSent != 0 {
				t.Errorf("commands ok = %d (not sent %d), want %d", res.Commands().OK, res.NotSent, sent)
			}
		})
	}
}

// TestRunReadsPreparedCarts: a read-only run gives each customer a cart
// with lines first, then only reads them; a second run with the same
// customers reads the same carts without preparing them again.
func TestRunReadsPreparedCarts(t *testing.T) {
	fake := newFakeAPI(t, testAuth, 0)
	srv := httptest.NewServer(fake)
	defer srv.Close()

	res, err := Run(context.Background(), testConfig(srv.URL, "reads", Closed))
	if err != nil {
		t.Fatal(err)
	}
	fake.mu.Lock()
	for _, v := range fake.violations {
		t.Errorf("the service would refuse: %s", v)
	}
	if fake.accepted["open"] != 12 || fake.accepted["add-item"] != 12*3 {
		t.Errorf("prepared %d carts with %d adds, want 12 with 3 each", fake.accepted["open"], fake.accepted["add-item"])
	}
	// The read-back of each prepared cart is not measured.
	if got := res.Reads().OK; got == 0 || got != int64(fake.reads-12) {
		t.Errorf("measured %d reads, the service served %d beyond the 12 read-backs", got, fake.reads-12)
	}
	fake.mu.Unlock()
	if _, ok := res.Ops[AllCommands]; ok {
		t.Error("the preparation was measured")
	}

	if _, err := Run(context.Background(), testConfig(srv.URL, "reads", Closed)); err != nil {
		t.Fatal(err)
	}
	fake.mu.Lock()
	defer fake.mu.Unlock()
	if fake.reopened != 12 || fake.accepted["add-item"] != 12*3 || len(fake.carts) != 12 {
		t.Errorf("second run: %d carts, %d found open, %d adds; want the same 12 carts and no more adds",
			len(fake.carts), fake.reopened, fake.accepted["add-item"])
	}
}

// TestRunMarksTheWindow: the marks come once each, in order, as the
// measured window opens (after the warm-up) and closes, before Run returns.
func TestRunMarksTheWindow(t *testing.T) {
	for _, mode := range []Mode{Closed, Open} {
		t.Run(string(mode), func(t *testing.T) {
			fake := newFakeAPI(t, testAuth, 0)
			srv := httptest.NewServer(fake)
			defer srv.Close()
			cfg := testConfig(srv.URL, "commands", mode)
			cfg.Warmup = 200 * time.Millisecond
			var (
				mu    sync.Mutex
				marks []Mark
				at    []time.Time
			)
			cfg.Marks = func(m Mark) {
				mu.Lock()
				defer mu.Unlock()
				marks, at = append(marks, m), append(at, time.Now())
			}
			started := time.Now()
			if _, err := Run(context.Background(), cfg); err != nil {
				t.Fatal(err)
			}
			mu.Lock()
			defer mu.Unlock()
			if !slices.Equal(marks, []Mark{Measuring, Measured}) {
				t.Fatalf("marks %v, want measuring then measured", marks)
			}
			if at[0].Sub(started) < cfg.Warmup {
				t.Errorf("measuring marked %v after the start, within the %v warm-up", at[0].Sub(started), cfg.Warmup)
			}
			// The second mark is due a window after the first was due; the
			// first may have been told late.
			if end := at[1].Sub(started); end < cfg.Warmup+cfg.Duration {
				t.Errorf("measured marked %v after the start, before the window's end (%v)", end, cfg.Warmup+cfg.Duration)
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	ok := testConfig("http://x", "mix", Closed)
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	for name, edit := range map[string]func(*Config){
		"ErrMode":            func(c *Config) { c.Mode = "half-open" },
		"ErrClients":         func(c *Config) { c.Clients = 0 },
		"ErrFewCustomers":    func(c *Config) { c.Customers = 3 },
		"ErrOpenWithoutRate": func(c *Config) { c.Mode, c.Rate = Open, 0 },
		"ErrNoCommandURL":    func(c *Config) { c.CommandURL = "" },
		"ErrNoQueryURL":      func(c *Config) { c.QueryURL = "" },
		"ErrSyntheticWrites": func(c *Config) { c.SyntheticCarts = true },
		"ErrNoProducts":      func(c *Config) { c.Products = nil },
		"ErrDuration":        func(c *Config) { c.Duration = 0 },
		"ErrAuth":            func(c *Config) { c.Auth.HS256Secret = []byte("short") },
	} {
		t.Run(name, func(t *testing.T) {
			c := ok
			edit(&c)
			if err := c.Validate(); err == nil || !strings.HasPrefix(err.Error(), "load: config: ") {
				t.Fatalf("Validate() = %v, want a config error", err)
			}
		})
	}
	t.Run("OKSyntheticReadsNeedNoCommandService", func(t *testing.T) {
		c := testConfig("", "reads", Closed)
		c.QueryURL, c.SyntheticCarts = "http://raw", true
		if err := c.Validate(); err != nil {
			t.Fatal(err)
		}
	})
}
