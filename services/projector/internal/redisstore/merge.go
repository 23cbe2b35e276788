package redisstore

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"

	goredis "github.com/redis/go-redis/v9"

	"github.com/cart-cqrs/cart/pkg/cart"
	"github.com/cart-cqrs/cart/pkg/readmodel"
	"github.com/cart-cqrs/cart/services/projector/internal/rebuild"
)

// AppendEntry appends a history entry as the history lists keep it.
func (s *Store) AppendEntry(b []byte, h readmodel.HistoryEntry) ([]byte, error) {
	return appendEntry(b, h)
}

// WriteMerges stores what a rebuild folded into generation gen, in one
// pipeline, and a second one for the carts the first could not place. The
// entries are pushed onto the cart's staged list; a cart placed for the
// first time has its hash staged too and both renamed into place (see
// package rebuild), the others, and those a live projector wrote first,
// go through the merge script.
func (s *Store) WriteMerges(ctx context.Context, gen int, merges []rebuild.Merge) ([]rebuild.MergeResult, error) {
	k := s.Keys(gen)
	docs := make([][]byte, len(merges))
	pooled := docBufs.Get().(*[]byte)
	buf := (*pooled)[:0]
	defer func() {
		*pooled = buf[:0]
		docBufs.Put(pooled)
	}()
	for i, m := range merges {
		if !m.Place {
			continue
		}
		at := len(buf)
		var err error
		if buf, err = appendDoc(buf, m.State); err != nil {
			return nil, fmt.Errorf("redis: encode cart %s: %w", m.CartID, err)
		}
		docs[i] = buf[at:len(buf):len(buf)]
	}

	pipe := s.client.Pipeline()
	lengths := make([]*goredis.IntCmd, len(merges))
	var (
		fresh    []staged
		scripted []mergeCall
		index    indexCall
	)
	for i, m := range merges {
		list := stagedKey(k.History(m.CartID))
		if len(m.Entries) > 0 {
			entries := make([]any, len(m.Entries))
			for j, e := range m.Entries {
				entries[j] = e
			}
			lengths[i] = pipe.RPush(ctx, list, entries...)
		}
		switch {
		case !m.Place:
		case m.Base > 0:
			scripted = append(scripted, s.mergeCall(ctx, pipe, k, i, m, docs[i]))
		default:
			if lengths[i] == nil {
				lengths[i] = pipe.LLen(ctx, list)
			}
			st := stage(ctx, pipe, k, i, m, docs[i])
			switch status := indexStatus(m.State); {
			case !m.Index || status == "":
			case status == string(cart.StatusOpen):
				index.add(k, m)
			default:
				// A checked-out cart takes no more events, and nobody
				// pointed the index at it before it was placed: only the
				// customer's newest cart is to note, when none is yet.
				st.latest = pipe.SetArgs(ctx, latestCart(k.OpenCart(m.State.CustomerID)), latestValue(m.State),
					goredis.SetArgs{Mode: "NX", Get: true})
			}
			fresh = append(fresh, st)
		}
	}
	idx := index.queue(ctx, pipe)
	// Exec's error is the first failed command's; each is looked at below.
	_, _ = pipe.Exec(ctx)

	out := make([]rebuild.MergeResult, len(merges))
	for i, l := range lengths {
		if l == nil {
			continue
		}
		if err := l.Err(); err != nil {
			return nil, fmt.Errorf("redis: stage the history of cart %s: %w", merges[i].CartID, err)
		}
	}
	// Redis restarted or its script cache was flushed: load the scripts
	// and call them again below.
	lost := idx != nil && goredis.HasErrorPrefix(idx.Err(), "NOSCRIPT")
	for _, c := range scripted {
		lost = lost || goredis.HasErrorPrefix(c.cmd.Err(), "NOSCRIPT")
	}
	if lost {
		if err := s.loadMergeScripts(ctx); err != nil {
			return nil, err
		}
	}

	again := s.client.Pipeline()
	var (
		retried []mergeCall
		dels    []*goredis.IntCmd
		newer   indexCall
	)
	for _, st := range fresh {
		m := merges[st.i]
		placed, err := st.placed()
		if err != nil {
			return nil, fmt.Errorf("redis: place cart %s: %w", m.CartID, err)
		}
		switch {
		case !placed:
			// A live projector wrote the cart first: merge it as any
			// other, the entries being its whole history.
			dels = append(dels, again.Del(ctx, st.hash))
			retried = append(retried, s.mergeCall(ctx, again, k, st.i, m, docs[st.i]))
			continue
		case lengths[st.i].Val() != int64(m.Staged+len(m.Entries)):
			// Entries were lost on the way (Redis restarted meanwhile):
			// the cart is read again from the log.
			out[st.i] = rebuild.Reset
			continue
		}
		out[st.i] = rebuild.Merged
		if st.latest == nil {
			continue
		}
		// Another cart of the customer's is noted: the script compares,
		// should this one be newer.
		latest, err := st.latest.Result()
		switch {
		case errors.Is(err, goredis.Nil):
		case err != nil:
			return nil, fmt.Errorf("redis: index cart %s: %w", m.CartID, err)
		case newerThan(m.State, latest):
			newer.add(k, m)
		}
	}
	if idx != nil && goredis.HasErrorPrefix(idx.Err(), "NOSCRIPT") {
		idx = index.queue(ctx, again)
	} else if err := cmdErr(idx); err != nil {
		return nil, fmt.Errorf("redis: index %d carts: %w", len(index.keys)/3, err)
	}
	newerIdx := newer.queue(ctx, again)
	for _, c := range scripted {
		if goredis.HasErrorPrefix(c.cmd.Err(), "NOSCRIPT") {
			retried = append(retried, s.mergeCall(ctx, again, k, c.i, merges[c.i], docs[c.i]))
		} else if err := c.result(merges, out); err != nil {
			return nil, err
		}
	}
	if again.Len() == 0 {
		return out, nil
	}
	// The second round calls scripts even when the first called none and so
	// could not tell that Redis lost them (it restarted empty).
	if !lost && (newerIdx != nil || len(retried) > 0) {
		if err := s.loadMergeScripts(ctx); err != nil {
			return nil, err
		}
	}
	_, _ = again.Exec(ctx)
	for _, d := range dels {
		if err := d.Err(); err != nil {
			return nil, fmt.Errorf("redis: delete a staged cart: %w", err)
		}
	}
	if err := cmp.Or(cmdErr(idx), cmdErr(newerIdx)); err != nil {
		return nil, fmt.Errorf("redis: index carts: %w", err)
	}
	for _, c := range retried {
		if err := c.result(merges, out); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// loadMergeScripts loads the rebuild's scripts into Redis's script cache.
func (s *Store) loadMergeScripts(ctx context.Context) error {
	for _, script := range []*goredis.Script{merge, reindex} {
		if err := script.Load(ctx, s.client).Err(); err != nil {
			return fmt.Errorf("redis: load the rebuild's scripts: %w", err)
		}
	}
	return nil
}

func cmdErr(c *goredis.Cmd) error {
	if c == nil {
		return nil
	}
	return c.Err()
}

// docBufs hold the documents of a WriteMerges call, until it returns.
var docBufs = sync.Pool{New: func() any { return new([]byte) }}

// stagedKey is where key is filled before it is renamed into place: in
// the same generation and hash tag, and read by no one.
func stagedKey(key string) string { return key + ":staged" }

// staged is a cart being renamed into place.
type staged struct {
	i          int
	hash       string
	hist, held *goredis.BoolCmd
	// latest is the customer's newest cart noted before, for a cart
	// checked out.
	latest *goredis.StatusCmd
}

// stage fills the cart's hash under its staged key and renames the staged
// history and hash into place, each only where no key is: the list first,
// for a live projector that finds it without the hash takes the history
// for out of step and replaces it with its own.
func stage(ctx context.Context, pipe goredis.Pipeliner, k readmodel.Keys, i int, m rebuild.Merge, doc []byte) staged {
	cartKey, histKey := k.Cart(m.CartID), k.History(m.CartID)
	st := staged{i: i, hash: stagedKey(cartKey)}
	fields := []any{readmodel.FieldVersion, m.State.Version, readmodel.FieldDoc, doc, readmodel.FieldOwner, m.State.CustomerID}
	if len(m.Skipped) > 0 {
		fields = append(fields, readmodel.FieldSkipped, formatWrites(m.Skipped))
	}
	pipe.HSet(ctx, st.hash, fields...)
	st.hist = pipe.RenameNX(ctx, stagedKey(histKey), histKey)
	st.held = pipe.RenameNX(ctx, st.hash, cartKey)
	return st
}

// placed reports whether both keys were renamed into place.
func (st staged) placed() (bool, error) {
	hist, err := st.hist.Result()
	if err != nil {
		return false, err
	}
	hash, err := st.held.Result()
	return hist && hash, err
}

// latestValue is what the customer's latest key holds for the cart:
// "<opened-at> <cart id>".
func latestValue(st cart.State) string {
	return strconv.FormatInt(st.OpenedAt.UnixMicro(), 10) + " " + st.CartID
}

// newerThan reports whether the cart is newer than the latest one noted,
// as the scripts compare them.
func newerThan(st cart.State, latest string) bool {
	at, id, ok := strings.Cut(latest, " ")
	lopened, err := strconv.ParseInt(at, 10, 64)
	if !ok || err != nil {
		return true // let the script see to it
	}
	opened := st.OpenedAt.UnixMicro()
	return opened > lopened || (opened == lopened && st.CartID > id)
}

// indexCall is one call of the index script.
type indexCall struct {
	keys []string
	args []any
}

func (c *indexCall) add(k readmodel.Keys, m rebuild.Merge) {
	open := k.OpenCart(m.State.CustomerID)
	c.keys = append(c.keys, k.Cart(m.CartID), open, latestCart(open))
	c.args = append(c.args, m.CartID, m.State.Version, indexStatus(m.State), m.State.OpenedAt.UnixMicro())
}

func (c *indexCall) queue(ctx context.Context, pipe goredis.Pipeliner) *goredis.Cmd {
	if len(c.keys) == 0 {
		return nil
	}
	return reindex.EvalSha(ctx, pipe, c.keys, c.args...)
}

// mergeCall is one call of the merge script, for merges[i].
type mergeCall struct {
	i    int
	keys []string
	cmd  *goredis.Cmd
}

func (s *Store) mergeCall(ctx context.Context, pipe goredis.Pipeliner, k readmodel.Keys, i int, m rebuild.Merge, doc []byte) mergeCall {
	st := m.State
	status := ""
	if m.Index {
		status = indexStatus(st)
	}
	open := k.OpenCart(st.CustomerID)
	hist := k.History(m.CartID)
	c := mergeCall{i: i, keys: []string{k.Cart(m.CartID), open, latestCart(open), hist, stagedKey(hist)}}
	c.cmd = merge.EvalSha(ctx, pipe, c.keys,
		m.Base, st.Version, doc, m.CartID, status, st.OpenedAt.UnixMicro(), st.CustomerID, formatWrites(m.Skipped))
	return c
}

// result reads the script's answer into out.
func (c mergeCall) result(merges []rebuild.Merge, out []rebuild.MergeResult) error {
	reply, err := c.cmd.Text()
	switch {
	case err != nil:
		return fmt.Errorf("redis: merge cart %s: %w", merges[c.i].CartID, err)
	case reply == "ok":
		out[c.i] = rebuild.Merged
	case reply == "behind":
		out[c.i] = rebuild.Behind
	case reply == "reset":
		out[c.i] = rebuild.Reset
	default:
		return fmt.Errorf("redis: merge cart %s: unexpected reply %q", merges[c.i].CartID, reply)
	}
	return nil
}
