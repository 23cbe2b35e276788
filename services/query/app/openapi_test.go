package app_test

import (
	"log/slog"
	"testing"

	"github.com/cart-cqrs/cart/pkg/auth"
	"github.com/cart-cqrs/cart/pkg/openapi/openapitest"
	"github.com/cart-cqrs/cart/pkg/redistest"
	"github.com/cart-cqrs/cart/services/query/api"
	"github.com/cart-cqrs/cart/services/query/app"
)

// TestOpenAPIRoutes: every route the service serves is in its OpenAPI
// document, and every documented operation is served. (The e2e tests check
// every response they get against the document.)
func TestOpenAPIRoutes(t *testing.T) {
	r := redistest.MustRedis(t)
	a, err := app.New(t.Context(), app.Config{
		HTTPAddr: "127.0.0.1:0", RedisURL: r.URL, RedisPrefix: r.Prefix,
		Auth: auth.Config{HS256Secret: []byte("openapi-test-secret-openapi-test!"), Issuer: "i", Audience: "a"},
	}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := a.Close(); err != nil {
			t.Error(err)
		}
	})
	openapitest.CheckRoutes(t, openapitest.MustLoad(t, api.OpenAPI), a.Routes())
}
