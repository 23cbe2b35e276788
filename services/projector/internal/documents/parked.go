package documents

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/cart-cqrs/cart/pkg/cart"
	"github.com/cart-cqrs/cart/pkg/readmodel"
	"github.com/cart-cqrs/cart/services/projector/internal/engine"
)

// ErrNotParked is returned for a cart that has no parked events.
var ErrNotParked = errors.New("documents: cart has no parked events")

// ErrUnknownCart is returned for a cart the event log has no events of.
var ErrUnknownCart = errors.New("documents: cart has no events")

// ParkedCart is one cart's parked events, the first being the one that
// could not be applied.
type ParkedCart struct {
	CartID string
	Events []Parked
}

// Released is what a retry or a skip of a cart's parked events came to.
type Released struct {
	// Applied is how many parked events were applied (the skipped one
	// included).
	Applied int
	// StillParked is how many remain parked; Error is why the first of
	// them still cannot be applied.
	StillParked int
	Error       string
	// Version is the cart's version in the current generation now.
	Version int
}

// ParkedCarts lists every cart with parked events.
func (p *Projector) ParkedCarts(ctx context.Context) ([]ParkedCart, error) {
	gens, err := p.generations(ctx, true)
	if err != nil {
		return nil, err
	}
	ids, err := p.store.ParkedCarts(ctx)
	if err != nil {
		return nil, err
	}
	recs, err := p.store.Load(ctx, gens, ids)
	if err != nil {
		return nil, err
	}
	out := make([]ParkedCart, 0, len(ids))
	for _, id := range ids {
		if r := recs[id]; len(r.Parked) > 0 {
			out = append(out, ParkedCart{CartID: id, Events: r.Parked})
		}
	}
	slices.SortFunc(out, func(a, b ParkedCart) int { return a.Events[0].FirstParkedAt.Compare(b.Events[0].FirstParkedAt) })
	return out, nil
}

// Retry applies a cart's parked events again, in order. Those that still
// cannot be applied stay parked, the first with the new error.
func (p *Projector) Retry(ctx context.Context, cartID string) (Released, error) {
	return p.release(ctx, cartID, false)
}

// Skip drops the first of a cart's parked events — the one that could not
// be applied — and applies the others. The documents record the skipped
// version, so it is not a gap, and a repair from the event log passes over
// it instead of stumbling on it again.
func (p *Projector) Skip(ctx context.Context, cartID string) (Released, error) {
	return p.release(ctx, cartID, true)
}

func (p *Projector) release(ctx context.Context, cartID string, skip bool) (Released, error) {
	// The batches read the cart again rather than fold onto what they
	// remember of it (which the store's guard would refuse).
	defer p.cache.drop(cartID)
	stale := false
	for attempt := 1; ; attempt++ {
		gens, err := p.generations(ctx, stale || attempt == 1)
		if err != nil {
			return Released{}, err
		}
		recs, err := p.store.Load(ctx, gens, []string{cartID})
		if err != nil {
			return Released{}, err
		}
		rec := recs[cartID]
		if len(rec.Parked) == 0 {
			return Released{}, fmt.Errorf("cart %s: %w", cartID, ErrNotParked)
		}
		if len(rec.Docs) == 0 {
			rec.Docs = make([]Doc, len(gens.Writes))
		}
		f, err := p.newFold(ctx, cartID, rec.Docs)
		if err != nil {
			return Released{}, err
		}
		head := rec.Parked[0].Event.Version
		if f.low() < head-1 {
			// A generation behind the others (a rebuild had not reached
			// the cart) catches up from the event log first.
			envs, err := p.readLog(ctx, cartID, f.low(), head-1)
			if err != nil {
				return Released{}, err
			}
			for _, e := range envs {
				if _, err := f.step(e); err != nil {
					return Released{}, fmt.Errorf("cart %s: version %d before the parked events: %w", cartID, e.Version, err)
				}
			}
		}
		if skip {
			f.skip(head)
		}
		now := time.Now().UTC()
		n, failErr := 0, error(nil)
		for _, pe := range rec.Parked {
			if _, failErr = f.step(pe.Event); failErr != nil {
				break
			}
			n++
		}
		change := Change{CartID: cartID, Writes: f.writes(), ParkedLen: len(rec.Parked), Unpark: n}
		out := Released{Applied: n, StillParked: len(rec.Parked) - n, Version: f.version(slices.Index(gens.Writes, gens.Current))}
		if failErr != nil {
			h := rec.Parked[n]
			h.Error, h.Attempts, h.LastAttemptAt = failErr.Error(), h.Attempts+1, now
			change.Head, out.Error = &h, h.Error
		}
		res, err := p.store.Save(ctx, gens, []Change{change})
		if err != nil {
			return Released{}, err
		}
		switch err := res[0].Err; {
		case err == nil:
			p.parkedChanged()
			p.logger.InfoContext(ctx, "documents: released parked events", "cart", cartID, "skip", skip,
				"applied", out.Applied, "still_parked", out.StillParked, "err", out.Error)
			return out, nil
		case (errors.Is(err, ErrConflict) || errors.Is(err, ErrStaleGenerations)) && attempt < maxConflicts:
			stale = errors.Is(err, ErrStaleGenerations)
		default:
			return Released{}, err
		}
	}
}

// RebuildCart replaces one cart's documents (and their histories and the
// customer's open-cart index) in every generation written with the fold of
// its events in the event log, in one atomic step per attempt. It stops
// where the cart has parked events, and parks an event it cannot apply (and
// the later ones) instead of retrying it. It returns the number of events
// read.
//
// The replacement is unconditional, so it also mends a document that
// cannot be read at all; a live projector that stored a later version
// between the read of the event log and the write is caught by reading the
// log's head again afterwards, and the cart is replaced once more.
func (p *Projector) RebuildCart(ctx context.Context, cartID string) (int, error) {
	defer p.cache.drop(cartID)
	stale := false
	for attempt := 1; ; attempt++ {
		gens, err := p.generations(ctx, stale || attempt == 1)
		if err != nil {
			return 0, err
		}
		recs, err := p.store.Load(ctx, gens, []string{cartID})
		if err != nil {
			return 0, err
		}
		rec := recs[cartID]
		envs, err := p.log.ReadStream(ctx, cartID, 0, 0)
		if err != nil {
			return 0, err
		}
		if len(envs) == 0 {
			return 0, fmt.Errorf("cart %s: %w", cartID, ErrUnknownCart)
		}
		for i, e := range envs {
			if e.Version != i+1 {
				return 0, fmt.Errorf("postgres: cart %s: version %d at %d: %w", cartID, e.Version, i+1, engine.ErrGapOpen)
			}
		}
		skipped := SkippedVersions(rec.Docs)
		f := &fold{
			cartID: cartID, apply: p.cfg.Applier, docs: make([]Doc, len(gens.Writes)),
			cur: make([]int, len(gens.Writes)), states: make([]cart.State, len(gens.Writes)),
			history: make([][]readmodel.HistoryEntry, len(gens.Writes)), replace: make([]bool, len(gens.Writes)), skipped: skipped,
		}
		stop, top := len(envs), 0
		if len(rec.Parked) > 0 {
			top = rec.Parked[len(rec.Parked)-1].Event.Version
			stop = rec.Parked[0].Event.Version - 1
		}
		now := time.Now().UTC()
		change := Change{CartID: cartID, ParkedLen: len(rec.Parked)}
		for i, e := range envs[:min(stop, len(envs))] {
			if _, err := f.step(e); err != nil {
				// Nothing will make it apply by retrying: park it now.
				for k, q := range envs[i:] {
					pe := Parked{Event: q, Error: err.Error(), Attempts: 1, FirstParkedAt: now, LastAttemptAt: now}
					if k > 0 {
						pe.Error = waitingBehind(e.Version)
					}
					change.Park = append(change.Park, pe)
				}
				break
			}
		}
		if len(rec.Parked) > 0 {
			for _, q := range envs {
				if q.Version > top {
					change.Park = append(change.Park, Parked{Event: q, Error: waitingBehind(rec.Parked[0].Event.Version), Attempts: 1, FirstParkedAt: now, LastAttemptAt: now})
				}
			}
		}
		if f.low() > 0 {
			change.Writes = f.writes()
			for i := range change.Writes {
				change.Writes[i].Changed, change.Writes[i].ReplaceHistory, change.Writes[i].Force = true, true, true
			}
		}
		res, err := p.store.Save(ctx, gens, []Change{change})
		if err != nil {
			return 0, err
		}
		switch err := res[0].Err; {
		case err == nil:
		case (errors.Is(err, ErrConflict) || errors.Is(err, ErrStaleGenerations)) && attempt < maxConflicts:
			stale = errors.Is(err, ErrStaleGenerations)
			continue
		default:
			return 0, err
		}
		if len(change.Park) > 0 {
			p.parkedChanged()
		}
		later, err := p.log.ReadStream(ctx, cartID, len(envs), 0)
		if err != nil {
			return 0, err
		}
		if len(later) == 0 {
			return len(envs), nil
		}
		if attempt >= maxConflicts {
			return 0, fmt.Errorf("cart %s: %d more events arrived while it was replaced %d times: %w", cartID, len(later), attempt, ErrConflict)
		}
	}
}
