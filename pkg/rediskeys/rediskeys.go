// Package rediskeys deletes keys by pattern without blocking Redis: the
// projector drops a read-model generation this way, and the tests their
// key prefix.
package rediskeys

import (
	"context"
	"fmt"

	"github.com/redis/go-redis/v9"
)

// Batch is the COUNT hint of each SCAN and the most keys of one UNLINK.
const Batch = 1000

// UnlinkMatching deletes every key matching the glob pattern: SCAN, and
// UNLINK in batches, so Redis is never blocked for long and frees the
// memory in the background. It returns how many keys it deleted, also when
// it fails part way.
func UnlinkMatching(ctx context.Context, c redis.Cmdable, pattern string) (int, error) {
	n := 0
	batch := make([]string, 0, Batch)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		if err := c.Unlink(ctx, batch...).Err(); err != nil {
			return fmt.Errorf("redis: unlink %d keys matching %s: %w", len(batch), pattern, err)
		}
		n += len(batch)
		batch = batch[:0]
		return nil
	}
	iter := c.Scan(ctx, 0, pattern, Batch).Iterator()
	for iter.Next(ctx) {
		batch = append(batch, iter.Val())
		if len(batch) == Batch {
			if err := flush(); err != nil {
				return n, err
			}
		}
	}
	if err := iter.Err(); err != nil {
		return n, fmt.Errorf("redis: scan %s: %w", pattern, err)
	}
	return n, flush()
}
