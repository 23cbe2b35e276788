package rediskeys_test

import (
	"fmt"
	"testing"

	"github.com/cart-cqrs/cart/pkg/rediskeys"
	"github.com/cart-cqrs/cart/pkg/redistest"
)

// TestUnlinkMatching deletes more keys than one batch holds, and only the
// matching ones.
func TestUnlinkMatching(t *testing.T) {
	r := redistest.MustRedis(t)
	ctx := t.Context()
	pipe := r.Client.Pipeline()
	for i := range rediskeys.Batch*2 + 7 {
		pipe.Set(ctx, fmt.Sprintf("%sg1:cart:{%d}", r.Prefix, i), "x", 0)
	}
	pipe.Set(ctx, r.Prefix+"g2:cart:{kept}", "x", 0)
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	n, err := rediskeys.UnlinkMatching(ctx, r.Client, r.Prefix+"g1:*")
	if err != nil || n != rediskeys.Batch*2+7 {
		t.Fatalf("deleted %d, %v", n, err)
	}
	left, err := r.Client.Keys(ctx, r.Prefix+"*").Result()
	if err != nil || len(left) != 1 || left[0] != r.Prefix+"g2:cart:{kept}" {
		t.Errorf("left %v, %v", left, err)
	}
}
