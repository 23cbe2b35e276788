package httpserver_test

import (
	"net/http"
	"testing"

	"github.com/cart-cqrs/cart/pkg/httpserver"
)

func TestMethodNotAllowed(t *testing.T) {
	url := MustServeAPI(t, httpserver.Limits{})
	for _, tc := range []struct {
		name, method, path, allow string
		header                    http.Header
	}{
		{"GETOnACommandWithoutToken", http.MethodGet, "/v1/carts", "POST", nil},
		{"DELETEOnACommand", http.MethodDelete, "/v1/carts", "POST", as(t, "alice")},
		{"POSTOnAQuery", http.MethodPost, "/v1/me", "GET, HEAD", as(t, "alice")},
		{"POSTOnAPlainRoute", http.MethodPost, "/open", "GET, HEAD", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, body := request(t, tc.method, url+tc.path, tc.header)
			mustProblem(t, res, body, http.StatusMethodNotAllowed, "method-not-allowed")
			if got := res.Header.Get("Allow"); got != tc.allow {
				t.Errorf("Allow = %q, want %q", got, tc.allow)
			}
		})
	}
	t.Run("UnknownPathStays404", func(t *testing.T) {
		res, body := request(t, http.MethodGet, url+"/v1/nothing-here", as(t, "alice"))
		mustProblem(t, res, body, http.StatusNotFound, "not-found")
	})
	t.Run("HEADAnswersLikeGETWithoutBody", func(t *testing.T) {
		get, getBody := request(t, http.MethodGet, url+"/v1/me", as(t, "alice"))
		head, headBody := request(t, http.MethodHead, url+"/v1/me", as(t, "alice"))
		if head.StatusCode != get.StatusCode || head.StatusCode != http.StatusOK {
			t.Fatalf("HEAD %d, GET %d", head.StatusCode, get.StatusCode)
		}
		if len(headBody) != 0 || string(getBody) != "alice" {
			t.Errorf("HEAD body %q, GET body %q", headBody, getBody)
		}
		if head.Header.Get("ETag") != get.Header.Get("ETag") || head.Header.Get("Content-Type") != get.Header.Get("Content-Type") {
			t.Errorf("HEAD headers %v, GET headers %v", head.Header, get.Header)
		}
	})
	t.Run("HEADKeepsAuth", func(t *testing.T) {
		res, body := request(t, http.MethodHead, url+"/v1/me", nil)
		if res.StatusCode != http.StatusUnauthorized || len(body) != 0 {
			t.Errorf("HEAD without token: %d %q, want 401 without a body", res.StatusCode, body)
		}
	})
}

func TestHeadOnHealth(t *testing.T) {
	srv := MustServe(t, nil)
	for _, path := range []string{"/healthz", "/readyz", "/things/1"} {
		res, body := request(t, http.MethodHead, srv.URL+path, nil)
		if res.StatusCode != http.StatusOK || len(body) != 0 {
			t.Errorf("HEAD %s: %d %q, want 200 without a body", path, res.StatusCode, body)
		}
	}
}
