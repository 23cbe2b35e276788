// Package api holds the command service's contracts, written first: the
// OpenAPI document of its HTTP API (served at /openapi.json) and the AsyncAPI
// document of the events it publishes to NATS (served at /asyncapi.yaml).
// The tests check the service and the events against them.
package api

import _ "embed"

// OpenAPI is the document, in YAML.
//
//go:embed openapi.yaml
var OpenAPI []byte

// AsyncAPI is the AsyncAPI 3 document of the cart events on NATS (subjects,
// headers and the CloudEvents payload of every event type and schema
// version), in YAML.
//
//go:embed asyncapi.yaml
var AsyncAPI []byte
