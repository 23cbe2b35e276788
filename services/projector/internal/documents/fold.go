package documents

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/cart-cqrs/cart/pkg/cart"
	"github.com/cart-cqrs/cart/pkg/envelope"
	"github.com/cart-cqrs/cart/pkg/readmodel"
	"github.com/cart-cqrs/cart/services/projector/internal/engine"
)

// fold brings one cart's documents in every written generation forward,
// event by event. The generations may be at different versions (a rebuild
// has not reached the cart yet): an event is applied to those behind it,
// and to all of them or none.
type fold struct {
	cartID  string
	apply   Applier
	docs    []Doc
	cur     []int
	states  []cart.State
	history [][]readmodel.HistoryEntry
	replace []bool
	skipped []int
}

// errCorrupt means a stored document cannot be read.
var errCorrupt = errors.New("cart document unreadable; replace it with `projector rebuild -cart`")

// newFold starts from the stored documents. A history out of step with its
// document is read again from the event log, to be replaced.
func (p *Projector) newFold(ctx context.Context, cartID string, docs []Doc) (*fold, error) {
	f := &fold{
		cartID: cartID, apply: p.cfg.Applier, docs: docs,
		cur: make([]int, len(docs)), states: make([]cart.State, len(docs)),
		history: make([][]readmodel.HistoryEntry, len(docs)), replace: make([]bool, len(docs)),
	}
	for i, d := range docs {
		if d.Corrupt != nil {
			return nil, fmt.Errorf("cart %s: %w: %w", cartID, errCorrupt, d.Corrupt)
		}
		f.cur[i], f.states[i] = d.Version, d.State
	}
	f.skipped = SkippedVersions(docs)
	for i, d := range docs {
		if d.HistoryLen == d.Version {
			continue
		}
		f.replace[i] = true
		if d.Version > 0 {
			envs, err := p.readLog(ctx, cartID, 0, d.Version)
			if err != nil {
				return nil, fmt.Errorf("history of cart %s not rebuilt: %w", cartID, err)
			}
			f.history[i] = historyEntries(envs, f.skipped)
		}
	}
	return f, nil
}

// low is the version of the generation furthest behind.
func (f *fold) low() int { return slices.Min(f.cur) }

// version is the version of generation i.
func (f *fold) version(i int) int { return f.cur[i] }

// skip marks a version as skipped: step passes over it.
func (f *fold) skip(version int) {
	if !slices.Contains(f.skipped, version) {
		f.skipped = append(f.skipped, version)
		slices.Sort(f.skipped)
	}
}

// step applies e to every generation at e.Version-1, or to none when it
// cannot be applied. It reports whether any generation took it.
func (f *fold) step(e envelope.Envelope) (bool, error) {
	skipped := slices.Contains(f.skipped, e.Version)
	next := make([]cart.State, len(f.states))
	entries := make([]readmodel.HistoryEntry, len(f.states))
	took := false
	for i, s := range f.states {
		switch {
		case f.cur[i] >= e.Version:
			continue
		case f.cur[i] != e.Version-1:
			return false, fmt.Errorf("cart %s: version %d on version %d: %w", f.cartID, e.Version, f.cur[i], engine.ErrGapOpen)
		}
		ns, h, err := Step(f.apply, s, e, skipped)
		if err != nil {
			return false, err
		}
		next[i], entries[i], took = ns, h, true
	}
	for i := range f.states {
		if f.cur[i] < e.Version {
			f.states[i], f.cur[i] = next[i], e.Version
			f.history[i] = append(f.history[i], entries[i])
		}
	}
	return took, nil
}

// writes are the writes that store the fold, one per generation.
func (f *fold) writes() []Write {
	out := make([]Write, len(f.docs))
	for i, d := range f.docs {
		out[i] = Write{
			CartID: f.cartID, From: d.Version, State: f.states[i], Changed: f.cur[i] != d.Version,
			History: f.history[i], HistoryLen: d.HistoryLen, ReplaceHistory: f.replace[i], Skipped: f.skipped,
			Stamp: d.Stamp,
		}
	}
	return out
}

// readLog reads a cart's events after..upTo (upTo > after) from PostgreSQL,
// the source of truth, and insists they are all there.
func (p *Projector) readLog(ctx context.Context, cartID string, after, upTo int) ([]envelope.Envelope, error) {
	return engine.ReadGap(ctx, p.log, cartID, after, upTo)
}
