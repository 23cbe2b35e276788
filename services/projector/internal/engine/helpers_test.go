package engine_test

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/cart-cqrs/cart/pkg/cart"
	"github.com/cart-cqrs/cart/pkg/envelope"
	"github.com/cart-cqrs/cart/pkg/natstest"
	"github.com/cart-cqrs/cart/pkg/pgtest"
	"github.com/cart-cqrs/cart/pkg/redistest"
	"github.com/cart-cqrs/cart/services/projector/internal/engine"
)

// fixture is one test's event log, Redis prefix, engine metrics and, when
// asked for, stream.
type fixture struct {
	pool    *pgxpool.Pool
	redis   redistest.Env
	nats    natstest.Env
	metrics *engine.Metrics
	logger  *slog.Logger
}

func mustFixture(tb testing.TB, withNATS bool) *fixture {
	tb.Helper()
	pool, _ := pgtest.MustPool(tb)
	metrics, err := engine.NewMetrics(prometheus.NewRegistry())
	if err != nil {
		tb.Fatal(err)
	}
	f := &fixture{pool: pool, redis: redistest.MustRedis(tb), metrics: metrics,
		logger: slog.New(slog.NewTextHandler(tb.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))}
	if withNATS {
		f.nats = natstest.MustNATS(tb)
		f.nats.MustStream(tb)
	}
	return f
}

// insert appends events to the event log as the command service does.
func (f *fixture) insert(tb testing.TB, envs ...envelope.Envelope) {
	tb.Helper()
	if err := pgtest.InsertEvents(context.Background(), f.pool, envs); err != nil {
		tb.Fatal(err)
	}
}

// publish sends events as the relay does (natstest.Env.MustPublish).
func (f *fixture) publish(tb testing.TB, suffix string, envs ...envelope.Envelope) {
	tb.Helper()
	f.nats.MustPublish(tb, suffix, envs...)
}

// typesInLog counts the event log's events by type, in SQL.
func (f *fixture) typesInLog(tb testing.TB) map[string]int64 {
	tb.Helper()
	rows, err := f.pool.Query(context.Background(), `SELECT type, count(*) FROM events GROUP BY type`)
	if err != nil {
		tb.Fatal(err)
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var typ string
		var n int64
		if err := rows.Scan(&typ, &n); err != nil {
			tb.Fatal(err)
		}
		out[typ] = n
	}
	if err := rows.Err(); err != nil {
		tb.Fatal(err)
	}
	return out
}

// history returns the events of n carts, each decided by the domain from
// random commands (opens, adds, quantity changes, removals, checkouts),
// by cart in version order.
func history(tb testing.TB, seed uint64, n int) [][]envelope.Envelope {
	tb.Helper()
	rng := rand.New(rand.NewPCG(seed, seed+1))
	when := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	out := make([][]envelope.Envelope, n)
	for i := range out {
		id := uuid.NewString()
		actor := cart.Actor{ID: "customer-" + id[:8]}
		var s cart.State
		var evs []envelope.Envelope
		cmds := []cart.Command{cart.Open{}}
		for range 2 + rng.IntN(8) {
			p := fmt.Sprintf("p%d", 1+rng.IntN(4))
			switch r := rng.IntN(10); {
			case r < 5:
				cmds = append(cmds, cart.AddItem{ProductID: p, Quantity: 1 + rng.IntN(3),
					Product: &cart.Product{ID: p, Name: "Product " + p, UnitPrice: 250, Currency: "EUR", Available: true}})
			case r < 7:
				cmds = append(cmds, cart.ChangeQuantity{ProductID: p, Quantity: 1 + rng.IntN(5)})
			case r < 9:
				cmds = append(cmds, cart.RemoveItem{ProductID: p})
			default:
				cmds = append(cmds, cart.Checkout{})
			}
		}
		for _, cmd := range cmds {
			decided, err := cart.Decide(s, actor, cmd)
			if err != nil {
				continue // refused by the domain (say, a removal of what is not there)
			}
			for _, ev := range decided {
				when = when.Add(time.Duration(1+rng.IntN(60_000)) * time.Millisecond)
				env, err := envelope.New(uuid.NewString(), id, len(evs)+1, ev, envelope.Metadata{Actor: actor.ID}, when)
				if err != nil {
					tb.Fatal(err)
				}
				r, err := env.Recorded()
				if err != nil {
					tb.Fatal(err)
				}
				s = cart.Evolve(s, r)
				evs = append(evs, env)
			}
		}
		out[i] = evs
	}
	return out
}

// flatten is the carts' events, cart after cart.
func flatten(carts [][]envelope.Envelope) []envelope.Envelope {
	var out []envelope.Envelope
	for _, c := range carts {
		out = append(out, c...)
	}
	return out
}
