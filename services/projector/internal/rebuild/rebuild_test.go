package rebuild_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/cart-cqrs/cart/pkg/cart"
	"github.com/cart-cqrs/cart/pkg/envelope"
	"github.com/cart-cqrs/cart/pkg/pgtest"
	"github.com/cart-cqrs/cart/pkg/readmodel"
	"github.com/cart-cqrs/cart/pkg/redistest"
	"github.com/cart-cqrs/cart/services/projector/internal/postgres"
	"github.com/cart-cqrs/cart/services/projector/internal/rebuild"
	"github.com/cart-cqrs/cart/services/projector/internal/redis"
)

// env is one test's event log and Redis key prefix.
type env struct {
	log   *logBuilder
	redis redistest.Env
	rb    func(cfg rebuild.Config) *rebuild.Rebuilder
}

func mustEnv(t testing.TB) *env {
	t.Helper()
	_, dbURL := pgtest.MustPool(t)
	pool, err := postgres.NewPool(context.Background(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	r := redistest.MustRedis(t)
	logger := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	return &env{
		log:   &logBuilder{pool: pool, at: time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC), versions: map[string]int{}},
		redis: r,
		rb: func(cfg rebuild.Config) *rebuild.Rebuilder {
			if cfg.DrainWait == 0 {
				cfg.DrainWait = time.Millisecond
			}
			return rebuild.New(cfg, redis.New(r.Client, r.Prefix), pool, nil, logger)
		},
	}
}

// logBuilder appends events to the event log, one cart's after another's.
type logBuilder struct {
	pool     pgtest.CopyFromer
	at       time.Time
	versions map[string]int
}

func (l *logBuilder) append(t testing.TB, cartID string, evs ...cart.Event) {
	t.Helper()
	var envs []envelope.Envelope
	for _, ev := range evs {
		l.versions[cartID]++
		l.at = l.at.Add(time.Second)
		e, err := envelope.New(uuid.NewString(), cartID, l.versions[cartID], ev, envelope.Metadata{Actor: "test"}, l.at)
		if err != nil {
			t.Fatal(err)
		}
		envs = append(envs, e)
	}
	if err := pgtest.InsertEvents(context.Background(), l.pool, envs); err != nil {
		t.Fatal(err)
	}
}

func TestRebuild_WritesTheOwnerBesideTheDocument(t *testing.T) {
	e := mustEnv(t)
	a, b := uuid.NewString(), uuid.NewString()
	espresso := cart.ItemAdded{ProductID: "123", Name: "Espresso beans 1 kg", UnitPrice: 1899, Currency: "EUR", Quantity: 1}
	e.log.append(t, a, cart.Opened{CustomerID: "alice"}, espresso)
	e.log.append(t, b, cart.Opened{CustomerID: "bob"})
	e.log.append(t, a, cart.CheckedOut{})
	res, err := e.rb(rebuild.Config{}).Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	keys := readmodel.Keys{Prefix: e.redis.Prefix, Generation: res.Generation}
	for id, owner := range map[string]string{a: "alice", b: "bob"} {
		got, err := e.redis.Client.HGetAll(context.Background(), keys.Cart(id)).Result()
		if err != nil {
			t.Fatal(err)
		}
		var doc readmodel.Cart
		if err := json.Unmarshal([]byte(got[readmodel.FieldDoc]), &doc); err != nil {
			t.Fatalf("cart %s: %v", id, err)
		}
		if got[readmodel.FieldOwner] != owner || doc.CustomerID != owner {
			t.Errorf("cart %s: owner %q, document's customer %q; want %q", id, got[readmodel.FieldOwner], doc.CustomerID, owner)
		}
	}
}
