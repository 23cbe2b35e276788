package httpapi_test

import (
	"context"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/cart-cqrs/cart/pkg/auth"
	"github.com/cart-cqrs/cart/pkg/cart"
	"github.com/cart-cqrs/cart/pkg/httpserver"
	"github.com/cart-cqrs/cart/pkg/readmodel"
	"github.com/cart-cqrs/cart/services/query/internal/httpapi"
)

var (
	t0   = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	mug  = cart.ItemAdded{ProductID: "456", Name: "Ceramic mug", UnitPrice: 1250, Currency: "EUR", Quantity: 2}
	bean = cart.ItemAdded{ProductID: "123", Name: "Espresso beans 1 kg", UnitPrice: 1899, Currency: "EUR", Quantity: 1}
)

func newCartID() string { return uuid.Must(uuid.NewV7()).String() }

func TestMinVersion(t *testing.T) {
	a := newLiveAPI(t, 10*time.Second) // long: these waits must end by an update
	id := newCartID()
	envs := stream(id, t0, cart.Opened{CustomerID: "alice"}, mug, bean)
	a.project(1, envs[:2], true)
	path := "/v1/carts/" + id

	t.Run("AlreadyThere", func(t *testing.T) {
		for _, v := range []string{"1", "2"} {
			rec := get(t, a.e, path+"?minVersion="+v, "alice", "")
			if rec.Code != http.StatusOK || rec.Header().Get("ETag") != `"2"` {
				t.Errorf("minVersion=%s: %d %s", v, rec.Code, rec.Body)
			}
		}
	})
	t.Run("WokenByTheProjectorsWrite", func(t *testing.T) {
		done := serveAsync(t, a.e, context.Background(), path+"?minVersion=3", "alice")
		eventually(t, "the request waits", func() bool { return a.updates.Waiters() == 1 })
		doc := a.project(1, envs, true)
		rec := <-done
		wantDoc(t, rec, doc, 3)
		if n := a.updates.Waiters(); n != 0 {
			t.Errorf("%d waiters left", n)
		}
	})
	t.Run("WithIfNoneMatch", func(t *testing.T) {
		rec := get(t, a.e, path+"?minVersion=3", "alice", "", "If-None-Match", `"3"`)
		if rec.Code != http.StatusNotModified {
			t.Errorf("status = %d, want 304: %s", rec.Code, rec.Body)
		}
	})
	t.Run("MyCartOpenedMeanwhile", func(t *testing.T) {
		// POST /v1/carts answered version 1; the read model has no open
		// cart for bob yet, so the request waits for one.
		mine := newCartID()
		done := serveAsync(t, a.e, context.Background(), "/v1/customers/me/cart?minVersion=1", "bob")
		eventually(t, "the request waits", func() bool { return a.updates.Waiters() == 1 })
		// Bob's cart appears: the document, then the index, then the update.
		benvs := stream(mine, t0, cart.Opened{CustomerID: "bob"})
		doc := a.project(1, benvs, false)
		a.setOpenCart(1, "bob", mine)
		u := readmodel.Update{CartID: mine, Version: 1, CustomerID: "bob"}
		if err := a.redis.Client.Publish(context.Background(), readmodel.Keys{Prefix: a.redis.Prefix, Generation: 1}.Updates(), u.String()).Err(); err != nil {
			t.Fatal(err)
		}
		wantDoc(t, <-done, doc, 1)
	})
	t.Run("FollowsAGenerationSwitch", func(t *testing.T) {
		// A rebuild fills generation 2 (announced there, where nobody
		// listens yet) and switches: waiters re-read in the new one.
		id := newCartID()
		genvs := stream(id, t0, cart.Opened{CustomerID: "carol"}, mug)
		a.project(1, genvs[:1], true)
		done := serveAsync(t, a.e, context.Background(), "/v1/carts/"+id+"?minVersion=2", "carol")
		eventually(t, "the request waits", func() bool { return a.updates.Waiters() == 1 })
		doc := a.project(2, genvs, true)
		if err := a.redis.Client.Set(context.Background(), readmodel.CurrentGeneration(a.redis.Prefix), 2, 0).Err(); err != nil {
			t.Fatal(err)
		}
		wantDoc(t, <-done, doc, 2)
	})
	if got := a.waits(t); got != 6 {
		t.Errorf("wait histogram saw %d reads, want 6", got)
	}
	if got := testutil.ToFloat64(a.metrics.MinVersionGiveUps); got != 0 {
		t.Errorf("%v give-ups, want 0", got)
	}
}

func TestMinVersion_GivesUp(t *testing.T) {
	const wait = 50 * time.Millisecond
	a := newLiveAPI(t, wait)
	id := newCartID()
	a.project(1, stream(id, t0, cart.Opened{CustomerID: "alice"}, mug), true)

	// The caller's cart, behind: the write is safe, retry.
	for name, path := range map[string]string{
		"Behind":          "/v1/carts/" + id + "?minVersion=3",
		"HistoryBehind":   "/v1/carts/" + id + "/history?minVersion=3",
		"TimeTravelFirst": "/v1/carts/" + id + "?minVersion=5&at=2026-03-01T09:00:00Z",
	} {
		t.Run(name, func(t *testing.T) {
			rec := get(t, a.e, path, "alice", "")
			wantProblem(t, rec, http.StatusServiceUnavailable, httpapi.CodeReadModelBehind)
			if got := rec.Header().Get("Retry-After"); got != "1" {
				t.Errorf("Retry-After = %q, want 1", got)
			}
			if got := rec.Header().Get(httpapi.HeaderReadModelVersion); got != "2" {
				t.Errorf("%s = %q, want 2", httpapi.HeaderReadModelVersion, got)
			}
			if rec.Header().Get("ETag") != "" {
				t.Errorf("ETag on a 503: %q", rec.Header().Get("ETag"))
			}
		})
	}

	// Nothing the caller can see, after the whole wait (a cart just opened
	// may not be projected yet): the 404 of the same read without
	// ?minVersion, whether the cart is missing or someone else's.
	for name, tc := range map[string]struct {
		path, subject, code string
	}{
		"Missing":             {"/v1/carts/" + newCartID(), "alice", httpapi.CodeCartNotFound},
		"SomeoneElses":        {"/v1/carts/" + id, "mallory", httpapi.CodeCartNotFound},
		"HistoryMissing":      {"/v1/carts/" + newCartID() + "/history", "alice", httpapi.CodeCartNotFound},
		"HistorySomeoneElses": {"/v1/carts/" + id + "/history", "mallory", httpapi.CodeCartNotFound},
		"TimeTravelMissing":   {"/v1/carts/" + newCartID() + "?at=2026-03-01T09:00:00Z", "alice", httpapi.CodeCartNotFound},
		"NoOpenCartYet":       {"/v1/customers/me/cart", "bob", httpapi.CodeNoOpenCart},
	} {
		t.Run(name, func(t *testing.T) {
			sep := "?"
			if strings.Contains(tc.path, "?") {
				sep = "&"
			}
			start := time.Now()
			rec := get(t, a.e, tc.path+sep+"minVersion=1", tc.subject, "")
			if waited := time.Since(start); waited < wait {
				t.Errorf("answered after %s, before the %s wait", waited, wait)
			}
			got := wantProblem(t, rec, http.StatusNotFound, tc.code)
			for _, h := range []string{"Retry-After", httpapi.HeaderReadModelVersion, "ETag"} {
				if v := rec.Header().Get(h); v != "" {
					t.Errorf("%s: %q on a 404", h, v)
				}
			}
			want := wantProblem(t, get(t, a.e, tc.path, tc.subject, ""), http.StatusNotFound, tc.code)
			if got.Detail != want.Detail || got.Title != want.Title {
				t.Errorf("404 after the wait %+v, without ?minVersion %+v", got, want)
			}
		})
	}
	if got := testutil.ToFloat64(a.metrics.MinVersionGiveUps); got != 3 {
		t.Errorf("%v give-ups counted, want 3 (the 503s)", got)
	}
	if n := a.updates.Waiters(); n != 0 {
		t.Errorf("%d waiters left", n)
	}
}

func TestMinVersion_ClientGoneFreesTheWaiter(t *testing.T) {
	a := newLiveAPI(t, 10*time.Second)
	id := newCartID()
	a.project(1, stream(id, t0, cart.Opened{CustomerID: "alice"}), true)

	for name, path := range map[string]string{
		"Cart":   "/v1/carts/" + id + "?minVersion=2",
		"MyCart": "/v1/customers/me/cart?minVersion=9",
	} {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			done := serveAsync(t, a.e, ctx, path, "alice")
			eventually(t, "the request waits", func() bool { return a.updates.Waiters() == 1 })
			cancel()
			rec := <-done
			if rec.Code != 499 {
				t.Errorf("status = %d, want 499 (client closed request)", rec.Code)
			}
			if n := a.updates.Waiters(); n != 0 {
				t.Errorf("%d waiters left after the client went away", n)
			}
		})
	}
}

func TestMinVersion_ErrMalformed(t *testing.T) {
	a := newAPI(t)
	id := newCartID()
	a.project(1, stream(id, t0, cart.Opened{CustomerID: "alice"}), false)
	for _, path := range []string{"/v1/carts/" + id, "/v1/customers/me/cart", "/v1/carts/" + id + "/history"} {
		for _, v := range []string{"0", "-1", "x", "", "1.5", "99999999999999999999", "%201"} {
			rec := get(t, a.e, path+"?minVersion="+v, "alice", "")
			wantProblem(t, rec, http.StatusBadRequest, httpapi.CodeInvalidMinVersion)
		}
	}
}

// countingCarts counts the reads of a cart.
type countingCarts struct {
	httpapi.Carts
	reads atomic.Int32
}

func (c *countingCarts) Cart(ctx context.Context, cartID string) (readmodel.Stored, bool, error) {
	c.reads.Add(1)
	return c.Carts.Cart(ctx, cartID)
}

// A request for a version above the one announced last does not read the
// cart before the projector's next update wakes it.
func TestMinVersion_KnownBehindReadsOnceWoken(t *testing.T) {
	a := newLiveAPI(t, 10*time.Second)
	carts := &countingCarts{Carts: a.store}
	v, err := auth.NewVerifier(authCfg)
	if err != nil {
		t.Fatal(err)
	}
	e := httpserver.NewEcho(a.logger, prometheus.NewRegistry(), "query-test")
	httpapi.Register(e, v, carts, httpapi.Options{Updates: a.updates, MinVersionWait: 10 * time.Second, Metrics: a.metrics})

	id := newCartID()
	envs := stream(id, t0, cart.Opened{CustomerID: "alice"}, mug, bean)
	a.project(1, envs[:2], true)
	eventually(t, "version 2 announced", func() bool {
		_, behind, stop := a.updates.WatchCart(id, 3)
		stop()
		return behind
	})
	done := serveAsync(t, e, context.Background(), "/v1/carts/"+id+"?minVersion=3", "alice")
	eventually(t, "the request waits", func() bool { return a.updates.Waiters() == 1 })
	if n := carts.reads.Load(); n != 0 {
		t.Errorf("read the cart %d times before the update", n)
	}
	doc := a.project(1, envs, true)
	wantDoc(t, <-done, doc, 3)
	if n := carts.reads.Load(); n != 1 {
		t.Errorf("read the cart %d times, want once, when woken", n)
	}
}
