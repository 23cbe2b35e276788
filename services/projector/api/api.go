// Package api holds the projector's OpenAPI document (its admin API, health
// and metrics), written first and served at /openapi.json; the tests check
// the service against it.
package api

import _ "embed"

// OpenAPI is the document, in YAML.
//
//go:embed openapi.yaml
var OpenAPI []byte
