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
	"github.com/cart-cqrs/cart/pkg/telemetry"
)

// roundResult counts the rows of one round.
type roundResult struct {
	read, published int
}

// round reads up to BatchSize outbox rows, publishes them and removes the rows
// whose PubAck arrived. An error means leadership must end: the lock
// connection failed or the AfterPublish hook asked for a crash.
func (r *Relay) round(ctx context.Context, conn *pgx.Conn) (roundResult, error) {
	start := time.Now()
	evs, err := r.readBatch(ctx, conn)
	if err != nil || len(evs) == 0 {
		return roundResult{}, err
	}
	published := r.publish(ctx, evs)
	res := roundResult{read: len(evs), published: len(published)}
	if len(published) == 0 {
		return res, nil
	}
	if r.opts.AfterPublish != nil {
		if err := r.opts.AfterPublish(ctx, published); err != nil {
			return res, fmt.Errorf("relay: after publish of %d events: %w", len(published), err)
		}
	}
	positions := make([]int64, len(published))
	for i, e := range published {
		positions[i] = e.Position
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), statementTimeout)
	defer cancel()
	if _, err := conn.Exec(sctx, `DELETE FROM outbox WHERE position = ANY($1)`, positions); err != nil {
		return res, fmt.Errorf("relay: remove %d published outbox rows: %w", len(positions), err)
	}
	r.published.Add(uint64(len(published)))
	r.lastRound.Store(int64(time.Since(start)))
	return res, nil
}

// readBatch returns the oldest outbox rows as envelopes, in position order.
//
// Transactions may commit out of order: position 10 can become visible while
// the transaction that took position 9 is still open. A relay that tracked a
// high-water mark ("published up to 10") would skip 9 forever. This relay
// keeps no mark: a row stays in the outbox until it is published and removed,
// so 9 is simply read by a later round, once its transaction committed.
// Per-cart order is not at risk: a cart's next event is decided from the
// committed previous one, so it is appended (and numbered) after that commit.
func (r *Relay) readBatch(ctx context.Context, conn *pgx.Conn) ([]envelope.Envelope, error) {
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), statementTimeout)
	defer cancel()
	rows, err := conn.Query(sctx, `
		SELECT e.position, e.event_id::text, e.stream_id::text, e.stream_type, e.version, e.type,
		       e.schema_version, e.data, e.metadata, e.occurred_at
		FROM outbox o JOIN events e ON e.position = o.position
		ORDER BY o.position
		LIMIT $1`, r.opts.BatchSize)
	if err != nil {
		return nil, fmt.Errorf("relay: read outbox: %w", err)
	}
	evs, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (envelope.Envelope, error) {
		var e envelope.Envelope
		err := row.Scan(&e.Position, &e.EventID, &e.StreamID, &e.StreamType, &e.Version, &e.Type,
			&e.SchemaVersion, &e.Data, &e.Metadata, &e.OccurredAt)
		e.OccurredAt = e.OccurredAt.UTC()
		return e, err
	})
	if err != nil {
		return nil, fmt.Errorf("relay: read outbox: %w", err)
	}
	return evs, nil
}

// pending is one cart's events of a round, in version order, as messages.
type pending struct {
	evs    []envelope.Envelope
	msgs   []*nats.Msg
	failed bool
}

// publish sends evs to JetStream and returns those whose PubAck arrived, in
// position order. It publishes in waves: wave k holds the k-th event of every
// cart in the round, pipelined with PublishMsgAsync; wave k+1 starts only
// after every PubAck (or failure) of wave k. A cart whose publish failed gets
// no further wave, so a cart's event k+1 never reaches the stream unless
// event k is already in it — per-cart order holds across failures, retries
// and even a deposed leader still finishing a round (its re-publications are
// dropped as duplicates by Nats-Msg-Id).
func (r *Relay) publish(ctx context.Context, evs []envelope.Envelope) []envelope.Envelope {
	pctx, cancel := context.WithTimeout(ctx, r.opts.PublishTimeout)
	defer cancel()

	carts := r.group(evs)
	var (
		published   []envelope.Envelope
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
	for wave := 0; pctx.Err() == nil; wave++ {
		var members []*pending
		var futures []jetstream.PubAckFuture
		var spans []trace.Span
		more := false
		for _, c := range carts {
			if c.failed || wave >= len(c.evs) {
				continue
			}
			more = true
			if c.msgs[wave] == nil { // could not be encoded
				fail(c, fmt.Errorf("relay: encode event %s", c.evs[wave].EventID))
				continue
			}
			span := r.tracePublishing(pctx, c.evs[wave], c.msgs[wave])
			f, err := r.js.PublishMsgAsync(c.msgs[wave],
				jetstream.WithExpectStream(r.opts.Stream), jetstream.WithStallWait(r.opts.PublishTimeout))
			if err != nil {
				err = fmt.Errorf("relay: publish event %s: %w", c.evs[wave].EventID, err)
				telemetry.RecordError(span, err)
				span.End()
				fail(c, err)
				continue
			}
			members = append(members, c)
			futures = append(futures, f)
			spans = append(spans, span)
		}
		if !more {
			break
		}
		for i, f := range futures {
			c := members[i]
			err := awaitAck(pctx, f)
			if err != nil {
				err = fmt.Errorf("relay: publish event %s: %w", c.evs[wave].EventID, err)
			}
			telemetry.RecordError(spans[i], err)
			spans[i].End()
			if err != nil {
				fail(c, err)
				continue
			}
			published = append(published, c.evs[wave])
		}
	}
	if failedCarts > 0 && ctx.Err() == nil { // a stop is not a failure
		r.logger.Warn("relay: publish failed; those carts wait for a later round",
			"carts", failedCarts, "events", len(evs)-len(published), "error", firstErr)
	}
	slices.SortFunc(published, func(a, b envelope.Envelope) int { return cmp.Compare(a.Position, b.Position) })
	return published
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
// already holds the event.
func awaitAck(ctx context.Context, f jetstream.PubAckFuture) error {
	select {
	case <-f.Ok():
		return nil
	case err := <-f.Err():
		return err
	case <-ctx.Done():
		// An ack may have arrived while ctx ended.
		select {
		case <-f.Ok():
			return nil
		default:
			return fmt.Errorf("wait for puback: %w", ctx.Err())
		}
	}
}
