package projector

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/trace"

	"github.com/cart-cqrs/cart/pkg/envelope"
	"github.com/cart-cqrs/cart/pkg/telemetry"
)

// maxConflicts bounds how often one batch reloads a cart that another
// projector keeps changing; its messages are then redelivered later.
const maxConflicts = 5

// item is one message: the event as stored, and how often it was delivered.
type item struct {
	msg       jetstream.Msg
	env       envelope.Envelope
	delivered int
	// span is the message's processing span, ended when the batch is done.
	span trace.Span
}

// group is a batch's messages of one cart, in version order.
type group struct {
	cartID string
	items  []item
	// ctx is the newest message's: its trace and correlation id tag the
	// cart's spans and log lines.
	ctx context.Context
}

// outcome is what projecting a group onto the stored cart came to.
type outcome struct {
	change Change
	// save is false when there is nothing to store: the acks and naks are
	// settled at once.
	save    bool
	ack     []jetstream.Msg // their effect is in change
	retry   []jetstream.Msg // after a gap nobody could fill yet, or a failure
	applied int
	// occurred are the applied events' times, for the projection lag.
	occurred   []time.Time
	duplicates int
	gaps       int
	parked     int
	// history is true when the change rebuilds a history list.
	history bool
}

// Process projects one batch of messages and acks, naks or terminates each
// of them. It does not return errors: a message whose effect could not be
// stored is nak'ed with a delay and comes back.
func (p *Projector) Process(ctx context.Context, msgs []jetstream.Msg) {
	start := time.Now()
	defer func() { p.metrics.BatchDuration.Observe(time.Since(start).Seconds()) }()

	todo := p.decode(ctx, msgs)
	defer endSpans(todo)
	refresh := false
	for attempt := 1; len(todo) > 0; attempt++ {
		gens, err := p.generations(ctx, refresh)
		if err != nil {
			p.logger.ErrorContext(ctx, "projector: read generations", "err", err)
			p.retryGroups(ctx, todo)
			return
		}
		refresh = false
		ids := make([]string, len(todo))
		for i, g := range todo {
			ids[i] = g.cartID
		}
		recs, err := p.store.Load(ctx, gens, ids)
		if err != nil {
			p.logger.ErrorContext(ctx, "projector: load carts", "carts", len(ids), "err", err)
			p.retryGroups(ctx, todo)
			return
		}
		now := time.Now().UTC()
		outs := make([]outcome, len(todo))
		var changes []Change
		var saves []trace.Span
		for i, g := range todo {
			outs[i] = p.project(g.ctx, g, recs[g.cartID], len(gens.Writes), now)
			if outs[i].save {
				changes = append(changes, outs[i].change)
				saves = append(saves, traceSave(g))
			}
		}
		results, err := p.store.Save(ctx, gens, changes)
		endSaves(saves, results, err)
		if err != nil {
			p.logger.ErrorContext(ctx, "projector: save carts", "carts", len(changes), "err", err)
			p.retryGroups(ctx, todo)
			return
		}
		var conflicted []*group
		w := 0
		for i, g := range todo {
			o := outs[i]
			var res error
			if o.save {
				res = results[w]
				w++
			}
			switch {
			case res == nil:
				p.settle(ctx, o)
			case (errors.Is(res, ErrConflict) || errors.Is(res, ErrStaleGenerations)) && attempt < maxConflicts:
				refresh = refresh || errors.Is(res, ErrStaleGenerations)
				conflicted = append(conflicted, g)
			default:
				p.logger.ErrorContext(g.ctx, "projector: save cart", "cart", g.cartID, "err", res)
				p.retryGroups(ctx, []*group{g})
			}
		}
		todo = conflicted
	}
}

// decode turns messages into per-cart groups, in order of first appearance,
// and terminates what is not a cart event: it could never be applied. A
// cart event whose data this code cannot read is kept: the fold reports it,
// and it is parked after MaxDeliver deliveries.
func (p *Projector) decode(ctx context.Context, msgs []jetstream.Msg) []*group {
	byCart := make(map[string]*group)
	var groups []*group
	for _, m := range msgs {
		// Parked events are kept per cart, so a message whose subject is not
		// a cart id is no cart's event.
		env, err := envelope.UnmarshalCartEvent(m.Data())
		if err != nil {
			p.metrics.Terminated.Inc()
			p.logger.ErrorContext(ctx, "projector: terminating a message that is not a cart event",
				"subject", m.Subject(), slog.Uint64("seq", streamSeq(m)), "err", err)
			if err := m.Term(); err != nil {
				p.logger.ErrorContext(ctx, "projector: term", "subject", m.Subject(), "err", err)
			}
			continue
		}
		g, ok := byCart[env.StreamID]
		if !ok {
			g = &group{cartID: env.StreamID}
			byCart[env.StreamID] = g
			groups = append(groups, g)
		}
		it := item{msg: m, env: env, delivered: delivered(m)}
		_, it.span = p.traceProcessing(ctx, m, env, it.delivered)
		g.items = append(g.items, it)
	}
	for _, g := range groups {
		// A redelivery may arrive after a later version; the version, not the
		// arrival, is the cart's order. Stable, so duplicates keep their order.
		slices.SortStableFunc(g.items, func(a, b item) int { return a.env.Version - b.env.Version })
		newest := g.items[len(g.items)-1]
		g.ctx = trace.ContextWithSpan(telemetry.WithCorrelationID(ctx, newest.env.Metadata.CorrelationID), newest.span)
	}
	return groups
}

// queued is an event to fold: from the batch (item >= 0) or, for a version
// the batch lacks, from the event log (item -1).
type queued struct {
	env  envelope.Envelope
	item int
}

// project folds a cart's messages onto its stored documents: duplicates are
// acknowledged as they are, the next version is applied, and a gap is first
// filled from the event log. An event that cannot be applied holds back the
// cart's later events; after MaxDeliver deliveries it is parked, with them.
// A parked cart's messages are parked behind its first parked event.
func (p *Projector) project(ctx context.Context, g *group, rec Record, gens int, now time.Time) outcome {
	o := outcome{change: Change{CartID: g.cartID, ParkedLen: len(rec.Parked)}}
	if len(rec.Parked) > 0 {
		p.parkBehind(ctx, g, rec, &o, now)
		return o
	}
	if len(rec.Docs) == 0 {
		rec.Docs = make([]Doc, gens)
	}
	f, err := p.newFold(ctx, g.cartID, rec.Docs)
	if err != nil {
		p.logger.WarnContext(ctx, "projector: cart not projected, retrying later", "cart", g.cartID, "err", err)
		o.retry = messages(g.items)
		return o
	}
	var seq []queued
	next, cut := f.low()+1, len(g.items)
	for i, it := range g.items {
		v := it.env.Version
		if v < next {
			continue
		}
		if v > next {
			envs, err := p.readLog(ctx, g.cartID, next-1, v-1)
			if err != nil {
				p.logger.WarnContext(ctx, "projector: gap not repaired, retrying later",
					"cart", g.cartID, "have", next-1, "got", v, "err", err)
				cut = i
				break
			}
			for _, e := range envs {
				seq = append(seq, queued{env: e, item: -1})
			}
			o.gaps++
		}
		seq = append(seq, queued{env: it.env, item: i})
		next = v + 1
	}
	applied := make([]bool, len(g.items))
	failAt, failErr := len(seq), error(nil)
	for k, q := range seq {
		took, err := f.step(q.env)
		if err != nil {
			failAt, failErr = k, err
			break
		}
		if q.item >= 0 && took {
			applied[q.item] = true
		}
	}
	poison, park := 0, false
	if failAt < len(seq) {
		poison = seq[failAt].env.Version
		park = p.parkFailed(ctx, g, seq[failAt:], cut, failErr, &o, now)
	}
	for i, it := range g.items {
		switch {
		case i >= cut, poison > 0 && it.env.Version >= poison && !park:
			o.retry = append(o.retry, it.msg)
		default:
			o.ack = append(o.ack, it.msg)
			switch {
			case applied[i]:
				o.applied++
				o.occurred = append(o.occurred, it.env.OccurredAt)
			case poison == 0 || it.env.Version < poison:
				o.duplicates++
			}
		}
	}
	o.change.Writes = f.writes()
	o.history = slices.Contains(f.replace, true)
	o.save = len(o.ack) > 0
	return o
}

// parkFailed decides what happens to the events from the first one that
// could not be applied (rest[0]) on: they are retried while the message
// answerable for them (the event's own, or the first that needed it to fill
// a gap) has been delivered fewer than MaxDeliver times, and parked after
// that. A transient failure is always retried. It reports whether it parked.
func (p *Projector) parkFailed(ctx context.Context, g *group, rest []queued, cut int, cause error, o *outcome, now time.Time) bool {
	poison := rest[0].env.Version
	attempts := 0
	for i, it := range g.items[:cut] {
		if it.env.Version >= poison {
			attempts = g.items[i].delivered
			break
		}
	}
	if errors.Is(cause, ErrTransient) || attempts < p.cfg.MaxDeliver {
		p.logger.WarnContext(ctx, "projector: event not applied, retrying later",
			"cart", g.cartID, "version", poison, "delivery", attempts, "max_deliver", p.cfg.MaxDeliver, "err", cause)
		return false
	}
	p.logger.ErrorContext(ctx, "projector: parking an event that cannot be applied, and the cart's later events",
		"cart", g.cartID, "version", poison, "type", rest[0].env.Type, "schema_version", rest[0].env.SchemaVersion,
		"deliveries", attempts, "err", cause)
	for k, q := range rest {
		pe := Parked{Event: q.env, Error: cause.Error(), Attempts: attempts, FirstParkedAt: now, LastAttemptAt: now}
		if k > 0 {
			pe.Error = waitingBehind(poison)
			if q.item >= 0 {
				pe.Attempts = g.items[q.item].delivered
			}
		}
		o.change.Park = append(o.change.Park, pe)
	}
	o.parked = len(rest)
	return true
}

// parkBehind parks a parked cart's new messages behind its parked events,
// filling gaps from the event log; what is parked already is a duplicate.
func (p *Projector) parkBehind(ctx context.Context, g *group, rec Record, o *outcome, now time.Time) {
	head := rec.Parked[0].Event.Version
	next := rec.Parked[len(rec.Parked)-1].Event.Version + 1
	for _, d := range rec.Docs {
		next = max(next, d.Version+1)
	}
	for i, it := range g.items {
		v := it.env.Version
		if v < next {
			o.ack = append(o.ack, it.msg)
			o.duplicates++
			continue
		}
		if v > next {
			envs, err := p.readLog(ctx, g.cartID, next-1, v-1)
			if err != nil {
				p.logger.WarnContext(ctx, "projector: gap behind parked events not filled, retrying later",
					"cart", g.cartID, "have", next-1, "got", v, "err", err)
				o.retry = append(o.retry, messages(g.items[i:])...)
				break
			}
			for _, e := range envs {
				o.change.Park = append(o.change.Park, Parked{Event: e, Error: waitingBehind(head), Attempts: it.delivered, FirstParkedAt: now, LastAttemptAt: now})
			}
		}
		o.change.Park = append(o.change.Park, Parked{Event: it.env, Error: waitingBehind(head), Attempts: it.delivered, FirstParkedAt: now, LastAttemptAt: now})
		o.ack = append(o.ack, it.msg)
		next = v + 1
	}
	o.parked = len(o.change.Park)
	o.save = o.parked > 0
}

func waitingBehind(version int) string {
	return fmt.Sprintf("waiting behind version %d, which could not be applied", version)
}

// settle acknowledges what a stored outcome covers.
func (p *Projector) settle(ctx context.Context, o outcome) {
	for _, m := range o.ack {
		if err := m.Ack(); err != nil {
			p.logger.ErrorContext(ctx, "projector: ack", "subject", m.Subject(), "err", err)
		}
	}
	p.nak(ctx, o.retry)
	p.metrics.Applied.Add(float64(o.applied))
	stored := time.Now()
	for _, at := range o.occurred {
		p.metrics.Lag.Observe(stored.Sub(at).Seconds())
	}
	p.metrics.Duplicates.Add(float64(o.duplicates))
	p.metrics.GapsRepaired.Add(float64(o.gaps))
	p.metrics.Parked.Add(float64(o.parked))
	if o.history && len(o.ack) > 0 {
		p.metrics.HistoryRepaired.Inc()
	}
	if o.parked > 0 {
		p.parkedChanged()
	}
}

func (p *Projector) retryGroups(ctx context.Context, groups []*group) {
	for _, g := range groups {
		p.nak(ctx, messages(g.items))
	}
}

func messages(items []item) []jetstream.Msg {
	msgs := make([]jetstream.Msg, len(items))
	for i, it := range items {
		msgs[i] = it.msg
	}
	return msgs
}

// nak asks for a redelivery after RetryDelay.
func (p *Projector) nak(ctx context.Context, msgs []jetstream.Msg) {
	for _, m := range msgs {
		if err := m.NakWithDelay(p.cfg.RetryDelay); err != nil {
			p.logger.ErrorContext(ctx, "projector: nak", "subject", m.Subject(), "err", err)
		}
	}
}

func streamSeq(m jetstream.Msg) uint64 {
	md, err := m.Metadata()
	if err != nil {
		return 0
	}
	return md.Sequence.Stream
}

// delivered is how often the message was delivered, this time included.
func delivered(m jetstream.Msg) int {
	md, err := m.Metadata()
	if err != nil {
		return 1
	}
	return int(md.NumDelivered)
}
