package relay

// A PubAck means JetStream holds the message in memory, not that it is on
// disk: a server whose file store fsyncs every sync_interval (two minutes by
// default) forgets what it acknowledged since the last fsync when its machine
// loses power, and a store restored from a copy forgets everything after the
// copy. The stream can also be deleted and created again. PostgreSQL still
// holds every event, so the relay repairs the stream from it:
//
//   - It keeps the rows it published, with the stream sequence of each, in
//     outbox_published for Options.Retention (instead of deleting them on
//     their PubAck), and purges them in batches after that.
//   - It watches the stream: a PubAck that is not a duplicate yet has a
//     sequence at or below the highest one acknowledged before means the
//     stream went back; so does a last sequence below that highest one, seen
//     when the leader starts, after the connection reached a server other
//     than the one last checked (a restarted server has a new id), and every
//     Options.VerifyInterval. A stream that is missing, or whose creation
//     time changed, was deleted. What the relay knows of the stream is kept in
//     relay_streams, so a new leader knows it too.
//   - On a stream that went back to sequence n it puts the retained rows
//     whose sequence is above n back into the outbox, and starts reading the
//     outbox from the beginning, with no cart's head known: the lost events
//     go out again in position order, so in version order per cart, with
//     their Nats-Msg-Id, so that whatever the stream still holds is dropped
//     as a duplicate. No event is published before the check after a new
//     server was reached: nothing can overtake a lost event of its cart.
//   - On a stream that is gone, or that went back further than the retained
//     rows reach, it (re)creates the stream and puts every event of
//     Options.RepublishHorizon (all of history by default) back into the
//     outbox. Survivors older than the stream's duplicate window then appear
//     twice; subscribers that keep what they processed by event id ignore the
//     second copy, as the projector does by version.

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cart-cqrs/cart/pkg/envelope"
)

// purgeBatch is how many retained rows one purge statement deletes; a check
// runs up to maxPurgeBatches of them.
const (
	purgeBatch      = 5000
	maxPurgeBatches = 20
)

// Reasons a loss is detected, the label of the loss counter.
const (
	LossWentBack  = "went_back" // the last sequence is below what was acknowledged
	LossRecreated = "recreated" // the stream was deleted and created again
	LossMissing   = "missing"   // the stream is gone
)

// watch is what the leader knows of the stream. Only the leader's goroutine
// uses it.
type watch struct {
	// created is the stream's creation time (zero: not known yet).
	created time.Time
	// maxAcked is the highest sequence a PubAck gave.
	maxAcked uint64
	// back is the lowest sequence of a PubAck (not a duplicate) at or below
	// maxAcked since the last check: the stream went back. 0: none.
	back uint64
	// server is the id of the server the last check talked to, checkedAt
	// when; a check is due when either is stale.
	server    string
	checkedAt time.Time
	// ceiling is the highest position a repair put back into the outbox, and
	// queued how many rows it put back, until they are published again.
	ceiling int64
	queued  int64
}

// acked takes note of a PubAck.
func (w *watch) acked(ack *jetstream.PubAck) {
	if !ack.Duplicate && ack.Sequence <= w.maxAcked && (w.back == 0 || ack.Sequence < w.back) {
		w.back = ack.Sequence
	}
	w.maxAcked = max(w.maxAcked, ack.Sequence)
}

// wentBack reports whether a PubAck since the last check showed the stream
// went back.
func (w *watch) wentBack() bool { return w.back != 0 }

// lossCounters count detected losses by reason.
type lossCounters struct {
	wentBack, recreated, missing atomic.Uint64
}

func (c *lossCounters) add(reason string) {
	switch reason {
	case LossWentBack:
		c.wentBack.Add(1)
	case LossRecreated:
		c.recreated.Add(1)
	case LossMissing:
		c.missing.Add(1)
	}
}

// LossesDetected is how many times this instance's relay found the stream had
// lost acknowledged messages, by reason (LossWentBack, LossRecreated,
// LossMissing).
func (r *Relay) LossesDetected() map[string]uint64 {
	return map[string]uint64{
		LossWentBack:  r.losses.wentBack.Load(),
		LossRecreated: r.losses.recreated.Load(),
		LossMissing:   r.losses.missing.Load(),
	}
}

// Republished is how many events this instance's relay published again after
// a detected loss.
func (r *Relay) Republished() uint64 { return r.republished.Load() }

// Retained is how many published rows the outbox kept for the retention
// window when the leader last counted; 0 on a standby.
func (r *Relay) Retained() int64 { return r.retained.Load() }

// checkDue reports whether the stream must be checked before the next
// publish: never checked by this leader, a PubAck showed it went back, the
// connection reached another server, or VerifyInterval passed.
func (r *Relay) checkDue(now time.Time) bool {
	w := r.watch
	return w.checkedAt.IsZero() || w.wentBack() ||
		r.js.Conn().ConnectedServerId() != w.server ||
		now.Sub(w.checkedAt) >= r.opts.VerifyInterval
}

// errStreamUnreachable wraps a failure to ask JetStream about the stream: the
// leader publishes nothing until a check succeeds, but stays the leader.
var errStreamUnreachable = errors.New("relay: stream state unavailable")

// loadWatch starts a leader's watch from what the previous leaders stored.
func (r *Relay) loadWatch(ctx context.Context, conn *pgx.Conn) error {
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), statementTimeout)
	defer cancel()
	r.watch = &watch{}
	var (
		created  *time.Time
		lastSeq  int64
		retained int64
	)
	err := conn.QueryRow(sctx, `SELECT (SELECT created FROM relay_streams WHERE stream = $1),
		coalesce((SELECT last_seq FROM relay_streams WHERE stream = $1), 0),
		coalesce((SELECT max(stream_seq) FROM outbox_published), 0)`, r.opts.Stream).Scan(&created, &lastSeq, &retained)
	if err != nil {
		return fmt.Errorf("relay: read the stream's state: %w", err)
	}
	if created != nil {
		r.watch.created = *created
	}
	r.watch.maxAcked = uint64(max(lastSeq, retained))
	return nil
}

// check compares the stream with what the relay knows of it and repairs a
// loss (see the top of this file); it then stores what it knows and purges
// the rows whose retention passed. An error wrapping errStreamUnreachable
// means JetStream could not be asked; any other, that the lock connection
// failed.
func (r *Relay) check(ctx context.Context, conn *pgx.Conn, cur *cursor, hs heads) error {
	w := r.watch
	server := r.js.Conn().ConnectedServerId()
	info, err := r.streamInfo(ctx)
	reason := ""
	switch {
	case errors.Is(err, jetstream.ErrStreamNotFound):
		reason = LossMissing
		st, cerr := EnsureStream(ctx, r.js, r.opts)
		if cerr != nil {
			return fmt.Errorf("%w: %w", errStreamUnreachable, cerr)
		}
		if info, err = st.Info(ctx); err != nil {
			return fmt.Errorf("%w: %w", errStreamUnreachable, err)
		}
	case err != nil:
		return fmt.Errorf("%w: %w", errStreamUnreachable, err)
	case !w.created.IsZero() && !sameTime(info.Created, w.created):
		reason = LossRecreated
	}
	from := info.State.LastSeq
	if w.back != 0 {
		from = min(from, w.back-1)
	}
	if reason == "" && from < w.maxAcked {
		reason = LossWentBack
	}
	if reason != "" {
		r.losses.add(reason)
		if err := r.flushRemovals(ctx, conn, cur); err != nil {
			return err
		}
		if err := r.repair(ctx, conn, reason, from, info); err != nil {
			return err
		}
		// The rows put back are below the cursor's floor, and the carts'
		// heads may be events the stream lost.
		*cur = cursor{toRemove: cur.toRemove[:0], removeSeqs: cur.removeSeqs[:0]}
		r.floor.Store(0)
		clear(hs)
		w.maxAcked = from
	}
	w.created, w.back = info.Created, 0
	w.server, w.checkedAt = server, time.Now()
	return r.store(ctx, conn)
}

// sameTime compares creation times as PostgreSQL keeps them, to the
// microsecond.
func sameTime(a, b time.Time) bool {
	return a.Truncate(time.Microsecond).Equal(b.Truncate(time.Microsecond))
}

func (r *Relay) streamInfo(ctx context.Context) (*jetstream.StreamInfo, error) {
	ictx, cancel := context.WithTimeout(ctx, r.opts.PublishTimeout)
	defer cancel()
	st, err := r.js.Stream(ictx, r.opts.Stream)
	if err != nil {
		return nil, err
	}
	return st.Info(ictx)
}

// repair puts back into the outbox what the stream lost: the retained rows
// above sequence from when they reach down to it, or else every event of the
// horizon.
func (r *Relay) repair(ctx context.Context, conn *pgx.Conn, reason string, from uint64, info *jetstream.StreamInfo) error {
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), repairTimeout)
	defer cancel()
	w := r.watch
	whole := reason != LossWentBack
	if !whole {
		// The retained rows must reach down to the first lost sequence:
		// every sequence from the oldest retained one up is retained.
		var oldest int64
		if err := conn.QueryRow(sctx, `SELECT coalesce(min(stream_seq), 0) FROM outbox_published`).Scan(&oldest); err != nil {
			return fmt.Errorf("relay: read the retained rows: %w", err)
		}
		whole = oldest == 0 || uint64(oldest) > from+1
	}
	var (
		n       int64
		ceiling int64
		err     error
	)
	if whole {
		var horizon *time.Time
		if r.opts.RepublishHorizon > 0 {
			t := time.Now().Add(-r.opts.RepublishHorizon)
			horizon = &t
		}
		err = conn.QueryRow(sctx, `WITH requeued AS (
	INSERT INTO outbox (position)
	SELECT position FROM events WHERE $1::timestamptz IS NULL OR occurred_at >= $1
	ON CONFLICT (position) DO NOTHING
	RETURNING position
), forgotten AS (DELETE FROM outbox_published)
SELECT count(*), coalesce(max(position), 0) FROM requeued`, horizon).Scan(&n, &ceiling)
	} else {
		err = conn.QueryRow(sctx, `WITH lost AS (
	DELETE FROM outbox_published WHERE stream_seq > $1 RETURNING position
), requeued AS (
	INSERT INTO outbox (position) SELECT position FROM lost ON CONFLICT (position) DO NOTHING RETURNING position
)
SELECT count(*), coalesce(max(position), 0) FROM requeued`, int64(from)).Scan(&n, &ceiling)
	}
	if err != nil {
		return fmt.Errorf("relay: put lost events back into the outbox: %w", err)
	}
	w.ceiling, w.queued = max(w.ceiling, ceiling), w.queued+n
	what := fmt.Sprintf("the retained events above stream sequence %d", from)
	if whole {
		what = "the events of the horizon"
		if r.opts.RepublishHorizon <= 0 {
			what = "every event"
		}
	}
	r.logger.Error("relay: the stream lost acknowledged messages; publishing them again from the event log",
		"stream", r.opts.Stream, "reason", reason, "acknowledgedUpTo", w.maxAcked, "streamLastSeq", info.State.LastSeq,
		"republishing", what, "events", n)
	return nil
}

// repairTimeout bounds a repair's statement, which may put all of history
// back into the outbox.
const repairTimeout = 10 * time.Minute

// repaired counts the published events a repair had put back, and says when
// the last of them went out.
func (r *Relay) repaired(published []envelope.Envelope) {
	w := r.watch
	if w.ceiling == 0 {
		return
	}
	var n int64
	for _, e := range published {
		if e.Position <= w.ceiling {
			n++
		}
	}
	r.republished.Add(uint64(n))
	w.queued -= n
	if w.queued <= 0 {
		r.logger.Info("relay: the lost events are in the stream again", "stream", r.opts.Stream)
		w.ceiling, w.queued = 0, 0
	}
}

// store saves what the relay knows of the stream, and purges the retained
// rows whose window passed.
func (r *Relay) store(ctx context.Context, conn *pgx.Conn) error {
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), statementTimeout)
	defer cancel()
	w := r.watch
	if _, err := conn.Exec(sctx, `INSERT INTO relay_streams (stream, created, last_seq) VALUES ($1, $2, $3)
ON CONFLICT (stream) DO UPDATE SET created = EXCLUDED.created, last_seq = EXCLUDED.last_seq, checked_at = now()`,
		r.opts.Stream, w.created, int64(w.maxAcked)); err != nil {
		return fmt.Errorf("relay: store the stream's state: %w", err)
	}
	if r.opts.Retention < 0 {
		return nil
	}
	for range maxPurgeBatches {
		tag, err := conn.Exec(sctx, `DELETE FROM outbox_published WHERE position IN (
	SELECT position FROM outbox_published WHERE published_at < now() - $1::interval LIMIT $2)`,
			r.opts.Retention, purgeBatch)
		if err != nil {
			return fmt.Errorf("relay: purge published rows: %w", err)
		}
		if tag.RowsAffected() < purgeBatch {
			break
		}
	}
	var retained int64
	if err := conn.QueryRow(sctx, `SELECT count(*) FROM outbox_published`).Scan(&retained); err != nil {
		return fmt.Errorf("relay: count retained rows: %w", err)
	}
	r.retained.Store(retained)
	return nil
}
