// Package openapi serves a service's OpenAPI document. The documents are
// written first (spec-first, YAML next to each service) and the services are
// tested against them (package openapitest): a route the document lacks, a
// response that does not match its schema, or a document that is not valid
// OpenAPI fails the tests. At run time the document is only converted to
// JSON, so a service carries no OpenAPI validator (its code and start-up
// garbage count against the memory budget).
package openapi

import (
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/labstack/echo/v4"
	"go.yaml.in/yaml/v3"
)

// Mount serves the document as JSON at GET /openapi.json. It fails when the
// document is not YAML (or JSON), so a broken one stops the service at
// start.
func Mount(e *echo.Echo, spec []byte) error {
	body, err := ToJSON(spec)
	if err != nil {
		return err
	}
	e.GET("/openapi.json", func(c echo.Context) error {
		c.Response().Header().Set("Cache-Control", "public, max-age=300")
		return c.Blob(http.StatusOK, echo.MIMEApplicationJSON, body)
	})
	return nil
}

// ToJSON converts a YAML document to JSON, merge keys and anchors resolved.
func ToJSON(spec []byte) ([]byte, error) {
	var doc any
	if err := yaml.Unmarshal(spec, &doc); err != nil {
		return nil, fmt.Errorf("openapi: parse: %w", err)
	}
	doc, err := stringKeys(doc)
	if err != nil {
		return nil, err
	}
	body, err := json.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("openapi: encode: %w", err)
	}
	return body, nil
}

// stringKeys turns the maps YAML decodes with other keys than strings (an
// unquoted status code, say) into JSON objects.
func stringKeys(v any) (any, error) {
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			y, err := stringKeys(x)
			if err != nil {
				return nil, err
			}
			v[k] = y
		}
		return v, nil
	case map[any]any:
		out := make(map[string]any, len(v))
		for k, x := range v {
			y, err := stringKeys(x)
			if err != nil {
				return nil, err
			}
			switch k := k.(type) {
			case string:
				out[k] = y
			case int, bool, float64:
				out[fmt.Sprint(k)] = y
			default:
				return nil, fmt.Errorf("openapi: a map key of type %T", k)
			}
		}
		return out, nil
	case []any:
		for i, x := range v {
			y, err := stringKeys(x)
			if err != nil {
				return nil, err
			}
			v[i] = y
		}
		return v, nil
	}
	return v, nil
}
