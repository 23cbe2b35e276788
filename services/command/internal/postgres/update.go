package postgres

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"

	"github.com/cart-cqrs/cart/pkg/cart"
	"github.com/cart-cqrs/cart/pkg/envelope"
	"github.com/cart-cqrs/cart/pkg/problem"
)

// Backoff between conflict retries: jittered, doubling from base up to max.
const (
	backoffBase = 2 * time.Millisecond
	backoffMax  = 50 * time.Millisecond
)

// Update loads the cart, asks decide for the events a command produces and
// appends them with optimistic concurrency. When another writer appended in
// between, it reloads and decides again, up to the configured number of
// retries, then gives up with a 409 problem "concurrent-modification".
//
// decide's error (a refused command) is returned as it is and nothing is
// written; so is nothing when decide returns no events (a no-op), and the
// current version is returned. decide may run several times: it must not have
// side effects.
func (r *Repository) Update(ctx context.Context, cartID string, by cart.Actor, md envelope.Metadata,
	decide func(cart.State) ([]cart.Event, error)) (version int, err error) {
	for attempt := 0; ; attempt++ {
		s, err := r.Load(ctx, cartID)
		if err != nil {
			return 0, err
		}
		evs, err := decide(s)
		if err != nil {
			return 0, err
		}
		if len(evs) == 0 {
			return s.Version, nil
		}
		next, err := r.write(ctx, headUpdate, s, s.CustomerID, evs, md)
		if err == nil {
			return next.Version, nil
		}
		if !errors.Is(err, errConflict) {
			return 0, err
		}
		if attempt >= r.maxRetries {
			return 0, problem.New(problem.Conflict, "concurrent-modification",
				"the cart was changed by another request at the same time; retry")
		}
		if err := sleep(ctx, backoff(attempt)); err != nil {
			return 0, err
		}
	}
}

// backoff is a random duration in [d/2, d) where d doubles each attempt, so
// that writers that collided do not collide again in lockstep.
func backoff(attempt int) time.Duration {
	d := backoffMax
	if attempt < 5 {
		d = min(backoffBase<<attempt, backoffMax)
	}
	return d/2 + rand.N(d/2)
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}
