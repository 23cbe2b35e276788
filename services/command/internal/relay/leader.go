package relay

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cart-cqrs/cart/pkg/backoff"
)

// statementTimeout bounds each statement on the lock connection. Statements
// run on a context detached from Run's: pgx closes a connection whose
// statement is cancelled half-way, which would release the lock while
// IsLeader still says true. Stopping is checked between statements instead.
const statementTimeout = 10 * time.Second

// The pause after a round in which every publish failed (NATS unavailable)
// grows from about minFailureBackoff to about maxFailureBackoff.
const (
	minFailureBackoff = 100 * time.Millisecond
	maxFailureBackoff = 5 * time.Second
)

// contend takes a dedicated connection, retries the advisory lock on it
// until it gets it or ctx ends, then leads until leadership ends. Closing the
// connection releases the lock; the server does the same when this process
// or its connection dies, which is how a standby takes over.
func (r *Relay) contend(ctx context.Context) error {
	pc, err := r.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("relay: acquire lock connection: %w", err)
	}
	conn := pc.Hijack()
	defer r.closeConn(conn)

	for {
		ok, err := r.tryLock(ctx, conn)
		if err != nil {
			return err
		}
		if ok {
			break
		}
		if !backoff.Sleep(ctx, r.opts.StandbyInterval) {
			return nil
		}
	}

	r.leader.Store(true)
	r.logger.Info("relay: leadership gained", "lockKey", r.opts.LockKey)
	// Runs before closeConn: IsLeader turns false before the lock is released,
	// so two relays never both report leadership.
	defer func() {
		r.leader.Store(false)
		r.floor.Store(0)
		r.logger.Info("relay: leadership lost", "lockKey", r.opts.LockKey)
	}()
	return r.lead(ctx, conn)
}

func (r *Relay) tryLock(ctx context.Context, conn *pgx.Conn) (bool, error) {
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), statementTimeout)
	defer cancel()
	var ok bool
	if err := conn.QueryRow(sctx, `SELECT pg_try_advisory_lock($1)`, r.opts.LockKey).Scan(&ok); err != nil {
		return false, fmt.Errorf("relay: try advisory lock %d: %w", r.opts.LockKey, err)
	}
	return ok, nil
}

func (r *Relay) closeConn(conn *pgx.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), statementTimeout)
	defer cancel()
	if err := conn.Close(ctx); err != nil {
		r.logger.Warn("relay: close lock connection", "error", err)
	}
}

// lead publishes while this relay holds the lock: it drains the outbox round
// after round, then sleeps until a NOTIFY (or PollInterval) says there may be
// more. It returns nil when ctx ends and an error when leadership must end.
func (r *Relay) lead(ctx context.Context, conn *pgx.Conn) (err error) {
	// LISTEN before the first round: a row committed after that round's read
	// then always wakes the relay.
	//
	// Removing published rows need not wait for the WAL flush: a removal lost
	// in a crash only re-publishes rows the stream drops as duplicates.
	for _, stmt := range []string{"LISTEN " + notifyChannel, "SET synchronous_commit = off"} {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), statementTimeout)
		_, err = conn.Exec(sctx, stmt)
		cancel()
		if err != nil {
			return fmt.Errorf("relay: %s: %w", stmt, err)
		}
	}

	var (
		failures = backoff.New(minFailureBackoff, maxFailureBackoff)
		cur      cursor
	)
	// A clean stop removes what the last round published; a failure leaves
	// it to the next leader, as a crash would.
	defer func() {
		if err != nil {
			return
		}
		if ferr := r.flushRemovals(ctx, conn, &cur); ferr != nil {
			r.logger.Warn("relay: stopping", "error", ferr)
		}
	}()
	for ctx.Err() == nil {
		res, err := r.round(ctx, conn, &cur)
		if err != nil {
			return err
		}
		switch {
		case res.read == 0: // drained
			failures.Reset()
			if err := r.waitForWork(ctx, conn); err != nil {
				return err
			}
		case res.published == 0: // nothing got through: do not hammer NATS
			if !failures.Wait(ctx) {
				return nil
			}
		default: // progress: keep draining
			failures.Reset()
		}
	}
	return nil
}

// waitForWork blocks until a notification arrives, PollInterval passes (the
// fallback should a NOTIFY be missed) or ctx ends. A timeout leaves the
// connection usable; any other failure means the lock connection is gone.
func (r *Relay) waitForWork(ctx context.Context, conn *pgx.Conn) error {
	wctx, cancel := context.WithTimeout(ctx, r.opts.PollInterval)
	defer cancel()
	if _, err := conn.WaitForNotification(wctx); err != nil && wctx.Err() == nil {
		return fmt.Errorf("relay: wait for notification: %w", err)
	}
	// Every commit notifies once; those that queued up while draining announce
	// rows the next round reads anyway, so one wake-up is enough.
	done, stop := context.WithCancel(context.Background())
	stop()
	for {
		if n, err := conn.WaitForNotification(done); err != nil || n == nil {
			return nil
		}
	}
}
