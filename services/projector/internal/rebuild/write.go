package rebuild

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cart-cqrs/cart/pkg/cart"
	"github.com/cart-cqrs/cart/services/projector/internal/documents"
)

// The writing half of a fill: the carts folded are handed to writers, each
// cart always to the same one, which store them in order — entries staged
// first, the cart placed when it is done — in chunks of one call each.

// block is a buffer history entries are encoded into: the entries of
// many carts, written at different times; it is used again once they all
// are.
type block struct {
	buf  []byte
	refs atomic.Int32
}

// blockSize is the size of the blocks.
const blockSize = 64 << 10

var blocks = sync.Pool{New: func() any { return &block{buf: make([]byte, 0, blockSize)} }}

func (b *block) release() {
	if b.refs.Add(-1) == 0 && cap(b.buf) == blockSize {
		b.buf = b.buf[:0]
		blocks.Put(b)
	}
}

// Fill implements engine.Filler: it streams the log into generation gen.
// hand hands carts over to the writers: their entries to be staged, or
// the carts to be placed. Carts with nothing new are left out.
func (f *filler) hand(ctx context.Context, carts []*folding, place bool) error {
	lanes := make([][]Merge, len(f.writes))
	for _, c := range carts {
		if len(c.entries) == 0 && (!place || c.staged == 0) {
			continue
		}
		m := Merge{
			CartID: c.id, Base: c.stored, State: c.state, Staged: c.staged, Entries: c.entries,
			Skipped: slices.Clone(c.skipped), Place: place, blocks: c.blocks,
		}
		f.pendingEvents -= len(c.entries)
		c.entries, c.blocks, c.pending = nil, nil, false
		if place {
			m.Index = c.stored == 0 || c.state.Status != c.indexed
			c.stored, c.indexed, c.staged = c.state.Version, c.state.Status, 0
		} else {
			c.staged += len(m.Entries)
		}
		lane := int(c.id[len(c.id)-1]) % len(lanes)
		lanes[lane] = append(lanes[lane], m)
	}
	for i, merges := range lanes {
		if len(merges) == 0 {
			continue
		}
		select {
		case f.writes[i] <- merges:
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	}
	return nil
}

// mergeChunk is how many carts one call of the store carries, and writers
// how many write at once: a cart's merges always go to the same one, in
// order (its entries staged before it is placed).
const (
	mergeChunk = 500
	writers    = 2
)

// writeAll stores the merges handed to one writer, in order.
func (f *filler) writeAll(ctx context.Context, batches <-chan []Merge) error {
	for merges := range batches {
		for chunk := range slices.Chunk(merges, mergeChunk) {
			if err := ctx.Err(); err != nil {
				return err
			}
			start := time.Now()
			err := f.write(ctx, chunk)
			f.writing.Add(int64(time.Since(start)))
			if err != nil {
				return err
			}
		}
	}
	return nil
}

// write stores one chunk; a cart the generation holds out of step with the
// rebuild is read whole and stored whole.
func (f *filler) write(ctx context.Context, merges []Merge) error {
	res, err := f.r.store.WriteMerges(ctx, f.gen, merges)
	if err != nil {
		return err
	}
	for _, m := range merges {
		for _, b := range m.blocks {
			b.release()
		}
	}
	for i, r := range res {
		if r != Reset {
			continue
		}
		if err := f.whole(ctx, merges[i].CartID); err != nil {
			return err
		}
	}
	return nil
}

// whole reads a cart's stream and stores its fold as a whole, stopping
// where it has parked events or an event cannot be applied (the fold of
// the log parks those).
func (f *filler) whole(ctx context.Context, cartID string) error {
	envs, err := f.r.log.ReadStream(ctx, cartID, 0, 0)
	if err != nil {
		return err
	}
	recs, err := f.r.store.Load(ctx, f.gens, []string{cartID})
	if err != nil {
		return err
	}
	rec := recs[cartID]
	skipped := documents.SkippedVersions(rec.Docs)
	apply := f.r.cfg.Applier // not f.apply: its decoder is the reader's
	if apply == nil {
		apply = documents.Evolve
	}
	var (
		s       cart.State
		entries [][]byte
	)
	for i, e := range envs {
		if e.Version != i+1 || (len(rec.Parked) > 0 && e.Version >= rec.Parked[0].Event.Version) {
			break
		}
		next, h, err := documents.Step(apply, s, e, slices.Contains(skipped, e.Version))
		if err != nil {
			break
		}
		b, err := f.r.store.AppendEntry(nil, h)
		if err != nil {
			return fmt.Errorf("rebuild: cart %s v%d history: %w", cartID, e.Version, err)
		}
		s, entries = next, append(entries, b)
	}
	if len(entries) == 0 {
		return nil
	}
	res, err := f.r.store.WriteMerges(ctx, f.gen, []Merge{{CartID: cartID, State: s, Entries: entries, Skipped: skipped, Place: true, Index: true}})
	if err != nil {
		return err
	}
	if res[0] == Reset {
		return fmt.Errorf("rebuild: cart %s: whole write refused", cartID)
	}
	return nil
}
