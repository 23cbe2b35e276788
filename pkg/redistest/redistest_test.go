package redistest_test

import (
	"strconv"
	"testing"

	"github.com/cart-cqrs/cart/pkg/redistest"
)

func TestMustRedis_isolatedAndCleanedUp(t *testing.T) {
	ctx := t.Context()
	var a redistest.Env
	t.Run("inner", func(t *testing.T) {
		a = redistest.MustRedis(t)
		b := redistest.MustRedis(t)
		if a.Prefix == b.Prefix {
			t.Fatalf("two calls returned the same prefix %q", a.Prefix)
		}
		// More keys than one SCAN page, so cleanup has to iterate.
		pipe := a.Client.Pipeline()
		for i := range 2500 {
			pipe.Set(ctx, a.Prefix+"k"+strconv.Itoa(i), i, 0)
		}
		if _, err := pipe.Exec(ctx); err != nil {
			t.Fatal(err)
		}
		n, err := b.Client.Exists(ctx, b.Prefix+"k0").Result()
		if err != nil || n != 0 {
			t.Errorf("key written under one prefix visible under another (n=%d, err=%v)", n, err)
		}
	})

	// a's client is closed now; look with a fresh one.
	c := redistest.MustRedis(t).Client
	keys, err := c.Keys(ctx, a.Prefix+"*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 0 {
		t.Errorf("%d keys under %s left after the test ended", len(keys), a.Prefix)
	}
}
