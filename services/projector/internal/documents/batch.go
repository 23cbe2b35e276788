package documents

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/cart-cqrs/cart/pkg/envelope"
	"github.com/cart-cqrs/cart/services/projector/internal/engine"
)

// maxConflicts bounds how often one batch reloads a cart that another
// projector keeps changing; its messages are then redelivered later.
const maxConflicts = 5

// outcome is what projecting a cart's events onto the stored cart came to.
type outcome struct {
	change Change
	// save is false when there is nothing to store.
	save bool
	// retryFrom is the first event to be delivered again (with the later
	// ones): after a gap nobody could fill yet, or a failure.
	retryFrom int
	applied   []time.Time
	// duplicates, gaps and parked count for the metrics.
	duplicates int
	gaps       int
	parked     int
	// history is true when the change rebuilds a history list.
	history bool
}

// Apply implements engine.Projection: it folds each cart's events onto its
// documents in every generation written, and stores them.
func (p *Projector) Apply(ctx context.Context, carts []*engine.Cart) []engine.Outcome {
	res := make([]engine.Outcome, len(carts)) // all retried unless stored
	todo := make([]int, len(carts))
	for i := range todo {
		todo[i] = i
	}
	refresh := false
	for attempt := 1; len(todo) > 0; attempt++ {
		gens, err := p.generations(ctx, refresh)
		if err != nil {
			p.logger.ErrorContext(ctx, "documents: read generations", "err", err)
			return res
		}
		refresh = false
		recs, hits, err := p.records(ctx, gens, carts, todo, attempt == 1)
		if err != nil {
			p.logger.ErrorContext(ctx, "documents: load carts", "carts", len(todo), "err", err)
			return res
		}
		now := time.Now().UTC()
		outs := make([]outcome, len(todo))
		var changes []Change
		var saves []trace.Span
		for k, i := range todo {
			c := carts[i]
			outs[k] = p.project(c.Ctx, c, recs[c.ID], len(gens.Writes), now)
			if outs[k].save {
				changes = append(changes, outs[k].change)
				saves = append(saves, engine.TraceWrite(c, "cart.save"))
			}
		}
		results, err := p.store.Save(ctx, gens, changes)
		endSaves(saves, results, err)
		if err != nil {
			// Some may have been stored all the same.
			for _, c := range changes {
				p.cache.drop(c.CartID)
			}
			p.logger.ErrorContext(ctx, "documents: save carts", "carts", len(changes), "err", err)
			return res
		}
		var conflicted []int
		stale := 0
		w := 0
		for k, i := range todo {
			o, id := outs[k], carts[i].ID
			var stored Saved
			if o.save {
				stored = results[w]
				w++
			}
			switch err := stored.Err; {
			case err == nil:
				res[i] = engine.Outcome{RetryFrom: o.retryFrom, Applied: o.applied}
				p.observe(o)
				if o.save {
					p.remember(gens, id, recs[id], o.change, stored.Stamps)
				}
			case (errors.Is(err, ErrConflict) || errors.Is(err, ErrStaleGenerations)) && attempt < maxConflicts:
				refresh = refresh || errors.Is(err, ErrStaleGenerations)
				conflicted = append(conflicted, i)
				p.cache.drop(id)
				if hits[k] {
					stale++
				}
			default:
				p.cache.drop(id)
				p.logger.ErrorContext(carts[i].Ctx, "documents: save cart", "cart", id, "err", err)
			}
		}
		if stale > 0 {
			p.metrics.Remembered.WithLabelValues("stale").Add(float64(stale))
		}
		todo = conflicted
	}
	return res
}

// records returns the stored records of the carts todo: where remembered
// is set, those this projector remembers (hits[k] for todo[k]), the others
// read from the store in one call. A remembered cart whose batch starts
// past its next version is read again: another instance wrote it since.
func (p *Projector) records(ctx context.Context, gens Generations, carts []*engine.Cart, todo []int, remembered bool) (map[string]Record, []bool, error) {
	hits := make([]bool, len(todo))
	ids := make([]string, 0, len(todo))
	var mem map[string]Record
	for k, i := range todo {
		c := carts[i]
		if remembered && len(c.Events) > 0 {
			docs, ok := p.cache.get(gens.Token, c.ID)
			if ok && len(docs) == len(gens.Writes) && c.Events[0].Version <= newest(docs)+1 {
				if mem == nil {
					mem = make(map[string]Record, len(todo))
				}
				mem[c.ID], hits[k] = Record{Docs: docs}, true
				continue
			}
		}
		ids = append(ids, c.ID)
	}
	if remembered && p.cache != nil {
		p.metrics.Remembered.WithLabelValues("hit").Add(float64(len(mem)))
		p.metrics.Remembered.WithLabelValues("miss").Add(float64(len(ids)))
	}
	if len(ids) == 0 {
		return mem, hits, nil
	}
	recs, err := p.store.Load(ctx, gens, ids)
	if err != nil {
		return nil, nil, err
	}
	for id, r := range mem {
		recs[id] = r
	}
	return recs, hits, nil
}

// newest is the highest version of docs.
func newest(docs []Doc) int {
	v := 0
	for _, d := range docs {
		v = max(v, d.Version)
	}
	return v
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
func (p *Projector) project(ctx context.Context, g *engine.Cart, rec Record, gens int, now time.Time) outcome {
	o := outcome{change: Change{CartID: g.ID, ParkedLen: len(rec.Parked)}, retryFrom: len(g.Events)}
	if len(rec.Parked) > 0 {
		p.parkBehind(ctx, g, rec, &o, now)
		return o
	}
	if len(rec.Docs) == 0 {
		rec.Docs = make([]Doc, gens)
	}
	f, err := p.newFold(ctx, g.ID, rec.Docs)
	if err != nil {
		p.logger.WarnContext(ctx, "documents: cart not projected, retrying later", "cart", g.ID, "err", err)
		o.retryFrom = 0
		return o
	}
	var seq []queued
	next, cut := f.low()+1, len(g.Events)
	for i, it := range g.Events {
		v := it.Version
		if v < next {
			continue
		}
		if v > next {
			envs, err := p.readLog(ctx, g.ID, next-1, v-1)
			if err != nil {
				p.logger.WarnContext(ctx, "documents: gap not repaired, retrying later",
					"cart", g.ID, "have", next-1, "got", v, "err", err)
				cut = i
				break
			}
			for _, e := range envs {
				seq = append(seq, queued{env: e, item: -1})
			}
			o.gaps++
		}
		seq = append(seq, queued{env: it.Envelope, item: i})
		next = v + 1
	}
	applied := make([]bool, len(g.Events))
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
	// The events are in version order: what is retried is a suffix.
	for i, it := range g.Events {
		if i >= cut || poison > 0 && it.Version >= poison && !park {
			o.retryFrom = i
			break
		}
		switch {
		case applied[i]:
			o.applied = append(o.applied, it.OccurredAt)
		case poison == 0 || it.Version < poison:
			o.duplicates++
		}
	}
	o.change.Writes = f.writes()
	o.history = slices.Contains(f.replace, true)
	o.save = o.retryFrom > 0
	return o
}

// parkFailed decides what happens to the events from the first one that
// could not be applied (rest[0]) on: they are retried while the message
// answerable for them (the event's own, or the first that needed it to fill
// a gap) has been delivered fewer than MaxDeliver times, and parked after
// that. A transient failure is always retried. It reports whether it parked.
func (p *Projector) parkFailed(ctx context.Context, g *engine.Cart, rest []queued, cut int, cause error, o *outcome, now time.Time) bool {
	poison := rest[0].env.Version
	attempts := 0
	for i, it := range g.Events[:cut] {
		if it.Version >= poison {
			attempts = g.Events[i].Delivered
			break
		}
	}
	if errors.Is(cause, ErrTransient) || attempts < p.cfg.MaxDeliver {
		p.logger.WarnContext(ctx, "documents: event not applied, retrying later",
			"cart", g.ID, "version", poison, "delivery", attempts, "max_deliver", p.cfg.MaxDeliver, "err", cause)
		return false
	}
	p.logger.ErrorContext(ctx, "documents: parking an event that cannot be applied, and the cart's later events",
		"cart", g.ID, "version", poison, "type", rest[0].env.Type, "schema_version", rest[0].env.SchemaVersion,
		"deliveries", attempts, "err", cause)
	for k, q := range rest {
		pe := Parked{Event: q.env, Error: cause.Error(), Attempts: attempts, FirstParkedAt: now, LastAttemptAt: now}
		if k > 0 {
			pe.Error = waitingBehind(poison)
			if q.item >= 0 {
				pe.Attempts = g.Events[q.item].Delivered
			}
		}
		o.change.Park = append(o.change.Park, pe)
	}
	o.parked = len(rest)
	return true
}

// parkBehind parks a parked cart's new messages behind its parked events,
// filling gaps from the event log; what is parked already is a duplicate.
func (p *Projector) parkBehind(ctx context.Context, g *engine.Cart, rec Record, o *outcome, now time.Time) {
	head := rec.Parked[0].Event.Version
	next := rec.Parked[len(rec.Parked)-1].Event.Version + 1
	for _, d := range rec.Docs {
		next = max(next, d.Version+1)
	}
	for i, it := range g.Events {
		v := it.Version
		if v < next {
			o.duplicates++
			continue
		}
		if v > next {
			envs, err := p.readLog(ctx, g.ID, next-1, v-1)
			if err != nil {
				p.logger.WarnContext(ctx, "documents: gap behind parked events not filled, retrying later",
					"cart", g.ID, "have", next-1, "got", v, "err", err)
				o.retryFrom = i
				break
			}
			for _, e := range envs {
				o.change.Park = append(o.change.Park, Parked{Event: e, Error: waitingBehind(head), Attempts: it.Delivered, FirstParkedAt: now, LastAttemptAt: now})
			}
		}
		o.change.Park = append(o.change.Park, Parked{Event: it.Envelope, Error: waitingBehind(head), Attempts: it.Delivered, FirstParkedAt: now, LastAttemptAt: now})
		next = v + 1
	}
	o.parked = len(o.change.Park)
	o.save = o.parked > 0
}

func waitingBehind(version int) string {
	return fmt.Sprintf("waiting behind version %d, which could not be applied", version)
}

// observe counts what a stored outcome did.
func (p *Projector) observe(o outcome) {
	p.metrics.Duplicates.Add(float64(o.duplicates))
	p.metrics.GapsRepaired.Add(float64(o.gaps))
	p.metrics.Parked.Add(float64(o.parked))
	if o.history && o.save {
		p.metrics.HistoryRepaired.Inc()
	}
	if o.parked > 0 {
		p.parkedChanged()
	}
}
