package lease_test

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/cart-cqrs/cart/pkg/redistest"
	"github.com/cart-cqrs/cart/services/projector/internal/lease"
	"github.com/cart-cqrs/cart/services/projector/internal/redisstore"
)

func mustLock(t *testing.T) (redisstore.Lease, redistest.Env) {
	t.Helper()
	r := redistest.MustRedis(t)
	return redisstore.NewLease(r.Client, r.Prefix+"lock", "test lock"), r
}

var quiet = slog.New(slog.DiscardHandler)

// TestRun_OneHolder: while a job holds the lock, another is refused; after
// it, the lock is free again.
func TestRun_OneHolder(t *testing.T) {
	l, _ := mustLock(t)
	err := lease.Run(t.Context(), l, time.Minute, quiet, "first", func(ctx context.Context) error {
		err := lease.Run(ctx, l, time.Minute, quiet, "second", func(context.Context) error {
			t.Error("the second job ran while the first held the lock")
			return nil
		})
		if !errors.Is(err, lease.ErrHeld) {
			t.Errorf("second: %v, want ErrHeld", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	ran := false
	if err := lease.Run(t.Context(), l, time.Minute, quiet, "third", func(context.Context) error { ran = true; return nil }); err != nil || !ran {
		t.Fatalf("after release: ran %v, %v", ran, err)
	}
}

// TestRun_RenewsPastTTL: a job longer than the lock's time to live keeps
// it, and a contender is refused all along.
func TestRun_RenewsPastTTL(t *testing.T) {
	l, _ := mustLock(t)
	ttl := 300 * time.Millisecond
	err := lease.Run(t.Context(), l, ttl, quiet, "long job", func(ctx context.Context) error {
		deadline := time.Now().Add(3 * ttl)
		for time.Now().Before(deadline) {
			if ok, err := l.Lock(ctx, "contender", ttl); err != nil || ok {
				return errors.New("the contender took the lock")
			}
			select {
			case <-ctx.Done():
				return context.Cause(ctx)
			case <-time.After(ttl / 5): // the job's own work, not a wait for the lock
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestRun_LostLockCancelsJob: when the lock is taken from the job (it
// stalled past its time to live, say), the job's context ends with
// ErrLost and Run reports it.
func TestRun_LostLockCancelsJob(t *testing.T) {
	l, r := mustLock(t)
	ttl := 300 * time.Millisecond
	err := lease.Run(t.Context(), l, ttl, quiet, "stalled job", func(ctx context.Context) error {
		if err := r.Client.Set(ctx, r.Prefix+"lock", "another owner", 0).Err(); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * ttl):
			return errors.New("the job was not cancelled")
		}
	})
	if !errors.Is(err, lease.ErrLost) {
		t.Fatalf("Run: %v, want ErrLost", err)
	}
	if owner, gerr := r.Client.Get(t.Context(), r.Prefix+"lock").Result(); gerr != nil || owner != "another owner" {
		t.Errorf("the other owner's lock: %q, %v; a holder must release only its own", owner, gerr)
	}
}
