package relay

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/cart-cqrs/cart/pkg/envelope"
	"github.com/cart-cqrs/cart/pkg/eventlog"
	"github.com/cart-cqrs/cart/pkg/telemetry"
)

// roundResult counts the rows of one round.
type roundResult struct {
	read, published int
}

// round removes the rows published since the last round, reads up to
// BatchSize outbox rows above cur's floor, publishes them and moves cur on;
// the rows whose PubAck arrived are left in cur.toRemove for the next round
// (see removeAndRead), and hs learns the carts' new heads. An error means
// leadership must end: the lock connection failed or the AfterPublish hook
// asked for a crash.
func (r *Relay) round(ctx context.Context, conn *pgx.Conn, cur *cursor, hs heads) (roundResult, error) {
	start := time.Now()
	evs, h, err := r.removeAndRead(ctx, conn, cur)
	if err != nil {
		return roundResult{}, err
	}
	if len(evs) == 0 {
		cur.advance(h, 0, false, 0)
		r.floor.Store(cur.floor)
		return roundResult{}, nil
	}
	published, seqs := r.publish(ctx, evs)
	res := roundResult{read: len(evs), published: len(published)}
	lastRead, full, lowestFailed := evs[len(evs)-1].Position, len(evs) >= r.opts.BatchSize, lowestUnpublished(evs, published)
	cur.advance(h, lastRead, full, lowestFailed)
	r.floor.Store(cur.floor)
	return res, r.acked(ctx, start, cur, hs, published, seqs)
}

// directRound publishes handed-off events (see handoff.go): those whose
// carts' earlier events the stream holds. deferred reports whether some must
// wait for an outbox round instead. Their rows are removed by a later round.
func (r *Relay) directRound(ctx context.Context, cur *cursor, hs heads, evs []envelope.Envelope) (res roundResult, deferred bool, err error) {
	start := time.Now()
	ready, deferred := hs.sort(evs)
	if len(ready) == 0 {
		return roundResult{}, deferred, nil
	}
	published, seqs := r.publish(ctx, ready)
	return roundResult{read: len(ready), published: len(published)}, deferred, r.acked(ctx, start, cur, hs, published, seqs)
}

// acked takes note of a round's events that the stream acknowledged (in
// position order, with their stream sequences): their carts' heads, and
// their rows to remove. An error is the AfterPublish hook's.
func (r *Relay) acked(ctx context.Context, start time.Time, cur *cursor, hs heads, published []envelope.Envelope, seqs []uint64) error {
	if len(published) == 0 {
		return nil
	}
	hs.published(published)
	if r.opts.AfterPublish != nil {
		if err := r.opts.AfterPublish(ctx, published); err != nil {
			return fmt.Errorf("relay: after publish of %d events: %w", len(published), err)
		}
	}
	for i, e := range published {
		cur.toRemove = append(cur.toRemove, e.Position)
		cur.removeSeqs = append(cur.removeSeqs, int64(seqs[i]))
	}
	r.repaired(published)
	r.lastRound.Store(int64(time.Since(start)))
	return nil
}

// flushRemovals removes the rows cur.toRemove holds, for a leader that stops
// with no round to come: left behind, they would be published once more by
// the next leader (and dropped as duplicates by the stream).
func (r *Relay) flushRemovals(ctx context.Context, conn *pgx.Conn, cur *cursor) error {
	if len(cur.toRemove) == 0 {
		return nil
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), statementTimeout)
	defer cancel()
	if _, err := conn.Exec(sctx, r.removeRows(), r.removeArgs(cur)...); err != nil {
		return fmt.Errorf("relay: remove %d published outbox rows: %w", len(cur.toRemove), err)
	}
	r.published.Add(uint64(len(cur.toRemove)))
	cur.removed()
	return nil
}

// removeRows is the statement that takes published rows out of the outbox,
// by position ($1), with their stream sequences ($2): into outbox_published
// for the retention window (see verify.go), or gone at once when nothing is
// retained. removeArgs are its arguments.
func (r *Relay) removeRows() string {
	if r.opts.Retention < 0 {
		return `DELETE FROM outbox WHERE position = ANY($1)`
	}
	return `WITH removed AS (DELETE FROM outbox WHERE position = ANY($1) RETURNING position)
INSERT INTO outbox_published (position, stream_seq)
SELECT p.position, p.seq FROM unnest($1::bigint[], $2::bigint[]) AS p(position, seq) JOIN removed USING (position)
ON CONFLICT (position) DO UPDATE SET stream_seq = EXCLUDED.stream_seq, published_at = EXCLUDED.published_at`
}

func (r *Relay) removeArgs(cur *cursor) []any {
	if r.opts.Retention < 0 {
		return []any{cur.toRemove}
	}
	return []any{cur.toRemove, cur.removeSeqs}
}

// lowestUnpublished is the lowest position of evs (in position order) that
// is not in published (in position order, a subset of evs), or 0.
func lowestUnpublished(evs, published []envelope.Envelope) int64 {
	for i, e := range evs {
		if i >= len(published) || published[i].Position != e.Position {
			return e.Position
		}
	}
	return 0
}

// removeAndRead removes the rows cur.toRemove holds and returns the oldest
// outbox rows above cur's floor as envelopes, in position order, and the
// horizon the cursor moves by (see cursor). The removal goes in the same
// round trip and transaction as the read: one of each per round instead of
// two, and the read does not see the rows removed.
//
// Transactions may commit out of order: position 10 can become visible while
// the transaction that took position 9 is still open. A relay that took
// "published up to 10" as its mark would skip 9 forever. A row stays in the
// outbox until it is published and removed, and the floor passes 9 only once
// no open transaction can hold it, so 9 is read by a later round, once its
// transaction committed. Per-cart order is not at risk: a cart's next event
// is decided from the committed previous one, so it is appended (and
// numbered) after that commit.
//
// Each event is looked up by its position, one primary-key probe per outbox
// row: the LIMIT keeps the lateral subquery from being flattened into a
// join, which the planner may merge or hash with the whole events table, and
// so does it with "position = ANY (the outbox's positions)" once the table
// has grown and its statistics have not (a plan cached on the relay's
// connection read every event ever stored on each round). Both statements go in one round trip; the horizon's
// snapshot is taken before the rows', and the transaction id (wantXID) is
// taken after the horizon's snapshot and held until the rows are read.
func (r *Relay) removeAndRead(ctx context.Context, conn *pgx.Conn, cur *cursor) ([]envelope.Envelope, horizon, error) {
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), statementTimeout)
	defer cancel()
	var h horizon
	xid := "0"
	if cur.wantsXID() {
		xid = "pg_current_xact_id()::text::bigint"
	}
	b := &pgx.Batch{}
	removing := len(cur.toRemove)
	if removing > 0 {
		b.Queue(r.removeRows(), r.removeArgs(cur)...)
	}
	b.Queue(`SELECT (SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM events_position_seq),
		       pg_snapshot_xmin(pg_current_snapshot())::text::bigint, ` + xid).QueryRow(func(row pgx.Row) error {
		return row.Scan(&h.seq, &h.xmin, &h.xid)
	})
	var evs []envelope.Envelope
	// Inside the lateral subquery the bare column names are the events'.
	b.Queue(`
		SELECT e.* FROM (SELECT position FROM outbox WHERE position > $2 ORDER BY position LIMIT $1) o
		CROSS JOIN LATERAL (SELECT `+eventlog.Columns+` FROM events WHERE events.position = o.position LIMIT 1) e
		ORDER BY o.position`, r.opts.BatchSize, cur.floor).Query(func(rows pgx.Rows) error {
		var err error
		evs, err = eventlog.Collect(rows)
		return err
	})
	if err := conn.SendBatch(sctx, b).Close(); err != nil {
		return nil, horizon{}, fmt.Errorf("relay: remove %d published outbox rows and read the outbox: %w", removing, err)
	}
	r.published.Add(uint64(removing))
	cur.removed()
	return evs, h, nil
}

// pending is one cart's events of a round, in version order, as messages;
// next is the first not yet published.
type pending struct {
	evs    []envelope.Envelope
	msgs   []*nats.Msg
	next   int
	failed bool
}

// flight is one published message waiting for its PubAck.
type flight struct {
	cart *pending
	ack  jetstream.PubAckFuture
	span trace.Span
}

// publish sends evs to JetStream and returns those whose PubAck arrived, in
// position order, with the stream sequence of each. Each cart is a chain: its event k+1 is sent only after the
// PubAck of event k arrived, so a cart's events reach the stream in version
// order even when one of them fails. The chains of different carts run side
// by side, up to MaxInFlight unacknowledged messages in all, so a round costs
// about as many round trips as its longest chain, not as its events. A cart
// whose publish failed publishes nothing more this round; a deposed leader
// still finishing a round only re-publishes what the stream drops as
// duplicates (Nats-Msg-Id).
//
// Every PubAck goes past the stream watch (see verify.go): one that shows the
// stream went back stops the round from sending more, since whatever it sent
// next could overtake a lost earlier event of its cart.
func (r *Relay) publish(ctx context.Context, evs []envelope.Envelope) ([]envelope.Envelope, []uint64) {
	pctx, cancel := context.WithTimeout(ctx, r.opts.PublishTimeout)
	defer cancel()

	ready := r.group(evs) // carts whose next event may be sent, oldest first
	var (
		inflight    []flight // in the order sent: PubAcks come back in it
		published   = make([]sent, 0, len(evs))
		failedCarts int
		firstErr    error
	)
	fail := func(c *pending, err error) {
		c.failed = true
		failedCarts++
		if firstErr == nil {
			firstErr = err
		}
	}
	for len(ready) > 0 || len(inflight) > 0 {
		for len(ready) > 0 && len(inflight) < r.opts.MaxInFlight && pctx.Err() == nil && !r.watch.wentBack() {
			c := ready[0]
			ready = ready[1:]
			e, msg := c.evs[c.next], c.msgs[c.next]
			if msg == nil { // could not be encoded
				fail(c, fmt.Errorf("relay: encode event %s", e.EventID))
				continue
			}
			span := r.tracePublishing(pctx, e, msg)
			f, err := r.js.PublishMsgAsync(msg,
				jetstream.WithExpectStream(r.opts.Stream), jetstream.WithStallWait(r.opts.PublishTimeout))
			if err != nil {
				err = fmt.Errorf("relay: publish event %s: %w", e.EventID, err)
				telemetry.RecordError(span, err)
				span.End()
				fail(c, err)
				continue
			}
			inflight = append(inflight, flight{cart: c, ack: f, span: span})
		}
		if len(inflight) == 0 {
			break // the time is up, or every remaining cart failed
		}
		fl := inflight[0]
		inflight = inflight[1:]
		c := fl.cart
		ack, err := awaitAck(pctx, fl.ack)
		if err != nil {
			err = fmt.Errorf("relay: publish event %s: %w", c.evs[c.next].EventID, err)
		}
		telemetry.RecordError(fl.span, err)
		fl.span.End()
		if err != nil {
			fail(c, err)
			continue
		}
		r.watch.acked(ack)
		published = append(published, sent{c.evs[c.next], ack.Sequence})
		if c.next++; c.next < len(c.evs) {
			ready = append(ready, c)
		}
	}
	if failedCarts > 0 && ctx.Err() == nil { // a stop is not a failure
		r.logger.Warn("relay: publish failed; those carts wait for a later round",
			"carts", failedCarts, "events", len(evs)-len(published), "error", firstErr)
	}
	slices.SortFunc(published, func(a, b sent) int { return cmp.Compare(a.e.Position, b.e.Position) })
	evsOut, seqs := make([]envelope.Envelope, len(published)), make([]uint64, len(published))
	for i, p := range published {
		evsOut[i], seqs[i] = p.e, p.seq
	}
	return evsOut, seqs
}

// sent is an event and the stream sequence its PubAck gave.
type sent struct {
	e   envelope.Envelope
	seq uint64
}

// group splits a round by cart, carts in order of their oldest event, each
// cart's events in version order, already encoded as messages.
func (r *Relay) group(evs []envelope.Envelope) []*pending {
	byCart := make(map[string]*pending)
	var carts []*pending
	for _, e := range evs {
		c, ok := byCart[e.StreamID]
		if !ok {
			c = &pending{}
			byCart[e.StreamID] = c
			carts = append(carts, c)
		}
		c.evs = append(c.evs, e)
	}
	for _, c := range carts {
		slices.SortStableFunc(c.evs, func(a, b envelope.Envelope) int { return a.Version - b.Version })
		c.msgs = make([]*nats.Msg, len(c.evs))
		for i, e := range c.evs {
			msg, err := r.message(e)
			if err != nil {
				r.logger.Error("relay: cannot encode event", "eventId", e.EventID, "cartId", e.StreamID, "error", err)
				break // the cart's later events must wait behind this one
			}
			c.msgs[i] = msg
		}
	}
	return carts
}

func (r *Relay) message(e envelope.Envelope) (*nats.Msg, error) {
	data, err := envelope.MarshalCloudEvent(e, r.opts.Source)
	if err != nil {
		return nil, err
	}
	return &nats.Msg{
		Subject: envelope.Subject(r.opts.SubjectPrefix, e.StreamID, e.Type),
		Data:    data,
		Header: nats.Header{
			jetstream.MsgIDHeader: []string{e.EventID},
			"Content-Type":        []string{envelope.ContentType},
		},
	}, nil
}

// tracePublishing starts the span of one event's publication, in the trace
// of the request that appended the event (its stored trace context), and
// puts the span's context in msg's traceparent header, so the projector's
// span follows it. The CloudEvent keeps the stored context itself: the
// distributed-tracing extension names where the event came from, not the
// hop. The span ends with the PubAck.
func (r *Relay) tracePublishing(ctx context.Context, e envelope.Envelope, msg *nats.Msg) trace.Span {
	ctx = telemetry.WithTraceContext(ctx, e.Metadata.TraceParent, e.Metadata.TraceState)
	if !telemetry.Active() {
		// No span would record: the message carries the stored context on,
		// as a non-recording span would, without making one per event.
		telemetry.Propagator.Inject(ctx, telemetry.NATSHeader(msg.Header))
		return trace.SpanFromContext(context.Background())
	}
	ctx, span := telemetry.Tracer().Start(ctx, "publish "+r.opts.Stream, trace.WithSpanKind(trace.SpanKindProducer),
		trace.WithAttributes(
			attribute.String("messaging.system", "nats"),
			attribute.String("messaging.operation.type", "send"),
			attribute.String("messaging.destination.name", msg.Subject),
			attribute.String("messaging.message.id", e.EventID),
			attribute.String("cart.id", e.StreamID),
			attribute.Int("cart.version", e.Version),
		))
	telemetry.Propagator.Inject(ctx, telemetry.NATSHeader(msg.Header))
	return span
}

// awaitAck waits for one PubAck. A duplicate counts as published: the stream
// already holds the event (at the sequence the PubAck gives).
func awaitAck(ctx context.Context, f jetstream.PubAckFuture) (*jetstream.PubAck, error) {
	select {
	case ack := <-f.Ok():
		return ack, nil
	case err := <-f.Err():
		return nil, err
	case <-ctx.Done():
		// An ack may have arrived while ctx ended.
		select {
		case ack := <-f.Ok():
			return ack, nil
		default:
			return nil, fmt.Errorf("wait for puback: %w", ctx.Err())
		}
	}
}
