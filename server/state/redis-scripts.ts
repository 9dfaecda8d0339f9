/**
 * The Lua scripts behind RedisState. Each runs atomically, so each transition (a count leaving or reaching
 * zero) is seen by exactly one caller in the cluster.
 *
 * Invariant kept by every script that changes a shared count: the count changes in the same script, by the
 * same amount, as the calling node's share of it (`node:N` hashes, see redis-keys.ts). So a shared count is
 * always the sum of the nodes' shares, a node can never take away more than it added (a share is clamped at
 * zero), and removing or restoring a node's shares (`*_set`) yields exactly the transitions that follow.
 */

/** Picks the shared hash and field for a share field: `c` → meta.conns, `s:<ch>` → chans, `u:<user>` → users. */
const APP_TARGET = `
local function target(f)
  local kind = string.sub(f, 1, 1)
  if kind == 'c' then return KEYS[1], 'conns' end
  if kind == 's' then return KEYS[2], string.sub(f, 3) end
  return KEYS[3], string.sub(f, 3)
end
local function shift(g, gf, d)
  local before = tonumber(redis.call('HGET', g, gf) or '0')
  local after = before + d
  if after <= 0 then
    after = 0
    redis.call('HDEL', g, gf)
  else
    redis.call('HSET', g, gf, after)
  end
  return before, after
end
`;

/**
 * Leave marks (ClusterState's module comment): with a mark's lifetime > 0, the change that takes a count to
 * zero sets the mark to `token` for that long, and the change that takes it from zero takes any mark there.
 * Returns 1 when a mark was taken.
 */
const LEAVE_MARK = `
local function leave_mark(key, before, after, ms, token)
  if ms <= 0 then return 0 end
  if before > 0 and after == 0 then
    redis.call('SET', key, token, 'PX', ms)
  elseif before == 0 and after > 0 then
    return redis.call('DEL', key)
  end
  return 0
end
`;

/**
 * KEYS: meta, chans, users, node share, the channel's leave mark (all `{A}`; any of them when the field is
 * not a channel's). ARGV: field, delta, max (-1: none; checked only when adding), mark ms (0: none), mark
 * token. Returns {before, after, refused, mark taken}.
 */
export const APP_DELTA = `${APP_TARGET}${LEAVE_MARK}
local f = ARGV[1]
local d = tonumber(ARGV[2])
local max = tonumber(ARGV[3])
local g, gf = target(f)
local mine = tonumber(redis.call('HGET', KEYS[4], f) or '0')
if mine + d < 0 then d = -mine end
if d == 0 then
  local n = tonumber(redis.call('HGET', g, gf) or '0')
  return {n, n, 0, 0}
end
if d > 0 and max >= 0 then
  local n = tonumber(redis.call('HGET', g, gf) or '0')
  if n + d > max then return {n, n, 1, 0} end
end
if mine + d == 0 then redis.call('HDEL', KEYS[4], f) else redis.call('HSET', KEYS[4], f, mine + d) end
local before, after = shift(g, gf, d)
return {before, after, 0, leave_mark(KEYS[5], before, after, tonumber(ARGV[4]), ARGV[5])}
`;

/**
 * The leave mark of a change found by APP_SET / PRESENCE_SET: with `ms` > 0, set (under `token`) or taken as
 * in LEAVE_MARK. Returns the token when set ('' otherwise) and 1 / 0 for taken, -1 when no mark was asked.
 */
const SET_MARK = `
local function set_mark(key, before, after, ms, token)
  if ms <= 0 then return '', -1 end
  local taken = leave_mark(key, before, after, ms, token)
  if before > 0 and after == 0 then return token, taken end
  return '', taken
end
`;

/**
 * KEYS: meta, chans, users, node share. ARGV: the channels' leave-mark key prefix (`{A}`), a token prefix,
 * then field, wanted share, leave-mark ms (0: none; channel fields only), … Sets the node's shares to the
 * wanted values (0 removes a dead node's share; the local ledger's values restore a share after an outage).
 * Returns {field, before, after, mark token or '', mark taken (1/0, -1: none asked)} for every shared
 * count that changed.
 */
export const APP_SET = `${APP_TARGET}${LEAVE_MARK}${SET_MARK}
local out = {}
for i = 3, #ARGV, 3 do
  local f = ARGV[i]
  local want = tonumber(ARGV[i + 1])
  local mine = tonumber(redis.call('HGET', KEYS[4], f) or '0')
  if want ~= mine then
    if want == 0 then redis.call('HDEL', KEYS[4], f) else redis.call('HSET', KEYS[4], f, want) end
    local g, gf = target(f)
    local before, after = shift(g, gf, want - mine)
    local token, taken = set_mark(ARGV[1] .. string.sub(f, 3), before, after, tonumber(ARGV[i + 2]), ARGV[2] .. ':' .. i)
    out[#out + 1] = f
    out[#out + 1] = before
    out[#out + 1] = after
    out[#out + 1] = token
    out[#out + 1] = taken
  end
end
return out
`;

/**
 * Shared by PRESENCE_DELTA and PRESENCE_SET: moves this node's share of user `u` to `want` (KEYS[3]) and the
 * cluster's socket count by the same amount (KEYS[2]), adding the member (KEYS[1]) on its first socket and
 * removing it on its last. Returns the cluster count before and after.
 */
const PRESENCE_SHIFT = `
local function shift_user(u, mine, want, info)
  if want == 0 then redis.call('HDEL', KEYS[3], u) else redis.call('HSET', KEYS[3], u, want) end
  local before = tonumber(redis.call('HGET', KEYS[2], u) or '0')
  local after = before + want - mine
  if after <= 0 then
    after = 0
    redis.call('HDEL', KEYS[2], u)
    redis.call('HDEL', KEYS[1], u)
  else
    redis.call('HSET', KEYS[2], u, after)
    if before == 0 then redis.call('HSET', KEYS[1], u, info) end
  end
  return before, after
end
`;

/**
 * KEYS: members, sockets, node share, the member's leave mark (all `{A:C}`). ARGV: user, delta, user_info,
 * max members (-1: none), mark ms (0: none), mark token. Returns {before, after, refused, mark taken} in the
 * user's sockets across the cluster.
 */
export const PRESENCE_DELTA = `${PRESENCE_SHIFT}${LEAVE_MARK}
local u = ARGV[1]
local d = tonumber(ARGV[2])
local max = tonumber(ARGV[4])
local before = tonumber(redis.call('HGET', KEYS[2], u) or '0')
local mine = tonumber(redis.call('HGET', KEYS[3], u) or '0')
if mine + d < 0 then d = -mine end
if d == 0 then return {before, before, 0, 0} end
if before == 0 and d > 0 and max >= 0 and redis.call('HLEN', KEYS[1]) >= max then return {0, 0, 1, 0} end
local b, after = shift_user(u, mine, mine + d, ARGV[3])
return {b, after, 0, leave_mark(KEYS[4], b, after, tonumber(ARGV[5]), ARGV[6])}
`;

/**
 * KEYS: members, sockets, node share. ARGV: the members' leave-mark key prefix (`{A:C}`), a token prefix,
 * then user, wanted share, user_info, leave-mark ms (0: none), … Returns {user, before, after, mark token
 * or '', mark taken} for changes, as APP_SET.
 */
export const PRESENCE_SET = `${PRESENCE_SHIFT}${LEAVE_MARK}${SET_MARK}
local out = {}
for i = 3, #ARGV, 4 do
  local u = ARGV[i]
  local want = tonumber(ARGV[i + 1])
  local mine = tonumber(redis.call('HGET', KEYS[3], u) or '0')
  if want ~= mine then
    local before, after = shift_user(u, mine, want, ARGV[i + 2])
    local token, taken = set_mark(ARGV[1] .. u, before, after, tonumber(ARGV[i + 3]), ARGV[2] .. ':' .. i)
    out[#out + 1] = u
    out[#out + 1] = before
    out[#out + 1] = after
    out[#out + 1] = token
    out[#out + 1] = taken
  end
end
return out
`;

/**
 * KEYS: the bucket. ARGV: limit, cost. A per-second budget on Redis's clock (TIME), so every node shares
 * one window. Returns 0 when taken, else 1 (seconds to wait).
 */
export const TAKE_RATE = `
if redis.replicate_commands then redis.replicate_commands() end
local sec = redis.call('TIME')[1]
local limit = tonumber(ARGV[1])
local cost = tonumber(ARGV[2])
local cur = redis.call('HMGET', KEYS[1], 's', 'n')
local used = 0
if cur[1] == sec then used = tonumber(cur[2]) end
if used + cost > limit then return 1 end
redis.call('HSET', KEYS[1], 's', sec, 'n', used + cost)
redis.call('PEXPIRE', KEYS[1], 2000)
return 0
`;

/** KEYS: the cache key. Returns {frame, ms left} or nil. */
export const GET_CACHE = `
local v = redis.call('GET', KEYS[1])
if not v then return nil end
return {v, redis.call('PTTL', KEYS[1])}
`;

/**
 * KEYS: a claim or a mark. ARGV: the value its holder set (the claim's owner, the mark's token). Deletes the
 * key only while it still holds that value, so nobody removes a newer holder's key; 1 when deleted.
 */
export const TAKE_IF_HOLDS = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`;

/** Signatures of the commands above once defined with ioredis `defineCommand`. */
export interface ScriptCommands {
  heraldAppDelta(meta: string, chans: string, users: string, share: string, mark: string, field: string, delta: number, max: number, markMs: number, token: string): Promise<[number, number, number, number]>;
  heraldAppSet(meta: string, chans: string, users: string, share: string, markPrefix: string, tokenPrefix: string, ...triples: (string | number)[]): Promise<(string | number)[]>;
  heraldPresenceDelta(members: string, sockets: string, share: string, mark: string, user: string, delta: number, info: string, max: number, markMs: number, token: string): Promise<[number, number, number, number]>;
  heraldPresenceSet(members: string, sockets: string, share: string, markPrefix: string, tokenPrefix: string, ...quads: (string | number)[]): Promise<(string | number)[]>;
  heraldTakeRate(bucket: string, limit: number, cost: number): Promise<number>;
  heraldGetCache(key: string): Promise<[string, number] | null>;
  heraldTakeIfHolds(key: string, value: string): Promise<number>;
}

export const SCRIPTS: { name: keyof ScriptCommands; keys: number; lua: string }[] = [
  { name: 'heraldAppDelta', keys: 5, lua: APP_DELTA },
  { name: 'heraldAppSet', keys: 4, lua: APP_SET },
  { name: 'heraldPresenceDelta', keys: 4, lua: PRESENCE_DELTA },
  { name: 'heraldPresenceSet', keys: 3, lua: PRESENCE_SET },
  { name: 'heraldTakeRate', keys: 1, lua: TAKE_RATE },
  { name: 'heraldGetCache', keys: 1, lua: GET_CACHE },
  { name: 'heraldTakeIfHolds', keys: 1, lua: TAKE_IF_HOLDS },
];
