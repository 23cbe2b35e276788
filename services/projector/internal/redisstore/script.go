package redisstore

import (
	"strings"

	goredis "github.com/redis/go-redis/v9"

	"github.com/cart-cqrs/cart/pkg/readmodel"
)

// saveScript applies one projector.Change: it stores the cart's document
// (its owner beside it, readmodel.FieldOwner) and history in every
// generation written, keeps the customer's open-cart index in step with
// them, changes the cart's parked events, and announces each new version
// — atomically, and only if the generations written, the documents (their
// versions and stamps), the histories and the parked events are still what
// the change was computed from.
//
//	KEYS[1] current generation   ARGV[1] expected current generation ("" = absent)
//	KEYS[2] generations written  ARGV[2] expected generations written ("" = absent)
//	KEYS[3] parked events (list) ARGV[3] cart id
//	KEYS[4] carts with parked    ARGV[4] expected parked events (-1: no guard, append
//	KEYS[5] parked events count          only versions after the last parked)
//	                             ARGV[5] parked events to drop from the front
//	                             ARGV[6] replacement of the first one left ("" = none)
//	                             ARGV[7] P, events to park, then P pairs (version, JSON)
//	then G, the generations written, and per generation 4 keys and a block of
//	arguments starting at a:
//	KEYS[k+1] cart hash          ARGV[a]    "1" = force: no guard, the index follows an open cart
//	KEYS[k+2] customer open cart ARGV[a+1]  expected stored version (0 = absent)
//	KEYS[k+3] customer latest    ARGV[a+2]  new version
//	KEYS[k+4] cart history list  ARGV[a+3]  document JSON, "" to keep the stored one
//	                             ARGV[a+4]  status ("" = no customer: leave the index)
//	                             ARGV[a+5]  cart opened at, Unix microseconds
//	                             ARGV[a+6]  customer id
//	                             ARGV[a+7]  expected history length
//	                             ARGV[a+8]  "1" to replace the history, "0" to append
//	                             ARGV[a+9]  update channel
//	                             ARGV[a+10] skipped versions ("" = none)
//	                             ARGV[a+11] expected stamp ("" = not compared)
//	                             ARGV[a+12] N, then N history entries (JSON), in version order
//
// The generation guard is what makes a rebuild's switch safe with any
// number of projector instances (see package rebuild): a change computed
// for the generations as they were before a switch writes nothing after it.
//
// The version guard covers the history too: a duplicate delivery finds the
// version it would write already stored and appends nothing. The history
// length guard catches a list that fell out of step (the projector then
// rebuilds it from the event log and replaces it). The stamp, the SHA-1 of
// the skipped field, a space and the document (see stamp), catches a
// document replaced at the same version (a forced rebuild of the cart): a
// projector may compute a write from the document it stored last, without
// reading it again, because of it.
//
// A customer's carts follow one another (the next opens after the previous
// is checked out), but their events may be projected out of order: a late
// event of an old cart must not point the index back at it. The latest key
// holds "<opened-at> <cart id>" of the newest cart seen, and only that cart
// may set the index; the others may only remove themselves from it. A
// forced write was read whole from the event log: an open cart there is the
// customer's open cart.
//
// Each update ("<cart id> <version> <customer id>", readmodel.Update) is
// published last, once the document and the index are written, so that a
// reader woken by it reads them both at the new version.
//
// The keys span several hash tags ({cartId}, {customerId}, none): in a
// Redis Cluster this would have to become several calls. It runs as one
// script on single-node Redis.
const saveScript = `
local g = redis.call('MGET', KEYS[1], KEYS[2])
if (g[1] or '') ~= ARGV[1] or (g[2] or '') ~= ARGV[2] then
  return 'stale'
end
local want = tonumber(ARGV[4])
local plen = 0
if want == 0 then
  -- As Store.Load tells a cart without parked events: by the set.
  if redis.call('SISMEMBER', KEYS[4], ARGV[3]) == 1 then
    return 'conflict'
  end
else
  plen = redis.call('LLEN', KEYS[3])
  if want > 0 and plen ~= want then
    return 'conflict'
  end
end
local np = tonumber(ARGV[7])
local i = 8 + 2 * np
local ng = tonumber(ARGV[i])
i = i + 1
local gens = {}
for g = 1, ng do
  local n = tonumber(ARGV[i + 12])
  local b = {k = 5 + (g - 1) * 4, a = i, n = n, skipped = true}
  gens[g] = b
  i = i + 13 + n
  if ARGV[b.a] ~= '1' then
    local h = redis.call('HMGET', KEYS[b.k + 1], '@version', '@skipped', '@doc')
    if tonumber(h[1] or '0') ~= tonumber(ARGV[b.a + 1]) then
      return 'conflict'
    end
    b.skipped = h[2] ~= false
    if redis.call('LLEN', KEYS[b.k + 4]) ~= tonumber(ARGV[b.a + 7]) then
      return 'conflict'
    end
    if ARGV[b.a + 11] ~= '' and redis.sha1hex((h[2] or '') .. ' ' .. (h[3] or '')) ~= ARGV[b.a + 11] then
      return 'conflict'
    end
  end
end

local unpark = tonumber(ARGV[5])
if unpark > 0 then
  local n = math.min(unpark, plen)
  redis.call('LTRIM', KEYS[3], n, -1)
  redis.call('DECRBY', KEYS[5], n)
  plen = plen - n
end
if ARGV[6] ~= '' and plen > 0 then
  redis.call('LSET', KEYS[3], 0, ARGV[6])
end
if np > 0 then
  local top = 0
  if want < 0 and plen > 0 then
    top = tonumber(cjson.decode(redis.call('LINDEX', KEYS[3], -1))['version'])
  end
  local pushed = 0
  for j = 0, np - 1 do
    local v = tonumber(ARGV[8 + 2 * j])
    if want >= 0 or v > top then
      redis.call('RPUSH', KEYS[3], ARGV[9 + 2 * j])
      pushed = pushed + 1
      top = v
    end
  end
  if pushed > 0 then
    redis.call('INCRBY', KEYS[5], pushed)
  end
  plen = plen + pushed
end
if unpark > 0 or np > 0 then
  if plen > 0 then
    redis.call('SADD', KEYS[4], ARGV[3])
  else
    redis.call('SREM', KEYS[4], ARGV[3])
  end
end

local id = ARGV[3]
for g = 1, ng do
  local a, k = gens[g].a, gens[g].k
  local cartKey, openKey, latestKey, histKey = KEYS[k + 1], KEYS[k + 2], KEYS[k + 3], KEYS[k + 4]
  local force = ARGV[a] == '1'
  if ARGV[a + 8] == '1' then
    redis.call('DEL', histKey)
  end
  local first, last = a + 13, a + 12 + gens[g].n
  for j = first, last, 100 do
    redis.call('RPUSH', histKey, unpack(ARGV, j, math.min(j + 99, last)))
  end
  local changed = ARGV[a + 3] ~= ''
  if changed then
    redis.call('HSET', cartKey, '@version', ARGV[a + 2], '@doc', ARGV[a + 3], '@owner', ARGV[a + 6])
    if ARGV[a + 10] ~= '' then
      redis.call('HSET', cartKey, '@skipped', ARGV[a + 10])
    elseif gens[g].skipped then
      redis.call('HDEL', cartKey, '@skipped')
    end
  end
  local status = ARGV[a + 4]
  if status ~= '' then
    local opened = tonumber(ARGV[a + 5])
    local mine = ARGV[a + 5] .. ' ' .. id
    local superseded, latest = false, false
    if not (force and status == 'open') then
      latest = redis.call('GET', latestKey)
      if latest then
        local sep = string.find(latest, ' ', 1, true)
        local lopened, lid = tonumber(string.sub(latest, 1, sep - 1)), string.sub(latest, sep + 1)
        if opened < lopened or (opened == lopened and id < lid) then
          superseded = true
        end
      end
    end
    if not superseded and latest ~= mine then
      redis.call('SET', latestKey, mine)
    end
    if status == 'open' and not superseded then
      redis.call('SET', openKey, id)
    elseif redis.call('GET', openKey) == id then
      redis.call('DEL', openKey)
    end
  end
  if changed then
    redis.call('PUBLISH', ARGV[a + 9], id .. ' ' .. ARGV[a + 2] .. ' ' .. ARGV[a + 6])
  end
end
return 'ok'
`

// appendScript is saveScript for the change almost every event makes: the
// next versions of a cart in the one generation written, appended to its
// history, nothing parked. It does what saveScript does for it, with a
// fraction of the Lua: on the live path the script's own instructions
// were most of what Redis spent per event.
//
//	KEYS[1] current generation   ARGV[1] expected current generation ("" = absent)
//	KEYS[2] generations written  ARGV[2] expected generations written ("" = absent)
//	KEYS[3] carts with parked    ARGV[3] cart id
//	KEYS[4] cart hash            ARGV[4] expected stored version (0 = absent)
//	KEYS[5] customer open cart   ARGV[5] expected history length
//	KEYS[6] customer latest      ARGV[6] new version
//	KEYS[7] cart history list    ARGV[7] document JSON
//	                             ARGV[8] customer id
//	                             ARGV[9] status ("" = no customer: leave the index)
//	                             ARGV[10] the cart as the latest key notes it, "<opened-at> <cart id>"
//	                             ARGV[11] update channel
//	                             ARGV[12] skipped versions ("" = none)
//	                             ARGV[13] expected stamp ("" = not compared)
//	                             ARGV[14..] history entries, in version order
const appendScript = `
local g = redis.call('MGET', KEYS[1], KEYS[2])
if (g[1] or '') ~= ARGV[1] or (g[2] or '') ~= ARGV[2] then
  return 'stale'
end
local id = ARGV[3]
if redis.call('SISMEMBER', KEYS[3], id) == 1 then
  return 'conflict'
end
local h = redis.call('HMGET', KEYS[4], '@version', '@skipped', '@doc')
if tonumber(h[1] or '0') ~= tonumber(ARGV[4]) or redis.call('LLEN', KEYS[7]) ~= tonumber(ARGV[5]) then
  return 'conflict'
end
if ARGV[13] ~= '' and redis.sha1hex((h[2] or '') .. ' ' .. (h[3] or '')) ~= ARGV[13] then
  return 'conflict'
end
for j = 14, #ARGV, 100 do
  redis.call('RPUSH', KEYS[7], unpack(ARGV, j, math.min(j + 99, #ARGV)))
end
if ARGV[12] ~= '' then
  redis.call('HSET', KEYS[4], '@version', ARGV[6], '@doc', ARGV[7], '@owner', ARGV[8], '@skipped', ARGV[12])
else
  redis.call('HSET', KEYS[4], '@version', ARGV[6], '@doc', ARGV[7], '@owner', ARGV[8])
  if h[2] then
    redis.call('HDEL', KEYS[4], '@skipped')
  end
end
local status = ARGV[9]
if status ~= '' then
  local mine = ARGV[10]
  local latest = redis.call('GET', KEYS[6])
  local superseded = false
  if latest and latest ~= mine then
    local sep, msep = string.find(latest, ' ', 1, true), string.find(mine, ' ', 1, true)
    local lopened, lid = tonumber(string.sub(latest, 1, sep - 1)), string.sub(latest, sep + 1)
    local opened = tonumber(string.sub(mine, 1, msep - 1))
    superseded = opened < lopened or (opened == lopened and id < lid)
  end
  if not superseded and latest ~= mine then
    redis.call('SET', KEYS[6], mine)
  end
  if status == 'open' and not superseded then
    redis.call('SET', KEYS[5], id)
  elseif redis.call('GET', KEYS[5]) == id then
    redis.call('DEL', KEYS[5])
  end
end
redis.call('PUBLISH', ARGV[11], id .. ' ' .. ARGV[6] .. ' ' .. ARGV[8])
return 'ok'
`

// indexLua keeps a customer's open-cart index in step with one of their
// carts, as saveScript does: the latest key holds "<opened-at> <cart id>"
// of the newest cart seen, and only that cart may set the index; the
// others may only remove themselves from it.
const indexLua = `
local function index(openKey, latestKey, id, status, opened)
  local latest = redis.call('GET', latestKey)
  if latest then
    local sep = string.find(latest, ' ', 1, true)
    local lopened, lid = tonumber(string.sub(latest, 1, sep - 1)), string.sub(latest, sep + 1)
    if tonumber(opened) < lopened or (tonumber(opened) == lopened and id < lid) then
      status = 'superseded'
    end
  end
  if status ~= 'superseded' then
    redis.call('SET', latestKey, opened .. ' ' .. id)
  end
  if status == 'open' then
    redis.call('SET', openKey, id)
  elseif redis.call('GET', openKey) == id then
    redis.call('DEL', openKey)
  end
end
`

// mergeScript stores what a rebuild folded for one cart into the
// generation it builds, where the live projectors may have written the
// cart already (they write that generation too while it is built). The
// rebuild's fold and theirs are both folds of the event log, so the
// further one wins:
//
//	KEYS[1] cart hash            ARGV[1] version the rebuild placed before; 0: the
//	KEYS[2] customer open cart           entries are the whole history
//	KEYS[3] customer latest      ARGV[2] new version
//	KEYS[4] cart history list    ARGV[3] document JSON
//	KEYS[5] staged entries       ARGV[4] cart id
//	        (after ARGV[1])      ARGV[5] status ("" = leave the index)
//	                             ARGV[6] cart opened at, Unix microseconds
//	                             ARGV[7] owner (customer id)
//	                             ARGV[8] skipped versions ("" = none)
//
// It answers "behind" when the stored cart is as far already (nothing
// written), "ok" when it wrote the document and the history entries the
// list lacks, and "reset" when the stored cart is neither the rebuild's
// last write nor ahead of it, its history is out of step, or entries are
// missing from the staged list: the rebuild then reads the cart whole and
// writes it with ARGV[1] = 0. The staged entries are gone afterwards.
const mergeScript = indexLua + `
local n = redis.call('LLEN', KEYS[5])
local s = tonumber(redis.call('HGET', KEYS[1], '@version') or '0')
local len = redis.call('LLEN', KEYS[4])
local base, new = tonumber(ARGV[1]), tonumber(ARGV[2])
local reply = 'ok'
local from
if s == nil or n ~= new - base then
  reply = 'reset'
elseif s > new or (s == new and len == s) then
  reply = 'behind'
  if len ~= s then
    reply = 'reset'
  end
elseif len == s and s >= base then
  from = s - base
elseif base == 0 then
  redis.call('DEL', KEYS[4])
  from = 0
else
  reply = 'reset'
end
if from then
  for j = from, n - 1, 100 do
    redis.call('RPUSH', KEYS[4], unpack(redis.call('LRANGE', KEYS[5], j, math.min(j + 99, n - 1))))
  end
  redis.call('HSET', KEYS[1], '@version', ARGV[2], '@doc', ARGV[3], '@owner', ARGV[7])
  if ARGV[8] ~= '' then
    redis.call('HSET', KEYS[1], '@skipped', ARGV[8])
  else
    redis.call('HDEL', KEYS[1], '@skipped')
  end
  if ARGV[5] ~= '' then
    index(KEYS[2], KEYS[3], ARGV[4], ARGV[5], ARGV[6])
  end
end
redis.call('DEL', KEYS[5])
return reply
`

// indexScript keeps the customer index in step with carts a rebuild
// placed without a script (see Store.WriteMerges), each only while the
// cart is still at the version the rebuild placed: a live projector that
// has written it since kept the index itself.
//
//	per cart, 3 keys:  cart hash, customer open cart, customer latest
//	per cart, 4 args:  cart id, version, status, cart opened at (Unix microseconds)
const indexScript = indexLua + `
for c = 0, #KEYS / 3 - 1 do
  local id = ARGV[4 * c + 1]
  if redis.call('HGET', KEYS[3 * c + 1], '@version') == ARGV[4 * c + 2] then
    index(KEYS[3 * c + 2], KEYS[3 * c + 3], id, ARGV[4 * c + 3], ARGV[4 * c + 4])
  end
end
return 'ok'
`

var fields = strings.NewReplacer(
	"@version", readmodel.FieldVersion,
	"@doc", readmodel.FieldDoc,
	"@owner", readmodel.FieldOwner,
	"@skipped", readmodel.FieldSkipped,
)

var (
	save    = goredis.NewScript(fields.Replace(saveScript))
	appends = goredis.NewScript(fields.Replace(appendScript))
	merge   = goredis.NewScript(fields.Replace(mergeScript))
	reindex = goredis.NewScript(fields.Replace(indexScript))
)
