package projector

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cart-cqrs/cart/pkg/cart"
	"github.com/cart-cqrs/cart/pkg/envelope"
	"github.com/cart-cqrs/cart/pkg/eventlog"
)

// maxConflicts bounds how often one batch reloads a cart that another
// projector keeps changing; its messages are then redelivered later.
const maxConflicts = 5

// item is one decoded message: the event as stored (for the history) and as
// the fold reads it.
type item struct {
	msg jetstream.Msg
	env envelope.Envelope
	rec cart.Recorded
}

// group is a batch's messages of one cart, in version order.
type group struct {
	cartID string
	items  []item
}

// outcome is what projecting a group onto a stored document came to.
type outcome struct {
	write      Write
	ack        []jetstream.Msg // their effect is in write.State
	retry      []jetstream.Msg // after a gap nobody could fill yet
	applied    int
	duplicates int
	gaps       int
	// history is true when the write rebuilds the cart's history list.
	history bool
}

// Process projects one batch of messages and acks, naks or terminates each
// of them. It does not return errors: a message whose effect could not be
// stored is nak'ed with a delay and comes back.
func (p *Projector) Process(ctx context.Context, msgs []jetstream.Msg) {
	start := time.Now()
	defer func() { p.metrics.BatchDuration.Observe(time.Since(start).Seconds()) }()

	todo := p.decode(ctx, msgs)
	for attempt := 1; len(todo) > 0; attempt++ {
		ids := make([]string, len(todo))
		for i, g := range todo {
			ids[i] = g.cartID
		}
		docs, err := p.store.Load(ctx, ids)
		if err != nil {
			p.logger.ErrorContext(ctx, "projector: load cart documents", "carts", len(ids), "err", err)
			p.retryGroups(ctx, todo)
			return
		}
		outs := make([]outcome, len(todo))
		var writes []Write
		for i, g := range todo {
			outs[i] = p.project(ctx, g, docs[g.cartID])
			if len(outs[i].ack) > 0 {
				writes = append(writes, outs[i].write)
			}
		}
		results, err := p.store.Save(ctx, writes)
		if err != nil {
			p.logger.ErrorContext(ctx, "projector: save cart documents", "carts", len(writes), "err", err)
			p.retryGroups(ctx, todo)
			return
		}
		var conflicted []*group
		w := 0
		for i, g := range todo {
			o := outs[i]
			var res error
			if len(o.ack) > 0 {
				res = results[w]
				w++
			}
			switch {
			case res == nil:
				p.settle(ctx, o)
			case errors.Is(res, ErrConflict) && attempt < maxConflicts:
				conflicted = append(conflicted, g)
			default:
				p.logger.ErrorContext(ctx, "projector: save cart document", "cart", g.cartID, "err", res)
				p.retryGroups(ctx, []*group{g})
			}
		}
		todo = conflicted
	}
}

// decode turns messages into per-cart groups, in order of first appearance,
// and terminates what is not a cart event: it could never be applied.
func (p *Projector) decode(ctx context.Context, msgs []jetstream.Msg) []*group {
	byCart := make(map[string]*group)
	var groups []*group
	for _, m := range msgs {
		env, rec, err := recorded(m.Data())
		if err != nil {
			p.metrics.Terminated.Inc()
			p.logger.ErrorContext(ctx, "projector: terminating a message that is not a cart event",
				"subject", m.Subject(), slog.Uint64("seq", streamSeq(m)), "err", err)
			if err := m.Term(); err != nil {
				p.logger.ErrorContext(ctx, "projector: term", "subject", m.Subject(), "err", err)
			}
			continue
		}
		g, ok := byCart[rec.CartID]
		if !ok {
			g = &group{cartID: rec.CartID}
			byCart[rec.CartID] = g
			groups = append(groups, g)
		}
		g.items = append(g.items, item{msg: m, env: env, rec: rec})
	}
	for _, g := range groups {
		// A redelivery may arrive after a later version; the version, not the
		// arrival, is the cart's order. Stable, so duplicates keep their order.
		slices.SortStableFunc(g.items, func(a, b item) int { return a.rec.Version - b.rec.Version })
	}
	return groups
}

func recorded(data []byte) (envelope.Envelope, cart.Recorded, error) {
	env, err := envelope.UnmarshalCloudEvent(data)
	if err != nil {
		return envelope.Envelope{}, cart.Recorded{}, err
	}
	rec, err := env.Recorded()
	return env, rec, err
}

// project folds a cart's messages onto its stored document: duplicates are
// acknowledged as they are, the next version is applied, and a gap is first
// filled from the event log. The events applied, repaired ones included, go
// to the cart's history; a history out of step with the document is first
// rebuilt from the event log.
func (p *Projector) project(ctx context.Context, g *group, doc Doc) outcome {
	s, cur := doc.State, doc.Version
	o := outcome{}
	var history []envelope.Envelope
	if doc.HistoryLen != doc.Version {
		o.history = true
		if doc.Version > 0 {
			envs, _, err := p.readGap(ctx, g.cartID, 0, doc.Version)
			if err != nil {
				p.logger.WarnContext(ctx, "projector: history not rebuilt, retrying later",
					"cart", g.cartID, "version", doc.Version, "history", doc.HistoryLen, "err", err)
				for _, it := range g.items {
					o.retry = append(o.retry, it.msg)
				}
				return o
			}
			history = envs
		}
	}
	for i, it := range g.items {
		v := it.rec.Version
		if v <= cur {
			o.duplicates++
			o.ack = append(o.ack, it.msg)
			continue
		}
		if v > cur+1 {
			envs, missing, err := p.readGap(ctx, g.cartID, cur, v-1)
			if err != nil {
				p.logger.WarnContext(ctx, "projector: gap not repaired, retrying later",
					"cart", g.cartID, "have", cur, "got", v, "err", err)
				for _, rest := range g.items[i:] {
					o.retry = append(o.retry, rest.msg)
				}
				break
			}
			s = cart.Fold(s, missing...)
			history = append(history, envs...)
			o.gaps++
		}
		s = cart.Evolve(s, it.rec)
		history = append(history, it.env)
		cur = v
		o.applied++
		o.ack = append(o.ack, it.msg)
	}
	o.write = Write{
		CartID: g.cartID, From: doc.Version, State: s, Changed: cur != doc.Version,
		History: history, HistoryLen: doc.HistoryLen, ReplaceHistory: o.history,
	}
	return o
}

// errGapOpen means the event log does not have the missing events either.
var errGapOpen = errors.New("events missing from the event log")

// readGap reads a cart's events after..upTo (upTo > after) from PostgreSQL,
// the source of truth, and insists they are all there. It returns them as
// stored and decoded.
func (p *Projector) readGap(ctx context.Context, cartID string, after, upTo int) ([]envelope.Envelope, []cart.Recorded, error) {
	envs, err := eventlog.ReadStream(ctx, p.events, cartID, after, upTo)
	if err != nil {
		return nil, nil, err
	}
	if len(envs) != upTo-after {
		return nil, nil, fmt.Errorf("postgres: cart %s versions %d..%d: found %d: %w", cartID, after+1, upTo, len(envs), errGapOpen)
	}
	recs := make([]cart.Recorded, len(envs))
	for i, e := range envs {
		if e.Version != after+1+i {
			return nil, nil, fmt.Errorf("postgres: cart %s: version %d at %d: %w", cartID, e.Version, after+1+i, errGapOpen)
		}
		if recs[i], err = e.Recorded(); err != nil {
			return nil, nil, err
		}
	}
	return envs, recs, nil
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
	p.metrics.Duplicates.Add(float64(o.duplicates))
	p.metrics.GapsRepaired.Add(float64(o.gaps))
	if o.history && len(o.ack) > 0 {
		p.metrics.HistoryRepaired.Inc()
	}
}

func (p *Projector) retryGroups(ctx context.Context, groups []*group) {
	for _, g := range groups {
		msgs := make([]jetstream.Msg, len(g.items))
		for i, it := range g.items {
			msgs[i] = it.msg
		}
		p.nak(ctx, msgs)
	}
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
