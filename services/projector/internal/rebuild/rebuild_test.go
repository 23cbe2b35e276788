package rebuild_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"strconv"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	goredis "github.com/redis/go-redis/v9"

	"github.com/cart-cqrs/cart/pkg/cart"
	"github.com/cart-cqrs/cart/pkg/envelope"
	"github.com/cart-cqrs/cart/pkg/eventlog"
	"github.com/cart-cqrs/cart/pkg/pgtest"
	"github.com/cart-cqrs/cart/pkg/readmodel"
	"github.com/cart-cqrs/cart/pkg/redistest"
	"github.com/cart-cqrs/cart/services/projector/internal/documents"
	"github.com/cart-cqrs/cart/services/projector/internal/engine"
	"github.com/cart-cqrs/cart/services/projector/internal/postgres"
	"github.com/cart-cqrs/cart/services/projector/internal/rebuild"
	"github.com/cart-cqrs/cart/services/projector/internal/redisstore"
)

// env is one test's event log and Redis key prefix.
type env struct {
	pool  *pgxpool.Pool
	log   *logBuilder
	redis redistest.Env
	// rb returns a builder of the documents' generations that fills them
	// with a Rebuilder of cfg.
	rb func(cfg rebuild.Config) *engine.Builder
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
		pool:  pool,
		log:   &logBuilder{pool: pool, at: time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC), versions: map[string]int{}},
		redis: r,
		rb: func(cfg rebuild.Config) *engine.Builder {
			store := redisstore.New(r.Client, r.Prefix)
			metrics, err := engine.NewMetrics(prometheus.NewRegistry())
			if err != nil {
				t.Fatal(err)
			}
			return engine.NewBuilder(documents.Name, engine.BuildConfig{DrainWait: time.Millisecond}, rebuild.Generations{Store: store},
				rebuild.New(cfg, store, postgres.NewLog(pool), logger), metrics, logger)
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
	res, err := e.rb(rebuild.Config{}).Build(context.Background())
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

// The generation a rebuild fills equals a replay of the log, however the
// carts' events interleave, when carts are staged in pieces and forgotten
// and read again.
func TestRebuild_EqualsAReplayOfTheLog(t *testing.T) {
	e := mustEnv(t)
	type step struct {
		cart string
		ev   cart.Event
	}
	espresso := cart.ItemAdded{ProductID: "123", Name: "Espresso beans 1 kg", UnitPrice: 1899, Currency: "EUR", Quantity: 1}
	mug := cart.ItemAdded{ProductID: "456", Name: "Crème \"mug\"", UnitPrice: 1250, Currency: "EUR", Quantity: 2}
	// Each customer's carts one after another, the customers' interleaved.
	var queues [][]step
	for c := range 20 {
		customer := fmt.Sprintf("customer-%d", c)
		var q []step
		for n := range 1 + c%3 {
			id := uuid.NewString()
			q = append(q, step{id, cart.Opened{CustomerID: customer}})
			for i := range 1 + (c*7+n)%9 {
				if i%3 == 2 {
					q = append(q, step{id, cart.QuantityChanged{ProductID: "123", OldQuantity: 1, NewQuantity: 4}})
				} else {
					q = append(q, step{id, espresso}, step{id, mug})
				}
			}
			if n < c%3 || c%2 == 0 {
				q = append(q, step{id, cart.CheckedOut{}})
			}
		}
		queues = append(queues, q)
	}
	for left := true; left; {
		left = false
		for i, q := range queues {
			if len(q) > 0 {
				e.log.append(t, q[0].cart, q[0].ev)
				queues[i], left = q[1:], true
			}
		}
	}
	res, err := e.rb(rebuild.Config{PageSize: 7, WriteBatch: 5, MaxCarts: 8}).Build(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	e.checkReplay(t, res.Generation)
}

// checkReplay compares generation gen with a replay of the whole log:
// every cart's document, owner and history, every customer's open cart,
// and nothing else of the rebuild's left.
func (e *env) checkReplay(t *testing.T, gen int) {
	t.Helper()
	ctx := context.Background()
	keys := readmodel.Keys{Prefix: e.redis.Prefix, Generation: gen}
	envs, err := eventlog.ReadAll(ctx, e.pool, 0, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	byCart := map[string][]envelope.Envelope{}
	var order []string
	for _, env := range envs {
		if byCart[env.StreamID] == nil {
			order = append(order, env.StreamID)
		}
		byCart[env.StreamID] = append(byCart[env.StreamID], env)
	}
	openOf := map[string]string{}
	for _, id := range order {
		var s cart.State
		var want []string
		for _, env := range byCart[id] {
			r, err := env.Recorded()
			if err != nil {
				t.Fatal(err)
			}
			s = cart.Evolve(s, r)
			b, err := json.Marshal(readmodel.NewHistoryEntry(env))
			if err != nil {
				t.Fatal(err)
			}
			want = append(want, string(b))
		}
		doc, err := json.Marshal(readmodel.FromState(s))
		if err != nil {
			t.Fatal(err)
		}
		got, err := e.redis.Client.HGetAll(ctx, keys.Cart(id)).Result()
		if err != nil {
			t.Fatal(err)
		}
		if got[readmodel.FieldDoc] != string(doc) || got[readmodel.FieldVersion] != strconv.Itoa(s.Version) || got[readmodel.FieldOwner] != s.CustomerID {
			t.Errorf("cart %s = %v\nwant %s", id, got, doc)
		}
		history, err := e.redis.Client.LRange(ctx, keys.History(id), 0, -1).Result()
		if err != nil {
			t.Fatal(err)
		}
		if len(history) != len(want) {
			t.Errorf("cart %s: history of %d entries, want %d", id, len(history), len(want))
		}
		for i := range min(len(history), len(want)) {
			var g, w any
			_ = json.Unmarshal([]byte(history[i]), &g)
			_ = json.Unmarshal([]byte(want[i]), &w)
			if !reflect.DeepEqual(g, w) {
				t.Errorf("cart %s history %d:\n got %s\nwant %s", id, i, history[i], want[i])
			}
		}
		if s.Status == cart.StatusOpen {
			openOf[s.CustomerID] = id
		} else if _, ok := openOf[s.CustomerID]; !ok {
			openOf[s.CustomerID] = ""
		}
	}
	for customer, want := range openOf {
		got, err := e.redis.Client.Get(ctx, keys.OpenCart(customer)).Result()
		if errors.Is(err, goredis.Nil) {
			got, err = "", nil
		}
		if err != nil || got != want {
			t.Errorf("open cart of %s = %q, %v; want %q", customer, got, err, want)
		}
	}
	left, err := e.redis.Client.Keys(ctx, keys.Pattern()[:len(keys.Pattern())-1]+"*:staged").Result()
	if err != nil || len(left) != 0 {
		t.Errorf("staged keys left: %v, %v", left, err)
	}
}
