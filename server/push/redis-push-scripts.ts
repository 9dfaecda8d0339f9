/**
 * Lua behind RedisPushStore: each script is one atomic step, so device, interest and user indexes never
 * disagree, and a delivery row leaves `pending` (and is counted) exactly once.
 *
 * Every key of an app lives under one hash tag, `{appId}` (see RedisPushStore), so a script may derive the
 * keys it touches from the app's key prefix (ARGV[1]) and still runs on Redis Cluster: they are all in the
 * slot of the key it declares.
 */

const DEVICE_FUNCTIONS = `
local function delete_device(P, id)
  local dk = P .. 'd:' .. id
  local ep = redis.call('HGET', dk, 'endpoint')
  if not ep then return 0 end
  local user = redis.call('HGET', dk, 'userId')
  if redis.call('HGET', P .. 'ep', ep) == id then redis.call('HDEL', P .. 'ep', ep) end
  local di = P .. 'di:' .. id
  for _, i in ipairs(redis.call('SMEMBERS', di)) do redis.call('SREM', P .. 'i:' .. i, id) end
  redis.call('DEL', di, dk)
  redis.call('ZREM', P .. 'seen', id)
  if user then redis.call('SREM', P .. 'u:' .. user, id) end
  return 1
end
local function set_interests(P, id, first)
  local di = P .. 'di:' .. id
  local keep = {}
  for j = first, #ARGV do keep[ARGV[j]] = true end
  for _, i in ipairs(redis.call('SMEMBERS', di)) do
    if not keep[i] then
      redis.call('SREM', P .. 'i:' .. i, id)
      redis.call('SREM', di, i)
    end
  end
  for j = first, #ARGV do
    redis.call('SADD', di, ARGV[j])
    redis.call('SADD', P .. 'i:' .. ARGV[j], id)
  end
end
`;

/** KEYS: ep. ARGV: P, endpoint, new id, p256dh, auth, key id, now, replace interests (1/0), interests… → {id, created}. */
const REGISTER = `${DEVICE_FUNCTIONS}
local P = ARGV[1]
local id = redis.call('HGET', KEYS[1], ARGV[2])
local created = 0
if not id then
  id = ARGV[3]
  created = 1
  redis.call('HSET', KEYS[1], ARGV[2], id)
  redis.call('HSET', P .. 'd:' .. id, 'endpoint', ARGV[2], 'createdAt', ARGV[7])
end
redis.call('HSET', P .. 'd:' .. id, 'p256dh', ARGV[4], 'auth', ARGV[5], 'keyId', ARGV[6], 'updatedAt', ARGV[7])
redis.call('ZADD', P .. 'seen', ARGV[7], id)
if ARGV[8] == '1' then set_interests(P, id, 9) end
return {id, created}
`;

/**
 * KEYS: ep. ARGV: P, id, endpoint, p256dh, auth, key id, now, old endpoint → 1 renewed, 0 unknown device (or
 * its endpoint is not the old one given), 2 the endpoint is another device's. The old endpoint stops naming
 * the device; interests and user stay.
 */
const RENEW = `
local P, id = ARGV[1], ARGV[2]
local dk = P .. 'd:' .. id
local old = redis.call('HGET', dk, 'endpoint')
if not old or old ~= ARGV[8] then return 0 end
local owner = redis.call('HGET', KEYS[1], ARGV[3])
if owner and owner ~= id then return 2 end
if redis.call('HGET', KEYS[1], old) == id then redis.call('HDEL', KEYS[1], old) end
redis.call('HSET', KEYS[1], ARGV[3], id)
redis.call('HSET', dk, 'endpoint', ARGV[3], 'p256dh', ARGV[4], 'auth', ARGV[5], 'keyId', ARGV[6], 'updatedAt', ARGV[7])
redis.call('ZADD', P .. 'seen', ARGV[7], id)
return 1
`;

/** KEYS: ep. ARGV: P, id → 1 deleted, 0 unknown. */
const DELETE_DEVICE = `${DEVICE_FUNCTIONS}
return delete_device(ARGV[1], ARGV[2])
`;

/** KEYS: ep. ARGV: P, id, interests… → 1, or 0 for an unknown device. */
const SET_INTERESTS = `${DEVICE_FUNCTIONS}
if redis.call('EXISTS', ARGV[1] .. 'd:' .. ARGV[2]) == 0 then return 0 end
set_interests(ARGV[1], ARGV[2], 3)
return 1
`;

/** KEYS: ep. ARGV: P, id, interest, max → 0 missing, 1 added, 2 exists, 3 full. */
const ADD_INTEREST = `
local P, id, interest = ARGV[1], ARGV[2], ARGV[3]
if redis.call('EXISTS', P .. 'd:' .. id) == 0 then return 0 end
local di = P .. 'di:' .. id
if redis.call('SISMEMBER', di, interest) == 1 then return 2 end
if redis.call('SCARD', di) >= tonumber(ARGV[4]) then return 3 end
redis.call('SADD', di, interest)
redis.call('SADD', P .. 'i:' .. interest, id)
return 1
`;

/** KEYS: ep. ARGV: P, id, interest → 0 missing, 1 done. */
const REMOVE_INTEREST = `
local P, id, interest = ARGV[1], ARGV[2], ARGV[3]
if redis.call('EXISTS', P .. 'd:' .. id) == 0 then return 0 end
redis.call('SREM', P .. 'di:' .. id, interest)
redis.call('SREM', P .. 'i:' .. interest, id)
return 1
`;

/** KEYS: ep. ARGV: P, id, user, now → 0 missing, 1 ok, 2 bound to another user. */
const SET_USER = `
local P, id, user = ARGV[1], ARGV[2], ARGV[3]
local dk = P .. 'd:' .. id
if redis.call('EXISTS', dk) == 0 then return 0 end
local cur = redis.call('HGET', dk, 'userId')
if cur and cur ~= user then return 2 end
redis.call('HSET', dk, 'userId', user, 'updatedAt', ARGV[4])
redis.call('ZADD', P .. 'seen', ARGV[4], ARGV[2])
redis.call('SADD', P .. 'u:' .. user, id)
return 1
`;

/**
 * KEYS: ep. ARGV: P, before (ms), limit → ids of the devices deleted: those last registered before `before`
 * (`seen`). An entry whose device is already gone is just dropped.
 */
const PRUNE_IDLE = `${DEVICE_FUNCTIONS}
local P = ARGV[1]
local ids = redis.call('ZRANGEBYSCORE', P .. 'seen', '-inf', '(' .. ARGV[2], 'LIMIT', 0, tonumber(ARGV[3]))
local deleted = {}
for _, id in ipairs(ids) do
  if delete_device(P, id) == 1 then deleted[#deleted + 1] = id else redis.call('ZREM', P .. 'seen', id) end
end
return deleted
`;

/** KEYS: ep. ARGV: P, user → devices deleted. */
const DELETE_USER = `${DEVICE_FUNCTIONS}
local P = ARGV[1]
local n = 0
for _, id in ipairs(redis.call('SMEMBERS', P .. 'u:' .. ARGV[2])) do n = n + delete_device(P, id) end
redis.call('DEL', P .. 'u:' .. ARGV[2])
return n
`;

/** KEYS: keys, current. ARGV: id, JSON → 1 stored, 0 the app already had a key. */
const INIT_KEY = `
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('SET', KEYS[2], ARGV[1])
return 1
`;

/** KEYS: keys, current. ARGV: id, JSON. */
const USE_KEY = `
redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2])
redis.call('SET', KEYS[2], ARGV[1])
return 1
`;

/**
 * KEYS: due. ARGV: P, now, limit, lease until. Leases the due rows (their score becomes the lease's end) and
 * returns {{publish, device, attempts, device hash as a flat list}, …}. Rows already final are dropped.
 */
const CLAIM = `
local P = ARGV[1]
local items = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[2], 'LIMIT', 0, tonumber(ARGV[3]))
local out = {}
for _, m in ipairs(items) do
  local sep = string.find(m, '|', 1, true)
  local pub = string.sub(m, 1, sep - 1)
  local dev = string.sub(m, sep + 1)
  local st = redis.call('HGET', P .. 'r:' .. pub, dev)
  if st and string.sub(st, 1, 1) == 'p' then
    redis.call('ZADD', KEYS[1], ARGV[4], m)
    out[#out + 1] = {pub, dev, tonumber(string.sub(st, 2)), redis.call('HGETALL', P .. 'd:' .. dev)}
  else
    redis.call('ZREM', KEYS[1], m)
  end
end
return out
`;

/** KEYS: sched. ARGV: now, limit, lease until → publish ids, leased. */
const CLAIM_SCHEDULED = `
local items = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for _, id in ipairs(items) do redis.call('ZADD', KEYS[1], ARGV[3], id) end
return items
`;

/**
 * KEYS: due, rows, publish, done. ARGV: member, device, outcome (s/f/e/retry), next attempt, now, publish id.
 * → 1 recorded, 0 ignored (the row was already final).
 */
const FINISH = `
local cur = redis.call('HGET', KEYS[2], ARGV[2])
if not cur or string.sub(cur, 1, 1) ~= 'p' then return 0 end
if ARGV[3] == 'retry' then
  redis.call('HSET', KEYS[2], ARGV[2], 'p' .. (tonumber(string.sub(cur, 2)) + 1))
  redis.call('ZADD', KEYS[1], ARGV[4], ARGV[1])
  return 1
end
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
local field = 'sent'
if ARGV[3] == 'f' then field = 'failed' elseif ARGV[3] == 'e' then field = 'expired' end
redis.call('HINCRBY', KEYS[3], field, 1)
local left = redis.call('HINCRBY', KEYS[3], 'pending', -1)
if left <= 0 and redis.call('HGET', KEYS[3], 'status') == 'delivering' then
  redis.call('HSET', KEYS[3], 'status', 'done', 'finishedAt', ARGV[5])
  redis.call('ZADD', KEYS[4], ARGV[5], ARGV[6])
end
return 1
`;

/** KEYS: rows, publish, due. ARGV: publish id, due at, devices… Adds missing rows of a scheduled publish → rows added, -1 if not scheduled. */
const EXPAND = `
if redis.call('HGET', KEYS[2], 'status') ~= 'scheduled' then return -1 end
local added = 0
for i = 3, #ARGV do
  if redis.call('HSETNX', KEYS[1], ARGV[i], 'p0') == 1 then
    redis.call('ZADD', KEYS[3], ARGV[2], ARGV[1] .. '|' .. ARGV[i])
    added = added + 1
  end
end
if added > 0 then
  redis.call('HINCRBY', KEYS[2], 'targeted', added)
  redis.call('HINCRBY', KEYS[2], 'pending', added)
end
return added
`;

/** KEYS: publish, sched, done. ARGV: publish id, now. Ends the expansion of a scheduled publish. */
const START = `
if redis.call('HGET', KEYS[1], 'status') ~= 'scheduled' then return 0 end
redis.call('ZREM', KEYS[2], ARGV[1])
if tonumber(redis.call('HGET', KEYS[1], 'pending') or '0') > 0 then
  redis.call('HSET', KEYS[1], 'status', 'delivering')
else
  redis.call('HSET', KEYS[1], 'status', 'done', 'finishedAt', ARGV[2])
  redis.call('ZADD', KEYS[3], ARGV[2], ARGV[1])
end
return 1
`;

/**
 * KEYS: ep, rows, publish. ARGV: P, endpoint, report bits, publish id. A service worker's report: the
 * device's bits go to \`P rep:<publish>\` and each newly set bit counts once (1 delivered, 2 opened)
 * → the bits newly set (0: a repeat), -1 no such device in the publish.
 */
const REPORT = `
local id = redis.call('HGET', KEYS[1], ARGV[2])
if not id or redis.call('HEXISTS', KEYS[2], id) == 0 then return -1 end
local rep = ARGV[1] .. 'rep:' .. ARGV[4]
local old = tonumber(redis.call('HGET', rep, id) or '0')
local added = bit.band(tonumber(ARGV[3]), bit.bnot(old))
if added == 0 then return 0 end
redis.call('HSET', rep, id, bit.bor(old, added))
if bit.band(added, 1) ~= 0 then redis.call('HINCRBY', KEYS[3], 'delivered', 1) end
if bit.band(added, 2) ~= 0 then redis.call('HINCRBY', KEYS[3], 'opened', 1) end
return added
`;

/** Signatures once defined with ioredis `defineCommand`. */
export interface PushScriptCommands {
  pushRegister(ep: string, ...args: (string | number)[]): Promise<[string, number]>;
  pushDeleteDevice(ep: string, prefix: string, id: string): Promise<number>;
  pushSetInterests(ep: string, prefix: string, id: string, ...interests: string[]): Promise<number>;
  pushAddInterest(ep: string, prefix: string, id: string, interest: string, max: number): Promise<number>;
  pushRemoveInterest(ep: string, prefix: string, id: string, interest: string): Promise<number>;
  pushSetUser(ep: string, prefix: string, id: string, user: string, now: number): Promise<number>;
  pushDeleteUser(ep: string, prefix: string, user: string): Promise<number>;
  pushPruneIdle(ep: string, prefix: string, before: number, limit: number): Promise<string[]>;
  pushInitKey(keys: string, current: string, id: string, json: string): Promise<number>;
  pushUseKey(keys: string, current: string, id: string, json: string): Promise<number>;
  pushClaim(due: string, prefix: string, now: number, limit: number, leaseUntil: number): Promise<[string, string, number, string[]][]>;
  pushClaimScheduled(sched: string, now: number, limit: number, leaseUntil: number): Promise<string[]>;
  pushFinish(due: string, rows: string, publish: string, done: string, member: string, device: string, outcome: string, nextAt: number, now: number, publishId: string): Promise<number>;
  pushExpand(rows: string, publish: string, due: string, publishId: string, dueAt: number, ...devices: string[]): Promise<number>;
  pushStart(publish: string, sched: string, done: string, publishId: string, now: number): Promise<number>;
  pushRenew(ep: string, prefix: string, id: string, endpoint: string, p256dh: string, auth: string, keyId: string, now: number, oldEndpoint: string): Promise<number>;
  pushReport(ep: string, rows: string, publish: string, prefix: string, endpoint: string, bits: number, publishId: string): Promise<number>;
}

export const PUSH_SCRIPTS: { name: keyof PushScriptCommands; keys: number; lua: string }[] = [
  { name: 'pushRegister', keys: 1, lua: REGISTER },
  { name: 'pushDeleteDevice', keys: 1, lua: DELETE_DEVICE },
  { name: 'pushSetInterests', keys: 1, lua: SET_INTERESTS },
  { name: 'pushAddInterest', keys: 1, lua: ADD_INTEREST },
  { name: 'pushRemoveInterest', keys: 1, lua: REMOVE_INTEREST },
  { name: 'pushSetUser', keys: 1, lua: SET_USER },
  { name: 'pushDeleteUser', keys: 1, lua: DELETE_USER },
  { name: 'pushPruneIdle', keys: 1, lua: PRUNE_IDLE },
  { name: 'pushInitKey', keys: 2, lua: INIT_KEY },
  { name: 'pushUseKey', keys: 2, lua: USE_KEY },
  { name: 'pushClaim', keys: 1, lua: CLAIM },
  { name: 'pushClaimScheduled', keys: 1, lua: CLAIM_SCHEDULED },
  { name: 'pushFinish', keys: 4, lua: FINISH },
  { name: 'pushExpand', keys: 3, lua: EXPAND },
  { name: 'pushStart', keys: 3, lua: START },
  { name: 'pushReport', keys: 3, lua: REPORT },
  { name: 'pushRenew', keys: 1, lua: RENEW },
];
