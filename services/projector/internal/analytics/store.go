package analytics

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"

	goredis "github.com/redis/go-redis/v9"

	"github.com/cart-cqrs/cart/pkg/readmodel"
	"github.com/cart-cqrs/cart/services/projector/internal/lease"
)

// Store keeps the analytics generations in Redis under one key prefix.
type Store struct {
	client goredis.UniversalClient
	prefix string
	// lock is the build lock: one build at a time over all processes.
	lock lease.Redis
}

// NewStore returns the store of the keys under prefix.
func NewStore(client goredis.UniversalClient, prefix string) *Store {
	return &Store{client: client, prefix: prefix,
		lock: lease.NewRedis(client, prefix+"analytics:build-lock", "analytics build lock")}
}

// Keys names the keys of generation gen.
func (s *Store) Keys(gen int) readmodel.AnalyticsKeys {
	return readmodel.AnalyticsKeys{Prefix: s.prefix, Generation: gen}
}

func (s *Store) recordKey() string { return readmodel.AnalyticsGenerations(s.prefix) }

// loadStates reads the carts' states in generation gen; a cart the
// generation has not seen is at version 0.
func (s *Store) loadStates(ctx context.Context, gen int, cartIDs []string) ([]CartState, error) {
	k := s.Keys(gen)
	pipe := s.client.Pipeline()
	cmds := make([]*goredis.SliceCmd, len(cartIDs))
	for i, id := range cartIDs {
		cmds[i] = pipe.HMGet(ctx, k.Cart(id), "v", "s")
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("redis: load %d analytics carts of generation %d: %w", len(cartIDs), gen, err)
	}
	out := make([]CartState, len(cartIDs))
	for i, cmd := range cmds {
		vals := cmd.Val()
		rawV, _ := vals[0].(string)
		rawS, _ := vals[1].(string)
		v := 0
		if rawV != "" {
			var err error
			if v, err = strconv.Atoi(rawV); err != nil {
				return nil, fmt.Errorf("redis: analytics cart %s version %q: %w", cartIDs[i], rawV, err)
			}
		}
		st, err := decodeState(v, rawS)
		if err != nil {
			return nil, fmt.Errorf("redis: analytics cart %s: %w", cartIDs[i], err)
		}
		out[i] = st
	}
	return out, nil
}

// cartWrite is one cart's new state, to be stored if the generation still
// holds it at version From, and what it does to the products.
type cartWrite struct {
	cartID string
	from   int
	state  CartState
	delta  Delta
}

// writeOutcome is what a chunk of writes came to.
type writeOutcome int

const (
	written writeOutcome = iota
	// conflicted: a cart of the chunk was no longer at its From version;
	// nothing of the chunk was written.
	conflicted
)

// ErrGenerationGone is returned when a write finds its generation no
// longer listed (it is being dropped): nothing was written.
var ErrGenerationGone = errors.New("analytics: generation no longer listed")

// writeChunk is how many carts one script call writes at most.
const writeChunk = 128

// applyScript stores a chunk of carts' new states and adds their products'
// deltas, in one generation, atomically — only if the generation is still
// listed (its meta key exists) and every cart is still at the version the
// write was computed from.
//
//	KEYS[1] the generation's meta   ARGV[1] n carts, ARGV[2] m products
//	KEYS[2] the products set        per cart (from 3, 3 each): expected version,
//	KEYS[2+i] cart i's state                new version, new state
//	KEYS[2+n+j] product j's hash    per product: id, name sort key ("" = no
//	                                name), name, f, then f pairs field, increment
//
// The name is replaced only by one from a later item-added event (compared
// byte by byte: Lua's < follows the server's locale), so that it does not
// depend on the order in which carts are written.
var applyScript = goredis.NewScript(`
local function before(x, y)
  local n = math.min(#x, #y)
  for i = 1, n do
    local a, b = string.byte(x, i), string.byte(y, i)
    if a ~= b then return a < b end
  end
  return #x < #y
end
if redis.call('EXISTS', KEYS[1]) == 0 then
  return 'gone'
end
local n = tonumber(ARGV[1])
local m = tonumber(ARGV[2])
for i = 1, n do
  local stored = tonumber(redis.call('HGET', KEYS[2 + i], 'v') or '0')
  if stored ~= tonumber(ARGV[3 * i]) then
    return 'conflict'
  end
end
for i = 1, n do
  redis.call('HSET', KEYS[2 + i], 'v', ARGV[3 * i + 1], 's', ARGV[3 * i + 2])
end
local a = 3 * n + 3
for j = 1, m do
  local k = KEYS[2 + n + j]
  redis.call('SADD', KEYS[2], ARGV[a])
  if ARGV[a + 1] ~= '' then
    local cur = redis.call('HGET', k, 'nameAt')
    if not cur or before(cur, ARGV[a + 1]) then
      redis.call('HSET', k, 'name', ARGV[a + 2], 'nameAt', ARGV[a + 1])
    end
  end
  local f = tonumber(ARGV[a + 3])
  for x = 0, f - 1 do
    redis.call('HINCRBY', k, ARGV[a + 4 + 2 * x], ARGV[a + 5 + 2 * x])
  end
  a = a + 4 + 2 * f
end
return 'ok'
`)

// write stores the writes in generation gen, in chunks of one script call
// each, all in one pipeline. It returns one outcome per write, or
// ErrGenerationGone.
func (s *Store) write(ctx context.Context, gen int, writes []cartWrite) ([]writeOutcome, error) {
	if len(writes) == 0 {
		return nil, nil
	}
	k := s.Keys(gen)
	var keys [][]string
	var args [][]any
	for chunk := range slices.Chunk(writes, writeChunk) {
		ck, ca, err := encodeChunk(k, chunk)
		if err != nil {
			return nil, err
		}
		keys, args = append(keys, ck), append(args, ca)
	}
	replies, err := s.run(ctx, keys, args)
	if err != nil && goredis.HasErrorPrefix(err, "NOSCRIPT") {
		if lerr := applyScript.Load(ctx, s.client).Err(); lerr != nil {
			return nil, fmt.Errorf("redis: load analytics script: %w", lerr)
		}
		replies, err = s.run(ctx, keys, args)
	}
	if err != nil {
		return nil, fmt.Errorf("redis: write analytics generation %d: %w", gen, err)
	}
	out := make([]writeOutcome, 0, len(writes))
	for c, reply := range replies {
		n := min(writeChunk, len(writes)-c*writeChunk)
		var o writeOutcome
		switch reply {
		case "ok":
			o = written
		case "conflict":
			o = conflicted
		case "gone":
			return nil, fmt.Errorf("redis: write analytics generation %d: %w", gen, ErrGenerationGone)
		default:
			return nil, fmt.Errorf("redis: write analytics generation %d: unexpected reply %q", gen, reply)
		}
		for range n {
			out = append(out, o)
		}
	}
	return out, nil
}

func (s *Store) run(ctx context.Context, keys [][]string, args [][]any) ([]string, error) {
	pipe := s.client.Pipeline()
	cmds := make([]*goredis.Cmd, len(keys))
	for i := range keys {
		cmds[i] = applyScript.EvalSha(ctx, pipe, keys[i], args[i]...)
	}
	_, _ = pipe.Exec(ctx) // each command's error is looked at below
	out := make([]string, len(cmds))
	for i, cmd := range cmds {
		res, err := cmd.Text()
		if err != nil {
			return nil, err
		}
		out[i] = res
	}
	return out, nil
}

// encodeChunk is the script call of a chunk of writes.
func encodeChunk(k readmodel.AnalyticsKeys, chunk []cartWrite) ([]string, []any, error) {
	var total Delta
	for _, w := range chunk {
		total.Merge(w.delta)
	}
	ids := slices.Sorted(maps.Keys(total.Products))
	keys := make([]string, 0, 2+len(chunk)+len(ids))
	keys = append(keys, k.Meta(), k.Products())
	args := make([]any, 0, 2+3*len(chunk)+16*len(ids))
	args = append(args, len(chunk), len(ids))
	for _, w := range chunk {
		st, err := encodeState(w.state)
		if err != nil {
			return nil, nil, fmt.Errorf("analytics: cart %s: %w", w.cartID, err)
		}
		keys = append(keys, k.Cart(w.cartID))
		args = append(args, w.from, w.state.Version, st)
	}
	for _, id := range ids {
		p := total.Products[id]
		keys = append(keys, k.Product(id))
		fields := productFields(p)
		args = append(args, id, p.NameAt, p.Name, len(fields)/2)
		args = append(args, fields...)
	}
	return keys, args, nil
}

// productFields are a product delta's hash increments, as field, increment
// pairs; zero increments are left out.
func productFields(p *ProductDelta) []any {
	out := make([]any, 0, 16)
	for _, c := range []struct {
		field string
		n     int64
	}{
		{readmodel.FieldAdded, p.Added}, {readmodel.FieldAddedToCarts, p.AddedToCarts},
		{readmodel.FieldRemovedByCustomer, p.RemovedByCustomer}, {readmodel.FieldRemovedBySystem, p.RemovedBySystem},
		{readmodel.FieldCheckedOut, p.CheckedOut},
		{readmodel.FieldQuantityRaised, p.QuantityRaised}, {readmodel.FieldQuantityLowered, p.QuantityLowered},
	} {
		if c.n != 0 {
			out = append(out, c.field, c.n)
		}
	}
	for _, h := range []struct {
		prefix  string
		buckets map[int]int64
	}{{readmodel.FieldDwellToCheckout, p.DwellToCheckout}, {readmodel.FieldDwellToRemoval, p.DwellToRemoval}} {
		for _, b := range slices.Sorted(maps.Keys(h.buckets)) {
			if n := h.buckets[b]; n != 0 {
				out = append(out, h.prefix+strconv.Itoa(b), n)
			}
		}
	}
	return out
}

// Product reads one product of generation gen; found is false when the
// generation has no hash for it.
func (s *Store) Product(ctx context.Context, gen int, productID string) (p readmodel.ProductAnalytics, found bool, err error) {
	fields, err := s.client.HGetAll(ctx, s.Keys(gen).Product(productID)).Result()
	if err != nil {
		return readmodel.ProductAnalytics{}, false, fmt.Errorf("redis: analytics product %s: %w", productID, err)
	}
	if len(fields) == 0 {
		return readmodel.ProductAnalytics{}, false, nil
	}
	p, err = readmodel.ParseProductAnalytics(productID, fields)
	return p, err == nil, err
}

// Products reads every product of generation gen, by id.
func (s *Store) Products(ctx context.Context, gen int) (map[string]readmodel.ProductAnalytics, error) {
	ids, err := s.client.SMembers(ctx, s.Keys(gen).Products()).Result()
	if err != nil {
		return nil, fmt.Errorf("redis: analytics products: %w", err)
	}
	out := make(map[string]readmodel.ProductAnalytics, len(ids))
	for _, id := range ids {
		p, found, err := s.Product(ctx, gen, id)
		if err != nil {
			return nil, err
		}
		if found {
			out[id] = p
		}
	}
	return out, nil
}
