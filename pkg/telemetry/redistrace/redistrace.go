// Package redistrace makes a go-redis client's commands spans of the trace
// they run in. It is apart from telemetry so that only the services that
// talk to Redis link go-redis.
package redistrace

import (
	"fmt"

	"github.com/redis/go-redis/extra/redisotel/v9"
	"github.com/redis/go-redis/v9"

	"github.com/cart-cqrs/cart/pkg/telemetry"
)

// Instrument makes rdb's commands and pipelines spans of the trace they run
// in (none outside a trace, see telemetry.ChildSpansOnly). The statements
// are left out: the projector's carry whole cart documents.
func Instrument(rdb redis.UniversalClient) error {
	if err := redisotel.InstrumentTracing(rdb,
		redisotel.WithTracerProvider(telemetry.ChildSpansOnly()),
		redisotel.WithDBStatement(false),
		redisotel.WithCallerEnabled(false), // a stack walk per command
	); err != nil {
		return fmt.Errorf("redistrace: instrument redis: %w", err)
	}
	return nil
}
