package analytics

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/cart-cqrs/cart/pkg/envelope"
)

// cartEvents are events of one cart to bring a generation up to: in
// version order, perhaps with duplicates, perhaps after a gap.
type cartEvents struct {
	cartID string
	events []envelope.Envelope
}

// applied is what bringing one cart up to date came to.
type applied struct {
	// err is set when the cart could not be brought up to date (its gap
	// could not be read, or it kept conflicting): try it again later.
	err error
	// from is the version the generation held; res is what the fold did
	// from there (gap events included).
	from int
	res  Result
}

// maxAttempts bounds how often one apply reloads carts whose write
// conflicted with another writer's.
const maxAttempts = 8

var errConflicts = errors.New("analytics: cart kept changing concurrently")

// apply brings each cart of generation gen up to its events: it reads the
// carts' states, reads what they lack before the events from the event log,
// folds, and writes the new states with the products' deltas — each chunk of
// carts only if they are still at the versions read; the carts of a chunk
// that conflicted are read and folded again. It is the one way anything is
// written into a generation: live, repairing a gap, or building from
// history.
//
// An error is returned when nothing could be tried (Redis is down) or the
// generation is gone (ErrGenerationGone); otherwise each cart's outcome.
func apply(ctx context.Context, store *Store, log Events, gen int, carts []cartEvents) ([]applied, error) {
	out := make([]applied, len(carts))
	todo := make([]int, len(carts))
	for i := range todo {
		todo[i] = i
	}
	for attempt := 1; len(todo) > 0; attempt++ {
		if attempt > maxAttempts {
			for _, i := range todo {
				out[i].err = errConflicts
			}
			break
		}
		ids := make([]string, len(todo))
		for k, i := range todo {
			ids[k] = carts[i].cartID
		}
		states, err := store.loadStates(ctx, gen, ids)
		if err != nil {
			return nil, err
		}
		// What the events do not reach back to is read from the log, for
		// every cart at once.
		var spans []span
		for k, i := range todo {
			spans = appendGaps(spans, carts[i], states[k].Version)
		}
		fromLog, logErr := readSpans(ctx, log, spans)
		var writes []cartWrite
		var idx []int
		for k, i := range todo {
			c, st := carts[i], states[k]
			evs := c.events
			if extra := fromLog[c.cartID]; len(extra) > 0 {
				evs = mergeEvents(evs, extra)
			}
			next, delta, res, err := Fold(st, evs)
			if err != nil {
				if logErr != nil {
					err = errors.Join(err, logErr)
				}
				out[i] = applied{err: fmt.Errorf("analytics: cart %s: %w", c.cartID, err), from: st.Version}
				continue
			}
			out[i] = applied{from: st.Version, res: res}
			if res.Folded > 0 {
				writes = append(writes, cartWrite{cartID: c.cartID, from: st.Version, state: next, delta: delta})
				idx = append(idx, i)
			}
		}
		outcomes, err := store.write(ctx, gen, writes)
		if err != nil {
			return nil, err
		}
		todo = todo[:0:0]
		for w, o := range outcomes {
			if o == conflicted {
				todo = append(todo, idx[w])
			}
		}
	}
	return out, nil
}

// appendGaps adds the versions the generation (at version have) lacks
// before, or between, a cart's events.
func appendGaps(spans []span, c cartEvents, have int) []span {
	next := have + 1
	for _, e := range c.events {
		if e.Version < next {
			continue
		}
		if e.Version > next {
			spans = append(spans, span{cartID: c.cartID, after: next - 1, upTo: e.Version - 1})
		}
		next = e.Version + 1
	}
	return spans
}

// mergeEvents merges two version-ordered lists of one cart's events.
func mergeEvents(a, b []envelope.Envelope) []envelope.Envelope {
	out := make([]envelope.Envelope, 0, len(a)+len(b))
	out = append(append(out, a...), b...)
	slices.SortStableFunc(out, func(x, y envelope.Envelope) int { return x.Version - y.Version })
	return slices.CompactFunc(out, func(x, y envelope.Envelope) bool { return x.Version == y.Version })
}
