package postgres

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"

	"github.com/cart-cqrs/cart/pkg/cart"
	"github.com/cart-cqrs/cart/pkg/envelope"
	"github.com/cart-cqrs/cart/pkg/problem"
	"github.com/cart-cqrs/cart/services/command/internal/idempotency"
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
	resp, err := r.update(ctx, nil, cartID, by, md, decide)
	return resp.Version, err
}

// UpdateIdempotent is Update under an idempotency key. The first request
// with the key runs the command and stores req.Respond's response with the
// events, in the same transaction; a no-op stores it alone. A later request
// with the key gets that response back (Replayed) and runs nothing — or, when
// it is not the same request, a 422 problem "idempotency-key-reused". A
// refused command stores nothing: its retry is decided again. An expired key
// is no key.
func (r *Repository) UpdateIdempotent(ctx context.Context, req idempotency.Request, cartID string, by cart.Actor,
	md envelope.Metadata, decide func(cart.State) ([]cart.Event, error)) (idempotency.Response, error) {
	return r.update(ctx, &req, cartID, by, md, decide)
}

func (r *Repository) update(ctx context.Context, req *idempotency.Request, cartID string, by cart.Actor, md envelope.Metadata,
	decide func(cart.State) ([]cart.Event, error)) (idempotency.Response, error) {
	for attempt, keyRaces := 0, 0; ; {
		resp, err := r.updateOnce(ctx, req, cartID, by, md, decide)
		switch {
		case err == nil:
			return resp, nil
		case errors.Is(err, errKeyTaken) && keyRaces < maxKeyRaces:
			keyRaces++ // the next read of the key answers
			continue
		case !errors.Is(err, errConflict):
			return idempotency.Response{}, err
		}
		if attempt >= r.maxRetries {
			return idempotency.Response{}, errConcurrentModification()
		}
		if err := sleep(ctx, backoff(attempt)); err != nil {
			return idempotency.Response{}, err
		}
		attempt++
	}
}

// updateOnce is one attempt of update: load, decide, append.
func (r *Repository) updateOnce(ctx context.Context, req *idempotency.Request, cartID string, by cart.Actor, md envelope.Metadata,
	decide func(cart.State) ([]cart.Event, error)) (idempotency.Response, error) {
	s, err := r.Load(ctx, cartID)
	if err != nil {
		return idempotency.Response{}, err
	}
	// Before anything else can answer — the key replay included — a cart the
	// caller may not see is not found, exactly like one that does not exist.
	if !s.VisibleTo(by) {
		return idempotency.Response{}, cart.ErrNotFound
	}
	// The key is read after the load, not before: if a concurrent request
	// with the same key committed before the load saw its events, this read
	// sees its key. Read before, a commit in between would leave us deciding
	// on the changed cart — and refusing, say, the checkout the other request
	// just did — instead of replaying its response.
	if resp, found, err := r.replay(ctx, req); err != nil || found {
		return resp, err
	}
	evs, err := decide(s)
	if err != nil {
		return idempotency.Response{}, err
	}
	version := s.Version + len(evs)
	key, err := keyFor(req, s.CartID, version, false)
	if err != nil {
		return idempotency.Response{}, err
	}
	if len(evs) == 0 {
		err = r.storeKey(ctx, key)
	} else {
		_, err = r.write(ctx, headUpdate, s, s.CustomerID, evs, md, key)
	}
	if err != nil {
		return idempotency.Response{}, err
	}
	return key.response(s.CartID, version), nil
}

// CodeConcurrentModification is the problem code of a command that lost the
// race to other writers on every attempt.
const CodeConcurrentModification = "concurrent-modification"

// errConcurrentModification is what a command gets when it lost the race to
// other writers on every attempt.
func errConcurrentModification() error {
	return problem.New(problem.Conflict, CodeConcurrentModification,
		"the cart was changed by another request at the same time; retry")
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
