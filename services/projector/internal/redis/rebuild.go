package redis

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"

	goredis "github.com/redis/go-redis/v9"

	"github.com/cart-cqrs/cart/pkg/readmodel"
	"github.com/cart-cqrs/cart/pkg/rediskeys"
	"github.com/cart-cqrs/cart/services/projector/internal/projector"
	"github.com/cart-cqrs/cart/services/projector/internal/rebuild"
)

var _ rebuild.Store = (*Store)(nil)

// setGenerations compares and sets the current generation and the
// generations written: KEYS[1] current, KEYS[2] written; ARGV[1..2] the
// expected raw values ("" = absent), ARGV[3..4] the new ones.
var setGenerations = goredis.NewScript(`
local function get(k)
  local v = redis.call('GET', k)
  if v then return v end
  return ''
end
if get(KEYS[1]) ~= ARGV[1] or get(KEYS[2]) ~= ARGV[2] then
  return 'stale'
end
redis.call('SET', KEYS[1], ARGV[3])
redis.call('SET', KEYS[2], ARGV[4])
return 'ok'
`)

// SetGenerations sets the current generation and the generations written,
// provided they are still from.
func (s *Store) SetGenerations(ctx context.Context, from projector.Generations, current int, writes []int) (projector.Generations, error) {
	cur, w := token(from)
	newCur, newWrites := strconv.Itoa(current), formatWrites(writes)
	res, err := setGenerations.Run(ctx, s.client, []string{readmodel.CurrentGeneration(s.prefix), s.writesKey()},
		cur, w, newCur, newWrites).Text()
	if err != nil {
		return projector.Generations{}, fmt.Errorf("redis: set generations %d %v: %w", current, writes, err)
	}
	if res != "ok" {
		return projector.Generations{}, fmt.Errorf("redis: set generations %d %v: %w", current, writes, projector.ErrStaleGenerations)
	}
	return parseGenerations(newCur, newWrites)
}

// mergeBatch is merges encoded as merge script calls.
type mergeBatch struct {
	s      *Store
	merges []rebuild.Merge
	keys   [][]string
	args   [][]any
}

// EncodeMerges encodes merges into generation gen as calls of the merge
// script.
func (s *Store) EncodeMerges(gen int, merges []rebuild.Merge) (rebuild.MergeBatch, error) {
	k := s.Keys(gen)
	keys := make([][]string, len(merges))
	args := make([][]any, len(merges))
	for i, m := range merges {
		st := m.State
		doc, err := json.Marshal(readmodel.FromState(st))
		if err != nil {
			return nil, fmt.Errorf("redis: encode cart %s: %w", m.CartID, err)
		}
		open := k.OpenCart(st.CustomerID)
		keys[i] = []string{k.Cart(m.CartID), open, latestCart(open), k.History(m.CartID)}
		a := make([]any, mergeFirstEntryArg, mergeFirstEntryArg+len(m.History))
		copy(a, []any{m.Base, st.Version, doc, m.CartID, indexStatus(st), st.OpenedAt.UnixMicro(), st.CustomerID,
			formatWrites(m.Skipped), flag(m.Whole)})
		// The entries share one buffer; each argument is its slice of it
		// (a buffer that grows leaves the earlier slices intact).
		buf := make([]byte, 0, 384*len(m.History))
		for _, h := range m.History {
			at := len(buf)
			if buf, err = appendEntry(buf, h); err != nil {
				return nil, fmt.Errorf("redis: encode cart %s history v%d: %w", m.CartID, h.Version, err)
			}
			a = append(a, buf[at:len(buf):len(buf)])
		}
		args[i] = a
	}
	return &mergeBatch{s: s, merges: merges, keys: keys, args: args}, nil
}

// Write runs the merge script for every cart in one pipeline.
func (b *mergeBatch) Write(ctx context.Context) ([]rebuild.MergeResult, error) {
	s, merges, keys, args := b.s, b.merges, b.keys, b.args
	results, err := s.run(ctx, merge, keys, args)
	if err != nil && goredis.HasErrorPrefix(err, "NOSCRIPT") {
		if lerr := merge.Load(ctx, s.client).Err(); lerr != nil {
			return nil, fmt.Errorf("redis: load merge script: %w", lerr)
		}
		results, err = s.run(ctx, merge, keys, args)
	}
	if err != nil {
		return nil, err
	}
	out := make([]rebuild.MergeResult, len(results))
	for i, r := range results {
		switch {
		case r.err != nil:
			return nil, r.err
		case r.reply == "ok":
			out[i] = rebuild.Merged
		case r.reply == "behind":
			out[i] = rebuild.Behind
		case r.reply == "reset":
			out[i] = rebuild.Reset
		default:
			return nil, fmt.Errorf("redis: merge cart %s: unexpected reply %q", merges[i].CartID, r.reply)
		}
	}
	return out, nil
}

// StoredGenerations lists the generations that have keys, in one SCAN of
// the prefix's generation keys.
func (s *Store) StoredGenerations(ctx context.Context) ([]int, error) {
	var gens []int
	iter := s.client.Scan(ctx, 0, readmodel.EscapeGlob(s.prefix)+"g[0-9]*", rediskeys.Batch).Iterator()
	for iter.Next(ctx) {
		rest, ok := strings.CutPrefix(iter.Val(), s.prefix+"g")
		if !ok {
			continue
		}
		num, _, ok := strings.Cut(rest, ":")
		g, err := strconv.Atoi(num)
		if !ok || err != nil || g < 1 {
			continue
		}
		if !slices.Contains(gens, g) {
			gens = append(gens, g)
		}
	}
	if err := iter.Err(); err != nil {
		return nil, fmt.Errorf("redis: scan generations: %w", err)
	}
	slices.Sort(gens)
	return gens, nil
}

// DropGeneration deletes every key of generation gen: SCAN, and UNLINK in
// batches (Redis frees the memory in the background).
func (s *Store) DropGeneration(ctx context.Context, gen int) (int, error) {
	n, err := rediskeys.UnlinkMatching(ctx, s.client, s.Keys(gen).Pattern())
	if err != nil {
		return n, fmt.Errorf("redis: drop generation %d: %w", gen, err)
	}
	return n, nil
}
