package engine

import (
	"context"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/cart-cqrs/cart/pkg/envelope"
	"github.com/cart-cqrs/cart/pkg/telemetry"
)

// traceProcessing starts the span of one message's processing, in the trace
// the message carries: its traceparent header (the relay's publish span),
// else the CloudEvent's distributed-tracing extension (the request that
// appended the event).
func (e *Engine) traceProcessing(ctx context.Context, m jetstream.Msg, env envelope.Envelope, delivered int) (context.Context, trace.Span) {
	parent := telemetry.Propagator.Extract(ctx, telemetry.NATSHeader(nats.Header(m.Headers())))
	if !trace.SpanContextFromContext(parent).IsValid() {
		parent = telemetry.WithTraceContext(ctx, env.Metadata.TraceParent, env.Metadata.TraceState)
	}
	return telemetry.Tracer().Start(parent, "process "+e.cfg.Stream, trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithAttributes(
			attribute.String("messaging.system", "nats"),
			attribute.String("messaging.operation.type", "process"),
			attribute.String("messaging.destination.name", m.Subject()),
			attribute.String("messaging.consumer.group.name", e.cfg.Durable),
			attribute.String("messaging.message.id", env.EventID),
			attribute.Int("messaging.message.delivery_count", delivered),
			attribute.String("cart.id", env.StreamID),
			attribute.Int("cart.version", env.Version),
		))
}

// TraceWrite starts the span of a cart's write to the store: a child of the
// processing span of the cart's newest event in the batch, linked to the
// others the write covers.
func TraceWrite(c *Cart, name string) trace.Span {
	links := make([]trace.Link, 0, len(c.Events)-1)
	for _, ev := range c.Events[:len(c.Events)-1] {
		links = append(links, trace.Link{SpanContext: ev.Span.SpanContext()})
	}
	_, span := telemetry.Tracer().Start(c.Ctx, name, trace.WithSpanKind(trace.SpanKindClient),
		trace.WithLinks(links...),
		trace.WithAttributes(
			attribute.String("db.system.name", "redis"),
			attribute.String("cart.id", c.ID),
			attribute.Int("cart.messages", len(c.Events)),
		))
	return span
}
