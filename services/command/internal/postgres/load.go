package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/cart-cqrs/cart/pkg/cart"
	"github.com/cart-cqrs/cart/pkg/eventlog"
)

// SnapshotSchemaVersion is the shape of the cart.State JSON stored in
// snapshots. Bump it when cart.State changes incompatibly: snapshots of
// another version are ignored (the stream is replayed instead) and replaced
// by the next one taken.
const SnapshotSchemaVersion = 1

// Load returns a cart's current state: its latest usable snapshot folded with
// the events recorded after it. A cart id that is not a UUID, or a cart with
// no events, is cart.ErrNotFound.
func (r *Repository) Load(ctx context.Context, cartID string) (cart.State, error) {
	id, ok := canonicalID(cartID)
	if !ok {
		return cart.State{}, cart.ErrNotFound
	}
	s, err := r.snapshot(ctx, id)
	if err != nil {
		return cart.State{}, err
	}
	evs, err := eventlog.ReadStream(ctx, r.pool, id, s.Version, 0)
	if err != nil {
		return cart.State{}, fmt.Errorf("postgres: load cart %s: %w", id, err)
	}
	if s.Version == 0 && len(evs) == 0 {
		return cart.State{}, cart.ErrNotFound
	}
	for _, e := range evs {
		rec, err := e.Recorded()
		if err != nil {
			return cart.State{}, fmt.Errorf("postgres: load cart %s: %w", id, err)
		}
		s = cart.Evolve(s, rec)
	}
	return s, nil
}

// snapshot returns the cart's stored snapshot, or the zero State when there is
// none usable. Snapshots are a cache: one written with another schema
// version, or that does not decode, is skipped and the stream replayed.
func (r *Repository) snapshot(ctx context.Context, id string) (cart.State, error) {
	var (
		version int
		data    []byte
	)
	err := r.pool.QueryRow(ctx,
		`SELECT version, state FROM snapshots WHERE stream_id = $1 AND schema_version = $2`,
		id, SnapshotSchemaVersion,
	).Scan(&version, &data)
	if errors.Is(err, pgx.ErrNoRows) {
		return cart.State{}, nil
	}
	if err != nil {
		return cart.State{}, fmt.Errorf("postgres: load snapshot of cart %s: %w", id, err)
	}
	var s cart.State
	if json.Unmarshal(data, &s) != nil || s.Version != version || s.CartID != id {
		return cart.State{}, nil
	}
	return s, nil
}

// canonicalID accepts only the canonical textual form of a UUID (what the
// service hands out) and returns it in lower case, the form PostgreSQL
// returns, so that ids compare equal everywhere.
func canonicalID(s string) (string, bool) {
	if len(s) != 36 {
		return "", false
	}
	u, err := uuid.Parse(s)
	if err != nil {
		return "", false
	}
	return u.String(), true
}
