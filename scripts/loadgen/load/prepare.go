package load

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"
)

// prepareWorkers bounds the concurrency of the preparation.
const prepareWorkers = 16

// prepare gives every customer of a read-only run an open cart to read: the
// synthetic ones, or real carts opened through the command service with
// SetupLines lines each and visible on the query side before it returns.
func prepare(ctx context.Context, cfg Config, api *API, shoppers []*Shopper) error {
	if cfg.SyntheticCarts {
		for i, s := range shoppers {
			s.CartID, s.Version = SyntheticCartID(i), 4
		}
		return nil
	}
	jobs := make(chan *Shopper)
	errs := make([]error, prepareWorkers)
	var wg sync.WaitGroup
	for w := range prepareWorkers {
		wg.Go(func() {
			for s := range jobs {
				if errs[w] == nil {
					errs[w] = prepareCart(ctx, api, s, cfg.Products, cfg.SetupLines)
				}
			}
		})
	}
	for _, s := range shoppers {
		select {
		case jobs <- s:
		case <-ctx.Done():
		}
	}
	close(jobs)
	wg.Wait()
	if err := errors.Join(append(errs, ctx.Err())...); err != nil {
		return fmt.Errorf("load: prepare carts: %w", err)
	}
	return nil
}

// prepareCart opens the customer's cart, adds lines lines (the first product
// twice, the others once, like a synthetic cart) and waits until the query
// side serves that version. A customer that already has an open cart — an
// earlier run prepared it — keeps it as it is, so that runs can share their
// customers and prepare only once.
func prepareCart(ctx context.Context, api *API, s *Shopper, products []string, lines int) error {
	acts := []Action{{Op: OpOpen}}
	for i := range min(lines, len(products)) {
		acts = append(acts, Action{Op: OpAdd, ProductID: products[i], Quantity: max(1, 2-i)})
	}
	for _, act := range acts {
		reply, err := api.Command(ctx, s, act)
		if err != nil {
			return fmt.Errorf("%s for %s: %w", act.Op, s.ID, err)
		}
		if !reply.OK() {
			return fmt.Errorf("%s for %s: %s", act.Op, s.ID, reply.Reason())
		}
		s.Applied(act, reply.CartID, reply.Version)
		if act.Op == OpOpen && reply.Status != http.StatusCreated {
			break // prepared before
		}
	}
	// The query service waits up to its limit per request; a read model
	// that is behind for longer is worth a few more tries, not a failure.
	for range 10 {
		reply, err := api.Read(ctx, s.Token, s.CartID, s.Version, false)
		switch {
		case err != nil:
			return fmt.Errorf("read back %s: %w", s.CartID, err)
		case reply.OK():
			return nil
		case reply.Status != http.StatusServiceUnavailable:
			return fmt.Errorf("read back %s: %s", s.CartID, reply.Reason())
		}
		select {
		case <-time.After(100 * time.Millisecond):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return fmt.Errorf("read back %s: version %d never became visible", s.CartID, s.Version)
}
