package app_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/cart-cqrs/cart/pkg/polltest"

	"github.com/cart-cqrs/cart/pkg/auth"
	"github.com/cart-cqrs/cart/pkg/envconf"
	"github.com/cart-cqrs/cart/pkg/natstest"
	"github.com/cart-cqrs/cart/pkg/pgtest"
	"github.com/cart-cqrs/cart/pkg/redistest"
	"github.com/cart-cqrs/cart/services/projector/app"
)

var authCfg = auth.Config{HS256Secret: []byte("projector-test-secret-projector-test!"), Issuer: "i", Audience: "a"}

func TestConfigFromEnv(t *testing.T) {
	cfg, err := app.ConfigFromEnv(envconf.Map(map[string]string{"PROJECTOR_BATCH": "64", "NATS_DURABLE": "p2",
		"AUTH_HS256_SECRET": string(authCfg.HS256Secret), "AUTH_ISSUER": "i", "AUTH_AUDIENCE": "a"}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.HTTPAddr != ":8082" || cfg.BatchSize != 64 || cfg.Durable != "p2" || cfg.AckWait != 30*time.Second || cfg.Stream != "CART_EVENTS" ||
		cfg.MaxDeliver != 5 || cfg.RebuildPageSize != 20000 || cfg.RebuildDrainWait != 2*time.Second || cfg.Auth.Issuer != "i" ||
		cfg.AnalyticsBuildPage != 10000 || cfg.AnalyticsCheckEvery != 30*time.Second || cfg.TrailingWindow != 25*time.Millisecond || cfg.CartCacheSize != 4096 ||
		cfg.MetricsAddr != "127.0.0.1:9082" {
		t.Fatalf("config = %+v", cfg)
	}
	if _, err := app.ConfigFromEnv(envconf.Map(map[string]string{})); err == nil {
		t.Fatal("no auth settings accepted: the admin API would be open")
	}
	if _, err := app.ConfigFromEnv(envconf.Map(map[string]string{"PROJECTOR_BATCH": "0", "PROJECTOR_ACK_WAIT": "soon"})); err == nil {
		t.Fatal("bad values accepted")
	}
	if _, err := app.ConfigFromEnv(envconf.Map(map[string]string{"PROJECTOR_CART_CACHE_SIZE": "-1",
		"AUTH_HS256_SECRET": string(authCfg.HS256Secret), "AUTH_ISSUER": "i", "AUTH_AUDIENCE": "a"})); err == nil {
		t.Fatal("a negative cart cache size accepted")
	}
	valid := map[string]string{"AUTH_HS256_SECRET": string(authCfg.HS256Secret), "AUTH_ISSUER": "i", "AUTH_AUDIENCE": "a"}
	for name, vars := range map[string]map[string]string{
		"NoPage":         {"ANALYTICS_BUILD_PAGE": "-1"},
		"TightChecks":    {"ANALYTICS_CHECK_INTERVAL": "10ms"},
		"MalformedCheck": {"ANALYTICS_CHECK_INTERVAL": "often"},
		"NegativeWindow": {"PROJECTOR_TRAILING_WINDOW": "-1ms"},
		"WindowPastAck":  {"PROJECTOR_TRAILING_WINDOW": "20s"},
	} {
		for k, v := range valid {
			vars[k] = v
		}
		if _, err := app.ConfigFromEnv(envconf.Map(vars)); err == nil {
			t.Errorf("%s: %v accepted", name, vars)
		}
	}
}

func TestApp_ReadyOnceAttachedAndStops(t *testing.T) {
	dbURL := pgtest.MustDatabase(t)
	nenv := natstest.MustNATS(t)
	renv := redistest.MustRedis(t)
	cfg := app.Config{
		HTTPAddr: "127.0.0.1:0", MetricsAddr: "127.0.0.1:0", DatabaseURL: dbURL, NATSURL: nenv.URL, Stream: nenv.Stream,
		SubjectPrefix: nenv.SubjectPrefix, Durable: "cart-projector", RedisURL: renv.URL, RedisPrefix: renv.Prefix,
		BatchSize: 256, AckWait: 30 * time.Second, MaxAckPending: 1024, MaxDeliver: 5, RebuildPageSize: 1000,
		Auth: authCfg,
	}
	logger := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	a, err := app.New(context.Background(), cfg, logger)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := a.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()

	base := "http://" + a.Addr()
	if got := status(t, base+"/healthz"); got != http.StatusOK {
		t.Fatalf("/healthz = %d", got)
	}
	// No stream yet: the projector waits for the relay to create it.
	if got := status(t, base+"/readyz"); got != http.StatusServiceUnavailable {
		t.Fatalf("/readyz before the stream exists = %d, want 503", got)
	}
	nenv.MustStream(t)
	polltest.True(t, 20*time.Second, "/readyz 200", func() bool { return status(t, base+"/readyz") == http.StatusOK })
	if got := status(t, "http://"+a.MetricsAddr()+"/metrics"); got != http.StatusOK {
		t.Fatalf("/metrics on the management address = %d", got)
	}
	if got := status(t, base+"/metrics"); got != http.StatusNotFound {
		t.Fatalf("/metrics on the API's port = %d, want 404", got)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
}

func status(t *testing.T, url string) int {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	_, _ = io.Copy(io.Discard, res.Body)
	return res.StatusCode
}
