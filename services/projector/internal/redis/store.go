// Package redis stores the projector's cart documents in Redis: one hash per
// cart (version and JSON document, as the query service reads them), the
// cart's history list, and the customer → open cart index, all written by one
// Lua script per cart that also publishes the new version for readers
// waiting to read their own writes.
package redis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	goredis "github.com/redis/go-redis/v9"

	"github.com/cart-cqrs/cart/pkg/cart"
	"github.com/cart-cqrs/cart/pkg/readmodel"
	"github.com/cart-cqrs/cart/services/projector/internal/projector"
)

// Store reads and writes one generation of the cart documents.
type Store struct {
	client goredis.UniversalClient
	keys   readmodel.Keys
}

var _ projector.Store = (*Store)(nil)

// New returns a store writing the keys of keys' prefix and generation.
func New(client goredis.UniversalClient, keys readmodel.Keys) *Store {
	return &Store{client: client, keys: keys}
}

// Load reads the documents of the given carts in one round trip.
func (s *Store) Load(ctx context.Context, cartIDs []string) (map[string]projector.Doc, error) {
	pipe := s.client.Pipeline()
	cmds := make([]*goredis.SliceCmd, len(cartIDs))
	lens := make([]*goredis.IntCmd, len(cartIDs))
	for i, id := range cartIDs {
		cmds[i] = pipe.HMGet(ctx, s.keys.Cart(id), readmodel.FieldVersion, readmodel.FieldDoc)
		lens[i] = pipe.LLen(ctx, s.keys.History(id))
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("redis: load %d carts: %w", len(cartIDs), err)
	}
	docs := make(map[string]projector.Doc, len(cartIDs))
	for i, id := range cartIDs {
		vals := cmds[i].Val()
		version, _ := vals[0].(string)
		raw, _ := vals[1].(string)
		historyLen := int(lens[i].Val())
		if version == "" && raw == "" {
			if historyLen > 0 {
				// A history without its document: the write replaces it.
				docs[id] = projector.Doc{HistoryLen: historyLen}
			}
			continue
		}
		v, err := strconv.Atoi(version)
		if err != nil {
			return nil, fmt.Errorf("redis: cart %s: version %q: %w", id, version, err)
		}
		var doc readmodel.Cart
		if err := json.Unmarshal([]byte(raw), &doc); err != nil {
			return nil, fmt.Errorf("redis: cart %s: document: %w", id, err)
		}
		docs[id] = projector.Doc{Version: v, State: doc.State(), HistoryLen: historyLen}
	}
	return docs, nil
}

// Save runs the save script for every write in one pipeline.
func (s *Store) Save(ctx context.Context, writes []projector.Write) ([]error, error) {
	if len(writes) == 0 {
		return nil, nil
	}
	args := make([][]any, len(writes))
	keys := make([][]string, len(writes))
	for i, w := range writes {
		var err error
		if keys[i], args[i], err = s.scriptCall(w); err != nil {
			return nil, err
		}
	}
	results, err := s.run(ctx, keys, args)
	if err != nil && goredis.HasErrorPrefix(err, "NOSCRIPT") {
		// Redis restarted or its script cache was flushed.
		if lerr := save.Load(ctx, s.client).Err(); lerr != nil {
			return nil, fmt.Errorf("redis: load save script: %w", lerr)
		}
		results, err = s.run(ctx, keys, args)
	}
	return results, err
}

func (s *Store) run(ctx context.Context, keys [][]string, args [][]any) ([]error, error) {
	pipe := s.client.Pipeline()
	cmds := make([]*goredis.Cmd, len(keys))
	for i := range keys {
		cmds[i] = save.EvalSha(ctx, pipe, keys[i], args[i]...)
	}
	// Exec's error is the first failed command's; each is looked at below.
	_, _ = pipe.Exec(ctx)
	results := make([]error, len(cmds))
	for i, cmd := range cmds {
		res, err := cmd.Text()
		switch {
		case err != nil && goredis.HasErrorPrefix(err, "NOSCRIPT"):
			return nil, err
		case err != nil && isConnError(err):
			return nil, fmt.Errorf("redis: save %d carts: %w", len(cmds), err)
		case err != nil:
			results[i] = fmt.Errorf("redis: save cart %s: %w", keys[i][0], err)
		case res == "conflict":
			results[i] = projector.ErrConflict
		case res != "ok":
			results[i] = fmt.Errorf("redis: save cart %s: unexpected reply %q", keys[i][0], res)
		}
	}
	return results, nil
}

func (s *Store) scriptCall(w projector.Write) ([]string, []any, error) {
	st := w.State
	doc := ""
	if w.Changed {
		b, err := json.Marshal(readmodel.FromState(st))
		if err != nil {
			return nil, nil, fmt.Errorf("redis: encode cart %s: %w", w.CartID, err)
		}
		doc = string(b)
	}
	status := string(st.Status)
	if st.CustomerID == "" || (st.Status != cart.StatusOpen && st.Status != cart.StatusCheckedOut) {
		status = "" // no customer to index
	}
	replace := "0"
	if w.ReplaceHistory {
		replace = "1"
	}
	open := s.keys.OpenCart(st.CustomerID)
	keys := []string{s.keys.Cart(w.CartID), open, latestCart(open), s.keys.History(w.CartID)}
	args := make([]any, firstEntryArg, firstEntryArg+len(w.History))
	copy(args, []any{w.From, st.Version, doc, w.CartID, status, st.OpenedAt.UnixMicro(), st.CustomerID,
		w.HistoryLen, replace, s.keys.Updates()})
	for _, e := range w.History {
		b, err := json.Marshal(readmodel.NewHistoryEntry(e))
		if err != nil {
			return nil, nil, fmt.Errorf("redis: encode cart %s history v%d: %w", w.CartID, e.Version, err)
		}
		args = append(args, string(b))
	}
	return keys, args, nil
}

// latestCart is the key next to a customer's open-cart index that remembers
// the newest cart the projector has seen for the customer. It shares the
// index's hash tag, so the script may touch both in a cluster too.
func latestCart(openCartKey string) string { return openCartKey + ":latest" }

// isConnError tells a broken connection (nothing was done) from an error
// of one command.
func isConnError(err error) bool {
	var rerr goredis.Error
	return !errors.As(err, &rerr)
}
