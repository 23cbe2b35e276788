// Package telemetry is how the services trace: OpenTelemetry with an OTLP
// exporter that is off unless configured, the W3C trace context carried in
// HTTP headers, in the events (stored with each event in PostgreSQL and
// published as the CloudEvents distributed-tracing extension) and in NATS
// headers, and logs that carry the trace and correlation ids of the work they
// report on.
//
// The services take their tracer from the global provider (otel.Tracer), as
// the OpenTelemetry instrumentation libraries do: Setup installs an OTLP
// provider when the environment asks for one, and tests install one that
// records in memory. With neither, the global provider makes spans that
// record nothing but still carry the caller's trace context through, so a
// trace started by a client or a gateway goes on in the next service that
// exports.
package telemetry

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// Propagator reads and writes the W3C trace context (traceparent,
// tracestate) and baggage. The services pass it explicitly rather than
// relying on the global one, so that what they store and publish does not
// depend on what else set globals.
var Propagator propagation.TextMapPropagator = propagation.NewCompositeTextMapPropagator(
	propagation.TraceContext{}, propagation.Baggage{})

// Enabled reports whether the environment asks for trace export: an OTLP
// endpoint is set (OTEL_EXPORTER_OTLP_ENDPOINT or
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT), the SDK is not disabled
// (OTEL_SDK_DISABLED) and the traces exporter is not "none"
// (OTEL_TRACES_EXPORTER; only "otlp" is supported).
func Enabled(lookup func(string) (string, bool)) (bool, error) {
	get := func(k string) string { v, _ := lookup(k); return strings.TrimSpace(v) }
	if strings.EqualFold(get("OTEL_SDK_DISABLED"), "true") {
		return false, nil
	}
	switch exp := get("OTEL_TRACES_EXPORTER"); exp {
	case "none":
		return false, nil
	case "", "otlp":
	default:
		return false, fmt.Errorf("telemetry: OTEL_TRACES_EXPORTER=%q: want otlp or none", exp)
	}
	if p := get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"); p != "" && p != "http/protobuf" {
		return false, fmt.Errorf("telemetry: OTEL_EXPORTER_OTLP_TRACES_PROTOCOL=%q: want http/protobuf", p)
	}
	if p := get("OTEL_EXPORTER_OTLP_PROTOCOL"); p != "" && p != "http/protobuf" {
		return false, fmt.Errorf("telemetry: OTEL_EXPORTER_OTLP_PROTOCOL=%q: want http/protobuf", p)
	}
	return get("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != "", nil
}

// Setup installs the global tracer provider of a service process: an OTLP
// over HTTP exporter, configured by the standard OTEL_EXPORTER_OTLP_*
// variables, behind a batching processor; the sampler from OTEL_TRACES_SAMPLER
// (default: parent-based, always on); the resource from OTEL_SERVICE_NAME
// (default service) and OTEL_RESOURCE_ATTRIBUTES. When Enabled says no, it
// installs nothing. The returned shutdown flushes the spans still buffered;
// call it after the service stopped.
func Setup(ctx context.Context, lookup func(string) (string, bool), service string) (shutdown func(context.Context) error, err error) {
	on, err := Enabled(lookup)
	if err != nil || !on {
		return func(context.Context) error { return nil }, err
	}
	exp, err := otlptracehttp.New(ctx)
	if err != nil {
		return nil, fmt.Errorf("telemetry: otlp exporter: %w", err)
	}
	res, err := resource.New(ctx,
		resource.WithAttributes(attribute.String("service.name", service)),
		resource.WithFromEnv(), // OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES win
		resource.WithTelemetrySDK(),
		resource.WithHost(),
		resource.WithProcessPID(),
	)
	if err != nil && !errors.Is(err, resource.ErrPartialResource) {
		return nil, errors.Join(fmt.Errorf("telemetry: resource: %w", err), exp.Shutdown(ctx))
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	Install(tp)
	return func(ctx context.Context) error {
		if err := tp.Shutdown(ctx); err != nil {
			return fmt.Errorf("telemetry: flush spans: %w", err)
		}
		return nil
	}, nil
}

// installed is whether a tracer provider was installed (Install).
var installed atomic.Bool

// Install makes tp the global tracer provider and turns on the server
// spans, which the HTTP servers skip while nothing records them (see
// Active). Setup calls it; tests call it with a provider that records in
// memory.
func Install(tp trace.TracerProvider) {
	otel.SetTracerProvider(tp)
	installed.Store(true)
}

// Active reports whether Install was called: whether spans may be recorded
// at all. Without it, the HTTP servers only carry the caller's trace context
// on, which costs a fraction of a span that records nothing.
func Active() bool { return installed.Load() }

// Tracer is the tracer the product's own spans come from.
func Tracer() trace.Tracer {
	return otel.Tracer("github.com/cart-cqrs/cart")
}

// TraceContext returns ctx's trace context as W3C traceparent and tracestate
// values, to store or send on; "" when ctx carries none.
func TraceContext(ctx context.Context) (traceparent, tracestate string) {
	c := propagation.MapCarrier{}
	propagation.TraceContext{}.Inject(ctx, c)
	return c["traceparent"], c["tracestate"]
}

// WithTraceContext returns ctx continuing the trace of the W3C traceparent
// and tracestate values (as a remote parent). Malformed values are ignored:
// ctx comes back unchanged.
func WithTraceContext(ctx context.Context, traceparent, tracestate string) context.Context {
	if traceparent == "" {
		return ctx
	}
	c := propagation.MapCarrier{"traceparent": traceparent}
	if tracestate != "" {
		c["tracestate"] = tracestate
	}
	return propagation.TraceContext{}.Extract(ctx, c)
}

// RecordError marks span failed with err; nil changes nothing.
func RecordError(span trace.Span, err error) {
	if err == nil {
		return
	}
	span.RecordError(err)
	span.SetStatus(codes.Error, err.Error())
}
