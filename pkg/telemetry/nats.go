package telemetry

import (
	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/propagation"
)

// NATSHeader carries trace context in a NATS message's headers under the
// exact, lowercase W3C names (traceparent, tracestate). NATS header names
// are case-sensitive, and other teams' subscribers look for these, so the
// HTTP carrier, which writes "Traceparent", would not do.
type NATSHeader nats.Header

var _ propagation.TextMapCarrier = NATSHeader{}

// Get returns the value of key, or "".
func (h NATSHeader) Get(key string) string {
	if v := h[key]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// Set sets key to value, replacing what was there.
func (h NATSHeader) Set(key, value string) { h[key] = []string{value} }

// Keys lists the header names.
func (h NATSHeader) Keys() []string {
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	return keys
}
