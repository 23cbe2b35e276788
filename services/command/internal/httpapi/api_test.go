package httpapi_test

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/cart-cqrs/cart/pkg/auth"
	"github.com/cart-cqrs/cart/pkg/httpserver"
	"github.com/cart-cqrs/cart/pkg/pgtest"
	"github.com/cart-cqrs/cart/pkg/problem"
	"github.com/cart-cqrs/cart/services/command/internal/httpapi"
	"github.com/cart-cqrs/cart/services/command/internal/postgres"
)

var authConfig = auth.Config{
	HS256Secret: []byte("test-secret-test-secret-test-secret!"),
	Issuer:      "https://issuer.test",
	Audience:    "cart-cqrs",
}

// api is the command routes on the real echo stack over a fresh database.
type api struct {
	e    *echo.Echo
	pool *pgxpool.Pool
	reg  *prometheus.Registry
}

func mustAPI(t *testing.T) *api {
	t.Helper()
	pool, _ := pgtest.MustPool(t)
	v, err := auth.NewVerifier(authConfig)
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	e := httpserver.NewEcho(slog.New(slog.DiscardHandler), reg, "command")
	repo := postgres.New(pool)
	t.Cleanup(repo.Close)
	if err := httpapi.Mount(e, repo, v, reg); err != nil {
		t.Fatal(err)
	}
	return &api{e: e, pool: pool, reg: reg}
}

// req is one request. as is the token's subject ("" sends no token).
type req struct {
	path   string
	as     string
	role   string
	body   string
	header map[string]string
}

func token(t *testing.T, subject, role string) string {
	t.Helper()
	tok, err := auth.Issue(authConfig, subject, role, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func (a *api) post(t *testing.T, r req) *httptest.ResponseRecorder {
	t.Helper()
	hr := httptest.NewRequest(http.MethodPost, r.path, strings.NewReader(r.body))
	if r.body != "" {
		hr.Header.Set(echo.HeaderContentType, echo.MIMEApplicationJSON)
	}
	if r.as != "" {
		hr.Header.Set(echo.HeaderAuthorization, "Bearer "+token(t, r.as, r.role))
	}
	for k, v := range r.header {
		hr.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	a.e.ServeHTTP(rec, hr)
	return rec
}

// mustOK checks a successful command's status, body and ETag.
func mustOK(t *testing.T, rec *httptest.ResponseRecorder, status int) httpapi.Result {
	t.Helper()
	if rec.Code != status {
		t.Fatalf("status = %d, want %d: %s", rec.Code, status, rec.Body)
	}
	if ct := rec.Header().Get(echo.HeaderContentType); !strings.HasPrefix(ct, echo.MIMEApplicationJSON) {
		t.Errorf("content type = %q", ct)
	}
	var res httpapi.Result
	dec := json.NewDecoder(rec.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&res); err != nil {
		t.Fatalf("body: %v", err)
	}
	if res.CartID == "" || res.Version < 1 {
		t.Fatalf("body = %+v", res)
	}
	if et := rec.Header().Get("ETag"); et != `"`+strconv.Itoa(res.Version)+`"` {
		t.Errorf("ETag = %s, want \"%d\"", et, res.Version)
	}
	return res
}

func mustProblem(t *testing.T, rec *httptest.ResponseRecorder, status int, code string) problem.Body {
	t.Helper()
	if rec.Code != status {
		t.Fatalf("status = %d, want %d: %s", rec.Code, status, rec.Body)
	}
	if ct := rec.Header().Get(echo.HeaderContentType); ct != problem.ContentType {
		t.Errorf("content type = %q, want %q", ct, problem.ContentType)
	}
	var p problem.Body
	if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil {
		t.Fatalf("not a problem body: %v: %s", err, rec.Body)
	}
	if p.Code != code || p.Status != status || p.Detail == "" {
		t.Errorf("problem = %+v, want code %q status %d with a detail", p, code, status)
	}
	return p
}

// mustCart opens a cart for customer and returns its id.
func (a *api) mustCart(t *testing.T, customer string) string {
	t.Helper()
	return mustOK(t, a.post(t, req{path: "/v1/carts", as: customer}), http.StatusCreated).CartID
}

func (a *api) eventCount(t *testing.T) int {
	t.Helper()
	var n int
	if err := a.pool.QueryRow(t.Context(), `SELECT count(*) FROM events`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestAuth(t *testing.T) {
	t.Parallel()
	a := mustAPI(t)
	id := a.mustCart(t, "alice")
	for _, path := range []string{"/v1/carts", "/v1/carts/" + id + "/checkout"} {
		t.Run("NoToken"+path, func(t *testing.T) {
			rec := a.post(t, req{path: path})
			mustProblem(t, rec, http.StatusUnauthorized, auth.CodeUnauthorized)
			if rec.Header().Get(echo.HeaderWWWAuthenticate) == "" {
				t.Error("401 without WWW-Authenticate")
			}
		})
		t.Run("BadToken"+path, func(t *testing.T) {
			bad := strings.Replace(token(t, "alice", ""), ".", ".x", 1)
			rec := a.post(t, req{path: path, header: map[string]string{echo.HeaderAuthorization: "Bearer " + bad}})
			mustProblem(t, rec, http.StatusUnauthorized, auth.CodeInvalidToken)
		})
		t.Run("OtherIssuer"+path, func(t *testing.T) {
			cfg := authConfig
			cfg.Issuer = "https://evil.test"
			tok, err := auth.Issue(cfg, "alice", "", time.Hour, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			rec := a.post(t, req{path: path, header: map[string]string{echo.HeaderAuthorization: "Bearer " + tok}})
			mustProblem(t, rec, http.StatusUnauthorized, auth.CodeInvalidToken)
		})
	}
}

func TestOpen(t *testing.T) {
	t.Parallel()
	a := mustAPI(t)
	rec := a.post(t, req{path: "/v1/carts", as: "alice"})
	first := mustOK(t, rec, http.StatusCreated)
	if first.Version != 1 {
		t.Errorf("version = %d, want 1", first.Version)
	}
	if loc := rec.Header().Get(echo.HeaderLocation); loc != "/v1/carts/"+first.CartID {
		t.Errorf("Location = %q", loc)
	}

	t.Run("ExistingCartIs200", func(t *testing.T) {
		rec := a.post(t, req{path: "/v1/carts", as: "alice", body: "{}"})
		again := mustOK(t, rec, http.StatusOK)
		if again != first {
			t.Errorf("second open = %+v, want %+v", again, first)
		}
		if loc := rec.Header().Get(echo.HeaderLocation); loc != "" {
			t.Errorf("Location on 200 = %q", loc)
		}
	})
	t.Run("OtherCustomerGetsOwnCart", func(t *testing.T) {
		if bob := a.mustCart(t, "bob"); bob == first.CartID {
			t.Error("bob got alice's cart")
		}
	})
	t.Run("UnknownField", func(t *testing.T) {
		mustProblem(t, a.post(t, req{path: "/v1/carts", as: "carol", body: `{"customerId":"alice"}`}), http.StatusBadRequest, "malformed-body")
	})
	t.Run("NotJSON", func(t *testing.T) {
		rec := a.post(t, req{path: "/v1/carts", as: "carol", body: `{}`, header: map[string]string{echo.HeaderContentType: "text/plain"}})
		mustProblem(t, rec, http.StatusUnsupportedMediaType, "unsupported-media-type")
	})
}
