// Package redis stores the projector's read models in Redis: per generation
// one hash per cart (version, JSON document and owner, as the query service
// reads them), the cart's history list and the customer → open cart index;
// and, outside the generations, which generations the projectors write,
// the carts' parked events, and the lock of the rebuild. One Lua script per
// cart applies a live change atomically in every generation written (a
// short one for the common change); a rebuild places the carts it folded
// with plain commands (see package rebuild).
package redisstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unsafe"

	goredis "github.com/redis/go-redis/v9"

	"github.com/cart-cqrs/cart/pkg/cart"
	"github.com/cart-cqrs/cart/pkg/readmodel"
	"github.com/cart-cqrs/cart/services/projector/internal/documents"
)

// Store reads and writes the read models under one key prefix.
type Store struct {
	client goredis.UniversalClient
	prefix string
	// Redis is the rebuild lock (Lock, RenewLock, Unlock): one rebuild at
	// a time over all processes.
	Lease
}

var _ documents.Store = (*Store)(nil)

// New returns a store of the keys under prefix.
func New(client goredis.UniversalClient, prefix string) *Store {
	return &Store{client: client, prefix: prefix, Lease: NewLease(client, prefix+"rebuild:lock", "rebuild lock")}
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
func (s *Store) Generations(ctx context.Context) (documents.Generations, error) {
	vals, err := s.client.MGet(ctx, readmodel.CurrentGeneration(s.prefix), s.writesKey()).Result()
	if err != nil {
		return documents.Generations{}, fmt.Errorf("redis: read generations: %w", err)
	}
	rawCur, _ := vals[0].(string)
	rawWrites, _ := vals[1].(string)
	return parseGenerations(rawCur, rawWrites)
}

func parseGenerations(rawCur, rawWrites string) (documents.Generations, error) {
	g := documents.Generations{Current: 1, Token: rawCur + "/" + rawWrites}
	if rawCur != "" {
		n, err := strconv.Atoi(rawCur)
		if err != nil || n < 1 {
			return documents.Generations{}, fmt.Errorf("redis: current generation %q is not a positive integer", rawCur)
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
			return documents.Generations{}, fmt.Errorf("redis: generations written %q: not positive integers", rawWrites)
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
func token(g documents.Generations) (cur, writes string) {
	cur, writes, _ = strings.Cut(g.Token, "/")
	return cur, writes
}

// Load reads the carts' documents in every generation written and their
// parked events, in one round trip (a second one for carts with parked
// events, which the set of such carts tells). A document that cannot be
// read is returned with Corrupt set, so that one bad cart does not hold up
// the others.
func (s *Store) Load(ctx context.Context, gens documents.Generations, cartIDs []string) (map[string]documents.Record, error) {
	if len(cartIDs) == 0 {
		return map[string]documents.Record{}, nil
	}
	pipe := s.client.Pipeline()
	n := len(gens.Writes)
	docs := make([]*goredis.SliceCmd, len(cartIDs)*n)
	lens := make([]*goredis.IntCmd, len(cartIDs)*n)
	members := make([]any, len(cartIDs))
	for j, g := range gens.Writes {
		k := s.Keys(g)
		for i, id := range cartIDs {
			docs[i*n+j] = pipe.HMGet(ctx, k.Cart(id), readmodel.FieldVersion, readmodel.FieldDoc, readmodel.FieldSkipped)
			lens[i*n+j] = pipe.LLen(ctx, k.History(id))
		}
	}
	for i, id := range cartIDs {
		members[i] = id
	}
	isParked := pipe.SMIsMember(ctx, s.parkedCartsKey(), members...)
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("redis: load %d carts: %w", len(cartIDs), err)
	}
	parked, err := s.loadParked(ctx, cartIDs, isParked.Val())
	if err != nil {
		return nil, err
	}
	out := make(map[string]documents.Record, len(cartIDs))
	for i, id := range cartIDs {
		rec := documents.Record{Docs: make([]documents.Doc, n), Parked: parked[id]}
		found := false
		for j := range n {
			d, ok := decodeDoc(docs[i*n+j].Val(), int(lens[i*n+j].Val()))
			rec.Docs[j], found = d, found || ok
		}
		if found || len(rec.Parked) > 0 {
			out[id] = rec
		}
	}
	return out, nil
}

// loadParked reads the parked events of the carts the set says have some.
func (s *Store) loadParked(ctx context.Context, cartIDs []string, isParked []bool) (map[string][]documents.Parked, error) {
	var ids []string
	for i, p := range isParked {
		if p {
			ids = append(ids, cartIDs[i])
		}
	}
	if len(ids) == 0 {
		return nil, nil
	}
	pipe := s.client.Pipeline()
	lists := make([]*goredis.StringSliceCmd, len(ids))
	for i, id := range ids {
		lists[i] = pipe.LRange(ctx, s.parkedKey(id), 0, -1)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("redis: load the parked events of %d carts: %w", len(ids), err)
	}
	out := make(map[string][]documents.Parked, len(ids))
	for i, id := range ids {
		for _, raw := range lists[i].Val() {
			pe, err := decodeParked(id, raw)
			if err != nil {
				return nil, fmt.Errorf("redis: cart %s: %w", id, err)
			}
			out[id] = append(out[id], pe)
		}
	}
	return out, nil
}

// decodeDoc reads one generation's HMGET (version, doc, skipped) and
// history length; ok is false when the generation has nothing of the cart.
func decodeDoc(vals []any, historyLen int) (documents.Doc, bool) {
	version, _ := vals[0].(string)
	raw, _ := vals[1].(string)
	skipped, _ := vals[2].(string)
	d := documents.Doc{HistoryLen: historyLen, Stamp: stamp(skipped, raw)}
	if version == "" && raw == "" {
		// A history without its document: the write replaces it.
		return d, historyLen > 0
	}
	v, err := strconv.Atoi(version)
	if err != nil {
		d.Corrupt = fmt.Errorf("version %q: %w", version, err)
		return d, true
	}
	d.Version = v
	var doc readmodel.Cart
	if b := unsafe.Slice(unsafe.StringData(raw), len(raw)); !decodeCart(b, &doc) {
		if err := json.Unmarshal(b, &doc); err != nil {
			d.Corrupt = fmt.Errorf("document: %w", err)
			return d, true
		}
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
func (s *Store) Save(ctx context.Context, gens documents.Generations, changes []documents.Change) ([]documents.Saved, error) {
	if len(changes) == 0 {
		return nil, nil
	}
	// The documents and history entries of every change, encoded into
	// one buffer that outlives the pipeline only in the pool.
	pooled := docBufs.Get().(*[]byte)
	buf := (*pooled)[:0]
	defer func() {
		*pooled = buf[:0]
		docBufs.Put(pooled)
	}()
	calls := make([]call, len(changes))
	for i, c := range changes {
		var err error
		if calls[i], buf, err = s.scriptCall(gens, c, buf); err != nil {
			return nil, err
		}
	}
	results, err := s.run(ctx, calls)
	if err != nil && goredis.HasErrorPrefix(err, "NOSCRIPT") {
		// Redis restarted or its script cache was flushed.
		for _, script := range []*goredis.Script{save, appends} {
			if lerr := script.Load(ctx, s.client).Err(); lerr != nil {
				return nil, fmt.Errorf("redis: load save scripts: %w", lerr)
			}
		}
		results, err = s.run(ctx, calls)
	}
	if err != nil {
		return nil, err
	}
	out := make([]documents.Saved, len(results))
	for i, r := range results {
		switch {
		case r.err != nil:
			out[i].Err = r.err
		case r.reply == "conflict":
			out[i].Err = documents.ErrConflict
		case r.reply == "stale":
			out[i].Err = documents.ErrStaleGenerations
		case r.reply != "ok":
			out[i].Err = fmt.Errorf("redis: save cart %s: unexpected reply %q", changes[i].CartID, r.reply)
		default:
			out[i].Stamps = calls[i].stamps
		}
	}
	return out, nil
}

type reply struct {
	reply string
	err   error
}

// call is one call of a script.
type call struct {
	script *goredis.Script
	keys   []string
	args   []any
	// stamps are the stamps of the cart's documents once it succeeded.
	stamps []documents.Stamp
}

// run makes the calls in one pipeline. It fails as a whole on a lost
// connection or a missing script, and reports each call's own error
// otherwise.
func (s *Store) run(ctx context.Context, calls []call) ([]reply, error) {
	pipe := s.client.Pipeline()
	cmds := make([]*goredis.Cmd, len(calls))
	for i, c := range calls {
		cmds[i] = c.script.EvalSha(ctx, pipe, c.keys, c.args...)
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
			results[i].err = fmt.Errorf("redis: script on %s: %w", calls[i].keys[0], err)
		default:
			results[i].reply = res
		}
	}
	return results, nil
}

// scriptCall encodes a change as a call of the append script when it is
// one, of the save script otherwise; documents and history entries are
// appended to buf and passed as slices of it.
func (s *Store) scriptCall(gens documents.Generations, c documents.Change, buf []byte) (call, []byte, error) {
	if appending(c) {
		return s.appendCall(gens, c, buf)
	}
	return s.saveCall(gens, c, buf)
}

// appending reports whether appendScript makes the change: the next
// versions of a cart in one generation, nothing parked.
func appending(c documents.Change) bool {
	if len(c.Writes) != 1 || c.ParkedLen != 0 || c.Unpark != 0 || c.Head != nil || len(c.Park) != 0 {
		return false
	}
	w := c.Writes[0]
	return w.Changed && !w.Force && !w.ReplaceHistory
}

func (s *Store) appendCall(gens documents.Generations, c documents.Change, buf []byte) (call, []byte, error) {
	cur, writes := token(gens)
	w := c.Writes[0]
	if len(gens.Writes) != 1 {
		return call{}, buf, fmt.Errorf("redis: cart %s: 1 write for %d generations", c.CartID, len(gens.Writes))
	}
	k := s.Keys(gens.Writes[0])
	st := w.State
	open := k.OpenCart(st.CustomerID)
	cl := call{script: appends, keys: []string{readmodel.CurrentGeneration(s.prefix), s.writesKey(), s.parkedCartsKey(),
		k.Cart(c.CartID), open, latestCart(open), k.History(c.CartID)}}
	at := len(buf)
	var err error
	if buf, err = appendDoc(buf, st); err != nil {
		return call{}, buf, fmt.Errorf("redis: encode cart %s: %w", w.CartID, err)
	}
	doc := buf[at:len(buf):len(buf)]
	skipped := formatWrites(w.Skipped)
	cl.stamps = []documents.Stamp{stamp(skipped, doc)}
	at = len(buf)
	buf = appendStamp(buf, w.Stamp)
	cl.args = make([]any, 13, 13+len(w.History))
	copy(cl.args, []any{cur, writes, c.CartID, w.From, w.HistoryLen, st.Version, doc, st.CustomerID,
		indexStatus(st), strconv.FormatInt(st.OpenedAt.UnixMicro(), 10) + " " + c.CartID, k.Updates(), skipped,
		buf[at:len(buf):len(buf)]})
	for _, h := range w.History {
		at := len(buf)
		if buf, err = appendEntry(buf, h); err != nil {
			return call{}, buf, fmt.Errorf("redis: encode cart %s history v%d: %w", w.CartID, h.Version, err)
		}
		cl.args = append(cl.args, buf[at:len(buf):len(buf)])
	}
	return cl, buf, nil
}

// saveCall encodes a change as a call of the save script.
func (s *Store) saveCall(gens documents.Generations, c documents.Change, buf []byte) (call, []byte, error) {
	cur, writes := token(gens)
	head := ""
	if c.Head != nil {
		b, err := encodeParked(*c.Head)
		if err != nil {
			return call{}, buf, err
		}
		head = string(b)
	}
	keys := make([]string, 5, 5+4*len(c.Writes))
	copy(keys, []string{readmodel.CurrentGeneration(s.prefix), s.writesKey(), s.parkedKey(c.CartID), s.parkedCartsKey(), s.parkedCountKey()})
	args := make([]any, 0, 8+2*len(c.Park)+len(c.Writes)*14)
	args = append(args, cur, writes, c.CartID, c.ParkedLen, c.Unpark, head, len(c.Park))
	for _, pe := range c.Park {
		b, err := encodeParked(pe)
		if err != nil {
			return call{}, buf, err
		}
		args = append(args, pe.Event.Version, b)
	}
	if len(c.Writes) != 0 && len(c.Writes) != len(gens.Writes) {
		return call{}, buf, fmt.Errorf("redis: cart %s: %d writes for %d generations", c.CartID, len(c.Writes), len(gens.Writes))
	}
	args = append(args, len(c.Writes))
	stamps := make([]documents.Stamp, len(c.Writes))
	for i, w := range c.Writes {
		k := s.Keys(gens.Writes[i])
		st := w.State
		skipped := formatWrites(w.Skipped)
		var doc any = ""
		stamps[i] = w.Stamp
		if w.Changed {
			at := len(buf)
			var err error
			if buf, err = appendDoc(buf, st); err != nil {
				return call{}, buf, fmt.Errorf("redis: encode cart %s: %w", w.CartID, err)
			}
			b := buf[at:len(buf):len(buf)]
			doc, stamps[i] = b, stamp(skipped, b)
		}
		at := len(buf)
		buf = appendStamp(buf, w.Stamp)
		open := k.OpenCart(st.CustomerID)
		keys = append(keys, k.Cart(c.CartID), open, latestCart(open), k.History(c.CartID))
		args = append(args, flag(w.Force), w.From, st.Version, doc, indexStatus(st), st.OpenedAt.UnixMicro(), st.CustomerID,
			w.HistoryLen, flag(w.ReplaceHistory), k.Updates(), skipped, buf[at:len(buf):len(buf)], len(w.History))
		for _, h := range w.History {
			at := len(buf)
			var err error
			if buf, err = appendEntry(buf, h); err != nil {
				return call{}, buf, fmt.Errorf("redis: encode cart %s history v%d: %w", w.CartID, h.Version, err)
			}
			args = append(args, buf[at:len(buf):len(buf)])
		}
	}
	return call{script: save, keys: keys, args: args, stamps: stamps}, buf, nil
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
