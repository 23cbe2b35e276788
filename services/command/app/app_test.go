package app_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cart-cqrs/cart/pkg/polltest"

	"github.com/cart-cqrs/cart/pkg/envconf"
	"github.com/cart-cqrs/cart/pkg/envelope"
	"github.com/cart-cqrs/cart/services/command/app"
)

// TestApp starts the service as main does, on a free port against a fresh
// database and stream: a command goes through HTTP, the relay publishes its
// event, /readyz is green, and Run returns nil once its context ends.
func TestApp(t *testing.T) {
	cfg, nt := testConfig(t)
	hooked := make(chan struct{}, 16)
	cfg.RelayAfterPublish = func(context.Context, []envelope.Envelope) error {
		select {
		case hooked <- struct{}{}:
		default:
		}
		return nil
	}

	a := mustRun(t, cfg)
	base := "http://" + a.Addr()

	body := mustOpenCart(t, cfg, base, "alice")

	// The relay publishes the cart.opened event to the stream.
	stream, err := nt.JS.Stream(t.Context(), nt.Stream)
	if err != nil {
		t.Fatalf("stream %s: %v", nt.Stream, err)
	}
	subject := envelope.Subject(nt.SubjectPrefix, body.CartID, "cart.opened")
	poll(t, "the event reaches the stream", func() bool {
		_, err := stream.GetLastMsgForSubject(t.Context(), subject)
		return err == nil
	})
	// The hook runs after the batch's PubAcks, so just after the message
	// became visible in the stream.
	select {
	case <-hooked:
	case <-time.After(10 * time.Second):
		t.Error("RelayAfterPublish was not called")
	}
	if !a.RelayIsLeader() {
		t.Error("the only relay is not the leader")
	}

	res, err := http.Get(base + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("/readyz = %d", res.StatusCode)
	}
}

// poll checks done until it reports true, failing the test after 15s.
func poll(t *testing.T, what string, done func() bool) {
	t.Helper()
	polltest.True(t, 15*time.Second, what, done)
}

func TestConfigFromEnv(t *testing.T) {
	t.Run("Defaults", func(t *testing.T) {
		cfg, err := app.ConfigFromEnv(envconf.Map(nil))
		if err != nil {
			t.Fatal(err)
		}
		if cfg.HTTPAddr != ":8080" || cfg.NATSURL != "nats://127.0.0.1:4222" ||
			cfg.DatabaseURL != "postgres://postgres@127.0.0.1:5432/cart?sslmode=disable" ||
			cfg.Relay.Stream != "CART_EVENTS" || cfg.Relay.SubjectPrefix != "cart.events" || cfg.Relay.Replicas != 1 ||
			cfg.Relay.DuplicateWindow != 5*time.Minute || cfg.Relay.BatchSize != 1000 || cfg.Relay.MaxInFlight != 1000 || cfg.Relay.PollInterval != time.Second ||
			!cfg.RelayEnabled || cfg.SnapshotEvery != 20 || cfg.StateCacheSize != 4096 || cfg.ConflictRetries != 5 || !cfg.Migrate ||
			cfg.Auth.Disabled || cfg.IdempotencyTTL != 24*time.Hour || cfg.MetricsAddr != "127.0.0.1:9080" ||
			cfg.Relay.Retention != 5*time.Minute || cfg.Relay.RepublishHorizon != 0 || cfg.Relay.VerifyInterval != 10*time.Second {
			t.Fatalf("defaults = %+v", cfg)
		}
	})
	t.Run("Overrides", func(t *testing.T) {
		cfg, err := app.ConfigFromEnv(envconf.Map(map[string]string{
			"COMMAND_ADDR": ":9090", "NATS_STREAM": "S", "NATS_SUBJECT_PREFIX": "p.q", "NATS_STREAM_REPLICAS": "3",
			"NATS_DUPLICATE_WINDOW": "2m", "RELAY_BATCH_SIZE": "50", "RELAY_POLL_INTERVAL": "250ms", "RELAY_ENABLED": "false",
			"SNAPSHOT_EVERY": "7", "CONFLICT_RETRIES": "0", "MIGRATE": "false", "AUTH_DISABLED": "true", "LOG_LEVEL": "debug",
			"AUTH_HS256_SECRET": "s", "AUTH_ISSUER": "i", "AUTH_AUDIENCE": "a", "IDEMPOTENCY_TTL": "1h",
		}))
		if err != nil {
			t.Fatal(err)
		}
		if cfg.HTTPAddr != ":9090" || cfg.Relay.Stream != "S" || cfg.Relay.SubjectPrefix != "p.q" || cfg.Relay.Replicas != 3 ||
			cfg.Relay.DuplicateWindow != 2*time.Minute || cfg.Relay.BatchSize != 50 || cfg.Relay.PollInterval != 250*time.Millisecond ||
			cfg.RelayEnabled || cfg.SnapshotEvery != 7 || cfg.ConflictRetries != 0 || cfg.Migrate || !cfg.Auth.Disabled ||
			string(cfg.Auth.HS256Secret) != "s" || cfg.Auth.Issuer != "i" || cfg.Auth.Audience != "a" ||
			cfg.IdempotencyTTL != time.Hour || cfg.Relay.Retention != 2*time.Minute {
			t.Fatalf("overrides = %+v", cfg)
		}
	})
	t.Run("Retention", func(t *testing.T) {
		cfg, err := app.ConfigFromEnv(envconf.Map(map[string]string{
			"RELAY_RETENTION": "0", "RELAY_REPUBLISH_HORIZON": "720h", "RELAY_VERIFY_INTERVAL": "1s",
		}))
		if err != nil {
			t.Fatal(err)
		}
		if cfg.Relay.Retention >= 0 || cfg.Relay.RepublishHorizon != 720*time.Hour || cfg.Relay.VerifyInterval != time.Second {
			t.Fatalf("RELAY_RETENTION=0 keeps nothing: %+v", cfg.Relay)
		}
		// Beyond the duplicate window, a re-published survivor would be
		// stored twice.
		_, err = app.ConfigFromEnv(envconf.Map(map[string]string{"RELAY_RETENTION": "10m"}))
		if err == nil || !strings.Contains(err.Error(), "RELAY_RETENTION") {
			t.Fatalf("RELAY_RETENTION above the duplicate window: %v", err)
		}
	})
	t.Run("EveryMistakeReported", func(t *testing.T) {
		_, err := app.ConfigFromEnv(envconf.Map(map[string]string{
			"RELAY_ENABLED": "maybe", "NATS_DUPLICATE_WINDOW": "5 minutes", "SNAPSHOT_EVERY": "0", "IDEMPOTENCY_TTL": "-1s",
		}))
		if err == nil {
			t.Fatal("no error")
		}
		for _, want := range []string{"RELAY_ENABLED", "NATS_DUPLICATE_WINDOW", "SNAPSHOT_EVERY", "IDEMPOTENCY_TTL"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error does not name %s: %v", want, err)
			}
		}
	})
}

func TestNewRefusesBadAuthConfig(t *testing.T) {
	cfg, err := app.ConfigFromEnv(envconf.Map(map[string]string{"COMMAND_ADDR": "127.0.0.1:0"}))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := app.New(t.Context(), cfg, nil); err == nil || !strings.Contains(err.Error(), "auth") {
		t.Fatalf("New without an auth secret = %v, want an auth config error", err)
	}
}
