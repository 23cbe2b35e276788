package app_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cart-cqrs/cart/pkg/natstest"
	"github.com/cart-cqrs/cart/pkg/openapi/openapitest"
	"github.com/cart-cqrs/cart/pkg/pgtest"
	"github.com/cart-cqrs/cart/pkg/redistest"
	"github.com/cart-cqrs/cart/services/projector/api"
	"github.com/cart-cqrs/cart/services/projector/app"
	"github.com/cart-cqrs/cart/services/projector/internal/httpapi"
)

// validating holds, per projector address ("127.0.0.1:41234"), the client
// that checks each of its answers against the OpenAPI document; call sends
// through it.
var validating sync.Map

// validateResponses makes call check every answer of the projector at addr
// against the OpenAPI document: one that does not conform fails t.
func validateResponses(t *testing.T, addr string) {
	t.Helper()
	validating.Store(addr, openapitest.Client(t, map[string]*openapi3.T{addr: openapitest.MustLoad(t, api.OpenAPI)}))
	t.Cleanup(func() { validating.Delete(addr) })
}

// clientFor is the client call uses for host.
func clientFor(host string) *http.Client {
	if c, ok := validating.Load(host); ok {
		return c.(*http.Client)
	}
	return http.DefaultClient
}

// TestOpenAPIRoutes: every route the projector serves is in its OpenAPI
// document, and every documented operation is served. The routes are those
// app.New mounts — the health endpoints and httpapi.Register — on an echo
// built the same way.
func TestOpenAPIRoutes(t *testing.T) {
	a := newApp(t, pgtest.MustDatabase(t), nil)
	openapitest.CheckRoutes(t, openapitest.MustLoad(t, api.OpenAPI), a.Routes())
}

// TestOpenAPI_Served: the projector serves its document at /openapi.json,
// without a token.
func TestOpenAPI_Served(t *testing.T) {
	base := runValidated(t, pgtest.MustDatabase(t), nil)
	status, body := call(t, http.MethodGet, base+"/openapi.json", "")
	var doc struct {
		OpenAPI string         `json:"openapi"`
		Paths   map[string]any `json:"paths"`
	}
	if status != http.StatusOK || json.Unmarshal([]byte(body), &doc) != nil {
		t.Fatalf("GET /openapi.json = %d %.200s", status, body)
	}
	want := slices.Sorted(maps.Keys(openapitest.MustLoad(t, api.OpenAPI).Paths.Map()))
	if got := slices.Sorted(maps.Keys(doc.Paths)); doc.OpenAPI != "3.0.3" || !slices.Equal(got, want) {
		t.Fatalf("served document: openapi %q, paths %v, want %v", doc.OpenAPI, got, want)
	}
}

// TestOpenAPI_AdminAnswers walks an operator through every admin answer the
// document describes — a cart rebuilt, an event parked, retried and
// skipped, a full rebuild started and refused while it runs, a token
// refused — each checked against the document.
func TestOpenAPI_AdminAnswers(t *testing.T) {
	pool, dbURL := pgtest.MustPool(t)
	healthy, poisoned := uuid.NewString(), uuid.NewString()
	appendToLog(t, pool, healthy,
		logged{"cart.opened", 1, `{"customerId":"openapi"}`},
		logged{"cart.item-added", 2, `{"productId":"123","name":"Espresso beans 1 kg","unitPrice":{"amount":1899,"currency":"EUR"},"quantity":2}`})
	// A schema version this build does not know (as a newer command
	// service might store), and an event waiting behind it.
	appendToLog(t, pool, poisoned,
		logged{"cart.opened", 1, `{"customerId":"openapi"}`},
		logged{"cart.item-added", 99, `{"productId":"123","quantity":{"amount":"a lot"}}`},
		logged{"cart.item-added", 2, `{"productId":"123","name":"Espresso beans 1 kg","unitPrice":{"amount":1899,"currency":"EUR"},"quantity":1}`})
	// The full rebuild keeps the old generation for a minute after the
	// switch, so it is still running when it is started a second time.
	base := runValidated(t, dbURL, func(c *app.Config) { c.RebuildDrainWait = time.Minute })
	admin := token(t, "ops", "admin")

	if got, body := call(t, http.MethodGet, base+"/admin/parked", "not-a-token"); got != http.StatusUnauthorized || !strings.Contains(body, "invalid-token") {
		t.Errorf("GET /admin/parked with an invalid token = %d %s", got, body)
	}
	var rebuilt httpapi.CartRebuilt
	mustCall(t, http.MethodPost, base+"/admin/rebuild?cart="+healthy, admin, http.StatusOK, &rebuilt)
	if rebuilt.CartID != healthy || rebuilt.Events != 2 {
		t.Errorf("rebuild of one cart = %+v, want its 2 events", rebuilt)
	}
	// Rebuilding the poisoned cart parks the event it cannot apply, and the
	// one behind it.
	mustCall(t, http.MethodPost, base+"/admin/rebuild?cart="+poisoned, admin, http.StatusOK, &rebuilt)
	var parked httpapi.ParkedList
	mustCall(t, http.MethodGet, base+"/admin/parked", admin, http.StatusOK, &parked)
	if parked.Events != 2 || len(parked.Carts) != 1 || parked.Carts[0].CartID != poisoned || parked.Carts[0].Events[0].Version != 2 {
		t.Fatalf("parked = %+v, want versions 2 and 3 of cart %s", parked, poisoned)
	}
	var released httpapi.ReleaseResult
	mustCall(t, http.MethodPost, base+"/admin/parked/"+poisoned+"/retry", admin, http.StatusOK, &released)
	if released.Applied != 0 || released.StillParked != 2 || released.Error == "" {
		t.Errorf("retry of the poison = %+v, want both still parked, with the error", released)
	}
	mustCall(t, http.MethodPost, base+"/admin/parked/"+poisoned+"/skip", admin, http.StatusOK, &released)
	if released.Applied != 2 || released.StillParked != 0 || released.Version != 3 {
		t.Errorf("skip of the poison = %+v, want both applied, at version 3", released)
	}

	var st httpapi.RebuildStatus
	mustCall(t, http.MethodPost, base+"/admin/rebuild", admin, http.StatusAccepted, &st)
	if !st.Running {
		t.Errorf("status of a started rebuild = %+v", st)
	}
	if got, body := call(t, http.MethodPost, base+"/admin/rebuild", admin); got != http.StatusConflict || !strings.Contains(body, httpapi.CodeRebuildRunning) {
		t.Errorf("a second POST /admin/rebuild = %d %s, want 409 %s", got, body, httpapi.CodeRebuildRunning)
	}
	mustCall(t, http.MethodGet, base+"/admin/rebuild", admin, http.StatusOK, &st)
	if !st.Running || st.StartedAt == nil {
		t.Errorf("status while the rebuild drains = %+v", st)
	}
}

// TestOpenAPI_AdminUnavailable: with Redis down the admin API answers 503
// problems, and /readyz says what is missing, as the document describes.
func TestOpenAPI_AdminUnavailable(t *testing.T) {
	// Nothing listens on port 1, and the client does not retry: every Redis
	// command fails at once.
	base := runValidated(t, pgtest.MustDatabase(t), func(c *app.Config) { c.RedisURL = "redis://127.0.0.1:1/0?max_retries=-1" })
	admin := token(t, "ops", "admin")
	for _, r := range []struct{ method, path string }{
		{http.MethodGet, "/admin/parked"},
		{http.MethodPost, "/admin/parked/" + uuid.NewString() + "/skip"},
		{http.MethodPost, "/admin/rebuild?cart=" + uuid.NewString()},
		{http.MethodGet, "/readyz"},
	} {
		if got, body := call(t, r.method, base+r.path, admin); got != http.StatusServiceUnavailable {
			t.Errorf("%s %s with Redis down = %d %s, want 503", r.method, r.path, got, body)
		}
	}
}

// runValidated runs a projector on the database at dbURL and its own NATS
// stream and Redis prefix, edited by edit (if not nil), until the test
// ends; call checks its answers against the OpenAPI document. It returns
// the base URL.
func runValidated(t *testing.T, dbURL string, edit func(*app.Config)) string {
	t.Helper()
	return "http://" + runValidatedApp(t, dbURL, edit).Addr()
}

// runValidatedApp is runValidated, returning the app.
func runValidatedApp(t *testing.T, dbURL string, edit func(*app.Config)) *app.App {
	t.Helper()
	a := newApp(t, dbURL, edit)
	rctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(rctx) }()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	validateResponses(t, a.Addr())
	return a
}

// newApp builds a projector on its own NATS stream and Redis prefix, closed
// at cleanup.
func newApp(t *testing.T, dbURL string, edit func(*app.Config)) *app.App {
	t.Helper()
	nenv := natstest.MustNATS(t)
	renv := redistest.MustRedis(t)
	nenv.MustStream(t)
	cfg := app.Config{
		HTTPAddr: "127.0.0.1:0", MetricsAddr: "127.0.0.1:0", DatabaseURL: dbURL, NATSURL: nenv.URL, Stream: nenv.Stream,
		SubjectPrefix: nenv.SubjectPrefix, Durable: "cart-projector", RedisURL: renv.URL, RedisPrefix: renv.Prefix,
		BatchSize: 256, AckWait: 30 * time.Second, MaxAckPending: 1024, MaxDeliver: 5,
		RebuildPageSize: 1000, RebuildDrainWait: time.Millisecond, Auth: authCfg,
	}
	if edit != nil {
		edit(&cfg)
	}
	// Errors only: the test that takes Redis away would fill the output
	// with warnings about it.
	logger := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelError}))
	a, err := app.New(context.Background(), cfg, logger)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := a.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return a
}

// logged is an event as the command service stores it.
type logged struct {
	typ           string
	schemaVersion int
	data          string
}

// appendToLog stores a cart's events, versions 1 to len(events), in the
// event log.
func appendToLog(t *testing.T, pool *pgxpool.Pool, cartID string, events ...logged) {
	t.Helper()
	for i, e := range events {
		if _, err := pool.Exec(t.Context(),
			`INSERT INTO events (event_id, stream_id, stream_type, version, type, schema_version, data, metadata, occurred_at)
			 VALUES (gen_random_uuid(), $1, 'cart', $2, $3, $4, $5, '{"actor":"openapi"}', now())`,
			cartID, i+1, e.typ, e.schemaVersion, e.data); err != nil {
			t.Fatal(err)
		}
	}
}

// mustCall sends a request, fails the test unless the answer has status
// want, and decodes its body into out.
func mustCall(t *testing.T, method, url, token string, want int, out any) {
	t.Helper()
	got, body := call(t, method, url, token)
	if got != want {
		t.Fatalf("%s %s = %d %s, want %d", method, url, got, body, want)
	}
	if err := json.Unmarshal([]byte(body), out); err != nil {
		t.Fatalf("%s %s: %v: %s", method, url, err, body)
	}
}
