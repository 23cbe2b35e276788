package postgres

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cart-cqrs/cart/services/command/internal/idempotency"
)

// maxKeyRaces bounds how often one request goes back to read a key that a
// concurrent request stored first. One is enough: PostgreSQL reports the
// unique violation only after the other transaction committed, so the next
// read finds the row; the bound only guards against a pathological clock.
const maxKeyRaces = 3

const (
	// Expired rows are dead keys: the request replaces them.
	deleteExpiredKey = `DELETE FROM idempotency_keys WHERE customer_id = $1 AND key = $2 AND expires_at <= $3`
	insertKey        = `INSERT INTO idempotency_keys
	(customer_id, key, request_hash, method, path, status, response, cart_id, version, created_at, expires_at)
VALUES ($1, $2, $3, $4, $5, $6, $7::json, $8, $9, $10, $11)`
	selectKey = `SELECT request_hash, method, path, status, response::text, cart_id::text, version
FROM idempotency_keys WHERE customer_id = $1 AND key = $2 AND expires_at > $3`
	// SKIP LOCKED: a request replacing an expired key, or another
	// instance's cleanup, is not waited for.
	deleteExpiredKeys = `DELETE FROM idempotency_keys WHERE (customer_id, key) IN (
	SELECT customer_id, key FROM idempotency_keys WHERE expires_at <= $1
	ORDER BY expires_at LIMIT $2 FOR UPDATE SKIP LOCKED)`
)

// keyRow is an idempotency key with the response to store under it.
type keyRow struct {
	req  *idempotency.Request
	resp idempotency.Response
}

// keyFor is the response to store under req's key for a command that left
// the cart at version; nil without a key.
func keyFor(req *idempotency.Request, cartID string, version int, created bool) (*keyRow, error) {
	if req == nil {
		return nil, nil
	}
	resp, err := idempotency.Succeeded(cartID, version, created)
	if err != nil {
		return nil, fmt.Errorf("postgres: idempotency key for cart %s: %w", cartID, err)
	}
	return &keyRow{req: req, resp: resp}, nil
}

// response is what a command answers: the stored response with a key, else
// just the cart and its version.
func (k *keyRow) response(cartID string, version int) idempotency.Response {
	if k == nil {
		return idempotency.Response{CartID: cartID, Version: version}
	}
	return k.resp
}

// lock names the key's row for the group commit; "" without a key.
func (k *keyRow) lock() string {
	if k == nil {
		return ""
	}
	return "key:" + k.req.Caller + "\x00" + k.req.Key
}

// queueKey adds the statements that store k (nothing when k is nil) to b.
func (r *Repository) queueKey(b *pgx.Batch, k *keyRow, now time.Time) {
	if k == nil {
		return
	}
	q := k.req
	b.Queue(deleteExpiredKey, q.Caller, q.Key, now)
	b.Queue(insertKey, q.Caller, q.Key, q.Hash, q.Method, q.Path,
		k.resp.Status, string(k.resp.Body), k.resp.CartID, k.resp.Version, now, now.Add(r.keyTTL))
}

// storeKey stores k on its own, for a command that succeeded without events.
func (r *Repository) storeKey(ctx context.Context, k *keyRow) error {
	if k == nil {
		return nil
	}
	b := &pgx.Batch{}
	r.queueKey(b, k, r.now())
	if err := r.committer.commit(ctx, newUnit(b, k.lock())); err != nil {
		return fmt.Errorf("postgres: store idempotency key for cart %s: %w", k.resp.CartID, err)
	}
	return nil
}

// replay returns the response stored under req's key when the key is live
// (found). The key used for another request — another route, cart or body —
// is an *idempotency.KeyReusedError.
func (r *Repository) replay(ctx context.Context, req *idempotency.Request) (resp idempotency.Response, found bool, err error) {
	if req == nil {
		return idempotency.Response{}, false, nil
	}
	var (
		hash         []byte
		method, path string
		body         string
	)
	err = r.pool.QueryRow(ctx, selectKey, req.Caller, req.Key, r.now()).
		Scan(&hash, &method, &path, &resp.Status, &body, &resp.CartID, &resp.Version)
	if errors.Is(err, pgx.ErrNoRows) {
		return idempotency.Response{}, false, nil
	}
	if err != nil {
		return idempotency.Response{}, false, fmt.Errorf("postgres: idempotency key of %q: %w", req.Caller, err)
	}
	if method != req.Method || path != req.Path || !bytes.Equal(hash, req.Hash) {
		return idempotency.Response{}, false, &idempotency.KeyReusedError{
			Method: method, Path: path, OtherBody: method == req.Method && path == req.Path}
	}
	resp.Body, resp.Replayed = []byte(body), true
	return resp, true, nil
}

// DeleteExpiredKeys deletes the idempotency keys that expired, batch rows per
// statement (each its own short transaction) until none is left, and returns
// how many it deleted. The event log is not touched: a key only remembers a
// response.
func (r *Repository) DeleteExpiredKeys(ctx context.Context, batch int) (int64, error) {
	batch = max(batch, 1)
	var total int64
	for {
		tag, err := r.pool.Exec(ctx, deleteExpiredKeys, r.now(), batch)
		if err != nil {
			return total, fmt.Errorf("postgres: delete expired idempotency keys: %w", err)
		}
		total += tag.RowsAffected()
		if tag.RowsAffected() < int64(batch) {
			return total, nil
		}
	}
}
