package e2e_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cart-cqrs/cart/pkg/cart"
	"github.com/cart-cqrs/cart/pkg/natstest"
	"github.com/cart-cqrs/cart/pkg/openapi/openapitest"
	"github.com/cart-cqrs/cart/pkg/pgtest"
	"github.com/cart-cqrs/cart/pkg/readmodel"
	"github.com/cart-cqrs/cart/pkg/redistest"
	projectorapp "github.com/cart-cqrs/cart/services/projector/app"
	queryapi "github.com/cart-cqrs/cart/services/query/api"
	queryapp "github.com/cart-cqrs/cart/services/query/app"
)

// productCounts is what the scenario must leave per product: the counters,
// and how many line lives each dwell distribution measured.
type productCounts struct {
	Name                                                    string
	Added, AddedToCarts, RemovedByCustomer, RemovedBySystem int64
	CheckedOut, AddedNeverCheckedOut                        int64
	QuantityRaised, QuantityLowered                         int64
	ToCheckout, ToRemoval                                   int64
}

func countsOf(p readmodel.ProductReport) productCounts {
	return productCounts{
		Name: p.Name, Added: p.Added, AddedToCarts: p.AddedToCarts, RemovedByCustomer: p.RemovedByCustomer,
		RemovedBySystem: p.RemovedBySystem, CheckedOut: p.CheckedOut, AddedNeverCheckedOut: p.AddedNeverCheckedOut,
		QuantityRaised: p.QuantityRaised, QuantityLowered: p.QuantityLowered,
		ToCheckout: p.DwellToCheckout.Count, ToRemoval: p.DwellToRemoval.Count,
	}
}

// analyticsScenario plays carts through the command API and returns what
// the product analytics must say about them:
//
//	alice: add 123, add 123 ×2 more, add 456, 456 → 3, 456 → 2, remove 456,
//	       add 789, check out
//	bob:   add 123, add 789, the system removes 789 (product unavailable),
//	       and the cart is abandoned, open
//	carol: add 456, check out
func analyticsScenario(t *testing.T, s *system) map[string]productCounts {
	t.Helper()
	ops := token(t, "ops", "admin")
	play := func(who string, steps ...func(tok, id string)) {
		tok := token(t, customer(who), "")
		id := s.command(t, tok, "/v1/carts", nil).CartID
		for _, step := range steps {
			step(tok, id)
		}
	}
	add := func(p string, n int) func(tok, id string) {
		return func(tok, id string) { s.command(t, tok, "/v1/carts/"+id+"/add-item", item(p, n)) }
	}
	change := func(p string, n int) func(tok, id string) {
		return func(tok, id string) { s.command(t, tok, "/v1/carts/"+id+"/change-quantity", item(p, n)) }
	}
	remove := func(p string) func(tok, id string) {
		return func(tok, id string) {
			s.command(t, tok, "/v1/carts/"+id+"/remove-item", map[string]any{"productId": p, "reason": cart.ReasonCustomer})
		}
	}
	removedBySystem := func(p string) func(tok, id string) {
		return func(_, id string) {
			s.command(t, ops, "/v1/carts/"+id+"/remove-item", map[string]any{"productId": p, "reason": cart.ReasonProductUnavailable})
		}
	}
	checkout := func(tok, id string) { s.command(t, tok, "/v1/carts/"+id+"/checkout", nil) }

	play("alice", add("123", 1), add("123", 2), add("456", 1), change("456", 3), change("456", 2), remove("456"), add("789", 1), checkout)
	play("bob", add("123", 1), add("789", 1), removedBySystem("789"))
	play("carol", add("456", 1), checkout)
	return map[string]productCounts{
		"123": {Name: "Espresso beans 1 kg", Added: 3, AddedToCarts: 2, CheckedOut: 1, AddedNeverCheckedOut: 1, QuantityRaised: 1, ToCheckout: 1},
		"456": {Name: "Ceramic mug", Added: 2, AddedToCarts: 2, RemovedByCustomer: 1, CheckedOut: 1, AddedNeverCheckedOut: 1,
			QuantityRaised: 1, QuantityLowered: 1, ToCheckout: 1, ToRemoval: 1},
		"789": {Name: "Milk frother", Added: 2, AddedToCarts: 2, RemovedBySystem: 1, CheckedOut: 1, AddedNeverCheckedOut: 1,
			ToCheckout: 1, ToRemoval: 1},
	}
}

// awaitAnalytics polls GET /v1/analytics/products of queryURL as an admin
// until it says want, and returns the last answer.
func awaitAnalytics(t *testing.T, queryURL string, want map[string]productCounts) readmodelList {
	t.Helper()
	admin := token(t, "ops", "admin")
	var list readmodelList
	eventually(t, 20*time.Second, "the product analytics of "+queryURL, func() error {
		r := do(t, http.MethodGet, queryURL+"/v1/analytics/products", admin, nil)
		if r.Status != http.StatusOK {
			return fmt.Errorf("status %d: %s", r.Status, r.Body)
		}
		list = readmodelList{}
		if err := json.Unmarshal(r.Body, &list); err != nil {
			return err
		}
		got := map[string]productCounts{}
		for _, p := range list.Products {
			got[p.ProductID] = countsOf(p)
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			return fmt.Errorf("serves\n%v\nwant\n%v", got, want)
		}
		return nil
	})
	return list
}

// readmodelList is the body of GET /v1/analytics/products.
type readmodelList struct {
	Generation int                       `json:"generation"`
	BuiltAt    time.Time                 `json:"builtAt"`
	Sort       string                    `json:"sort"`
	Total      int                       `json:"total"`
	Products   []readmodel.ProductReport `json:"products"`
}

// TestProductAnalytics: the projection answers "which products are added
// but never bought?" and the rest of its questions exactly, to admins only
// — from live events, and from a history written before the projector
// that serves them started.
func TestProductAnalytics(t *testing.T) {
	s := mustStart(t, options{})
	want := analyticsScenario(t, s)
	list := awaitAnalytics(t, s.queryURL, want)
	// Each product is in one cart that did not buy it: by product id.
	if list.Sort != "addedNeverCheckedOut" || list.Total != 3 || list.Products[0].ProductID != "123" || list.BuiltAt.IsZero() {
		t.Errorf("list = %+v", list)
	}
	for _, p := range list.Products {
		if d := p.DwellToCheckout; d.MedianSeconds == nil || *d.MedianSeconds < 0 || d.P90Seconds == nil {
			t.Errorf("%s: dwell to checkout %+v", p.ProductID, d)
		}
	}

	t.Run("AdminsOnly", func(t *testing.T) {
		for who, tc := range map[string]struct {
			tok    string
			status int
			code   string
		}{
			"nobody":   {"", http.StatusUnauthorized, ""},
			"customer": {token(t, customer("alice"), ""), http.StatusForbidden, "admin-only"},
			"system":   {token(t, "catalog-sync", "system"), http.StatusForbidden, "admin-only"},
		} {
			t.Run(who, func(t *testing.T) {
				for _, path := range []string{"/v1/analytics/products", "/v1/analytics/products/123"} {
					r, err := call(http.MethodGet, s.queryURL+path, hdr(tc.tok), nil)
					if err != nil {
						t.Fatal(err)
					}
					problemOf(t, r, tc.status, tc.code)
				}
			})
		}
	})
	t.Run("OneProduct", func(t *testing.T) {
		r := do(t, http.MethodGet, s.queryURL+"/v1/analytics/products/456", token(t, "ops", "admin"), nil)
		var got struct{ Product readmodel.ProductReport }
		if err := json.Unmarshal(r.Body, &got); err != nil || r.Status != http.StatusOK || countsOf(got.Product) != want["456"] {
			t.Errorf("GET 456: %d %s", r.Status, r.Body)
		}
		problemOf(t, do(t, http.MethodGet, s.queryURL+"/v1/analytics/products/808", token(t, "ops", "admin"), nil), http.StatusNotFound, "product-not-found")
	})
	t.Run("FromHistoryThatPredatesTheProjector", func(t *testing.T) {
		// A projector and a query service started now, on a Redis of their
		// own: the history above was written before them, and their stream
		// is one nobody publishes to, so what they serve can only come from
		// the event log.
		queryURL := s.startLateReaders(t)
		awaitAnalytics(t, queryURL, want)
	})
}

// startLateReaders starts another projector and query service on the
// system's event log, with a Redis prefix of their own and a stream that
// does not exist, and returns the query service's URL.
func (s *system) startLateReaders(t *testing.T) string {
	t.Helper()
	r := redistest.MustRedis(t)
	projectorDB := pgtest.MustRoleURL(t, s.pool.Config().ConnString(), "cart_projector")
	vars := map[string]string{
		"DATABASE_URL": projectorDB, "NATS_URL": s.nats.URL, "REDIS_URL": r.URL, "REDIS_PREFIX": r.Prefix,
		"NATS_STREAM": "NO_" + s.nats.Stream, "NATS_SUBJECT_PREFIX": "nowhere." + s.nats.SubjectPrefix,
		"AUTH_HS256_SECRET": testSecret, "AUTH_ISSUER": testAuth.Issuer, "AUTH_AUDIENCE": testAuth.Audience,
		"QUERY_ADDR": "127.0.0.1:0", "PROJECTOR_ADDR": "127.0.0.1:0", "RATE_LIMIT_RPS": "0",
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	run := func(name string, runFn func(context.Context) error, closeFn func() error) {
		wg.Go(func() {
			if err := runFn(ctx); err != nil {
				t.Errorf("%s: run: %v", name, err)
			}
			if err := closeFn(); err != nil {
				t.Errorf("%s: close: %v", name, err)
			}
		})
	}
	pcfg, err := projectorapp.ConfigFromEnv(env(vars))
	if err != nil {
		t.Fatal(err)
	}
	proj, err := projectorapp.New(ctx, pcfg, logger.With("service", "late projector"))
	if err != nil {
		t.Fatal(err)
	}
	run("late projector", proj.Run, proj.Close)
	qcfg, err := queryapp.ConfigFromEnv(env(vars))
	if err != nil {
		t.Fatal(err)
	}
	qry, err := queryapp.New(ctx, qcfg, logger.With("service", "late query"))
	if err != nil {
		t.Fatal(err)
	}
	run("late query", qry.Run, qry.Close)
	clients.Store(qry.Addr(), openapitest.Client(t, map[string]*openapi3.T{qry.Addr(): openapitest.MustLoad(t, queryapi.OpenAPI)}))
	t.Cleanup(func() { clients.Delete(qry.Addr()) })
	return "http://" + qry.Addr()
}

// TestProductAnalyticsNATSPermissions: under the shipped NATS permissions
// the projector's user may run the consumer that feeds the analytics, and
// another microservice may not touch it.
func TestProductAnalyticsNATSPermissions(t *testing.T) {
	srv := mustConfiguredNATS(t)
	js, violations := mustConnectAs(t, srv, "subscriber")
	env := natstest.Env{URL: srv.ClientURL(), Stream: "CART_EVENTS", SubjectPrefix: "cart.events", Conn: js.Conn(), JS: js, Server: srv}
	s := mustStart(t, options{
		nats:          &env,
		commandVars:   map[string]string{"NATS_URL": natsURLFor(srv, "command")},
		projectorVars: map[string]string{"NATS_URL": natsURLFor(srv, "projector"), "NATS_DURABLE": "cart-projector"},
	})
	awaitAnalytics(t, s.queryURL, analyticsScenario(t, s))

	st, err := js.Stream(t.Context(), "CART_EVENTS")
	if err != nil {
		t.Fatal(err)
	}
	mustBeDenied(t, violations, "the subscriber looks up the projector's consumer", func(ctx context.Context) error {
		_, err := st.Consumer(ctx, "cart-projector")
		return err
	})
	mustBeDenied(t, violations, "the subscriber changes the projector's consumer", func(ctx context.Context) error {
		_, err := st.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{Durable: "cart-projector", AckPolicy: jetstream.AckNonePolicy})
		return err
	})
}
