/**
 * The cluster push store, in Redis. Every key of an app shares the hash tag `{appId}` so that multi-key
 * scripts and MULTI blocks also work on Redis Cluster. With P = `<prefix>push:{<appId>}:`:
 *
 *   P keys          hash  key id → JSON { publicKey, privateKey, createdAt }
 *   P key           string  id of the current key
 *   P ep            hash  endpoint → device id (one device per endpoint)
 *   P d:<device>    hash  endpoint, p256dh, auth, keyId, userId?, createdAt, updatedAt
 *   P di:<device>   set   the device's interests
 *   P i:<interest>  set   devices holding the interest
 *   P u:<user>      set   the user's devices
 *   P seen          zset  device → updatedAt (ms), for deleting idle devices
 *   P seen:v1       string  set once every device older than `seen` has been added to it
 *   P p:<publish>   hash  the publish (kind, targets, payload, ttl, …, status) and its counts
 *   P r:<publish>   hash  device → `p<attempts>` while pending, then `s` sent, `f` failed, `e` expired
 *   P rep:<publish> hash  device → what its service worker reported (bits: 1 delivered, 2 opened)
 *   P due           zset  `<publish>|<device>` → due time (ms); a claim moves it to the lease's end
 *   P sched         zset  scheduled publish → deliverAt (ms), leased the same way
 *   P done          zset  finished publish → finish time, for pruning
 *
 * A node that dies holding claims loses nothing: their scores are the lease's end, so they come due again.
 */
import type { Logger } from 'pino';
import { connectWithin, createRedisClient, type RedisClient, type RedisSpec, closeRedis } from '../cluster/redis-connection';
import type { Urgency } from './PushSender';
import {
  REPORT_BITS,
  type AddInterestResult,
  type ClaimedDelivery,
  type DeliveryResult,
  type DeviceRecord,
  type NewDevice,
  type PublishRecord,
  type PublishStatus,
  type PushReport,
  type PushStore,
  type RenewedSubscription,
  type RenewResult,
  type ReportCounted,
  type SetUserResult,
  type StoredVapidKey,
} from './PushStore';
import { PUSH_SCRIPTS, type PushScriptCommands } from './redis-push-scripts';

/** Rows per command when writing a publish's audience. */
const CHUNK = 1000;
const OUTCOME_CODE = { sent: 's', failed: 'f', gone: 'f', expired: 'e' } as const;

export interface RedisPushStoreOptions {
  spec: RedisSpec;
  /** The cluster's key prefix (`redisPrefix`, default `herald:`); push keys go under `<prefix>push:`. */
  prefix: string;
  log: Logger;
  /** How long `open()` waits for Redis before going on (commands fail until it is reachable). */
  connectTimeoutMs?: number;
}

function toDevice(id: string, h: Record<string, string>): DeviceRecord | null {
  if (!h.endpoint) return null;
  return {
    id,
    endpoint: h.endpoint,
    p256dh: h.p256dh ?? '',
    auth: h.auth ?? '',
    keyId: h.keyId ?? '',
    userId: h.userId ?? null,
    createdAt: Number(h.createdAt ?? 0),
    updatedAt: Number(h.updatedAt ?? 0),
  };
}

function flatToRecord(flat: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) out[flat[i]] = flat[i + 1];
  return out;
}

function toPublish(id: string, h: Record<string, string>): PublishRecord {
  const p: PublishRecord = {
    id,
    kind: h.kind as PublishRecord['kind'],
    targets: JSON.parse(h.targets ?? '[]') as string[],
    payload: h.payload ?? '',
    ttl: Number(h.ttl ?? 0),
    createdAt: Number(h.createdAt ?? 0),
    deliverAt: Number(h.deliverAt ?? 0),
    expiresAt: Number(h.expiresAt ?? 0),
  };
  if (h.urgency) p.urgency = h.urgency as Urgency;
  if (h.topic) p.topic = h.topic;
  return p;
}

/** PushStore in Redis (see the module comment for the keys). */
export class RedisPushStore implements PushStore {
  readonly name = 'redis';
  private readonly redis: RedisClient;
  private readonly cmd: PushScriptCommands;
  private readonly prefix: string;
  private readonly log: Logger;
  private readonly connectTimeoutMs: number;
  /** Apps whose devices are all in the `seen` index (see indexSeen). */
  private readonly seenIndexed = new Set<string>();

  constructor(opts: RedisPushStoreOptions) {
    this.prefix = `${opts.prefix}push:`;
    this.log = opts.log;
    this.connectTimeoutMs = opts.connectTimeoutMs ?? 5000;
    this.redis = createRedisClient(opts.spec, 'push');
    for (const s of PUSH_SCRIPTS) this.redis.defineCommand(s.name, { numberOfKeys: s.keys, lua: s.lua });
    this.cmd = this.redis as unknown as PushScriptCommands;
    this.redis.on('error', (err: Error) => this.log.debug({ err: err.message }, 'push store redis error'));
  }

  /** The key prefix of an app's push data (ends with `:`). */
  appPrefix(appId: string): string {
    return `${this.prefix}{${appId}}:`;
  }

  async open(): Promise<void> {
    try {
      await connectWithin(this.redis, this.connectTimeoutMs);
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'push store: Redis is not reachable yet; push requests fail until it is');
    }
  }

  async close(): Promise<void> {
    await closeRedis(this.redis);
  }

  // ---------------------------------------------------------------- VAPID keys

  async vapidKeys(appId: string): Promise<StoredVapidKey[]> {
    const P = this.appPrefix(appId);
    const [all, current] = await Promise.all([this.redis.hgetall(`${P}keys`), this.redis.get(`${P}key`)]);
    return Object.entries(all)
      .map(([id, json]) => {
        const k = JSON.parse(json) as { publicKey: string; privateKey: string; createdAt: number };
        return { id, publicKey: k.publicKey, privateKey: k.privateKey, createdAt: k.createdAt, current: id === current };
      })
      .sort((a, b) => a.createdAt - b.createdAt || a.id.localeCompare(b.id));
  }

  private keyJson(key: Omit<StoredVapidKey, 'current'>): string {
    return JSON.stringify({ publicKey: key.publicKey, privateKey: key.privateKey, createdAt: key.createdAt });
  }

  async initVapidKey(appId: string, key: Omit<StoredVapidKey, 'current'>): Promise<void> {
    const P = this.appPrefix(appId);
    await this.cmd.pushInitKey(`${P}keys`, `${P}key`, key.id, this.keyJson(key));
  }

  async useVapidKey(appId: string, key: Omit<StoredVapidKey, 'current'>): Promise<void> {
    const P = this.appPrefix(appId);
    await this.cmd.pushUseKey(`${P}keys`, `${P}key`, key.id, this.keyJson(key));
  }

  // ---------------------------------------------------------------- devices

  async registerDevice(appId: string, d: NewDevice): Promise<{ deviceId: string; created: boolean }> {
    const P = this.appPrefix(appId);
    const [deviceId, created] = await this.cmd.pushRegister(
      `${P}ep`,
      P,
      d.endpoint,
      d.id,
      d.p256dh,
      d.auth,
      d.keyId,
      d.now,
      d.interests ? '1' : '0',
      ...(d.interests ?? []),
    );
    return { deviceId, created: Number(created) === 1 };
  }

  async renewSubscription(appId: string, deviceId: string, oldEndpoint: string, sub: RenewedSubscription): Promise<RenewResult> {
    const P = this.appPrefix(appId);
    const r = await this.cmd.pushRenew(`${P}ep`, P, deviceId, sub.endpoint, sub.p256dh, sub.auth, sub.keyId, sub.now, oldEndpoint);
    return r === 1 ? 'ok' : r === 2 ? 'conflict' : 'missing';
  }

  async device(appId: string, deviceId: string): Promise<DeviceRecord | null> {
    return toDevice(deviceId, await this.redis.hgetall(`${this.appPrefix(appId)}d:${deviceId}`));
  }

  async deleteDevice(appId: string, deviceId: string): Promise<boolean> {
    const P = this.appPrefix(appId);
    return (await this.cmd.pushDeleteDevice(`${P}ep`, P, deviceId)) === 1;
  }

  async interests(appId: string, deviceId: string): Promise<string[] | null> {
    const P = this.appPrefix(appId);
    const [exists, members] = await Promise.all([this.redis.exists(`${P}d:${deviceId}`), this.redis.smembers(`${P}di:${deviceId}`)]);
    return exists === 1 ? members.sort() : null;
  }

  async setInterests(appId: string, deviceId: string, interests: string[]): Promise<boolean> {
    const P = this.appPrefix(appId);
    return (await this.cmd.pushSetInterests(`${P}ep`, P, deviceId, ...interests)) === 1;
  }

  async addInterest(appId: string, deviceId: string, interest: string, max: number): Promise<AddInterestResult> {
    const P = this.appPrefix(appId);
    const r = await this.cmd.pushAddInterest(`${P}ep`, P, deviceId, interest, max);
    return (['missing', 'added', 'exists', 'full'] as const)[r] ?? 'missing';
  }

  async removeInterest(appId: string, deviceId: string, interest: string): Promise<boolean> {
    const P = this.appPrefix(appId);
    return (await this.cmd.pushRemoveInterest(`${P}ep`, P, deviceId, interest)) === 1;
  }

  async setUser(appId: string, deviceId: string, userId: string): Promise<SetUserResult> {
    const P = this.appPrefix(appId);
    const r = await this.cmd.pushSetUser(`${P}ep`, P, deviceId, userId, Date.now());
    return r === 1 ? 'ok' : r === 2 ? 'conflict' : 'missing';
  }

  async deleteUser(appId: string, userId: string): Promise<number> {
    const P = this.appPrefix(appId);
    return this.cmd.pushDeleteUser(`${P}ep`, P, userId);
  }

  async devicesForInterests(appId: string, interests: string[]): Promise<string[]> {
    if (interests.length === 0) return [];
    const P = this.appPrefix(appId);
    return this.redis.sunion(...interests.map((i) => `${P}i:${i}`));
  }

  async devicesForUsers(appId: string, userIds: string[]): Promise<string[]> {
    if (userIds.length === 0) return [];
    const P = this.appPrefix(appId);
    return this.redis.sunion(...userIds.map((u) => `${P}u:${u}`));
  }

  // ---------------------------------------------------------------- publishes and deliveries

  async createPublish(appId: string, p: PublishRecord, audience: { deviceIds: string[]; skippedOnline: number } | null): Promise<void> {
    const P = this.appPrefix(appId);
    const fields: Record<string, string | number> = {
      kind: p.kind,
      targets: JSON.stringify(p.targets),
      payload: p.payload,
      ttl: p.ttl,
      createdAt: p.createdAt,
      deliverAt: p.deliverAt,
      expiresAt: p.expiresAt,
      sent: 0,
      expired: 0,
      failed: 0,
    };
    if (p.urgency) fields.urgency = p.urgency;
    if (p.topic) fields.topic = p.topic;
    // One MULTI: the publish and all of its rows are stored together or not at all.
    const tx = this.redis.multi();
    if (!audience) {
      Object.assign(fields, { status: 'scheduled', targeted: 0, skippedOnline: 0, pending: 0 });
      tx.hset(`${P}p:${p.id}`, fields);
      tx.zadd(`${P}sched`, p.deliverAt, p.id);
    } else {
      const devices = [...new Set(audience.deviceIds)];
      const n = devices.length;
      Object.assign(fields, {
        status: n > 0 ? 'delivering' : 'done',
        targeted: n + audience.skippedOnline,
        skippedOnline: audience.skippedOnline,
        pending: n,
      });
      if (n === 0) fields.finishedAt = p.createdAt;
      tx.hset(`${P}p:${p.id}`, fields);
      for (let i = 0; i < n; i += CHUNK) {
        const chunk = devices.slice(i, i + CHUNK);
        tx.hset(`${P}r:${p.id}`, Object.fromEntries(chunk.map((d) => [d, 'p0'])));
        tx.zadd(`${P}due`, ...chunk.flatMap((d) => [p.deliverAt, `${p.id}|${d}`]));
      }
      if (n === 0) tx.zadd(`${P}done`, p.createdAt, p.id);
    }
    const results = await tx.exec();
    const failed = results?.find(([err]) => err);
    if (!results || failed) throw failed?.[0] ?? new Error('push store: publish transaction was aborted');
  }

  async claimScheduled(appId: string, now: number, limit: number, leaseUntil: number): Promise<PublishRecord[]> {
    const P = this.appPrefix(appId);
    const ids = await this.cmd.pushClaimScheduled(`${P}sched`, now, limit, leaseUntil);
    const out: PublishRecord[] = [];
    for (const id of ids) {
      const h = await this.redis.hgetall(`${P}p:${id}`);
      if (h.status === 'scheduled') out.push(toPublish(id, h));
      else await this.redis.zrem(`${P}sched`, id);
    }
    return out;
  }

  async expandPublish(appId: string, publishId: string, deviceIds: string[], now: number): Promise<void> {
    const P = this.appPrefix(appId);
    const devices = [...new Set(deviceIds)];
    // Each chunk is atomic and idempotent (HSETNX), and the publish stays `scheduled` until the last one,
    // so a crash midway is finished by whichever node claims the publish next.
    for (let i = 0; i < devices.length; i += CHUNK) {
      const added = await this.cmd.pushExpand(`${P}r:${publishId}`, `${P}p:${publishId}`, `${P}due`, publishId, now, ...devices.slice(i, i + CHUNK));
      if (added < 0) return;
    }
    await this.cmd.pushStart(`${P}p:${publishId}`, `${P}sched`, `${P}done`, publishId, now);
  }

  async publish(appId: string, publishId: string): Promise<PublishStatus | null> {
    const h = await this.redis.hgetall(`${this.appPrefix(appId)}p:${publishId}`);
    if (!h.kind) return null;
    return {
      ...toPublish(publishId, h),
      status: h.status as PublishStatus['status'],
      targeted: Number(h.targeted ?? 0),
      sent: Number(h.sent ?? 0),
      skippedOnline: Number(h.skippedOnline ?? 0),
      expired: Number(h.expired ?? 0),
      failed: Number(h.failed ?? 0),
      pending: Number(h.pending ?? 0),
      delivered: Number(h.delivered ?? 0),
      opened: Number(h.opened ?? 0),
    };
  }

  async recordReport(appId: string, publishId: string, endpoint: string, report: PushReport): Promise<ReportCounted | null> {
    const P = this.appPrefix(appId);
    const added = await this.cmd.pushReport(`${P}ep`, `${P}r:${publishId}`, `${P}p:${publishId}`, P, endpoint, REPORT_BITS[report], publishId);
    return added < 0 ? null : added;
  }

  async claimDeliveries(appId: string, now: number, limit: number, leaseUntil: number): Promise<ClaimedDelivery[]> {
    const P = this.appPrefix(appId);
    const rows = await this.cmd.pushClaim(`${P}due`, P, now, limit, leaseUntil);
    return rows.map(([publishId, deviceId, attempts, flat]) => ({
      publishId,
      deviceId,
      attempts: Number(attempts),
      device: toDevice(deviceId, flatToRecord(flat)),
    }));
  }

  async finishDeliveries(appId: string, results: DeliveryResult[], now: number): Promise<void> {
    if (results.length === 0) return;
    const P = this.appPrefix(appId);
    const pipe = this.redis.pipeline() as unknown as PushScriptCommands & { exec(): Promise<[Error | null, unknown][] | null> };
    for (const r of results) {
      const outcome = r.outcome === 'retry' ? 'retry' : OUTCOME_CODE[r.outcome];
      const nextAt = r.outcome === 'retry' ? r.nextAt : 0;
      void pipe.pushFinish(`${P}due`, `${P}r:${r.publishId}`, `${P}p:${r.publishId}`, `${P}done`, `${r.publishId}|${r.deviceId}`, r.deviceId, outcome, nextAt, now, r.publishId);
      if (r.outcome === 'gone') void pipe.pushDeleteDevice(`${P}ep`, P, r.deviceId);
    }
    const replies = await pipe.exec();
    const failed = replies?.find(([err]) => err);
    if (failed) throw failed[0];
  }

  async releaseDeliveries(appId: string, rows: { publishId: string; deviceId: string }[], now: number): Promise<void> {
    if (rows.length === 0) return;
    const P = this.appPrefix(appId);
    const pipe = this.redis.pipeline();
    // XX: a row finished meanwhile has left the queue and must not come back.
    for (const r of rows) pipe.zadd(`${P}due`, 'XX', now, `${r.publishId}|${r.deviceId}`);
    await pipe.exec();
  }

  async nextDueAt(appId: string): Promise<number | null> {
    const P = this.appPrefix(appId);
    const [a, b] = await Promise.all([this.redis.zrange(`${P}due`, 0, 0, 'WITHSCORES'), this.redis.zrange(`${P}sched`, 0, 0, 'WITHSCORES')]);
    const times = [a[1], b[1]].filter((x): x is string => x !== undefined).map(Number);
    return times.length === 0 ? null : Math.min(...times);
  }

  async pruneIdleDevices(appId: string, before: number, limit: number): Promise<string[]> {
    const P = this.appPrefix(appId);
    if (!this.seenIndexed.has(appId)) {
      await this.indexSeen(P);
      this.seenIndexed.add(appId);
    }
    return this.cmd.pushPruneIdle(`${P}ep`, P, before, limit);
  }

  /**
   * Devices registered before the `seen` index existed are added to it once per app, with their
   * `updatedAt`; NX keeps a newer time that a registration wrote meanwhile.
   */
  private async indexSeen(P: string): Promise<void> {
    if ((await this.redis.exists(`${P}seen:v1`)) === 1) return;
    let cursor = '0';
    do {
      const [next, pairs] = await this.redis.hscan(`${P}ep`, cursor, 'COUNT', 500);
      cursor = next;
      const ids = pairs.filter((_, i) => i % 2 === 1);
      if (ids.length === 0) continue;
      const times = await Promise.all(ids.map((id) => this.redis.hget(`${P}d:${id}`, 'updatedAt')));
      const tx = this.redis.pipeline();
      ids.forEach((id, i) => {
        if (times[i] !== null) tx.zadd(`${P}seen`, 'NX', Number(times[i]), id);
      });
      await tx.exec();
    } while (cursor !== '0');
    await this.redis.set(`${P}seen:v1`, '1');
  }

  async prune(appId: string, before: number): Promise<void> {
    const P = this.appPrefix(appId);
    for (;;) {
      const ids = await this.redis.zrangebyscore(`${P}done`, '-inf', `(${before}`, 'LIMIT', 0, 500);
      if (ids.length === 0) return;
      const tx = this.redis.multi();
      for (const id of ids) tx.del(`${P}p:${id}`, `${P}r:${id}`, `${P}rep:${id}`);
      tx.zrem(`${P}done`, ...ids);
      await tx.exec();
    }
  }
}
