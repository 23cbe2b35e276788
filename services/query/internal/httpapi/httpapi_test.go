package httpapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/cart-cqrs/cart/pkg/polltest"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/cart-cqrs/cart/pkg/auth"
	"github.com/cart-cqrs/cart/pkg/cart"
	"github.com/cart-cqrs/cart/pkg/httpserver"
	"github.com/cart-cqrs/cart/pkg/problem"
	"github.com/cart-cqrs/cart/pkg/readmodel"
	"github.com/cart-cqrs/cart/pkg/redistest"
	"github.com/cart-cqrs/cart/services/query/internal/httpapi"
	"github.com/cart-cqrs/cart/services/query/internal/redisstore"
)

var authCfg = auth.Config{
	HS256Secret: []byte("query-test-secret-0123456789abcdef"),
	Issuer:      "https://issuer.test",
	Audience:    "cart-api",
}

// api is the query API over a real Redis, under the test's key prefix.
type api struct {
	t      *testing.T
	e      *echo.Echo
	redis  redistest.Env
	store  *redisstore.Store
	logger *slog.Logger
	// owner stores the owner beside each document, as the projector does;
	// without it documents look as they were written before it did.
	owner bool
}

// storedFormats runs a test on both kinds of stored carts: those with the
// owner field and those written before it existed.
func storedFormats(t *testing.T, test func(t *testing.T, a *api)) {
	for _, f := range []struct {
		name  string
		owner bool
	}{{"OwnerStored", true}, {"WrittenBeforeOwner", false}} {
		t.Run(f.name, func(t *testing.T) {
			a := newAPI(t)
			a.owner = f.owner
			test(t, a)
		})
	}
}

// fields are the hash fields the projector writes for s with doc.
func (a *api) fields(s cart.State, doc []byte) []any {
	f := []any{readmodel.FieldVersion, s.Version, readmodel.FieldDoc, doc}
	if a.owner {
		f = append(f, readmodel.FieldOwner, s.CustomerID)
	}
	return f
}

func newAPI(t *testing.T) *api {
	t.Helper()
	env := redistest.MustRedis(t)
	logger := slog.New(slog.DiscardHandler)
	store := mustStore(t, env.Client, env.Prefix)
	return &api{t: t, e: newEcho(t, store), redis: env, store: store, logger: logger}
}

// mustStore is a Store over c for keys under prefix.
func mustStore(tb testing.TB, c *redis.Client, prefix string) *redisstore.Store {
	tb.Helper()
	s, err := redisstore.New(c, prefix, slog.New(slog.DiscardHandler))
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

func newEcho(t *testing.T, carts httpapi.Carts) *echo.Echo {
	t.Helper()
	v, err := auth.NewVerifier(authCfg)
	if err != nil {
		t.Fatal(err)
	}
	e := httpserver.NewEcho(slog.New(slog.DiscardHandler), prometheus.NewRegistry(), "query-test")
	httpapi.Register(e, v, carts, httpapi.Options{})
	return e
}

func token(t *testing.T, subject, role string) string {
	t.Helper()
	tok, err := auth.Issue(authCfg, subject, role, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// get sends GET path with the caller's token (none when subject is "")
// and extra headers given as name, value pairs.
func get(t *testing.T, e *echo.Echo, path, subject, role string, headers ...string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, path, nil)
	if subject != "" {
		req.Header.Set(echo.HeaderAuthorization, "Bearer "+token(t, subject, role))
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	rec := httptest.NewRecorder()
	e.ServeHTTP(rec, req)
	return rec
}

// cartOf folds a cart of customer with one line, checked out when asked.
func cartOf(customer string, checkedOut bool) cart.State {
	id := uuid.Must(uuid.NewV7()).String()
	t0 := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	events := []cart.Recorded{
		{CartID: id, Version: 1, OccurredAt: t0, Event: cart.Opened{CustomerID: customer}},
		{CartID: id, Version: 2, OccurredAt: t0.Add(time.Minute), Event: cart.ItemAdded{
			ProductID: "456", Name: "Ceramic mug", UnitPrice: 1250, Currency: "EUR", Quantity: 2}},
	}
	if checkedOut {
		events = append(events, cart.Recorded{CartID: id, Version: 3, OccurredAt: t0.Add(2 * time.Minute),
			Event: cart.CheckedOut{ItemCount: 2, Total: 2500, Currency: "EUR"}})
	}
	return cart.Fold(cart.State{}, events...)
}

// put stores the cart's document in generation gen as the projector would,
// and returns the stored JSON.
func (a *api) put(gen int, s cart.State) []byte {
	a.t.Helper()
	doc, err := json.Marshal(readmodel.FromState(s))
	if err != nil {
		a.t.Fatal(err)
	}
	keys := readmodel.Keys{Prefix: a.redis.Prefix, Generation: gen}
	if err := a.redis.Client.HSet(context.Background(), keys.Cart(s.CartID), a.fields(s, doc)...).Err(); err != nil {
		a.t.Fatal(err)
	}
	return doc
}

func (a *api) setOpenCart(gen int, customer, cartID string) {
	a.t.Helper()
	keys := readmodel.Keys{Prefix: a.redis.Prefix, Generation: gen}
	if err := a.redis.Client.Set(context.Background(), keys.OpenCart(customer), cartID, 0).Err(); err != nil {
		a.t.Fatal(err)
	}
}

func wantDoc(t *testing.T, rec *httptest.ResponseRecorder, doc []byte, version int) {
	t.Helper()
	if rec.Code != http.StatusOK {
		t.Fatalf("status = %d, want 200: %s", rec.Code, rec.Body)
	}
	if got := rec.Body.String(); got != string(doc) {
		t.Errorf("body =\n%s\nwant the stored doc\n%s", got, doc)
	}
	if got, want := rec.Header().Get("ETag"), `"`+strconv.Itoa(version)+`"`; got != want {
		t.Errorf("ETag = %s, want %s", got, want)
	}
	if got := rec.Header().Get(echo.HeaderCacheControl); got != "private, no-cache" {
		t.Errorf("Cache-Control = %q", got)
	}
}

// wantProblem checks the status, the problem media type and the code, and
// returns the body with the per-request fields cleared, for comparisons.
func wantProblem(t *testing.T, rec *httptest.ResponseRecorder, status int, code string) problem.Body {
	t.Helper()
	if rec.Code != status {
		t.Fatalf("status = %d, want %d: %s", rec.Code, status, rec.Body)
	}
	if ct := rec.Header().Get(echo.HeaderContentType); ct != problem.ContentType {
		t.Errorf("Content-Type = %q, want %q", ct, problem.ContentType)
	}
	var b problem.Body
	if err := json.Unmarshal(rec.Body.Bytes(), &b); err != nil {
		t.Fatalf("problem body %s: %v", rec.Body, err)
	}
	if b.Code != code || b.Status != status {
		t.Errorf("problem = %+v, want code %q status %d", b, code, status)
	}
	b.Instance, b.RequestID = "", ""
	return b
}

func TestGetCart(t *testing.T) { storedFormats(t, testGetCart) }

func testGetCart(t *testing.T, a *api) {
	mine := cartOf("alice", false)
	doc := a.put(1, mine)
	path := "/v1/carts/" + mine.CartID

	t.Run("OK", func(t *testing.T) {
		wantDoc(t, get(t, a.e, path, "alice", ""), doc, mine.Version)
	})
	t.Run("NotModified", func(t *testing.T) {
		for _, inm := range []string{`"2"`, `"1", "2"`, `W/"2"`, `*`} {
			rec := get(t, a.e, path, "alice", "", "If-None-Match", inm)
			if rec.Code != http.StatusNotModified || rec.Body.Len() != 0 {
				t.Errorf("If-None-Match %s: status = %d, body %q; want 304 and no body", inm, rec.Code, rec.Body)
			}
			if rec.Header().Get("ETag") != `"2"` {
				t.Errorf("If-None-Match %s: ETag = %q", inm, rec.Header().Get("ETag"))
			}
		}
	})
	t.Run("StaleIfNoneMatch", func(t *testing.T) {
		wantDoc(t, get(t, a.e, path, "alice", "", "If-None-Match", `"1"`), doc, mine.Version)
	})

	missing := wantProblem(t, get(t, a.e, "/v1/carts/"+uuid.Must(uuid.NewV7()).String(), "alice", ""),
		http.StatusNotFound, httpapi.CodeCartNotFound)
	t.Run("SomeoneElsesCartLooksMissing", func(t *testing.T) {
		rec := get(t, a.e, path, "mallory", "", "If-None-Match", "*")
		if got := wantProblem(t, rec, http.StatusNotFound, httpapi.CodeCartNotFound); got != missing {
			t.Errorf("someone else's cart = %+v\nmissing cart = %+v", got, missing)
		}
		if rec.Header().Get("ETag") != "" {
			t.Errorf("ETag leaked: %q", rec.Header().Get("ETag"))
		}
	})
	t.Run("SystemReadsAnyCart", func(t *testing.T) {
		wantDoc(t, get(t, a.e, path, "support-tool", "system"), doc, mine.Version)
	})
	t.Run("NotAUUID", func(t *testing.T) {
		// No Redis behind this API: a lookup would be a 503.
		e := newEcho(t, mustStore(t, deadRedis(t), "nowhere:"))
		for _, id := range []string{"123", "not-a-uuid", "{" + mine.CartID + "}", "urn:uuid:" + mine.CartID} {
			wantProblem(t, get(t, e, "/v1/carts/"+id, "alice", ""), http.StatusNotFound, httpapi.CodeCartNotFound)
		}
	})
}

func TestGetMyCart(t *testing.T) { storedFormats(t, testGetMyCart) }

func testGetMyCart(t *testing.T, a *api) {
	const path = "/v1/customers/me/cart"

	t.Run("NoOpenCart", func(t *testing.T) {
		wantProblem(t, get(t, a.e, path, "bob", ""), http.StatusNotFound, httpapi.CodeNoOpenCart)
	})
	t.Run("OK", func(t *testing.T) {
		open := cartOf("bob", false)
		doc := a.put(1, open)
		a.setOpenCart(1, "bob", open.CartID)
		wantDoc(t, get(t, a.e, path, "bob", ""), doc, open.Version)
		rec := get(t, a.e, path, "bob", "", "If-None-Match", `"2"`)
		if rec.Code != http.StatusNotModified || rec.Body.Len() != 0 {
			t.Errorf("status = %d, body %q; want 304", rec.Code, rec.Body)
		}
		wantProblem(t, get(t, a.e, path, "carol", ""), http.StatusNotFound, httpapi.CodeNoOpenCart)
	})
	t.Run("IndexLagsBehindCheckout", func(t *testing.T) {
		done := cartOf("dave", true)
		a.put(1, done)
		a.setOpenCart(1, "dave", done.CartID)
		wantProblem(t, get(t, a.e, path, "dave", ""), http.StatusNotFound, httpapi.CodeNoOpenCart)
	})
	t.Run("IndexAheadOfDocument", func(t *testing.T) {
		a.setOpenCart(1, "erin", uuid.Must(uuid.NewV7()).String())
		wantProblem(t, get(t, a.e, path, "erin", ""), http.StatusNotFound, httpapi.CodeNoOpenCart)
	})
}

func TestUnauthenticated(t *testing.T) {
	a := newAPI(t)
	c := cartOf("alice", false)
	a.put(1, c)
	for _, path := range []string{"/v1/carts/" + c.CartID, "/v1/customers/me/cart"} {
		t.Run("NoToken"+path, func(t *testing.T) {
			rec := get(t, a.e, path, "", "")
			wantProblem(t, rec, http.StatusUnauthorized, auth.CodeUnauthorized)
			if rec.Header().Get(echo.HeaderWWWAuthenticate) == "" {
				t.Error("no WWW-Authenticate")
			}
		})
		t.Run("BadToken"+path, func(t *testing.T) {
			rec := get(t, a.e, path, "", "", echo.HeaderAuthorization, "Bearer not.a.jwt")
			wantProblem(t, rec, http.StatusUnauthorized, auth.CodeInvalidToken)
		})
	}
}

// deadRedis is a client of a port nothing listens on.
func deadRedis(t *testing.T) *redis.Client {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: time.Second})
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Error(err)
		}
	})
	return c
}

func TestRedisDown(t *testing.T) {
	e := newEcho(t, mustStore(t, deadRedis(t), "down:"))
	id := uuid.Must(uuid.NewV7()).String()
	for _, path := range []string{"/v1/carts/" + id, "/v1/customers/me/cart"} {
		t.Run(path, func(t *testing.T) {
			b := wantProblem(t, get(t, e, path, "alice", ""), http.StatusServiceUnavailable, httpapi.CodeReadModelUnavailable)
			if b.Detail == "" {
				t.Error("no detail")
			}
		})
	}
}

func TestGenerationSwitch(t *testing.T) {
	a := newAPI(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.store.Run(ctx, 50*time.Millisecond) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})

	c := cartOf("alice", false)
	path := "/v1/carts/" + c.CartID
	// Served from generation 1 first, so the store has cached it.
	wantProblem(t, get(t, a.e, path, "alice", ""), http.StatusNotFound, httpapi.CodeCartNotFound)

	doc := a.put(2, c)
	if err := a.redis.Client.Set(ctx, readmodel.CurrentGeneration(a.redis.Prefix), 2, 0).Err(); err != nil {
		t.Fatal(err)
	}
	var rec *httptest.ResponseRecorder
	polltest.Until(t, 10*time.Second, "generation 2 served", func() error {
		if rec = get(t, a.e, path, "alice", ""); rec.Code != http.StatusOK {
			return fmt.Errorf("%d %s", rec.Code, rec.Body)
		}
		return nil
	})
	wantDoc(t, rec, doc, c.Version)
}

// TestOwnerField: the owner stored beside a document decides who may read
// it, and the document is served as stored, never decoded (this one could
// not be).
func TestOwnerField(t *testing.T) {
	a := newAPI(t)
	id := uuid.Must(uuid.NewV7()).String()
	doc := `{"cartId":"` + id + `","not":"a readmodel.Cart"}`
	keys := readmodel.Keys{Prefix: a.redis.Prefix, Generation: 1}
	if err := a.redis.Client.HSet(context.Background(), keys.Cart(id),
		readmodel.FieldVersion, 5, readmodel.FieldOwner, "alice", readmodel.FieldDoc, doc).Err(); err != nil {
		t.Fatal(err)
	}
	wantDoc(t, get(t, a.e, "/v1/carts/"+id+"?minVersion=5", "alice", ""), []byte(doc), 5)
	wantProblem(t, get(t, a.e, "/v1/carts/"+id, "mallory", ""), http.StatusNotFound, httpapi.CodeCartNotFound)
	wantDoc(t, get(t, a.e, "/v1/carts/"+id, "support-tool", "admin"), []byte(doc), 5)
}
