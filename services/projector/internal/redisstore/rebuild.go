package redisstore

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	goredis "github.com/redis/go-redis/v9"

	"github.com/cart-cqrs/cart/pkg/readmodel"
	"github.com/cart-cqrs/cart/pkg/rediskeys"
	"github.com/cart-cqrs/cart/services/projector/internal/documents"
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
func (s *Store) SetGenerations(ctx context.Context, from documents.Generations, current int, writes []int) (documents.Generations, error) {
	cur, w := token(from)
	newCur, newWrites := strconv.Itoa(current), formatWrites(writes)
	res, err := setGenerations.Run(ctx, s.client, []string{readmodel.CurrentGeneration(s.prefix), s.writesKey()},
		cur, w, newCur, newWrites).Text()
	if err != nil {
		return documents.Generations{}, fmt.Errorf("redis: set generations %d %v: %w", current, writes, err)
	}
	if res != "ok" {
		return documents.Generations{}, fmt.Errorf("redis: set generations %d %v: %w", current, writes, documents.ErrStaleGenerations)
	}
	return parseGenerations(newCur, newWrites)
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
