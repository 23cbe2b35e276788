package httpapi_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/cart-cqrs/cart/services/command/internal/httpapi"
	"github.com/cart-cqrs/cart/services/command/internal/idempotency"
)

func withKey(key string) map[string]string { return map[string]string{idempotency.Header: key} }

// answer is a response as the client saw it (mustOK consumes the body).
type answer struct {
	code   int
	body   string
	header http.Header
}

func answered(rec *httptest.ResponseRecorder) answer {
	return answer{rec.Code, rec.Body.String(), rec.Header().Clone()}
}

// mustSame checks that retry answered exactly as first did, marked as a
// replay.
func mustSame(t *testing.T, first answer, retry *httptest.ResponseRecorder) {
	t.Helper()
	if retry.Code != first.code || retry.Body.String() != first.body {
		t.Fatalf("retry = %d %q, want %d %q", retry.Code, retry.Body, first.code, first.body)
	}
	for _, h := range []string{"ETag", echo.HeaderLocation, echo.HeaderContentType} {
		if retry.Header().Get(h) != first.header.Get(h) {
			t.Errorf("retry %s = %q, want %q", h, retry.Header().Get(h), first.header.Get(h))
		}
	}
	if first.header.Get(idempotency.ReplayedHeader) != "" {
		t.Errorf("first response has %s", idempotency.ReplayedHeader)
	}
	if got := retry.Header().Get(idempotency.ReplayedHeader); got != "true" {
		t.Errorf("retry %s = %q, want true", idempotency.ReplayedHeader, got)
	}
}

func TestIdempotencyKey(t *testing.T) {
	t.Parallel()
	a := mustAPI(t)
	openAlice := req{path: "/v1/carts", as: "alice", header: withKey("open-1")}
	rec := a.post(t, openAlice)
	opened := answered(rec)
	id := mustOK(t, rec, http.StatusCreated).CartID
	if loc := opened.header.Get(echo.HeaderLocation); loc != "/v1/carts/"+id {
		t.Fatalf("Location = %q", loc)
	}

	t.Run("OpenRetried", func(t *testing.T) {
		mustSame(t, opened, a.post(t, openAlice))
		if n := a.eventCount(t); n != 1 {
			t.Fatalf("%d events, want 1", n)
		}
	})

	path := "/v1/carts/" + id + "/add-item"
	rec = a.post(t, req{path: path, as: "alice", body: `{"productId": "123", "quantity": 2}`, header: withKey("add-1")})
	first := answered(rec)
	if res := mustOK(t, rec, http.StatusOK); res.Version != 2 {
		t.Fatalf("add-item = %+v, want v2", res)
	}
	t.Run("UpdateRetried", func(t *testing.T) {
		before := a.eventCount(t)
		// The same command in other JSON, on the id in upper case.
		retry := a.post(t, req{path: "/v1/carts/" + strings.ToUpper(id) + "/add-item", as: "alice",
			body: "{\n  \"quantity\": 2,\"productId\":\"123\"}", header: withKey("add-1")})
		mustSame(t, first, retry)
		if n := a.eventCount(t); n != before {
			t.Fatalf("a retry appended %d events", n-before)
		}
	})
	t.Run("RetryIgnoresIfMatchNowStale", func(t *testing.T) {
		hdr := withKey("add-2")
		hdr["If-Match"] = `"2"`
		r := req{path: path, as: "alice", body: `{"productId": "456", "quantity": 1}`, header: hdr}
		rec := a.post(t, r)
		first := answered(rec)
		mustOK(t, rec, http.StatusOK)
		mustSame(t, first, a.post(t, r))
	})
	t.Run("ReusedWithAnotherBody", func(t *testing.T) {
		mustProblem(t, a.post(t, req{path: path, as: "alice", body: `{"productId": "123", "quantity": 3}`, header: withKey("add-1")}),
			http.StatusUnprocessableEntity, httpapi.CodeKeyReused)
	})
	t.Run("ReusedOnAnotherRoute", func(t *testing.T) {
		mustProblem(t, a.post(t, req{path: "/v1/carts/" + id + "/checkout", as: "alice", header: withKey("add-1")}),
			http.StatusUnprocessableEntity, httpapi.CodeKeyReused)
	})
	t.Run("CustomersDoNotCollide", func(t *testing.T) {
		bob := a.post(t, req{path: "/v1/carts", as: "bob", header: withKey("open-1")})
		if res := mustOK(t, bob, http.StatusCreated); res.CartID == id {
			t.Fatal("bob's key replayed alice's cart")
		}
		if bob.Header().Get(idempotency.ReplayedHeader) != "" {
			t.Fatal("bob's first request was answered as a replay")
		}
	})
	t.Run("RefusedIsDecidedAgain", func(t *testing.T) {
		r := req{path: "/v1/carts/" + id + "/remove-item", as: "alice", body: `{"productId": "789"}`, header: withKey("remove-1")}
		mustProblem(t, a.post(t, r), http.StatusConflict, "item-not-in-cart")
		mustOK(t, a.post(t, req{path: path, as: "alice", body: `{"productId": "789", "quantity": 1}`}), http.StatusOK)
		removed := a.post(t, r)
		mustOK(t, removed, http.StatusOK)
		if removed.Header().Get(idempotency.ReplayedHeader) != "" {
			t.Fatal("a refused request's key was stored")
		}
	})
	t.Run("InvalidKey", func(t *testing.T) {
		for name, key := range map[string]string{
			"Empty": "", "TooLong": strings.Repeat("k", 256), "NotASCII": "schlüssel", "Control": "a\x01b",
		} {
			t.Run(name, func(t *testing.T) {
				mustProblem(t, a.post(t, req{path: path, as: "alice", body: `{"productId": "123", "quantity": 1}`, header: withKey(key)}),
					http.StatusBadRequest, httpapi.CodeInvalidKey)
			})
		}
		t.Run("SentTwice", func(t *testing.T) {
			hr := httptest.NewRequest(http.MethodPost, "/v1/carts", nil)
			hr.Header.Set(echo.HeaderAuthorization, "Bearer "+token(t, "alice", ""))
			hr.Header.Add(idempotency.Header, "one")
			hr.Header.Add(idempotency.Header, "two")
			rec := httptest.NewRecorder()
			a.e.ServeHTTP(rec, hr)
			mustProblem(t, rec, http.StatusBadRequest, httpapi.CodeInvalidKey)
		})
		t.Run("LongestAccepted", func(t *testing.T) {
			mustOK(t, a.post(t, req{path: "/v1/carts", as: "alice", header: withKey(strings.Repeat("~", 255))}), http.StatusOK)
		})
	})
}
