package relay

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgconn/ctxwatch"

	"github.com/cart-cqrs/cart/pkg/backoff"
	"github.com/cart-cqrs/cart/pkg/eventlog"
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

// removeDelay is how long rows published from the hand-off may wait for
// their removal, which goes with an outbox round.
const removeDelay = 50 * time.Millisecond

// lead publishes while this relay holds the lock: what the hand-off brings,
// at once, and the outbox in rounds — a first one that drains it, then one
// after another instance's NOTIFY, after a batch read full, once published
// rows have waited removeDelay, and every PollInterval. It returns nil when
// ctx ends and an error when leadership must end.
func (r *Relay) lead(ctx context.Context, conn *pgx.Conn) (err error) {
	// Removing published rows need not wait for the WAL flush: a removal lost
	// in a crash only re-publishes rows the stream drops as duplicates.
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), statementTimeout)
	_, err = conn.Exec(sctx, "SET synchronous_commit = off")
	cancel()
	if err != nil {
		return fmt.Errorf("relay: set synchronous_commit: %w", err)
	}
	// LISTEN before the first round: a row another instance commits after
	// that round's read then always wakes the relay. The hand-off opens
	// before it too, for the same reason.
	listening, stopListening, err := r.listen(ctx)
	if err != nil {
		return err
	}
	defer stopListening()
	if err := r.loadWatch(ctx, conn); err != nil {
		return err
	}
	defer r.retained.Store(0)
	r.handoff.setOpen(true)
	defer r.handoff.setOpen(false)

	var (
		failures   = backoff.New(minFailureBackoff, maxFailureBackoff)
		cur        cursor
		hs         = heads{}
		outboxDue  = true // the first round drains what is there
		lastOutbox time.Time
		removeBy   time.Time // when the oldest row in cur.toRemove is due for removal
	)
	// A clean stop removes what the last rounds published; a failure leaves
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
		// Nothing is published to a stream not checked since the connection
		// reached its server (see verify.go).
		if r.checkDue(time.Now()) {
			if err := r.check(ctx, conn, &cur, hs); err != nil {
				if !errors.Is(err, errStreamUnreachable) {
					return err
				}
				r.logger.Warn("relay: cannot check the stream; publishing waits", "stream", r.opts.Stream, "error", err)
				if !failures.Wait(ctx) {
					return nil
				}
				continue
			}
			outboxDue = outboxDue || r.watch.ceiling > 0
		}
		direct, due := r.handoff.take()
		outboxDue = outboxDue || due
		failed := false
		if len(direct) > 0 {
			removing := len(cur.toRemove)
			res, deferred, err := r.directRound(ctx, &cur, hs, direct)
			if err != nil {
				return err
			}
			outboxDue = outboxDue || deferred || res.published < res.read
			failed = res.published < res.read
			if removing == 0 && len(cur.toRemove) > 0 {
				removeBy = time.Now().Add(removeDelay)
			}
		}
		if len(cur.toRemove) > 0 && (len(cur.toRemove) >= r.opts.BatchSize || !time.Now().Before(removeBy)) {
			outboxDue = true
		}
		if outboxDue && !failed {
			res, err := r.round(ctx, conn, &cur, hs)
			if err != nil {
				return err
			}
			lastOutbox = time.Now()
			// More to read (a full batch) or some left unpublished: the
			// round is due again.
			outboxDue = res.read >= r.opts.BatchSize || res.published < res.read
			failed = res.published < res.read
			if len(cur.toRemove) > 0 {
				removeBy = time.Now().Add(removeDelay)
			}
		}
		if failed { // NATS refused some: do not hammer it
			// A stream that is gone refuses everything: check it before
			// the next publish rather than at the next interval.
			r.watch.checkedAt = time.Time{}
			if !failures.Wait(ctx) {
				return nil
			}
			continue
		}
		failures.Reset()
		if outboxDue {
			continue
		}
		wait := min(time.Until(lastOutbox.Add(r.opts.PollInterval)), time.Until(r.watch.checkedAt.Add(r.opts.VerifyInterval)))
		if len(cur.toRemove) > 0 {
			wait = min(wait, time.Until(removeBy))
		}
		if err := r.waitForWork(ctx, listening, wait); err != nil {
			return err
		}
		if !time.Now().Before(lastOutbox.Add(r.opts.PollInterval)) {
			outboxDue = true // the fallback, should a NOTIFY be missed
		}
	}
	return nil
}

// waitForWork blocks until the hand-off or a notification wakes the relay,
// wait passes or ctx ends. An error means the listening connection failed.
func (r *Relay) waitForWork(ctx context.Context, listening <-chan error, wait time.Duration) error {
	if wait <= 0 {
		return nil
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-r.handoff.wake:
	case <-t.C:
	case err := <-listening:
		return err
	case <-ctx.Done():
	}
	return nil
}

// listen opens a connection of its own that LISTENs for the commits of
// other command instances (a commit in this process hands its events over
// instead) and turns each notification into a wake-up, until stop is
// called. A failure of that connection is sent on failed: leadership ends,
// as it would for the lock connection.
func (r *Relay) listen(ctx context.Context) (failed <-chan error, stop func(), err error) {
	cfg := r.pool.Config().ConnConfig.Copy()
	// Stopping cancels the wait: the connection's read is cut at once by a
	// deadline (the connection is closed right after), not by a cancel
	// request to the server.
	cfg.BuildContextWatcherHandler = func(pc *pgconn.PgConn) ctxwatch.Handler {
		return &pgconn.DeadlineContextWatcherHandler{Conn: pc.Conn()}
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), statementTimeout)
	defer cancel()
	conn, err := pgx.ConnectConfig(sctx, cfg)
	if err != nil {
		return nil, nil, fmt.Errorf("relay: connect to listen: %w", err)
	}
	if _, err := conn.Exec(sctx, "LISTEN "+eventlog.OutboxChannel); err != nil {
		r.closeConn(conn)
		return nil, nil, fmt.Errorf("relay: LISTEN %s: %w", eventlog.OutboxChannel, err)
	}
	lctx, cancelListen := context.WithCancel(context.Background())
	errs := make(chan error, 1)
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			// Notifications that queued up while the relay worked announce
			// rows its next round reads anyway: one wake-up covers them all.
			if _, err := conn.WaitForNotification(lctx); err != nil {
				if lctx.Err() == nil {
					errs <- fmt.Errorf("relay: wait for notification: %w", err)
				}
				return
			}
			r.handoff.notified()
		}
	})
	return errs, func() {
		cancelListen()
		wg.Wait()
		r.closeConn(conn)
	}, nil
}
