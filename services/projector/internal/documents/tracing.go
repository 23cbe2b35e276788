package documents

import (
	"go.opentelemetry.io/otel/trace"

	"github.com/cart-cqrs/cart/pkg/telemetry"
)

// endSaves ends the write spans with the write's outcome: err for all of
// them, or each one's result.
func endSaves(spans []trace.Span, results []Saved, err error) {
	for i, span := range spans {
		switch {
		case err != nil:
			telemetry.RecordError(span, err)
		case i < len(results):
			telemetry.RecordError(span, results[i].Err)
		}
		span.End()
	}
}
