package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/cart-cqrs/cart/pkg/backoff"
	"github.com/cart-cqrs/cart/pkg/cart"
	"github.com/cart-cqrs/cart/pkg/envelope"
	"github.com/cart-cqrs/cart/services/command/internal/idempotency"
)

// Backoff between conflict retries: jittered, growing from about base to
// about max, so that writers that collided do not collide again in lockstep.
const (
	backoffBase = 2 * time.Millisecond
	backoffMax  = 50 * time.Millisecond
)

// Update loads the cart, asks decide for the events a command produces and
// appends them with optimistic concurrency. When another writer appended in
// between, it reloads and decides again, up to the configured number of
// retries, then gives up with ErrConcurrentModification.
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
// with the key runs the command and stores its response with the
// events, in the same transaction; a no-op stores it alone. A later request
// with the key gets that response back (Replayed) and runs nothing — or, when
// it is not the same request, an *idempotency.KeyReusedError. A
// refused command stores nothing: its retry is decided again. An expired key
// is no key.
//
// The key is not read before the command: storing it is part of the
// command's transaction, and a key stored already fails that transaction
// (nothing of it is written), after which the stored response is read and
// answers. So the first request pays no extra round trip, and a retry one.
func (r *Repository) UpdateIdempotent(ctx context.Context, req idempotency.Request, cartID string, by cart.Actor,
	md envelope.Metadata, decide func(cart.State) ([]cart.Event, error)) (idempotency.Response, error) {
	return r.update(ctx, &req, cartID, by, md, decide)
}

func (r *Repository) update(ctx context.Context, req *idempotency.Request, cartID string, by cart.Actor, md envelope.Metadata,
	decide func(cart.State) ([]cart.Event, error)) (idempotency.Response, error) {
	id, ok := cart.CanonicalID(cartID)
	if !ok {
		return idempotency.Response{}, cart.ErrNotFound
	}
	checkKey, refreshed := false, false
	var wait *backoff.Backoff // made at the first lost race: most commands never lose one
	for attempt, keyRaces := 0, 0; ; {
		resp, cached, err := r.updateOnce(ctx, req, id, by, md, decide, checkKey)
		switch {
		case err == nil:
			return resp, nil
		case errors.Is(err, errKeyTaken) && keyRaces < maxKeyRaces:
			keyRaces++ // the key's stored response answers
			checkKey = true
			continue
		case !errors.Is(err, errConflict):
			return idempotency.Response{}, err
		case (cached || errors.Is(err, errCatalogChanged)) && !refreshed:
			// Decided on a cached state or product that was out of date,
			// not a race: again at once, on fresh data.
			refreshed = true
			continue
		}
		if attempt >= r.maxRetries {
			return idempotency.Response{}, ErrConcurrentModification
		}
		if wait == nil {
			wait = backoff.New(backoffBase, backoffMax)
		}
		if !wait.Wait(ctx) {
			return idempotency.Response{}, context.Cause(ctx)
		}
		attempt++
	}
}

// updateOnce is one attempt of update: load (or take the cached state),
// decide, append. cached reports whether the decision was made on a cached
// state. checkKey makes it answer from the idempotency key's stored response
// when there is one.
//
// Only an append is checked at commit, by the compare-and-set on the cart's
// version; a refusal or a no-op decided on a cached state is not, so either
// is decided again on a fresh load before it is answered.
func (r *Repository) updateOnce(ctx context.Context, req *idempotency.Request, id string, by cart.Actor, md envelope.Metadata,
	decide func(cart.State) ([]cart.Event, error), checkKey bool) (_ idempotency.Response, cached bool, _ error) {
	s, cached := r.states.get(id)
	var (
		evs []cart.Event
		err error
	)
	for {
		if !cached {
			if s, err = r.Load(ctx, id); err != nil {
				return idempotency.Response{}, false, err
			}
			r.states.put(s)
		}
		// Before anything else can answer — the key replay included — a cart
		// the caller may not see is not found, exactly like one that does not
		// exist. A cart never changes owner, so a cached state tells.
		if !s.VisibleTo(by) {
			return idempotency.Response{}, cached, cart.ErrNotFound
		}
		if checkKey {
			if resp, found, err := r.replay(ctx, req); err != nil || found {
				return resp, cached, err
			}
		}
		evs, err = decide(s)
		if !cached || (err == nil && len(evs) > 0) {
			break
		}
		cached = false
	}
	if err != nil {
		// A retry of a command that went through meets the cart it left
		// behind, which may refuse it (a second checkout): the first
		// response answers instead.
		if req != nil && !checkKey {
			if resp, found, rerr := r.replay(ctx, req); rerr != nil || found {
				return resp, cached, rerr
			}
		}
		return idempotency.Response{}, cached, err
	}
	version := s.Version + len(evs)
	key, err := keyFor(req, s.CartID, version, false)
	if err != nil {
		return idempotency.Response{}, cached, err
	}
	next := s
	if len(evs) == 0 {
		err = r.storeKey(ctx, key)
	} else {
		next, err = r.write(ctx, headUpdate, s, s.CustomerID, evs, md, key)
	}
	if err != nil {
		// Lost a race, or the outcome is unknown: the next command loads.
		r.states.drop(id)
		if errors.Is(err, errCatalogChanged) {
			r.catalog.drop(addedProducts(evs)...)
		}
		return idempotency.Response{}, cached, err
	}
	r.states.put(next)
	return key.response(s.CartID, version), cached, nil
}

// ErrConcurrentModification is what a command gets when it lost the race to
// other writers on every attempt: the client may retry.
var ErrConcurrentModification = errors.New("postgres: cart changed by concurrent writers on every attempt")
