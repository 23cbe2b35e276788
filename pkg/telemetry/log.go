package telemetry

import (
	"context"
	"log/slog"

	"go.opentelemetry.io/otel/trace"
)

// Log attribute names of the ids a record is tagged with.
const (
	LogTraceID       = "traceId"
	LogSpanID        = "spanId"
	LogCorrelationID = "correlationId"
)

type correlationKey struct{}

// WithCorrelationID returns ctx tagged with the correlation id of the work
// it carries out: the client's X-Correlation-Id (or the request id) in the
// services' HTTP handlers, the event's correlation id in the relay and the
// projector.
func WithCorrelationID(ctx context.Context, id string) context.Context {
	if id == "" {
		return ctx
	}
	return context.WithValue(ctx, correlationKey{}, id)
}

// CorrelationID returns ctx's correlation id, or "".
func CorrelationID(ctx context.Context) string {
	id, _ := ctx.Value(correlationKey{}).(string)
	return id
}

// LogHandler wraps h so that every record logged with a context carries
// that context's trace and span ids (when it is in a trace) and correlation
// id (when it has one): a log line leads to its trace and to the request
// that caused it. Loggers must be called with the context (InfoContext, …,
// LogAttrs) for this to work.
func LogHandler(h slog.Handler) slog.Handler { return logHandler{h} }

type logHandler struct{ slog.Handler }

func (l logHandler) Handle(ctx context.Context, r slog.Record) error {
	if ctx != nil {
		if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
			r.AddAttrs(slog.String(LogTraceID, sc.TraceID().String()), slog.String(LogSpanID, sc.SpanID().String()))
		}
		if id := CorrelationID(ctx); id != "" {
			r.AddAttrs(slog.String(LogCorrelationID, id))
		}
	}
	return l.Handler.Handle(ctx, r)
}

func (l logHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return logHandler{l.Handler.WithAttrs(attrs)}
}

func (l logHandler) WithGroup(name string) slog.Handler { return logHandler{l.Handler.WithGroup(name)} }
