package openapi_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/cart-cqrs/cart/pkg/openapi"
	"github.com/cart-cqrs/cart/pkg/openapi/openapitest"
)

const spec = `
openapi: 3.0.3
info: {title: t, version: "1"}
x-shared: &shared
  "404": {description: missing}
paths:
  /things:
    get:
      responses:
        "200": {description: ok}
        <<: *shared
`

func TestMountServesJSON(t *testing.T) {
	e := echo.New()
	if err := openapi.Mount(e, []byte(spec)); err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	e.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/openapi.json", nil))
	body, _ := io.ReadAll(rec.Body)
	var doc struct {
		Paths map[string]map[string]struct {
			Responses map[string]any `json:"responses"`
		} `json:"paths"`
	}
	if rec.Code != http.StatusOK || json.Unmarshal(body, &doc) != nil {
		t.Fatalf("GET /openapi.json: %d %s", rec.Code, body)
	}
	if r := doc.Paths["/things"]["get"].Responses; r["200"] == nil || r["404"] == nil {
		t.Fatalf("responses %v: YAML merge keys not resolved", r)
	}
}

func TestMountRefusesWhatIsNotYAML(t *testing.T) {
	if err := openapi.Mount(echo.New(), []byte("openapi: [3.0.3\n")); err == nil {
		t.Fatal("Mount accepted a document that is not YAML")
	}
}

// The documents' validity is the tests' to check: Load, which they use,
// refuses an invalid one.
func TestLoadRefusesAnInvalidDocument(t *testing.T) {
	if _, err := openapitest.Load([]byte(`openapi: 3.0.3
info: {title: t, version: "1"}
paths:
  /things:
    get:
      responses:
        "200": {$ref: "#/components/responses/Nope"}
`)); err == nil {
		t.Fatal("Load accepted a document with a dangling $ref")
	}
}
