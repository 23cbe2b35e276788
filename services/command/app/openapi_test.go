package app_test

import (
	"testing"

	"github.com/cart-cqrs/cart/pkg/openapi/openapitest"
	"github.com/cart-cqrs/cart/services/command/api"
)

// TestOpenAPIRoutes: every route the service serves is in its OpenAPI
// document, and every documented operation is served. (The e2e tests check
// every response they get against the document.)
func TestOpenAPIRoutes(t *testing.T) {
	cfg, _ := testConfig(t)
	a := mustNew(t, cfg)
	openapitest.CheckRoutes(t, openapitest.MustLoad(t, api.OpenAPI), a.Routes())
}
