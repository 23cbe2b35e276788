package app_test

import (
	"bytes"
	"io"
	"net/http"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/cart-cqrs/cart/pkg/openapi/openapitest"
	"github.com/cart-cqrs/cart/services/command/api"
)

// TestAsyncAPIServed: the service serves its AsyncAPI document, as YAML and
// without a token, as its OpenAPI document says.
func TestAsyncAPIServed(t *testing.T) {
	cfg, _ := testConfig(t)
	a := mustRun(t, cfg)

	client := openapitest.Client(t, map[string]*openapi3.T{a.Addr(): openapitest.MustLoad(t, api.OpenAPI)})
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, "http://"+a.Addr()+"/asyncapi.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(res.Body)
	if cerr := res.Body.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != "application/yaml" || !bytes.Equal(body, api.AsyncAPI) {
		t.Fatalf("GET /asyncapi.yaml: %d %q, %d bytes (want %d)", res.StatusCode, res.Header.Get("Content-Type"), len(body), len(api.AsyncAPI))
	}
}
