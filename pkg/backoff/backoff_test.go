package backoff_test

import (
	"context"
	"testing"
	"time"

	"github.com/cart-cqrs/cart/pkg/backoff"
)

func TestBackoff(t *testing.T) {
	const first, limit = 10 * time.Millisecond, 80 * time.Millisecond
	b := backoff.New(first, limit)
	// The delay doubles from first and stays at limit; each Next is within half
	// of it either way.
	for i, d := range []time.Duration{first, 2 * first, 4 * first, limit, limit, limit} {
		if got := b.Next(); got < d/2 || got > d*3/2 {
			t.Fatalf("Next #%d = %v, want within [%v, %v]", i, got, d/2, d*3/2)
		}
	}
	t.Run("Reset", func(t *testing.T) {
		b.Reset()
		if got := b.Next(); got < first/2 || got > first*3/2 {
			t.Fatalf("Next after Reset = %v, want about %v", got, first)
		}
	})
	t.Run("Jittered", func(t *testing.T) {
		seen := map[time.Duration]bool{}
		for range 20 {
			seen[backoff.New(time.Second, time.Second).Next()] = true
		}
		if len(seen) < 2 {
			t.Fatalf("20 first delays were all %v: no jitter", seen)
		}
	})
}

func TestSleep(t *testing.T) {
	t.Run("Elapsed", func(t *testing.T) {
		if !backoff.Sleep(t.Context(), time.Millisecond) {
			t.Fatal("Sleep = false, want true")
		}
	})
	t.Run("Cancelled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		if backoff.Sleep(ctx, time.Hour) {
			t.Fatal("Sleep on an ended context = true, want false")
		}
	})
}
