package redis

import (
	"strings"

	goredis "github.com/redis/go-redis/v9"

	"github.com/cart-cqrs/cart/pkg/readmodel"
)

// saveScript stores one cart document and the cart's history, keeps the
// customer's open-cart index in step with them, and announces the new
// version — atomically, and only if the document and the history are still
// what the write was computed from.
//
//	KEYS[1] cart hash            ARGV[1]  expected stored version (0 = absent)
//	KEYS[2] customer open cart   ARGV[2]  new version
//	KEYS[3] customer latest cart ARGV[3]  document JSON, "" to keep the stored one
//	KEYS[4] cart history list    ARGV[4]  cart id
//	                             ARGV[5]  status ("" = no customer: leave the index)
//	                             ARGV[6]  cart opened at, Unix microseconds
//	                             ARGV[7]  customer id
//	                             ARGV[8]  expected history length
//	                             ARGV[9]  "1" to replace the history, "0" to append
//	                             ARGV[10] update channel
//	                             ARGV[11..] history entries (JSON), in version order
//
// The version guard covers the history too: a duplicate delivery finds the
// version it would write already stored and appends nothing. The history
// length guard catches a list that fell out of step (the projector then
// rebuilds it from the event log and replaces it).
//
// A customer's carts follow one another (the next opens after the previous
// is checked out), but their events may be projected out of order: a late
// event of an old cart must not point the index back at it. KEYS[3] holds
// "<opened-at> <cart id>" of the newest cart seen, and only that cart may
// set the index; the others may only remove themselves from it.
//
// The update ("<cart id> <version> <customer id>", readmodel.Update) is
// published last, once the document and the index are written, so that a
// reader woken by it reads them both at the new version. PUBLISH is not a
// key access and is allowed in a cluster script.
//
// KEYS[1] and KEYS[4] have the hash tag {cartId} and KEYS[2..3] {customerId}:
// in a Redis Cluster they are different slots and this would have to become
// two calls (document and history first, index second, the index healed on
// redelivery). It runs as one script on single-node Redis.
const saveScript = `
local stored = tonumber(redis.call('HGET', KEYS[1], '@version') or '0')
if stored ~= tonumber(ARGV[1]) then
  return 'conflict'
end
if redis.call('LLEN', KEYS[4]) ~= tonumber(ARGV[8]) then
  return 'conflict'
end
if ARGV[9] == '1' then
  redis.call('DEL', KEYS[4])
end
for i = 11, #ARGV, 100 do
  redis.call('RPUSH', KEYS[4], unpack(ARGV, i, math.min(i + 99, #ARGV)))
end
local changed = ARGV[3] ~= ''
if changed then
  redis.call('HSET', KEYS[1], '@version', ARGV[2], '@doc', ARGV[3])
end
local status = ARGV[5]
if status ~= '' then
  local id, opened = ARGV[4], tonumber(ARGV[6])
  local latest = redis.call('GET', KEYS[3])
  if latest then
    local sep = string.find(latest, ' ', 1, true)
    local lopened, lid = tonumber(string.sub(latest, 1, sep - 1)), string.sub(latest, sep + 1)
    if opened < lopened or (opened == lopened and id < lid) then
      status = 'superseded'
    end
  end
  if status ~= 'superseded' then
    redis.call('SET', KEYS[3], ARGV[6] .. ' ' .. id)
  end
  if status == 'open' then
    redis.call('SET', KEYS[2], id)
  elseif redis.call('GET', KEYS[2]) == id then
    redis.call('DEL', KEYS[2])
  end
end
if changed then
  redis.call('PUBLISH', ARGV[10], ARGV[4] .. ' ' .. ARGV[2] .. ' ' .. ARGV[7])
end
return 'ok'
`

// firstEntryArg is the index (0-based, in the args slice) of the first
// history entry: ARGV[11].
const firstEntryArg = 10

var save = goredis.NewScript(strings.NewReplacer(
	"@version", readmodel.FieldVersion,
	"@doc", readmodel.FieldDoc,
).Replace(saveScript))
