package redis

import (
	"strings"

	goredis "github.com/redis/go-redis/v9"

	"github.com/cart-cqrs/cart/pkg/readmodel"
)

// saveScript stores one cart document and keeps the customer's open-cart
// index in step with it, atomically, and only if the document is still the
// version the new one was computed from.
//
//	KEYS[1] cart hash            ARGV[1] expected stored version (0 = absent)
//	KEYS[2] customer open cart   ARGV[2] new version
//	KEYS[3] customer latest cart ARGV[3] document JSON, "" to keep the stored one
//	                             ARGV[4] cart id
//	                             ARGV[5] status ("" = no customer: leave the index)
//	                             ARGV[6] cart opened at, Unix microseconds
//
// A customer's carts follow one another (the next opens after the previous
// is checked out), but their events may be projected out of order: a late
// event of an old cart must not point the index back at it. KEYS[3] holds
// "<opened-at> <cart id>" of the newest cart seen, and only that cart may
// set the index; the others may only remove themselves from it.
//
// KEYS[1] has the hash tag {cartId} and KEYS[2..3] {customerId}: in a Redis
// Cluster they are different slots and this would have to become two calls
// (document first, index second, the index healed on redelivery). It runs as
// one script on single-node Redis.
const saveScript = `
local stored = tonumber(redis.call('HGET', KEYS[1], '@version') or '0')
if stored ~= tonumber(ARGV[1]) then
  return 'conflict'
end
if ARGV[3] ~= '' then
  redis.call('HSET', KEYS[1], '@version', ARGV[2], '@doc', ARGV[3])
end
local status = ARGV[5]
if status == '' then
  return 'ok'
end
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
return 'ok'
`

var save = goredis.NewScript(strings.NewReplacer(
	"@version", readmodel.FieldVersion,
	"@doc", readmodel.FieldDoc,
).Replace(saveScript))
