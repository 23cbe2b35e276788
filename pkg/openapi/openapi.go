// Package openapi serves a service's OpenAPI document. The documents are
// written first (spec-first, YAML next to each service) and the services are
// tested against them (package openapitest): a route the document lacks, or a
// response that does not match its schema, fails the tests.
package openapi

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/labstack/echo/v4"
)

// Load parses and validates an OpenAPI 3 document (YAML or JSON).
func Load(spec []byte) (*openapi3.T, error) {
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(spec)
	if err != nil {
		return nil, fmt.Errorf("openapi: load: %w", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		return nil, fmt.Errorf("openapi: invalid document: %w", err)
	}
	return doc, nil
}

// Mount serves the document as JSON at GET /openapi.json. It fails when the
// document is not valid, so a broken document stops the service at start.
func Mount(e *echo.Echo, spec []byte) error {
	doc, err := Load(spec)
	if err != nil {
		return err
	}
	body, err := json.Marshal(doc)
	if err != nil {
		return fmt.Errorf("openapi: encode: %w", err)
	}
	e.GET("/openapi.json", func(c echo.Context) error {
		c.Response().Header().Set("Cache-Control", "public, max-age=300")
		return c.Blob(http.StatusOK, echo.MIMEApplicationJSON, body)
	})
	return nil
}
