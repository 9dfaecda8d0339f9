import { type PresenceMemberParts, presenceMemberParts, presenceSubscribedFrame } from '../../sdk/protocol';
import { markId, type CachedEvent, type ClusterState, type MarkKey, type MemberJoin, type MemberLeave, type SubscriberChange } from './ClusterState';
import type { FramePieces } from '../ws/frame';
import { MemberBytes } from './presence-bytes';

interface Member {
  sockets: number;
  /** user_info as JSON text. */
  info: string;
  /** This member's pieces of the subscription_succeeded frame, escaped once at join. */
  parts: PresenceMemberParts;
}

interface Presence {
  users: Map<string, Member>;
  /**
   * The members' frame parts as bytes, in join order; appended to as members join, rebuilt from `users`
   * after a leave. null: rebuild before use.
   */
  bytes: MemberBytes | null;
  /** The last reply built, until the members change: joins of a user already present reuse it. */
  frame: FramePieces | null;
}

/** How often, at most, expired cache entries and marks are swept out (ms). */
const SWEEP_EVERY_MS = 60_000;

/**
 * Cluster state for a single node, in memory. Every call is O(1) (but for a sweep of expired entries at most
 * once a minute) and answers in the same tick.
 */
export class LocalState implements ClusterState {
  readonly name = 'local';
  private readonly connections = new Map<string, number>();
  /** `${appId}\n${channel}` → subscription count */
  private readonly subscribers = new Map<string, number>();
  private readonly presence = new Map<string, Presence>();
  private readonly users = new Map<string, number>();
  private readonly cache = new Map<string, { frame: string; expires: number }>();
  /**
   * `${appId}\n${bucket}` → what was taken in the current second. Emptied when the second changes: bucket
   * names carry client addresses (the push device API's per-IP budgets), so entries kept past their second
   * would pile up, one per address ever seen.
   */
  private readonly rates = new Map<string, number>();
  private ratesSecond = 0;
  /** markId(…) → a pending leave's mark. */
  private readonly marks = new Map<string, { token: string; expires: number }>();
  /** When expired cache entries and marks were last swept out (see sweepExpired). */
  private lastSweep = Date.now();
  /** Tokens of the marks set by transitions; unique within the process (RedisState prefixes its node id). */
  private markTokens = 0;
  /** `${appId}\n${channel}` → device id → sockets (Web Push liveness). */
  private readonly devices = new Map<string, Map<string, number>>();

  async start(): Promise<void> {}
  async stop(): Promise<void> {}
  healthy(): boolean {
    return true;
  }

  async addConnection(appId: string, max: number): Promise<boolean> {
    const n = this.connections.get(appId) ?? 0;
    if (max >= 0 && n >= max) return false;
    this.connections.set(appId, n + 1);
    return true;
  }

  async removeConnection(appId: string): Promise<void> {
    const n = (this.connections.get(appId) ?? 0) - 1;
    if (n > 0) this.connections.set(appId, n);
    else this.connections.delete(appId);
  }

  async connectionCount(appId: string): Promise<number> {
    return this.connections.get(appId) ?? 0;
  }

  async addSubscriber(appId: string, channel: string, markMs = 0): Promise<SubscriberChange> {
    const k = `${appId}\n${channel}`;
    const count = (this.subscribers.get(k) ?? 0) + 1;
    this.subscribers.set(k, count);
    const rejoined = count === 1 && markMs > 0 && this.takeMarkNow(markId(appId, channel, null));
    return { count, occupied: count === 1, vacated: false, mark: null, rejoined };
  }

  async removeSubscriber(appId: string, channel: string, markMs = 0): Promise<SubscriberChange> {
    const k = `${appId}\n${channel}`;
    const prev = this.subscribers.get(k) ?? 0;
    const count = Math.max(0, prev - 1);
    if (count === 0) this.subscribers.delete(k);
    else this.subscribers.set(k, count);
    const vacated = prev === 1;
    const mark = vacated && markMs > 0 ? this.markNow(markId(appId, channel, null), markMs) : null;
    return { count, occupied: false, vacated, mark, rejoined: false };
  }

  async subscriberCount(appId: string, channel: string): Promise<number> {
    return this.subscribers.get(`${appId}\n${channel}`) ?? 0;
  }

  async channels(appId: string, prefix: string): Promise<Map<string, number>> {
    const out = new Map<string, number>();
    const head = `${appId}\n${prefix}`;
    for (const [k, n] of this.subscribers) {
      if (k.startsWith(head)) out.set(k.slice(appId.length + 1), n);
    }
    return out;
  }

  async addMember(appId: string, channel: string, userId: string, info: string, max: number, markMs = 0): Promise<MemberJoin> {
    const k = `${appId}\n${channel}`;
    let p = this.presence.get(k);
    if (!p) {
      p = { users: new Map(), bytes: new MemberBytes(), frame: null };
      this.presence.set(k, p);
    }
    const u = p.users.get(userId);
    if (u) {
      u.sockets++;
      return { added: false, full: false, rejoined: false };
    }
    if (p.users.size >= max) {
      if (p.users.size === 0) this.presence.delete(k);
      return { added: false, full: true, rejoined: false };
    }
    const parts = presenceMemberParts(userId, info);
    p.users.set(userId, { sockets: 1, info, parts });
    p.frame = null;
    p.bytes?.append(parts);
    return { added: true, full: false, rejoined: markMs > 0 && this.takeMarkNow(markId(appId, channel, userId)) };
  }

  async removeMember(appId: string, channel: string, userId: string, markMs = 0): Promise<MemberLeave> {
    const k = `${appId}\n${channel}`;
    const p = this.presence.get(k);
    const u = p?.users.get(userId);
    if (!p || !u) return { removed: false, mark: null };
    if (--u.sockets > 0) return { removed: false, mark: null };
    p.users.delete(userId);
    if (p.users.size === 0) this.presence.delete(k);
    p.bytes = p.frame = null;
    return { removed: true, mark: markMs > 0 ? this.markNow(markId(appId, channel, userId), markMs) : null };
  }

  async members(appId: string, channel: string): Promise<Map<string, string>> {
    const out = new Map<string, string>();
    const p = this.presence.get(`${appId}\n${channel}`);
    if (p) for (const [id, u] of p.users) out.set(id, u.info);
    return out;
  }

  async presenceSubscribedFrame(appId: string, channel: string): Promise<string | FramePieces> {
    const p = this.presence.get(`${appId}\n${channel}`);
    if (!p) return presenceSubscribedFrame(channel, '', '', 0);
    if (p.frame !== null) return p.frame;
    if (p.bytes === null) {
      p.bytes = new MemberBytes();
      for (const u of p.users.values()) p.bytes.append(u.parts);
    }
    p.frame = p.bytes.framePieces(channel, p.users.size);
    return p.frame;
  }

  async memberCount(appId: string, channel: string): Promise<number> {
    return this.presence.get(`${appId}\n${channel}`)?.users.size ?? 0;
  }

  async isMember(appId: string, channel: string, userId: string): Promise<boolean> {
    return this.presence.get(`${appId}\n${channel}`)?.users.has(userId) ?? false;
  }

  async addUser(appId: string, userId: string): Promise<boolean> {
    const k = `${appId}\n${userId}`;
    const n = (this.users.get(k) ?? 0) + 1;
    this.users.set(k, n);
    return n === 1;
  }

  async removeUser(appId: string, userId: string): Promise<boolean> {
    const k = `${appId}\n${userId}`;
    const n = (this.users.get(k) ?? 0) - 1;
    if (n > 0) {
      this.users.set(k, n);
      return false;
    }
    const had = this.users.delete(k);
    return had;
  }

  async onlineUsers(appId: string, userIds: string[]): Promise<Set<string>> {
    return new Set(userIds.filter((id) => this.users.has(`${appId}\n${id}`)));
  }

  async setCache(appId: string, channel: string, frame: string, ttlSeconds: number): Promise<void> {
    const now = Date.now();
    this.sweepExpired(now);
    this.cache.set(`${appId}\n${channel}`, { frame, expires: now + ttlSeconds * 1000 });
  }

  /**
   * Drops the cache entries and marks that have expired, at most once a minute, from the calls that add
   * them. A read drops an expired entry too, but a cache channel nobody subscribes to again (one per user,
   * say) is never read: without this its last event would stay in memory for good.
   */
  private sweepExpired(now: number): void {
    if (now - this.lastSweep < SWEEP_EVERY_MS) return;
    this.lastSweep = now;
    for (const [k, c] of this.cache) if (c.expires <= now) this.cache.delete(k);
    for (const [k, m] of this.marks) if (m.expires <= now) this.marks.delete(k);
  }

  async getCache(appId: string, channel: string): Promise<CachedEvent | null> {
    const k = `${appId}\n${channel}`;
    const c = this.cache.get(k);
    if (!c) return null;
    const left = c.expires - Date.now();
    if (left <= 0) {
      this.cache.delete(k);
      return null;
    }
    return { frame: c.frame, ttl: Math.ceil(left / 1000) };
  }

  async takeRate(appId: string, bucket: string, limit: number, cost: number): Promise<number> {
    if (limit < 0) return 0;
    // Budgets refill at the next whole second.
    const second = Math.floor(Date.now() / 1000);
    if (second !== this.ratesSecond) {
      this.rates.clear();
      this.ratesSecond = second;
    }
    const k = `${appId}\n${bucket}`;
    const used = this.rates.get(k) ?? 0;
    if (used + cost > limit) return 1;
    this.rates.set(k, used + cost);
    return 0;
  }

  async setMark(appId: string, key: MarkKey, token: string, ttlMs: number): Promise<void> {
    this.markNow(markId(appId, key.channel, key.userId), ttlMs, token);
  }

  async takeMark(appId: string, key: MarkKey, token?: string): Promise<boolean> {
    return this.takeMarkNow(markId(appId, key.channel, key.userId), token);
  }

  /** Sets a mark (a transition's, or setMark's), under a fresh token unless given; returns the token. */
  markNow(id: string, ttlMs: number, token = `local:${++this.markTokens}`): string {
    const now = Date.now();
    this.sweepExpired(now);
    this.marks.set(id, { token, expires: now + ttlMs });
    return token;
  }

  /** takeMark, in the same tick. */
  takeMarkNow(k: string, token?: string): boolean {
    const mark = this.marks.get(k);
    if (mark === undefined) return false;
    if (mark.expires <= Date.now()) {
      this.marks.delete(k);
      return false;
    }
    if (token !== undefined && mark.token !== token) return false;
    this.marks.delete(k);
    return true;
  }

  async addLiveDevice(appId: string, channel: string, deviceId: string): Promise<void> {
    const k = `${appId}\n${channel}`;
    let m = this.devices.get(k);
    if (!m) {
      m = new Map();
      this.devices.set(k, m);
    }
    m.set(deviceId, (m.get(deviceId) ?? 0) + 1);
  }

  async removeLiveDevice(appId: string, channel: string, deviceId: string): Promise<void> {
    const k = `${appId}\n${channel}`;
    const m = this.devices.get(k);
    const n = (m?.get(deviceId) ?? 0) - 1;
    if (!m) return;
    if (n > 0) m.set(deviceId, n);
    else {
      m.delete(deviceId);
      if (m.size === 0) this.devices.delete(k);
    }
  }

  async liveDevices(appId: string, channel: string, deviceIds: string[]): Promise<Set<string>> {
    const m = this.devices.get(`${appId}\n${channel}`);
    return m ? new Set(deviceIds.filter((d) => m.has(d))) : new Set();
  }
}
