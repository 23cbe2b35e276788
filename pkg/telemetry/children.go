package telemetry

import (
	"context"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/embedded"
)

// ChildSpansOnly is a tracer provider for client instrumentation (the Redis
// clients): it makes spans only inside a trace, and none for the calls a
// service makes on its own — polls, subscriptions, gauges — which would
// otherwise each start a trace of one span. It uses the global provider at
// the time of each span, so it can be handed out before tracing is set up.
func ChildSpansOnly() trace.TracerProvider { return childOnlyProvider{} }

type childOnlyProvider struct{ embedded.TracerProvider }

func (childOnlyProvider) Tracer(name string, opts ...trace.TracerOption) trace.Tracer {
	return childOnlyTracer{name: name, opts: opts}
}

type childOnlyTracer struct {
	embedded.Tracer
	name string
	opts []trace.TracerOption
}

func (t childOnlyTracer) Start(ctx context.Context, spanName string, opts ...trace.SpanStartOption) (context.Context, trace.Span) {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return ctx, trace.SpanFromContext(ctx) // a span that records nothing
	}
	return otel.GetTracerProvider().Tracer(t.name, t.opts...).Start(ctx, spanName, opts...)
}
