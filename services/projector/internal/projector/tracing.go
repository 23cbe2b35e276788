package projector

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
func (p *Projector) traceProcessing(ctx context.Context, m jetstream.Msg, env envelope.Envelope, delivered int) (context.Context, trace.Span) {
	parent := telemetry.Propagator.Extract(ctx, telemetry.NATSHeader(nats.Header(m.Headers())))
	if !trace.SpanContextFromContext(parent).IsValid() {
		parent = telemetry.WithTraceContext(ctx, env.Metadata.TraceParent, env.Metadata.TraceState)
	}
	return telemetry.Tracer().Start(parent, "process "+p.cfg.Stream, trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithAttributes(
			attribute.String("messaging.system", "nats"),
			attribute.String("messaging.operation.type", "process"),
			attribute.String("messaging.destination.name", m.Subject()),
			attribute.String("messaging.consumer.group.name", p.cfg.Durable),
			attribute.String("messaging.message.id", env.EventID),
			attribute.Int("messaging.message.delivery_count", delivered),
			attribute.String("cart.id", env.StreamID),
			attribute.Int("cart.version", env.Version),
		))
}

// traceSave starts the span of a cart's write to Redis: a child of the
// processing span of the cart's newest message in the batch, linked to the
// others the write covers.
func traceSave(g *group) trace.Span {
	var links []trace.Link
	for _, it := range g.items[:len(g.items)-1] {
		links = append(links, trace.Link{SpanContext: it.span.SpanContext()})
	}
	_, span := telemetry.Tracer().Start(g.ctx, "cart.save", trace.WithSpanKind(trace.SpanKindClient),
		trace.WithLinks(links...),
		trace.WithAttributes(
			attribute.String("db.system.name", "redis"),
			attribute.String("cart.id", g.cartID),
			attribute.Int("cart.messages", len(g.items)),
		))
	return span
}

// endSaves ends the write spans with the write's outcome: err for all of
// them, or each one's result.
func endSaves(spans []trace.Span, results []error, err error) {
	for i, span := range spans {
		switch {
		case err != nil:
			telemetry.RecordError(span, err)
		case i < len(results):
			telemetry.RecordError(span, results[i])
		}
		span.End()
	}
}

// endSpans ends the processing spans of groups.
func endSpans(groups []*group) {
	for _, g := range groups {
		for _, it := range g.items {
			it.span.End()
		}
	}
}
