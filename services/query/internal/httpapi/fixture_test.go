package httpapi_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/cart-cqrs/cart/pkg/polltest"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/cart-cqrs/cart/pkg/auth"
	"github.com/cart-cqrs/cart/pkg/cart"
	"github.com/cart-cqrs/cart/pkg/envelope"
	"github.com/cart-cqrs/cart/pkg/httpserver"
	"github.com/cart-cqrs/cart/pkg/readmodel"
	"github.com/cart-cqrs/cart/services/query/internal/httpapi"
	"github.com/cart-cqrs/cart/services/query/internal/redisstore"
)

// liveAPI is the query API with the update subscription running, as the
// app wires it, waiting at most wait for ?minVersion.
type liveAPI struct {
	*api
	updates *redisstore.Updates
	metrics *httpapi.Metrics
	reg     *prometheus.Registry
}

func newLiveAPI(t *testing.T, wait time.Duration) *liveAPI {
	t.Helper()
	a := newAPI(t)
	l := &liveAPI{api: a, updates: redisstore.NewUpdates(a.redis.Client, a.store, a.logger), reg: prometheus.NewRegistry()}
	var err error
	if l.metrics, err = httpapi.NewMetrics(l.reg); err != nil {
		t.Fatal(err)
	}
	v, err := auth.NewVerifier(authCfg)
	if err != nil {
		t.Fatal(err)
	}
	a.e = httpserver.NewEcho(a.logger, prometheus.NewRegistry(), "query-test")
	httpapi.Register(a.e, v, a.store, httpapi.Options{Updates: l.updates, MinVersionWait: wait, Metrics: l.metrics})

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := l.updates.Run(ctx); err != nil {
			t.Errorf("Updates.Run: %v", err)
		}
	})
	wg.Go(func() {
		if err := a.store.Run(ctx, 50*time.Millisecond); err != nil {
			t.Errorf("Store.Run: %v", err)
		}
	})
	t.Cleanup(func() { cancel(); wg.Wait() })
	eventually(t, "update subscription up", func() bool { return l.updates.Subscribed() })
	return l
}

// waits is how many ?minVersion reads the wait histogram has seen.
func (l *liveAPI) waits(t *testing.T) uint64 {
	t.Helper()
	mfs, err := l.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "cart_query_min_version_wait_seconds" {
			return mf.GetMetric()[0].GetHistogram().GetSampleCount()
		}
	}
	t.Fatal("no wait histogram")
	return 0
}

// eventually polls cond until it holds, failing the test after 10s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	polltest.True(t, 10*time.Second, what, cond)
}

// stream builds the stored events of a cart, one minute apart from t0.
func stream(cartID string, t0 time.Time, evs ...cart.Event) []envelope.Envelope {
	out := make([]envelope.Envelope, len(evs))
	for i, ev := range evs {
		e, err := envelope.New(uuid.Must(uuid.NewV7()).String(), cartID, i+1, ev,
			envelope.Metadata{Actor: "actor-" + ev.EventType()}, t0.Add(time.Duration(i)*time.Minute))
		if err != nil {
			panic(err)
		}
		out[i] = e
	}
	return out
}

// fold is the state the events make, with the one shared fold.
func fold(t *testing.T, envs []envelope.Envelope) cart.State {
	t.Helper()
	s := cart.State{}
	for _, e := range envs {
		r, err := e.Recorded()
		if err != nil {
			t.Fatal(err)
		}
		s = cart.Evolve(s, r)
	}
	return s
}

// project writes what the projector would for a cart with these events, in
// generation gen: its document, its history and, when publish is set, the
// update announcing the version. It returns the document's JSON.
func (a *api) project(gen int, envs []envelope.Envelope, publish bool) []byte {
	a.t.Helper()
	s := fold(a.t, envs)
	doc, err := json.Marshal(readmodel.FromState(s))
	if err != nil {
		a.t.Fatal(err)
	}
	keys := readmodel.Keys{Prefix: a.redis.Prefix, Generation: gen}
	ctx := context.Background()
	entries := make([]any, len(envs))
	for i, e := range envs {
		b, err := json.Marshal(readmodel.NewHistoryEntry(e))
		if err != nil {
			a.t.Fatal(err)
		}
		entries[i] = b
	}
	_, err = a.redis.Client.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, keys.Cart(s.CartID), a.fields(s, doc)...)
		p.Del(ctx, keys.History(s.CartID))
		p.RPush(ctx, keys.History(s.CartID), entries...)
		return nil
	})
	if err != nil {
		a.t.Fatal(err)
	}
	if publish {
		u := readmodel.Update{CartID: s.CartID, Version: s.Version, CustomerID: s.CustomerID}
		if err := a.redis.Client.Publish(ctx, keys.Updates(), u.String()).Err(); err != nil {
			a.t.Fatal(err)
		}
	}
	return doc
}

// serveAsync sends GET path in the background; the recorder arrives on the
// channel once the handler returned.
func serveAsync(t *testing.T, e *echo.Echo, ctx context.Context, path, subject string, headers ...string) <-chan *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequestWithContext(ctx, http.MethodGet, path, nil)
	req.Header.Set(echo.HeaderAuthorization, "Bearer "+token(t, subject, ""))
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	done := make(chan *httptest.ResponseRecorder, 1)
	go func() {
		rec := httptest.NewRecorder()
		e.ServeHTTP(rec, req)
		done <- rec
	}()
	return done
}
