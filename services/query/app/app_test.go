package app_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/cart-cqrs/cart/pkg/auth"
	"github.com/cart-cqrs/cart/pkg/cart"
	"github.com/cart-cqrs/cart/pkg/envconf"
	"github.com/cart-cqrs/cart/pkg/readmodel"
	"github.com/cart-cqrs/cart/pkg/redistest"
	"github.com/cart-cqrs/cart/services/query/app"
)

var authCfg = auth.Config{
	HS256Secret: []byte("query-test-secret-0123456789abcdef"),
	Issuer:      "https://issuer.test",
	Audience:    "cart-api",
}

func TestApp(t *testing.T) {
	env := redistest.MustRedis(t)
	a, err := app.New(context.Background(), app.Config{
		HTTPAddr: "127.0.0.1:0", DebugAddr: "127.0.0.1:0", MetricsAddr: "127.0.0.1:0", RedisURL: env.URL, RedisPrefix: env.Prefix, Auth: authCfg,
	}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			cancel()
			<-done
		}
		if err := a.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	base := "http://" + a.Addr()

	for _, path := range []string{"/healthz", "/readyz"} {
		if code, body := fetch(t, base+path, ""); code != http.StatusOK {
			t.Errorf("GET %s = %d: %s", path, code, body)
		}
	}

	t.Run("ServesCart", func(t *testing.T) {
		id := uuid.Must(uuid.NewV7()).String()
		s := cart.Fold(cart.State{}, cart.Recorded{CartID: id, Version: 1, OccurredAt: time.Now().UTC(),
			Event: cart.Opened{CustomerID: "alice"}})
		doc, err := json.Marshal(readmodel.FromState(s))
		if err != nil {
			t.Fatal(err)
		}
		keys := readmodel.Keys{Prefix: env.Prefix, Generation: 1}
		if err := env.Client.HSet(ctx, keys.Cart(id), readmodel.FieldVersion, 1, readmodel.FieldDoc, doc).Err(); err != nil {
			t.Fatal(err)
		}
		tok, err := auth.Issue(authCfg, "alice", "", time.Hour, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if code, body := fetch(t, base+"/v1/carts/"+id, tok); code != http.StatusOK || body != string(doc) {
			t.Errorf("GET cart = %d: %s", code, body)
		}
		// HEAD answers like GET, without the body; another method is 405.
		get, _ := do(t, http.MethodGet, base+"/v1/carts/"+id, tok)
		head, headBody := do(t, http.MethodHead, base+"/v1/carts/"+id, tok)
		if head.StatusCode != http.StatusOK || headBody != "" || head.Header.Get("ETag") == "" || head.Header.Get("ETag") != get.Header.Get("ETag") {
			t.Errorf("HEAD cart = %d %q ETag %q; GET ETag %q", head.StatusCode, headBody, head.Header.Get("ETag"), get.Header.Get("ETag"))
		}
		for _, path := range []string{"/v1/carts/" + id, "/v1/carts/" + id + "/history", "/v1/customers/me/cart"} {
			if res, _ := do(t, http.MethodPost, base+path, tok); res.StatusCode != http.StatusMethodNotAllowed || res.Header.Get("Allow") != "GET, HEAD" {
				t.Errorf("POST %s = %d Allow %q, want 405 Allow GET, HEAD", path, res.StatusCode, res.Header.Get("Allow"))
			}
		}
		// The projector's next write, announced: a waiting read sees it.
		done := make(chan string, 1)
		go func() {
			// Not fetch: t.Fatal is for the test's own goroutine.
			req, _ := http.NewRequest(http.MethodGet, base+"/v1/carts/"+id+"?minVersion=2", nil)
			req.Header.Set("Authorization", "Bearer "+tok)
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				done <- err.Error()
				return
			}
			defer func() { _ = res.Body.Close() }()
			body, err := io.ReadAll(res.Body)
			if err != nil {
				done <- err.Error()
				return
			}
			done <- string(body)
		}()
		s2 := cart.Evolve(s, cart.Recorded{CartID: id, Version: 2, OccurredAt: time.Now().UTC(), Event: cart.CheckedOut{}})
		doc2, err := json.Marshal(readmodel.FromState(s2))
		if err != nil {
			t.Fatal(err)
		}
		if err := env.Client.HSet(ctx, keys.Cart(id), readmodel.FieldVersion, 2, readmodel.FieldDoc, doc2).Err(); err != nil {
			t.Fatal(err)
		}
		u := readmodel.Update{CartID: id, Version: 2, CustomerID: "alice"}
		if err := env.Client.Publish(ctx, keys.Updates(), u.String()).Err(); err != nil {
			t.Fatal(err)
		}
		if body := <-done; body != string(doc2) {
			t.Errorf("GET cart?minVersion=2 = %s", body)
		}
		if status, _ := fetch(t, base+"/metrics", ""); status != http.StatusNotFound {
			t.Errorf("the API's port serves /metrics: %d", status)
		}
		_, metrics := fetch(t, "http://"+a.MetricsAddr()+"/metrics", "")
		for _, name := range []string{"cart_query_min_version_wait_seconds", "cart_query_min_version_give_ups_total", "cart_query_min_version_waiters"} {
			if !strings.Contains(metrics, name) {
				t.Errorf("/metrics has no %s", name)
			}
		}
	})

	cancel()
	stopped = true
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
}

func TestNewRefusesBadConfig(t *testing.T) {
	for name, cfg := range map[string]app.Config{
		"NoSecret": {HTTPAddr: "127.0.0.1:0", RedisURL: "redis://127.0.0.1:6379/0", Auth: auth.Config{Issuer: "i", Audience: "a"}},
		"BadURL":   {HTTPAddr: "127.0.0.1:0", RedisURL: "postgres://nope", Auth: authCfg},
		"LongWait": {HTTPAddr: "127.0.0.1:0", RedisURL: "redis://127.0.0.1:6379/0", Auth: authCfg, MinVersionWait: time.Minute},
	} {
		t.Run(name, func(t *testing.T) {
			if a, err := app.New(context.Background(), cfg, slog.New(slog.DiscardHandler)); err == nil {
				_ = a.Close()
				t.Fatal("New accepted a bad config")
			}
		})
	}
}

func TestConfigFromEnv(t *testing.T) {
	t.Run("Defaults", func(t *testing.T) {
		cfg, err := app.ConfigFromEnv(envconf.Map(nil))
		if err != nil {
			t.Fatal(err)
		}
		if cfg.HTTPAddr != ":8081" || cfg.RedisURL != "redis://127.0.0.1:6379/0" || cfg.RedisPrefix != "cart:" ||
			cfg.Auth.Disabled || cfg.MinVersionWait != 2*time.Second || cfg.MetricsAddr != "127.0.0.1:9081" {
			t.Errorf("defaults = %+v", cfg)
		}
	})
	t.Run("Set", func(t *testing.T) {
		cfg, err := app.ConfigFromEnv(envconf.Map(map[string]string{
			"QUERY_ADDR": ":9999", "REDIS_PREFIX": "x:", "AUTH_HS256_SECRET": "s3cret", "AUTH_ISSUER": "iss",
			"AUTH_AUDIENCE": "aud", "AUTH_DISABLED": "true", "LOG_LEVEL": "debug", "QUERY_MIN_VERSION_WAIT": "10s",
		}))
		if err != nil {
			t.Fatal(err)
		}
		if cfg.HTTPAddr != ":9999" || cfg.RedisPrefix != "x:" || string(cfg.Auth.HS256Secret) != "s3cret" ||
			cfg.Auth.Issuer != "iss" || cfg.Auth.Audience != "aud" || !cfg.Auth.Disabled || cfg.MinVersionWait != 10*time.Second {
			t.Errorf("cfg = %+v", cfg)
		}
	})
	t.Run("ErrMinVersionWait", func(t *testing.T) {
		for _, v := range []string{"0s", "-1s", "11s", "soon"} {
			_, err := app.ConfigFromEnv(envconf.Map(map[string]string{"QUERY_MIN_VERSION_WAIT": v}))
			if err == nil || !strings.Contains(err.Error(), "QUERY_MIN_VERSION_WAIT") {
				t.Errorf("QUERY_MIN_VERSION_WAIT=%s: err = %v", v, err)
			}
		}
	})
	t.Run("ErrEveryMalformedValue", func(t *testing.T) {
		_, err := app.ConfigFromEnv(envconf.Map(map[string]string{"AUTH_DISABLED": "maybe"}))
		if err == nil || !strings.Contains(err.Error(), "AUTH_DISABLED") {
			t.Fatalf("err = %v, want both variables named", err)
		}
	})
}

func fetch(t *testing.T, url, token string) (int, string) {
	t.Helper()
	res, body := do(t, http.MethodGet, url, token)
	return res.StatusCode, body
}

func do(t *testing.T, method, url, token string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = res.Body.Close() }()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res, string(body)
}
