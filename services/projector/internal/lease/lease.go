// Package lease runs a job under a lock that one process at a time holds,
// across all of them: taken with an owner id and a time to live, renewed
// every third of it while the job runs, released by its owner when the job
// ends. A lock that outlives its holder (the process died) frees itself
// when the time runs out; a holder that finds its lock gone (it stalled
// past the time to live, and another took it) has its job cancelled. Every
// build of a projection's generation runs under one.
package lease

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/google/uuid"
)

// Locker takes, renews and releases a lock for an owner.
type Locker interface {
	// Lock takes the lock for owner for ttl, reporting whether it did.
	Lock(ctx context.Context, owner string, ttl time.Duration) (bool, error)
	// RenewLock extends it for ttl while owner still holds it, reporting
	// whether it does.
	RenewLock(ctx context.Context, owner string, ttl time.Duration) (bool, error)
	// Unlock releases it if owner holds it.
	Unlock(ctx context.Context, owner string) error
}

// ErrHeld is returned by Run when another holds the lock.
var ErrHeld = errors.New("lease: the lock is held")

// ErrLost is the cause a job's context ends with when its lock was lost.
var ErrLost = errors.New("lease: lost the lock")

// Run runs job holding l for ttl, renewing it meanwhile; job's context
// ends, with the cause ErrLost, when the lock is lost, and that cause joins
// job's error. It returns ErrHeld, without running job, when the lock is
// taken. name prefixes the log lines.
func Run(ctx context.Context, l Locker, ttl time.Duration, logger *slog.Logger, name string, job func(context.Context) error) (err error) {
	owner := uuid.NewString()
	ok, err := l.Lock(ctx, owner, ttl)
	if err != nil {
		return err
	}
	if !ok {
		return ErrHeld
	}
	jctx, cancel := context.WithCancelCause(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { hold(jctx, cancel, l, owner, ttl, logger, name) })
	defer func() {
		cancel(nil)
		wg.Wait()
		uctx, ucancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer ucancel()
		if uerr := l.Unlock(uctx, owner); uerr != nil {
			err = errors.Join(err, uerr)
		}
	}()
	err = job(jctx)
	if cause := context.Cause(jctx); err != nil && cause != nil && !errors.Is(cause, context.Canceled) {
		err = errors.Join(err, cause)
	}
	return err
}

// hold renews the lock until ctx ends, and cancels the job when the lock
// is lost. A failed renewal is retried at the next tick: the lock lives
// until ttl runs out.
func hold(ctx context.Context, cancel context.CancelCauseFunc, l Locker, owner string, ttl time.Duration, logger *slog.Logger, name string) {
	t := time.NewTicker(ttl / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		ok, err := l.RenewLock(ctx, owner, ttl)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			logger.WarnContext(ctx, name+": renew lock", "err", err)
		case !ok:
			cancel(fmt.Errorf("%s: %w", name, ErrLost))
			return
		}
	}
}
