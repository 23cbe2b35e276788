package app

import (
	"context"
	"time"
)

// The idempotency key cleanup deletes expired keys every keyCleanupEvery, at
// most keyCleanupBatch rows per statement so that no transaction holds many
// row locks for long.
const (
	keyCleanupEvery = time.Minute
	keyCleanupBatch = 1000
)

// runKeyCleanup deletes expired idempotency keys every minute until ctx
// ends. Expired keys are already treated as absent, so the cleanup only keeps
// the table small: a failed round is logged and retried at the next tick, not
// fatal. Every instance runs it; they skip each other's locked rows.
func (a *App) runKeyCleanup(ctx context.Context) error {
	tick := time.NewTicker(keyCleanupEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		n, err := a.repo.DeleteExpiredKeys(ctx, keyCleanupBatch)
		switch {
		case err != nil && ctx.Err() == nil:
			a.logger.WarnContext(ctx, "idempotency key cleanup failed; retrying at the next tick", "error", err)
		case n > 0:
			a.logger.DebugContext(ctx, "expired idempotency keys deleted", "count", n)
		}
	}
}
