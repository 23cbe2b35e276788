package analytics

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
)

// Generations is the generations record: 0 means none.
type Generations struct {
	Current, Building, Previous, Dropping int
}

// Writes are the generations kept up to date: the readers' (Current), the
// one being built and the one readers are draining off.
func (g Generations) Writes() []int {
	var out []int
	for _, n := range []int{g.Current, g.Building, g.Previous} {
		if n > 0 && !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out
}

// Generations reads the generations record.
func (s *Store) Generations(ctx context.Context) (Generations, error) {
	vals, err := s.client.HMGet(ctx, s.recordKey(), readmodel.AnalyticsCurrent, readmodel.AnalyticsBuilding,
		readmodel.AnalyticsPrevious, readmodel.AnalyticsDropping).Result()
	if err != nil {
		return Generations{}, fmt.Errorf("redis: read analytics generations: %w", err)
	}
	var g Generations
	for i, p := range []*int{&g.Current, &g.Building, &g.Previous, &g.Dropping} {
		raw, _ := vals[i].(string)
		if raw == "" {
			continue
		}
		if *p, err = strconv.Atoi(raw); err != nil || *p < 1 {
			return Generations{}, fmt.Errorf("redis: analytics generation %q is not a positive integer", raw)
		}
	}
	return g, nil
}

// ErrStaleRecord is returned when the generations record is not what a
// change of it expected: something else changed it (a Redis wiped
// meanwhile, or a builder that lost its lock).
var ErrStaleRecord = errors.New("analytics: generations record changed")

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

func (s *Store) changeRecord(ctx context.Context, op string, gen int) error {
	res, err := recordScript.Run(ctx, s.client, []string{s.recordKey()}, op, gen).Text()
	if err != nil {
		return fmt.Errorf("redis: analytics generations %s %d: %w", op, gen, err)
	}
	if res != "ok" {
		return fmt.Errorf("redis: analytics generations %s %d: %w", op, gen, ErrStaleRecord)
	}
	return nil
}

// listBuilding numbers a new generation, creates its meta and lists it as
// building — the meta first, so that the generation accepts writes as soon
// as anyone can see it listed.
func (s *Store) listBuilding(ctx context.Context, startedAt time.Time) (int, error) {
	seq, err := s.client.HIncrBy(ctx, s.recordKey(), readmodel.AnalyticsSequence, 1).Result()
	if err != nil {
		return 0, fmt.Errorf("redis: number an analytics generation: %w", err)
	}
	gen := int(seq)
	if err := s.client.HSet(ctx, s.Keys(gen).Meta(), readmodel.AnalyticsFieldStartedAt, startedAt.UTC().Format(time.RFC3339Nano)).Err(); err != nil {
		return 0, fmt.Errorf("redis: create analytics generation %d: %w", gen, err)
	}
	if err := s.changeRecord(ctx, "list", gen); err != nil {
		return 0, err
	}
	return gen, nil
}

// listed reports whether generation gen has its meta, which a listed
// generation has unless Redis lost it.
func (s *Store) listed(ctx context.Context, gen int) (bool, error) {
	n, err := s.client.Exists(ctx, s.Keys(gen).Meta()).Result()
	if err != nil {
		return false, fmt.Errorf("redis: analytics generation %d: %w", gen, err)
	}
	return n == 1, nil
}

// markBuilt notes when generation gen was built. It does not create the
// meta of a generation dropped meanwhile.
func (s *Store) markBuilt(ctx context.Context, gen int, at time.Time) error {
	k := s.Keys(gen).Meta()
	n, err := s.client.Exists(ctx, k).Result()
	if err == nil && n == 0 {
		return fmt.Errorf("redis: mark analytics generation %d built: %w", gen, ErrGenerationGone)
	}
	if err == nil {
		err = s.client.HSet(ctx, k, readmodel.AnalyticsFieldBuiltAt, at.UTC().Format(time.RFC3339Nano)).Err()
	}
	if err != nil {
		return fmt.Errorf("redis: mark analytics generation %d built: %w", gen, err)
	}
	return nil
}

// unlist stops listing gen in field (building or previous), and deletes
// every key of it: the meta first — from then on no write lands in it —
// then the rest. It returns how many keys it deleted.
func (s *Store) unlist(ctx context.Context, field string, gen int) (int, error) {
	if err := s.changeRecord(ctx, "unlist:"+field, gen); err != nil {
		return 0, err
	}
	return s.drop(ctx, gen)
}

// drop deletes every key of gen, which is listed as dropping: SCAN and
// UNLINK in batches (Redis frees the memory in the background).
func (s *Store) drop(ctx context.Context, gen int) (int, error) {
	k := s.Keys(gen)
	if err := s.client.Unlink(ctx, k.Meta()).Err(); err != nil {
		return 0, fmt.Errorf("redis: drop analytics generation %d: %w", gen, err)
	}
	n, err := rediskeys.UnlinkMatching(ctx, s.client, k.Pattern())
	if err != nil {
		return n, fmt.Errorf("redis: drop analytics generation %d: %w", gen, err)
	}
	return n, s.changeRecord(ctx, "dropped", gen)
}
