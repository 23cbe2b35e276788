package telemetry

import (
	"fmt"

	"github.com/redis/go-redis/extra/redisotel/v9"
	"github.com/redis/go-redis/v9"
)

// InstrumentRedis makes rdb's commands and pipelines spans of the trace
// they run in (none outside a trace, see ChildSpansOnly). The statements are
// left out: the projector's carry whole cart documents.
func InstrumentRedis(rdb redis.UniversalClient) error {
	if err := redisotel.InstrumentTracing(rdb,
		redisotel.WithTracerProvider(ChildSpansOnly()),
		redisotel.WithDBStatement(false),
		redisotel.WithCallerEnabled(false), // a stack walk per command
	); err != nil {
		return fmt.Errorf("telemetry: instrument redis: %w", err)
	}
	return nil
}
