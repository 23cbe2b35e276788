package rebuild

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/cart-cqrs/cart/services/projector/internal/documents"
	"github.com/cart-cqrs/cart/services/projector/internal/engine"
)

// Generations are the cart documents' generations as the engine's builds
// see them (engine.Generations). The store records the readers' current
// generation and the generations written (documents.Generations): a
// generation written beside the current one is being built when it is
// newer, and drained when it is older; a generation with keys that is
// neither is what a build that died left behind, to be dropped.
type Generations struct{ Store }

var _ engine.Generations = Generations{}

// Read implements engine.Generations.
func (g Generations) Read(ctx context.Context) (engine.Record, error) {
	gens, err := g.Generations(ctx)
	if err != nil {
		return engine.Record{}, err
	}
	rec := engine.Record{Current: gens.Current}
	for _, w := range gens.Writes {
		switch {
		case w > gens.Current:
			rec.Building = w
		case w < gens.Current:
			rec.Previous = w
		}
	}
	stored, err := g.StoredGenerations(ctx)
	if err != nil {
		return engine.Record{}, err
	}
	for _, s := range stored {
		if s != gens.Current && !gens.Has(s) {
			rec.Dropping = s
			break
		}
	}
	return rec, nil
}

// set changes the record with a compare-and-set on the one just read.
func (g Generations) set(ctx context.Context, change func(gens documents.Generations) (current int, writes []int, err error)) error {
	gens, err := g.Generations(ctx)
	if err != nil {
		return err
	}
	current, writes, err := change(gens)
	if err != nil {
		return err
	}
	if _, err := g.SetGenerations(ctx, gens, current, writes); err != nil {
		if errors.Is(err, documents.ErrStaleGenerations) {
			return fmt.Errorf("%w: %w", engine.ErrStaleRecord, err)
		}
		return err
	}
	return nil
}

// Open implements engine.Generations: the next number after every
// generation that has keys, written beside the current one from now on.
func (g Generations) Open(ctx context.Context, _ time.Time) (int, error) {
	stored, err := g.StoredGenerations(ctx)
	if err != nil {
		return 0, err
	}
	next := 0
	err = g.set(ctx, func(gens documents.Generations) (int, []int, error) {
		if len(gens.Writes) != 1 {
			return 0, nil, fmt.Errorf("rebuild: open a generation while %v are written: %w", gens.Writes, engine.ErrStaleRecord)
		}
		next = max(gens.Current, slices.Max(append(stored, 0))) + 1
		return gens.Current, []int{gens.Current, next}, nil
	})
	return next, err
}

// Built implements engine.Generations: the documents record no build time.
func (g Generations) Built(context.Context, int, time.Time) error { return nil }

// Switch implements engine.Generations.
func (g Generations) Switch(ctx context.Context, gen int) error {
	return g.set(ctx, func(gens documents.Generations) (int, []int, error) {
		if gens.Current == gen || !gens.Has(gen) {
			return 0, nil, fmt.Errorf("rebuild: switch to generation %d: not being built (%v): %w", gen, gens.Writes, engine.ErrStaleRecord)
		}
		return gen, []int{gen, gens.Current}, nil
	})
}

// Unlist implements engine.Generations.
func (g Generations) Unlist(ctx context.Context, _ engine.Listing, gen int) (int, error) {
	err := g.set(ctx, func(gens documents.Generations) (int, []int, error) {
		if gens.Current == gen {
			return 0, nil, fmt.Errorf("rebuild: unlist generation %d: readers use it: %w", gen, engine.ErrStaleRecord)
		}
		return gens.Current, []int{gens.Current}, nil
	})
	if err != nil {
		return 0, err
	}
	return g.DropGeneration(ctx, gen)
}

// Drop implements engine.Generations.
func (g Generations) Drop(ctx context.Context, gen int) (int, error) {
	return g.DropGeneration(ctx, gen)
}

// Serving implements engine.Generations: the documents are filled by the
// live writes from the stream's start, and never built for lack of one.
func (g Generations) Serving(context.Context, int) (bool, error) { return true, nil }
