package redisstore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/cart-cqrs/cart/pkg/readmodel"
	"github.com/cart-cqrs/cart/pkg/rediskeys"
	"github.com/cart-cqrs/cart/services/projector/internal/engine"
)

// Counting keeps the generations of one counting projection (engine.Rules)
// under a key prefix: readmodel.CounterKeys per generation, and the record
// readmodel.Generations.
type Counting struct {
	Lease
	client             goredis.UniversalClient
	prefix             string
	projection, counts string
}

var _ engine.CountStore = (*Counting)(nil)

// NewCounting returns the store of projection, which counts members named
// counted ("product"), under prefix.
func NewCounting(client goredis.UniversalClient, prefix, projection, counted string) *Counting {
	return &Counting{
		Lease:  NewLease(client, prefix+projection+":build-lock", projection+" build lock"),
		client: client, prefix: prefix, projection: projection, counts: counted,
	}
}

// Keys names the keys of generation gen.
func (s *Counting) Keys(gen int) readmodel.CounterKeys {
	return readmodel.CounterKeys{Prefix: s.prefix, Projection: s.projection, Counted: s.counts, Generation: gen}
}

func (s *Counting) recordKey() string { return readmodel.Generations(s.prefix, s.projection) }

// Load implements engine.CountStore.
func (s *Counting) Load(ctx context.Context, gen int, cartIDs []string) ([]engine.Stored, error) {
	k := s.Keys(gen)
	pipe := s.client.Pipeline()
	cmds := make([]*goredis.SliceCmd, len(cartIDs))
	for i, id := range cartIDs {
		cmds[i] = pipe.HMGet(ctx, k.Cart(id), "v", "s")
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("redis: load %d %s carts of generation %d: %w", len(cartIDs), s.projection, gen, err)
	}
	out := make([]engine.Stored, len(cartIDs))
	for i, cmd := range cmds {
		vals := cmd.Val()
		rawV, _ := vals[0].(string)
		out[i].State, _ = vals[1].(string)
		if rawV != "" {
			v, err := strconv.Atoi(rawV)
			if err != nil {
				return nil, fmt.Errorf("redis: %s cart %s version %q: %w", s.projection, cartIDs[i], rawV, err)
			}
			out[i].Version = v
		}
	}
	return out, nil
}

// writeChunk is how many carts one script call writes at most.
const writeChunk = 128

// countScript stores a chunk of carts' new states and adds their members'
// increments, in one generation, atomically — only if the generation is
// still listed (its meta key exists) and every cart is still at the version
// the write was computed from.
//
//	KEYS[1] the generation's meta   ARGV[1] n carts, ARGV[2] m members
//	KEYS[2] the members set         per cart (from 3, 3 each): expected version,
//	KEYS[2+i] cart i's state                new version, new state
//	KEYS[2+n+j] member j's hash     per member: id, label sort key ("" = no
//	                                label), label, f, then f pairs field, increment
//
// The label (hash fields name, nameAt) is replaced only by one with a later
// sort key (compared byte by byte: Lua's < follows the server's locale), so
// that it does not depend on the order in which carts are written.
var countScript = goredis.NewScript(`
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

// Write implements engine.CountStore: the writes in chunks of one script
// call each, all in one pipeline. A chunk that conflicted wrote nothing:
// each of its writes reports a conflict.
func (s *Counting) Write(ctx context.Context, gen int, writes []engine.CartWrite) ([]bool, error) {
	if len(writes) == 0 {
		return nil, nil
	}
	k := s.Keys(gen)
	var keys [][]string
	var args [][]any
	for chunk := range slices.Chunk(writes, writeChunk) {
		ck, ca := encodeCounts(k, chunk)
		keys, args = append(keys, ck), append(args, ca)
	}
	replies, err := s.run(ctx, keys, args)
	if err != nil && goredis.HasErrorPrefix(err, "NOSCRIPT") {
		if lerr := countScript.Load(ctx, s.client).Err(); lerr != nil {
			return nil, fmt.Errorf("redis: load %s script: %w", s.projection, lerr)
		}
		replies, err = s.run(ctx, keys, args)
	}
	if err != nil {
		return nil, fmt.Errorf("redis: write %s generation %d: %w", s.projection, gen, err)
	}
	out := make([]bool, 0, len(writes))
	for c, reply := range replies {
		n := min(writeChunk, len(writes)-c*writeChunk)
		var conflict bool
		switch reply {
		case "ok":
		case "conflict":
			conflict = true
		case "gone":
			return nil, fmt.Errorf("redis: write %s generation %d: %w", s.projection, gen, engine.ErrGenerationGone)
		default:
			return nil, fmt.Errorf("redis: write %s generation %d: unexpected reply %q", s.projection, gen, reply)
		}
		for range n {
			out = append(out, conflict)
		}
	}
	return out, nil
}

func (s *Counting) run(ctx context.Context, keys [][]string, args [][]any) ([]string, error) {
	pipe := s.client.Pipeline()
	cmds := make([]*goredis.Cmd, len(keys))
	for i := range keys {
		cmds[i] = countScript.EvalSha(ctx, pipe, keys[i], args[i]...)
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

// encodeCounts is the script call of a chunk of writes.
func encodeCounts(k readmodel.CounterKeys, chunk []engine.CartWrite) ([]string, []any) {
	total := engine.Delta{}
	for _, w := range chunk {
		total.Merge(w.Delta)
	}
	ids := total.SortedMembers()
	keys := make([]string, 0, 2+len(chunk)+len(ids))
	keys = append(keys, k.Meta(), k.Members())
	args := make([]any, 0, 2+3*len(chunk)+16*len(ids))
	args = append(args, len(chunk), len(ids))
	for _, w := range chunk {
		keys = append(keys, k.Cart(w.CartID))
		args = append(args, w.From, w.To, w.State)
	}
	for _, id := range ids {
		c := total[id]
		keys = append(keys, k.Member(id))
		fields := slices.Sorted(func(yield func(string) bool) {
			for f, n := range c.Add {
				if n != 0 && !yield(f) {
					return
				}
			}
		})
		args = append(args, id, c.LabelAt, c.Label, len(fields))
		for _, f := range fields {
			args = append(args, f, c.Add[f])
		}
	}
	return keys, args
}

// Members reads the counters of every member of generation gen, by id.
func (s *Counting) Members(ctx context.Context, gen int) (map[string]map[string]string, error) {
	k := s.Keys(gen)
	ids, err := s.client.SMembers(ctx, k.Members()).Result()
	if err != nil {
		return nil, fmt.Errorf("redis: %s members: %w", s.projection, err)
	}
	out := make(map[string]map[string]string, len(ids))
	for _, id := range ids {
		fields, err := s.client.HGetAll(ctx, k.Member(id)).Result()
		if err != nil {
			return nil, fmt.Errorf("redis: %s member %s: %w", s.projection, id, err)
		}
		if len(fields) > 0 {
			out[id] = fields
		}
	}
	return out, nil
}

// Read implements engine.Generations.
func (s *Counting) Read(ctx context.Context) (engine.Record, error) {
	vals, err := s.client.HMGet(ctx, s.recordKey(), readmodel.AnalyticsCurrent, readmodel.AnalyticsBuilding,
		readmodel.AnalyticsPrevious, readmodel.AnalyticsDropping).Result()
	if err != nil {
		return engine.Record{}, fmt.Errorf("redis: read %s generations: %w", s.projection, err)
	}
	var r engine.Record
	for i, p := range []*int{&r.Current, &r.Building, &r.Previous, &r.Dropping} {
		raw, _ := vals[i].(string)
		if raw == "" {
			continue
		}
		if *p, err = strconv.Atoi(raw); err != nil || *p < 1 {
			return engine.Record{}, fmt.Errorf("redis: %s generation %q is not a positive integer", s.projection, raw)
		}
	}
	return r, nil
}

// recordScript changes the generations record: KEYS[1] the record,
// ARGV[1] the operation, ARGV[2] the generation.
//
//	list     building := gen, provided nothing is building
//	switch   current := gen and previous := the old current, provided gen is
//	         building; building is cleared
//	unlist:F dropping := gen and F cleared, provided F is gen and nothing is
//	         dropping
//	dropped  dropping cleared, provided it is gen
var recordScript = goredis.NewScript(`
local op, gen = ARGV[1], ARGV[2]
local function get(f) return redis.call('HGET', KEYS[1], f) or '' end
if op == 'list' then
  if get('building') ~= '' then return 'stale' end
  redis.call('HSET', KEYS[1], 'building', gen)
elseif op == 'switch' then
  if get('building') ~= gen then return 'stale' end
  local old = get('current')
  redis.call('HSET', KEYS[1], 'current', gen)
  redis.call('HDEL', KEYS[1], 'building')
  if old ~= '' and old ~= gen then redis.call('HSET', KEYS[1], 'previous', old) end
elseif string.sub(op, 1, 7) == 'unlist:' then
  local f = string.sub(op, 8)
  if get(f) ~= gen or get('dropping') ~= '' then return 'stale' end
  redis.call('HDEL', KEYS[1], f)
  redis.call('HSET', KEYS[1], 'dropping', gen)
elseif op == 'dropped' then
  if get('dropping') ~= gen then return 'stale' end
  redis.call('HDEL', KEYS[1], 'dropping')
else
  return redis.error_reply('unknown operation ' .. op)
end
return 'ok'
`)

func (s *Counting) changeRecord(ctx context.Context, op string, gen int) error {
	res, err := recordScript.Run(ctx, s.client, []string{s.recordKey()}, op, gen).Text()
	if err != nil {
		return fmt.Errorf("redis: %s generations %s %d: %w", s.projection, op, gen, err)
	}
	if res != "ok" {
		return fmt.Errorf("redis: %s generations %s %d: %w", s.projection, op, gen, engine.ErrStaleRecord)
	}
	return nil
}

// Open implements engine.Generations: it numbers a new generation, creates
// its meta and lists it as building — the meta first, so that the
// generation accepts writes as soon as anyone can see it listed.
func (s *Counting) Open(ctx context.Context, startedAt time.Time) (int, error) {
	seq, err := s.client.HIncrBy(ctx, s.recordKey(), readmodel.AnalyticsSequence, 1).Result()
	if err != nil {
		return 0, fmt.Errorf("redis: number a %s generation: %w", s.projection, err)
	}
	gen := int(seq)
	if err := s.client.HSet(ctx, s.Keys(gen).Meta(), readmodel.AnalyticsFieldStartedAt, startedAt.UTC().Format(time.RFC3339Nano)).Err(); err != nil {
		return 0, fmt.Errorf("redis: create %s generation %d: %w", s.projection, gen, err)
	}
	if err := s.changeRecord(ctx, "list", gen); err != nil {
		// Never listed: nothing else would ever delete its meta.
		if uerr := s.client.Unlink(context.WithoutCancel(ctx), s.Keys(gen).Meta()).Err(); uerr != nil {
			err = errors.Join(err, fmt.Errorf("redis: drop the meta of %s generation %d: %w", s.projection, gen, uerr))
		}
		return 0, err
	}
	return gen, nil
}

// Serving implements engine.Generations: a listed generation has its meta
// unless Redis lost it.
func (s *Counting) Serving(ctx context.Context, gen int) (bool, error) {
	n, err := s.client.Exists(ctx, s.Keys(gen).Meta()).Result()
	if err != nil {
		return false, fmt.Errorf("redis: %s generation %d: %w", s.projection, gen, err)
	}
	return n == 1, nil
}

// Built implements engine.Generations. It does not create the meta of a
// generation dropped meanwhile.
func (s *Counting) Built(ctx context.Context, gen int, at time.Time) error {
	k := s.Keys(gen).Meta()
	n, err := s.client.Exists(ctx, k).Result()
	if err == nil && n == 0 {
		return fmt.Errorf("redis: mark %s generation %d built: %w", s.projection, gen, engine.ErrGenerationGone)
	}
	if err == nil {
		err = s.client.HSet(ctx, k, readmodel.AnalyticsFieldBuiltAt, at.UTC().Format(time.RFC3339Nano)).Err()
	}
	if err != nil {
		return fmt.Errorf("redis: mark %s generation %d built: %w", s.projection, gen, err)
	}
	return nil
}

// Switch implements engine.Generations.
func (s *Counting) Switch(ctx context.Context, gen int) error {
	return s.changeRecord(ctx, "switch", gen)
}

// Unlist implements engine.Generations: it stops listing gen and deletes
// every key of it, the meta first — from then on no write lands in it.
func (s *Counting) Unlist(ctx context.Context, l engine.Listing, gen int) (int, error) {
	if err := s.changeRecord(ctx, "unlist:"+string(l), gen); err != nil {
		return 0, err
	}
	return s.Drop(ctx, gen)
}

// Drop implements engine.Generations: SCAN and UNLINK in batches (Redis
// frees the memory in the background).
func (s *Counting) Drop(ctx context.Context, gen int) (int, error) {
	dropping, err := s.client.HGet(ctx, s.recordKey(), readmodel.AnalyticsDropping).Result()
	if err != nil && !errors.Is(err, goredis.Nil) {
		return 0, fmt.Errorf("redis: drop %s generation %d: %w", s.projection, gen, err)
	}
	if dropping != strconv.Itoa(gen) {
		return 0, fmt.Errorf("redis: drop %s generation %d: listed as dropping is %q: %w", s.projection, gen, dropping, engine.ErrStaleRecord)
	}
	k := s.Keys(gen)
	if err := s.client.Unlink(ctx, k.Meta()).Err(); err != nil {
		return 0, fmt.Errorf("redis: drop %s generation %d: %w", s.projection, gen, err)
	}
	n, err := rediskeys.UnlinkMatching(ctx, s.client, k.Pattern())
	if err != nil {
		return n, fmt.Errorf("redis: drop %s generation %d: %w", s.projection, gen, err)
	}
	return n, s.changeRecord(ctx, "dropped", gen)
}
