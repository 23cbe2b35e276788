package app_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/cart-cqrs/cart/pkg/auth"
	"github.com/cart-cqrs/cart/pkg/natstest"
	"github.com/cart-cqrs/cart/pkg/pgtest"
	"github.com/cart-cqrs/cart/services/command/app"
	"github.com/cart-cqrs/cart/services/command/internal/relay"
)

// testConfig is the service's configuration for a fresh database and stream,
// on a free port, with the relay on.
func testConfig(t *testing.T) (app.Config, natstest.Env) {
	t.Helper()
	nt := natstest.MustNATS(t)
	return app.Config{
		HTTPAddr:         "127.0.0.1:0",
		DebugAddr:        "127.0.0.1:0", // the profiler starts and stops with the app
		MetricsAddr:      "127.0.0.1:0",
		DatabaseURL:      pgtest.MustDatabase(t),
		DatabaseMaxConns: 4,
		NATSURL:          nt.URL,
		Auth: auth.Config{
			HS256Secret: []byte("app-test-secret-app-test-secret-!"),
			Issuer:      "https://issuer.test", Audience: "cart-cqrs",
		},
		Relay:           relay.Options{Stream: nt.Stream, SubjectPrefix: nt.SubjectPrefix, PollInterval: 100 * time.Millisecond},
		RelayEnabled:    true,
		SnapshotEvery:   20,
		ConflictRetries: 5,
		Migrate:         true,
	}, nt
}

// mustNew builds the app as main does; it is closed at cleanup.
func mustNew(t *testing.T, cfg app.Config) *app.App {
	t.Helper()
	a, err := app.New(t.Context(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		if err := a.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return a
}

// mustRun builds and runs the app as main does. At cleanup its context ends,
// and Run must return nil within 30 s.
func mustRun(t *testing.T, cfg app.Config) *app.App {
	t.Helper()
	a := mustNew(t, cfg)
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- a.Run(ctx) }()
	t.Cleanup(func() { // runs before mustNew's Close
		cancel()
		select {
		case err := <-ran:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("Run did not return after cancel")
		}
	})
	return a
}

// openedCart is the answer to POST /v1/carts.
type openedCart struct {
	CartID  string `json:"cartId"`
	Version int    `json:"version"`
}

// mustOpenCart opens customer's cart through the app's API at base: 201,
// version 1, ETag "1".
func mustOpenCart(t *testing.T, cfg app.Config, base, customer string) openedCart {
	t.Helper()
	tok, err := auth.Issue(cfg.Auth, customer, "", time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, base+"/v1/carts", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var body openedCart
	err = json.NewDecoder(res.Body).Decode(&body)
	if cerr := res.Body.Close(); err == nil {
		err = cerr
	}
	if err != nil || res.StatusCode != http.StatusCreated || body.Version != 1 || res.Header.Get("ETag") != `"1"` {
		t.Fatalf("POST /v1/carts for %s = %d %+v (%v)", customer, res.StatusCode, body, err)
	}
	return body
}
