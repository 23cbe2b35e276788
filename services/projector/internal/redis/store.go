// Package redis stores the projector's read models in Redis: per generation
// one hash per cart (version and JSON document, as the query service reads
// them), the cart's history list and the customer → open cart index; and,
// outside the generations, which generations the projectors write, the
// carts' parked events, and the lock of the rebuild. One Lua script per
// cart applies a change atomically in every generation written.
package redis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	goredis "github.com/redis/go-redis/v9"

	"github.com/cart-cqrs/cart/pkg/cart"
	"github.com/cart-cqrs/cart/pkg/readmodel"
	"github.com/cart-cqrs/cart/services/projector/internal/lease"
	"github.com/cart-cqrs/cart/services/projector/internal/projector"
)

// Store reads and writes the read models under one key prefix.
type Store struct {
	client goredis.UniversalClient
	prefix string
	// Redis is the rebuild lock (Lock, RenewLock, Unlock): one rebuild at
	// a time over all processes.
	lease.Redis
}

var _ projector.Store = (*Store)(nil)

// New returns a store of the keys under prefix.
func New(client goredis.UniversalClient, prefix string) *Store {
	return &Store{client: client, prefix: prefix, Redis: lease.NewRedis(client, prefix+"rebuild:lock", "rebuild lock")}
}

// Keys names the keys of one generation.
func (s *Store) Keys(gen int) readmodel.Keys {
	return readmodel.Keys{Prefix: s.prefix, Generation: gen}
}

// writesKey holds the generations the projectors write, comma-separated,
// the readers' first; absent means the current generation only.
func (s *Store) writesKey() string { return s.prefix + "generation:writes" }

// parkedKey is the list of a cart's parked events, in version order.
func (s *Store) parkedKey(cartID string) string { return s.prefix + "parked:{" + cartID + "}" }

// parkedCartsKey is the set of carts with parked events.
func (s *Store) parkedCartsKey() string { return s.prefix + "parked-carts" }

// parkedCountKey counts the parked events of every cart.
func (s *Store) parkedCountKey() string { return s.prefix + "parked-count" }

// Generations reads the current generation (absent: 1) and the generations
// written (absent: the current one).
func (s *Store) Generations(ctx context.Context) (projector.Generations, error) {
	vals, err := s.client.MGet(ctx, readmodel.CurrentGeneration(s.prefix), s.writesKey()).Result()
	if err != nil {
		return projector.Generations{}, fmt.Errorf("redis: read generations: %w", err)
	}
	rawCur, _ := vals[0].(string)
	rawWrites, _ := vals[1].(string)
	return parseGenerations(rawCur, rawWrites)
}

func parseGenerations(rawCur, rawWrites string) (projector.Generations, error) {
	g := projector.Generations{Current: 1, Token: rawCur + "/" + rawWrites}
	if rawCur != "" {
		n, err := strconv.Atoi(rawCur)
		if err != nil || n < 1 {
			return projector.Generations{}, fmt.Errorf("redis: current generation %q is not a positive integer", rawCur)
		}
		g.Current = n
	}
	if rawWrites == "" {
		g.Writes = []int{g.Current}
		return g, nil
	}
	for part := range strings.SplitSeq(rawWrites, ",") {
		n, err := strconv.Atoi(part)
		if err != nil || n < 1 {
			return projector.Generations{}, fmt.Errorf("redis: generations written %q: not positive integers", rawWrites)
		}
		g.Writes = append(g.Writes, n)
	}
	return g, nil
}

func formatWrites(writes []int) string {
	parts := make([]string, len(writes))
	for i, w := range writes {
		parts[i] = strconv.Itoa(w)
	}
	return strings.Join(parts, ",")
}

// token splits a Generations.Token into what the script compares.
func token(g projector.Generations) (cur, writes string) {
	cur, writes, _ = strings.Cut(g.Token, "/")
	return cur, writes
}

// Load reads the carts' documents in every generation written and their
// parked events, in one round trip. A document that cannot be read is
// returned with Corrupt set, so that one bad cart does not hold up the
// others.
func (s *Store) Load(ctx context.Context, gens projector.Generations, cartIDs []string) (map[string]projector.Record, error) {
	pipe := s.client.Pipeline()
	docs := make([][]*goredis.SliceCmd, len(cartIDs))
	lens := make([][]*goredis.IntCmd, len(cartIDs))
	parked := make([]*goredis.StringSliceCmd, len(cartIDs))
	for i, id := range cartIDs {
		docs[i] = make([]*goredis.SliceCmd, len(gens.Writes))
		lens[i] = make([]*goredis.IntCmd, len(gens.Writes))
		for j, g := range gens.Writes {
			k := s.Keys(g)
			docs[i][j] = pipe.HMGet(ctx, k.Cart(id), readmodel.FieldVersion, readmodel.FieldDoc, readmodel.FieldSkipped)
			lens[i][j] = pipe.LLen(ctx, k.History(id))
		}
		parked[i] = pipe.LRange(ctx, s.parkedKey(id), 0, -1)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("redis: load %d carts: %w", len(cartIDs), err)
	}
	out := make(map[string]projector.Record, len(cartIDs))
	for i, id := range cartIDs {
		rec := projector.Record{Docs: make([]projector.Doc, len(gens.Writes))}
		found := false
		for j := range gens.Writes {
			d, ok := decodeDoc(docs[i][j].Val(), int(lens[i][j].Val()))
			rec.Docs[j], found = d, found || ok
		}
		for _, raw := range parked[i].Val() {
			pe, err := decodeParked(id, raw)
			if err != nil {
				return nil, fmt.Errorf("redis: cart %s: %w", id, err)
			}
			rec.Parked = append(rec.Parked, pe)
		}
		if found || len(rec.Parked) > 0 {
			out[id] = rec
		}
	}
	return out, nil
}

// decodeDoc reads one generation's HMGET (version, doc, skipped) and
// history length; ok is false when the generation has nothing of the cart.
func decodeDoc(vals []any, historyLen int) (projector.Doc, bool) {
	version, _ := vals[0].(string)
	raw, _ := vals[1].(string)
	skipped, _ := vals[2].(string)
	if version == "" && raw == "" {
		// A history without its document: the write replaces it.
		return projector.Doc{HistoryLen: historyLen}, historyLen > 0
	}
	d := projector.Doc{HistoryLen: historyLen}
	v, err := strconv.Atoi(version)
	if err != nil {
		d.Corrupt = fmt.Errorf("version %q: %w", version, err)
		return d, true
	}
	d.Version = v
	var doc readmodel.Cart
	if err := json.Unmarshal([]byte(raw), &doc); err != nil {
		d.Corrupt = fmt.Errorf("document: %w", err)
		return d, true
	}
	if doc.Version != v {
		d.Corrupt = fmt.Errorf("document version %d in a hash of version %d", doc.Version, v)
		return d, true
	}
	d.State = doc.State()
	if skipped != "" {
		for part := range strings.SplitSeq(skipped, ",") {
			n, err := strconv.Atoi(part)
			if err != nil {
				d.Corrupt = fmt.Errorf("skipped versions %q: %w", skipped, err)
				return d, true
			}
			d.Skipped = append(d.Skipped, n)
		}
	}
	return d, true
}

// Save runs the save script for every change in one pipeline.
func (s *Store) Save(ctx context.Context, gens projector.Generations, changes []projector.Change) ([]error, error) {
	if len(changes) == 0 {
		return nil, nil
	}
	args := make([][]any, len(changes))
	keys := make([][]string, len(changes))
	for i, c := range changes {
		var err error
		if keys[i], args[i], err = s.scriptCall(gens, c); err != nil {
			return nil, err
		}
	}
	results, err := s.run(ctx, save, keys, args)
	if err != nil && goredis.HasErrorPrefix(err, "NOSCRIPT") {
		// Redis restarted or its script cache was flushed.
		if lerr := save.Load(ctx, s.client).Err(); lerr != nil {
			return nil, fmt.Errorf("redis: load save script: %w", lerr)
		}
		results, err = s.run(ctx, save, keys, args)
	}
	if err != nil {
		return nil, err
	}
	out := make([]error, len(results))
	for i, r := range results {
		switch {
		case r.err != nil:
			out[i] = r.err
		case r.reply == "conflict":
			out[i] = projector.ErrConflict
		case r.reply == "stale":
			out[i] = projector.ErrStaleGenerations
		case r.reply != "ok":
			out[i] = fmt.Errorf("redis: save cart %s: unexpected reply %q", changes[i].CartID, r.reply)
		}
	}
	return out, nil
}

type reply struct {
	reply string
	err   error
}

// run calls script once per keys/args in one pipeline. It fails as a
// whole on a lost connection or a missing script, and reports each call's
// own error otherwise.
func (s *Store) run(ctx context.Context, script *goredis.Script, keys [][]string, args [][]any) ([]reply, error) {
	pipe := s.client.Pipeline()
	cmds := make([]*goredis.Cmd, len(keys))
	for i := range keys {
		cmds[i] = script.EvalSha(ctx, pipe, keys[i], args[i]...)
	}
	// Exec's error is the first failed command's; each is looked at below.
	_, _ = pipe.Exec(ctx)
	results := make([]reply, len(cmds))
	for i, cmd := range cmds {
		res, err := cmd.Text()
		switch {
		case err != nil && goredis.HasErrorPrefix(err, "NOSCRIPT"):
			return nil, err
		case err != nil && isConnError(err):
			return nil, fmt.Errorf("redis: %d script calls: %w", len(cmds), err)
		case err != nil:
			results[i].err = fmt.Errorf("redis: script on %s: %w", keys[i][0], err)
		default:
			results[i].reply = res
		}
	}
	return results, nil
}

func (s *Store) scriptCall(gens projector.Generations, c projector.Change) ([]string, []any, error) {
	cur, writes := token(gens)
	head := ""
	if c.Head != nil {
		b, err := encodeParked(*c.Head)
		if err != nil {
			return nil, nil, err
		}
		head = string(b)
	}
	keys := []string{readmodel.CurrentGeneration(s.prefix), s.writesKey(), s.parkedKey(c.CartID), s.parkedCartsKey(), s.parkedCountKey()}
	args := []any{cur, writes, c.CartID, c.ParkedLen, c.Unpark, head, len(c.Park)}
	for _, pe := range c.Park {
		b, err := encodeParked(pe)
		if err != nil {
			return nil, nil, err
		}
		args = append(args, pe.Event.Version, string(b))
	}
	if len(c.Writes) != 0 && len(c.Writes) != len(gens.Writes) {
		return nil, nil, fmt.Errorf("redis: cart %s: %d writes for %d generations", c.CartID, len(c.Writes), len(gens.Writes))
	}
	args = append(args, len(c.Writes))
	for i, w := range c.Writes {
		k := s.Keys(gens.Writes[i])
		st := w.State
		doc := ""
		if w.Changed {
			b, err := json.Marshal(readmodel.FromState(st))
			if err != nil {
				return nil, nil, fmt.Errorf("redis: encode cart %s: %w", w.CartID, err)
			}
			doc = string(b)
		}
		open := k.OpenCart(st.CustomerID)
		keys = append(keys, k.Cart(c.CartID), open, latestCart(open), k.History(c.CartID))
		args = append(args, flag(w.Force), w.From, st.Version, doc, indexStatus(st), st.OpenedAt.UnixMicro(), st.CustomerID,
			w.HistoryLen, flag(w.ReplaceHistory), k.Updates(), formatWrites(w.Skipped), len(w.History))
		for _, h := range w.History {
			b, err := appendEntry(nil, h)
			if err != nil {
				return nil, nil, fmt.Errorf("redis: encode cart %s history v%d: %w", w.CartID, h.Version, err)
			}
			args = append(args, string(b))
		}
	}
	return keys, args, nil
}

// indexStatus is the status the customer index follows, "" when the cart
// has no customer to index.
func indexStatus(st cart.State) string {
	if st.CustomerID == "" || (st.Status != cart.StatusOpen && st.Status != cart.StatusCheckedOut) {
		return ""
	}
	return string(st.Status)
}

func flag(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

// latestCart is the key next to a customer's open-cart index that remembers
// the newest cart the projector has seen for the customer. It shares the
// index's hash tag.
func latestCart(openCartKey string) string { return openCartKey + ":latest" }

// isConnError tells a broken connection (nothing was done) from an error
// of one command.
func isConnError(err error) bool {
	var rerr goredis.Error
	return !errors.As(err, &rerr)
}
