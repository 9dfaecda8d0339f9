import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { presenceSubscribedFrameOf } from '../../sdk/protocol';
import { connectWithin, createRedisClient, describeRedis, isReady, type RedisClient, type RedisSpec, closeRedis } from '../cluster/redis-connection';
import { groupId, parseGroupId, redisKeys, type RedisKeys, type ShareGroup } from '../cluster/redis-keys';
import { markId, type CachedEvent, type ClusterState, type LeaveMarkMs, type MarkKey, type MemberJoin, type MemberLeave, type SubscriberChange } from './ClusterState';
import { LocalState } from './LocalState';
import { NodeLedger, type Delta } from './NodeLedger';
import { SCRIPTS, type ScriptCommands } from './redis-scripts';
import type { StateTransition } from './StateTransition';

export interface RedisStateOptions {
  spec: RedisSpec;
  /** Key prefix (default `herald:`); nodes of one cluster share it. */
  prefix: string;
  log: Logger;
  /** Unique per process; random by default. */
  nodeId?: string;
  /** How often the heartbeat is refreshed and other nodes are checked (default 3 s). */
  heartbeatMs?: number;
  /** How long a heartbeat lives: a node silent this long is removed by the others (default 10 s). */
  heartbeatTtlMs?: number;
  /** How long a survivor may take to remove a dead node before another may retry (default 60 s). */
  claimTtlMs?: number;
  /** How long `start()` waits for Redis before serving alone (default 5 s). */
  startTimeoutMs?: number;
}

/** Fields per script call when restoring or removing a node's shares: keeps each script short. */
const BATCH = 256;

const delay = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms).unref());
const globEscape = (s: string) => s.replace(/[*?[\]\\]/g, '\\$&');

/** A change's leave mark (ClusterState's module comment): what the caller gets back. */
interface MarkOutcome {
  /** Set with a count that reached zero: its token. */
  mark: string | null;
  /** Taken by a count that left zero. */
  rejoined: boolean;
}

const NO_MARK: MarkOutcome = { mark: null, rejoined: false };

/** A member-list read in flight, and the one that joins arriving meanwhile share (presenceSubscribedFrame). */
interface FrameRead {
  running: Promise<string>;
  next: Promise<string> | null;
}

/**
 * Cluster state in Redis (see redis-keys.ts for the layout and redis-scripts.ts for the invariant). Every
 * transition comes from one atomic Lua script, so it is reported to exactly one caller cluster-wide.
 *
 * Node failure: each node refreshes a heartbeat key and checks the others'. When one has expired, a
 * survivor claims the dead node (SET NX), sets all of its shares to zero with the same scripts, and hands the
 * resulting transitions (member removed, channel vacated, user offline…) to the gateway, which sends the
 * frames and observer events. Only the claimant does this, and a share can only be removed once.
 *
 * Outage: while Redis is unreachable, changes are kept in this node's ledger and answered from it (this
 * node's view alone). When Redis is back (or when this node finds it was removed as dead) it re-registers
 * and sets its shares to the ledger's values: idempotent, and the transitions it causes are reported too.
 */
export class RedisState implements ClusterState {
  readonly name = 'redis';
  readonly nodeId: string;
  private readonly redis: RedisClient;
  private readonly cmd: ScriptCommands;
  private readonly keys: RedisKeys;
  private readonly log: Logger;
  private readonly ledger = new NodeLedger();
  /** Cache, rate limits and marks while Redis is unreachable. */
  private readonly fallback = new LocalState();
  /** Member-list reads in flight per `${appId}\n${channel}` (see presenceSubscribedFrame). */
  private readonly frameReads = new Map<string, FrameRead>();
  /** Share groups known to be in this node's `idx:N` set. */
  private readonly indexed = new Set<string>();
  private readonly heartbeatMs: number;
  private readonly heartbeatTtlMs: number;
  private readonly claimTtlMs: number;
  private readonly startTimeoutMs: number;
  private listener: ((t: StateTransition[]) => Promise<void>) | null = null;
  private repaired: (() => Promise<void>) | null = null;
  /** Set when this node's shares may have been lost (outage, taken for dead): the next repair resyncs. */
  private resyncDue = false;
  private timer: NodeJS.Timeout | null = null;
  private ticking = false;
  /** In the `nodes` set and not being removed: changes may go to Redis. */
  private registered = false;
  /** Redis may not hold what the ledger says: repair at the next chance. */
  private dirty = false;
  private repairing: Promise<void> | null = null;
  private repairGen = 0;
  /** Leave-mark tokens, prefixed with the node id: unique in the cluster. */
  private markTokens = 0;
  /** How long the leaves this state finds by itself keep their marks (ClusterState.setLeaveMarks). */
  private leaveMarkMs: LeaveMarkMs = () => 0;
  private stopped = false;
  private lostAt = 0;

  constructor(opts: RedisStateOptions) {
    this.nodeId = opts.nodeId ?? randomBytes(8).toString('hex');
    this.keys = redisKeys(opts.prefix);
    this.log = opts.log.child({ component: 'redis-state', node: this.nodeId });
    this.heartbeatMs = opts.heartbeatMs ?? 3000;
    this.heartbeatTtlMs = opts.heartbeatTtlMs ?? 10000;
    this.claimTtlMs = opts.claimTtlMs ?? 60000;
    this.startTimeoutMs = opts.startTimeoutMs ?? 5000;
    this.redis = createRedisClient(opts.spec, 'state');
    for (const s of SCRIPTS) this.redis.defineCommand(s.name, { numberOfKeys: s.keys, lua: s.lua });
    this.cmd = this.redis as unknown as ScriptCommands;
    this.redis.on('error', (err: Error) => this.log.debug({ err: err.message }, 'redis error'));
    this.redis.on('ready', () => this.onReady());
    this.redis.on('close', () => this.onClose());
    this.log.debug({ redis: describeRedis(opts.spec) }, 'redis state created');
  }

  setLeaveMarks(fn: LeaveMarkMs): void {
    this.leaveMarkMs = fn;
  }

  /** Where transitions found by the state itself go (dead nodes removed, shares restored): the gateway. */
  onTransitions(fn: (t: StateTransition[]) => Promise<void>): void {
    this.listener = fn;
  }

  /**
   * Called after a repair that followed an outage or this node's removal, once its shares are back: the
   * gateway then re-sends presence lists and watchlist states to its sockets.
   */
  onRepaired(fn: () => Promise<void>): void {
    this.repaired = fn;
  }

  async start(): Promise<void> {
    try {
      await connectWithin(this.redis, this.startTimeoutMs);
      await (this.repairing ?? this.repair());
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'Redis is not reachable: serving this node alone until it is');
    }
    this.timer = setInterval(() => void this.tick(), this.heartbeatMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    await this.repairing;
    if (this.online) {
      const k = this.keys;
      try {
        if (this.ledger.empty && !this.dirty) {
          await this.redis.srem(k.nodes, this.nodeId);
          // One key per DEL: on Redis Cluster these live in different slots.
          await this.redis.del(k.index(this.nodeId));
          await this.redis.del(k.heartbeat(this.nodeId));
        } else {
          // Shares are left (the drain did not finish): the survivors remove them at their next heartbeat.
          await this.redis.del(k.heartbeat(this.nodeId));
        }
      } catch (err) {
        this.log.warn({ err }, 'could not leave the cluster cleanly; the other nodes will remove this node');
      }
    }
    this.registered = false;
    await closeRedis(this.redis);
  }

  /** Drops the connection without leaving the cluster, as a crash would (the others then remove this node). */
  detach(): void {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.redis.disconnect();
  }

  healthy(): boolean {
    return this.online && !this.stopped;
  }

  private get online(): boolean {
    return this.registered && isReady(this.redis);
  }

  private onReady(): void {
    if (this.stopped) return;
    if (this.lostAt) this.log.warn({ downMs: Date.now() - this.lostAt }, 'Redis is back: restoring this node\'s shares');
    this.lostAt = 0;
    void this.repair();
  }

  private onClose(): void {
    this.registered = false;
    this.resyncDue = true;
    this.indexed.clear();
    if (!this.stopped && !this.lostAt) {
      this.lostAt = Date.now();
      this.log.warn('lost Redis: serving this node alone until it returns');
    }
  }

  private failed(err: unknown): void {
    this.dirty = true;
    if (isReady(this.redis)) this.log.warn({ err }, 'redis state command failed');
    else this.log.debug({ err: (err as Error).message }, 'redis state command failed while disconnected');
  }

  private async emit(list: StateTransition[]): Promise<void> {
    if (list.length === 0 || !this.listener) return;
    try {
      await this.listener(list);
    } catch (err) {
      this.log.error({ err }, 'applying cluster transitions failed');
    }
  }

  // ---------------------------------------------------------------- shares

  private async ensureIndexed(g: ShareGroup): Promise<boolean> {
    const id = groupId(g);
    if (this.indexed.has(id)) return true;
    this.indexed.add(id);
    try {
      // Before the share itself: a share Redis holds must always be findable if this node dies.
      await this.redis.sadd(this.keys.index(this.nodeId), id);
      return true;
    } catch (err) {
      this.indexed.delete(id);
      this.failed(err);
      return false;
    }
  }

  /** Rolls back a refused change; if a repair read the ledger meanwhile, it must run again. */
  private undo(fn: () => void, gen: number): void {
    fn();
    if (this.repairing || this.repairGen !== gen) this.dirty = true;
  }

  /** `markMs` > 0 on a channel's field (`s:<channel>`): keep the channel's leave mark (ClusterState). */
  private async appChange(appId: string, field: string, d: number, max = -1, markMs = 0): Promise<Delta & MarkOutcome & { refused: boolean }> {
    const mark: MarkKey | null = markMs > 0 && field.startsWith('s:') ? { channel: field.slice(2), userId: null } : null;
    const token = this.markToken(markMs);
    const ok = this.online && (await this.ensureIndexed({ kind: 'app', appId })) && this.online;
    if (!ok) {
      this.dirty = true;
      const cur = this.ledger.appField(appId, field);
      if (d > 0 && max >= 0 && cur + d > max) return { before: cur, after: cur, refused: true, ...NO_MARK };
      return this.withMark(appId, this.ledger.applyApp(appId, field, d), false, mark, markMs, token, null);
    }
    // The ledger changes in the same tick the command is sent, so a repair never counts a change twice.
    const local = this.ledger.applyApp(appId, field, d);
    const gen = this.repairGen;
    const k = this.keys;
    try {
      const [before, after, refused, taken] = await this.cmd.heraldAppDelta(
        k.meta(appId),
        k.chans(appId),
        k.users(appId),
        k.appNode(appId, this.nodeId),
        mark ? this.markKey(appId, mark) : k.meta(appId),
        field,
        d,
        max,
        mark ? markMs : 0,
        token,
      );
      if (refused === 1) this.undo(() => this.ledger.applyApp(appId, field, -d), gen);
      return this.withMark(appId, { before: Number(before), after: Number(after) }, refused === 1, mark, markMs, token, taken === 1);
    } catch (err) {
      this.failed(err);
      return this.withMark(appId, local, false, mark, markMs, token, null);
    }
  }

  private async presenceChange(appId: string, channel: string, userId: string, d: number, info: string, max = -1, markMs = 0): Promise<Delta & MarkOutcome & { refused: boolean }> {
    const group: ShareGroup = { kind: 'presence', appId, channel };
    const mark: MarkKey = { channel, userId };
    const token = this.markToken(markMs);
    const ok = this.online && (await this.ensureIndexed(group)) && this.online;
    if (!ok) {
      this.dirty = true;
      if (d > 0 && max >= 0 && !this.ledger.presenceUser(appId, channel, userId) && this.ledger.presenceUsers(appId, channel).size >= max) {
        return { before: 0, after: 0, refused: true, ...NO_MARK };
      }
      return this.withMark(appId, this.ledger.applyPresence(appId, channel, userId, d, info), false, mark, markMs, token, null);
    }
    const local = this.ledger.applyPresence(appId, channel, userId, d, info);
    const gen = this.repairGen;
    const k = this.keys;
    try {
      const [before, after, refused, taken] = await this.cmd.heraldPresenceDelta(
        k.members(appId, channel),
        k.sockets(appId, channel),
        k.channelNode(appId, channel, this.nodeId),
        this.markKey(appId, mark),
        userId,
        d,
        info,
        max,
        markMs,
        token,
      );
      if (refused === 1) this.undo(() => this.ledger.applyPresence(appId, channel, userId, -d, info), gen);
      if (d < 0 && !this.ledger.hasPresence(appId, channel) && this.online) {
        // No share left here: drop the group from the index (checked after the script, in the same tick
        // as any later join would re-add it, so the SREM can never overtake that join's SADD).
        const id = groupId(group);
        if (this.indexed.delete(id)) this.redis.srem(this.keys.index(this.nodeId), id).catch((err: unknown) => this.failed(err));
      }
      return this.withMark(appId, { before: Number(before), after: Number(after) }, refused === 1, mark, markMs, token, taken === 1);
    } catch (err) {
      this.failed(err);
      return this.withMark(appId, local, false, mark, markMs, token, null);
    }
  }

  /** A fresh token for a leave mark the next change may set ('' when it sets none). */
  private markToken(markMs: number): string {
    return markMs > 0 ? `${this.nodeId}:${++this.markTokens}` : '';
  }

  /**
   * A change with its leave mark. Redis's script set it (under `token`) or took it (`taken`). A change
   * answered from the ledger alone (`taken` null: Redis unreachable, or the script failed) keeps it in the
   * fallback, under the token the script would have used, so that if the script did run after all the
   * leave's timer finds one of the two (takeMark tries both). A rejoin also takes a mark the fallback kept.
   */
  private withMark(appId: string, delta: Delta, refused: boolean, mark: MarkKey | null, markMs: number, token: string, taken: boolean | null): Delta & MarkOutcome & { refused: boolean } {
    if (mark === null || markMs <= 0 || refused) return { ...delta, refused, ...NO_MARK };
    const id = markId(appId, mark.channel, mark.userId);
    if (delta.before > 0 && delta.after === 0) return { ...delta, refused, mark: taken === null ? this.fallback.markNow(id, markMs, token) : token, rejoined: false };
    return { ...delta, refused, mark: null, rejoined: delta.before === 0 && delta.after > 0 && (taken === true || this.fallback.takeMarkNow(id)) };
  }

  private async read<T>(op: () => Promise<T>, local: () => T | Promise<T>): Promise<T> {
    if (!isReady(this.redis)) return local();
    try {
      return await op();
    } catch (err) {
      this.failed(err);
      return local();
    }
  }

  // ---------------------------------------------------------------- ClusterState

  async addConnection(appId: string, max: number): Promise<boolean> {
    return !(await this.appChange(appId, 'c', 1, max)).refused;
  }

  async removeConnection(appId: string): Promise<void> {
    await this.appChange(appId, 'c', -1);
  }

  async connectionCount(appId: string): Promise<number> {
    return this.read(async () => Number((await this.redis.hget(this.keys.meta(appId), 'conns')) ?? 0), () => this.ledger.conns(appId));
  }

  async addSubscriber(appId: string, channel: string, markMs = 0): Promise<SubscriberChange> {
    const { before, after, rejoined } = await this.appChange(appId, `s:${channel}`, 1, -1, markMs);
    return { count: after, occupied: before === 0 && after > 0, vacated: false, mark: null, rejoined };
  }

  async removeSubscriber(appId: string, channel: string, markMs = 0): Promise<SubscriberChange> {
    const { before, after, mark } = await this.appChange(appId, `s:${channel}`, -1, -1, markMs);
    return { count: after, occupied: false, vacated: before > 0 && after === 0, mark, rejoined: false };
  }

  async subscriberCount(appId: string, channel: string): Promise<number> {
    return this.read(
      async () => Number((await this.redis.hget(this.keys.chans(appId), channel)) ?? 0),
      () => this.ledger.subscriptions(appId).get(channel) ?? 0,
    );
  }

  async channels(appId: string, prefix: string): Promise<Map<string, number>> {
    return this.read(
      async () => {
        const out = new Map<string, number>();
        let cursor = '0';
        do {
          const [next, flat] = await this.redis.hscan(this.keys.chans(appId), cursor, 'MATCH', `${globEscape(prefix)}*`, 'COUNT', 1000);
          cursor = next;
          for (let i = 0; i < flat.length; i += 2) out.set(flat[i], Number(flat[i + 1]));
        } while (cursor !== '0');
        return out;
      },
      () => new Map([...this.ledger.subscriptions(appId)].filter(([c]) => c.startsWith(prefix))),
    );
  }

  async addMember(appId: string, channel: string, userId: string, info: string, max: number, markMs = 0): Promise<MemberJoin> {
    const { before, after, refused, rejoined } = await this.presenceChange(appId, channel, userId, 1, info, max, markMs);
    return { added: before === 0 && after > 0, full: refused, rejoined };
  }

  async removeMember(appId: string, channel: string, userId: string, markMs = 0): Promise<MemberLeave> {
    const { before, after, mark } = await this.presenceChange(appId, channel, userId, -1, '', -1, markMs);
    return { removed: before > 0 && after === 0, mark };
  }

  async members(appId: string, channel: string): Promise<Map<string, string>> {
    return this.read(
      async () => new Map(Object.entries(await this.redis.hgetall(this.keys.members(appId, channel)))),
      () => new Map([...this.ledger.presenceUsers(appId, channel)].map(([id, u]) => [id, u.info])),
    );
  }

  /**
   * The member list for a joiner, read after its own join was stored. Joins into one channel that arrive
   * while a read is in flight share the next read, issued once that one ends: it starts after each of their
   * joins, so it lists them all. A burst of joins into a big channel then costs this node two HGETALLs and
   * two frames, not one of each per joiner.
   */
  presenceSubscribedFrame(appId: string, channel: string): Promise<string> {
    const k = `${appId}\n${channel}`;
    const flight = this.frameReads.get(k);
    if (flight === undefined) return this.readFrame(k, appId, channel);
    flight.next ??= flight.running.then(
      () => this.readFrame(k, appId, channel),
      () => this.readFrame(k, appId, channel),
    );
    return flight.next;
  }

  private readFrame(k: string, appId: string, channel: string): Promise<string> {
    const flight: FrameRead = {
      running: this.members(appId, channel).then((members) => presenceSubscribedFrameOf(channel, members)),
      next: null,
    };
    this.frameReads.set(k, flight);
    const done = () => {
      // A read queued behind this one replaces the entry when it starts.
      if (this.frameReads.get(k) === flight && flight.next === null) this.frameReads.delete(k);
    };
    flight.running.then(done, done);
    return flight.running;
  }

  async memberCount(appId: string, channel: string): Promise<number> {
    return this.read(() => this.redis.hlen(this.keys.members(appId, channel)), () => this.ledger.presenceUsers(appId, channel).size);
  }

  async isMember(appId: string, channel: string, userId: string): Promise<boolean> {
    return this.read(
      async () => (await this.redis.hexists(this.keys.members(appId, channel), userId)) === 1,
      () => this.ledger.presenceUsers(appId, channel).has(userId),
    );
  }

  async addUser(appId: string, userId: string): Promise<boolean> {
    const { before, after } = await this.appChange(appId, `u:${userId}`, 1);
    return before === 0 && after > 0;
  }

  async removeUser(appId: string, userId: string): Promise<boolean> {
    const { before, after } = await this.appChange(appId, `u:${userId}`, -1);
    return before > 0 && after === 0;
  }

  async onlineUsers(appId: string, userIds: string[]): Promise<Set<string>> {
    if (userIds.length === 0) return new Set();
    return this.read(
      async () => {
        const counts = await this.redis.hmget(this.keys.users(appId), ...userIds);
        return new Set(userIds.filter((_id, i) => Number(counts[i] ?? 0) > 0));
      },
      () => new Set(userIds.filter((id) => this.ledger.users(appId).has(id))),
    );
  }

  async setCache(appId: string, channel: string, frame: string, ttlSeconds: number): Promise<void> {
    await this.read(
      async () => {
        await this.redis.set(this.keys.cache(appId, channel), frame, 'EX', ttlSeconds);
      },
      () => this.fallback.setCache(appId, channel, frame, ttlSeconds),
    );
  }

  async getCache(appId: string, channel: string): Promise<CachedEvent | null> {
    const found = await this.read<CachedEvent | null>(
      async () => {
        const r = await this.cmd.heraldGetCache(this.keys.cache(appId, channel));
        return r ? { frame: r[0], ttl: Math.max(1, Math.ceil(Number(r[1]) / 1000)) } : null;
      },
      () => null,
    );
    // An event cached locally while Redis was away is still this node's best answer.
    return found ?? this.fallback.getCache(appId, channel);
  }

  async takeRate(appId: string, bucket: string, limit: number, cost: number): Promise<number> {
    if (limit < 0) return 0;
    return this.read(
      async () => Number(await this.cmd.heraldTakeRate(this.keys.rate(appId, bucket), limit, cost)),
      () => this.fallback.takeRate(appId, bucket, limit, cost),
    );
  }

  async setMark(appId: string, key: MarkKey, token: string, ttlMs: number): Promise<void> {
    await this.read(
      async () => {
        await this.redis.set(this.markKey(appId, key), token, 'PX', ttlMs);
      },
      () => this.fallback.setMark(appId, key, token, ttlMs),
    );
  }

  async takeMark(appId: string, key: MarkKey, token?: string): Promise<boolean> {
    const k = this.markKey(appId, key);
    const taken = await this.read(
      async () => (token === undefined ? await this.redis.del(k) : await this.cmd.heraldTakeIfHolds(k, token)) === 1,
      () => false,
    );
    // Both places: a mark kept in the fallback during an outage must not outlive the leave it stood for.
    const takenHere = await this.fallback.takeMark(appId, key, token);
    return taken || takenHere;
  }

  private markKey(appId: string, key: MarkKey): string {
    return key.userId === null ? this.keys.channelMarks(appId) + key.channel : this.keys.memberMarks(appId, key.channel) + key.userId;
  }

  // ---------------------------------------------------------------- Web Push liveness

  // Keys, under the cluster prefix: `{A:C}:dev:N` (hash: device → node N's sockets of that device on channel
  // C) and `devidx:N` (set of `A\nC` where node N has any). Only node N writes its keys, always with its
  // ledger's absolute value, so they need no script: commands on one connection run in the order sent.
  // Readers skip nodes whose heartbeat has expired; the node that removes a dead node deletes its keys.

  /** `${appId}\n${channel}` → device → this node's sockets. */
  private readonly liveDeviceLedger = new Map<string, Map<string, number>>();
  /** Groups known to be in this node's `devidx:N` set. */
  private readonly deviceIndexed = new Set<string>();

  private deviceKey(appId: string, channel: string, node: string): string {
    return this.keys.liveDevices(appId, channel, node);
  }

  private deviceIndex(node: string): string {
    return this.keys.deviceIndex(node);
  }

  async addLiveDevice(appId: string, channel: string, deviceId: string): Promise<void> {
    await this.deviceDelta(appId, channel, deviceId, 1);
  }

  async removeLiveDevice(appId: string, channel: string, deviceId: string): Promise<void> {
    await this.deviceDelta(appId, channel, deviceId, -1);
  }

  private async deviceDelta(appId: string, channel: string, deviceId: string, d: number): Promise<void> {
    const group = `${appId}\n${channel}`;
    let m = this.liveDeviceLedger.get(group);
    if (!m) {
      if (d < 0) return;
      m = new Map();
      this.liveDeviceLedger.set(group, m);
    }
    const n = Math.max(0, (m.get(deviceId) ?? 0) + d);
    if (n > 0) m.set(deviceId, n);
    else m.delete(deviceId);
    const emptied = m.size === 0;
    if (emptied) this.liveDeviceLedger.delete(group);
    if (!this.online) {
      this.dirty = true;
      return;
    }
    const index = this.deviceIndex(this.nodeId);
    const key = this.deviceKey(appId, channel, this.nodeId);
    const sent: Promise<unknown>[] = [];
    // The index first: a share Redis holds must be findable if this node dies.
    if (n > 0 && !this.deviceIndexed.has(group)) {
      this.deviceIndexed.add(group);
      sent.push(this.redis.sadd(index, group));
    }
    sent.push(n > 0 ? this.redis.hset(key, deviceId, n) : this.redis.hdel(key, deviceId));
    if (emptied && this.deviceIndexed.delete(group)) sent.push(this.redis.srem(index, group));
    try {
      await Promise.all(sent);
    } catch (err) {
      // The next repair rewrites this node's devices from the ledger.
      this.failed(err);
    }
  }

  async liveDevices(appId: string, channel: string, deviceIds: string[]): Promise<Set<string>> {
    const out = new Set<string>();
    if (deviceIds.length === 0) return out;
    const mine = this.liveDeviceLedger.get(`${appId}\n${channel}`);
    if (mine) for (const d of deviceIds) if (mine.has(d)) out.add(d);
    if (!isReady(this.redis)) return out;
    try {
      const others = (await this.redis.smembers(this.keys.nodes)).filter((n) => n !== this.nodeId);
      const alive = await Promise.all(others.map((n) => this.redis.exists(this.keys.heartbeat(n))));
      for (let i = 0; i < others.length; i++) {
        if (alive[i] === 0) continue;
        const key = this.deviceKey(appId, channel, others[i]);
        const size = await this.redis.hlen(key);
        if (size === 0) continue;
        if (size <= deviceIds.length) {
          const wanted = new Set(deviceIds);
          for (const d of await this.redis.hkeys(key)) if (wanted.has(d)) out.add(d);
          continue;
        }
        for (let j = 0; j < deviceIds.length; j += 1000) {
          const chunk = deviceIds.slice(j, j + 1000);
          const counts = await this.redis.hmget(key, ...chunk);
          chunk.forEach((d, k) => {
            if (counts[k] !== null) out.add(d);
          });
        }
      }
    } catch (err) {
      this.failed(err);
    }
    return out;
  }

  /** Sets this node's device keys to the ledger's values (after an outage, or after being taken for dead). */
  private async restoreLiveDevices(): Promise<void> {
    const me = this.nodeId;
    const index = this.deviceIndex(me);
    const known = await this.redis.smembers(index);
    const groups = [...this.liveDeviceLedger.keys()];
    this.deviceIndexed.clear();
    for (let i = 0; i < groups.length; i += 500) await this.redis.sadd(index, ...groups.slice(i, i + 500));
    for (const g of groups) this.deviceIndexed.add(g);
    for (const g of groups) {
      const cut = g.indexOf('\n');
      const key = this.deviceKey(g.slice(0, cut), g.slice(cut + 1), me);
      // Built and sent in one tick: the ledger's snapshot is ordered with any change sent before or after.
      const m = this.liveDeviceLedger.get(g);
      const tx = this.redis.multi().del(key);
      if (m && m.size > 0) tx.hset(key, Object.fromEntries(m));
      await tx.exec();
    }
    for (const g of known) {
      if (this.liveDeviceLedger.has(g)) continue;
      const cut = g.indexOf('\n');
      await this.redis.del(this.deviceKey(g.slice(0, cut), g.slice(cut + 1), me));
      if (!this.liveDeviceLedger.has(g)) await this.redis.srem(index, g);
    }
  }

  /** Deletes a dead node's device keys (called by the node that removes it). */
  private async removeLiveDevicesOf(node: string): Promise<void> {
    const index = this.deviceIndex(node);
    for (const g of await this.redis.smembers(index)) {
      const cut = g.indexOf('\n');
      await this.redis.del(this.deviceKey(g.slice(0, cut), g.slice(cut + 1), node));
    }
    await this.redis.del(index);
  }

  // ---------------------------------------------------------------- membership, failure and repair

  /** Heartbeat, self-check (was this node removed as dead?) and a look at the other nodes' heartbeats. */
  private async tick(): Promise<void> {
    if (this.stopped || this.ticking || !isReady(this.redis)) return;
    this.ticking = true;
    const k = this.keys;
    const me = this.nodeId;
    try {
      await this.redis.set(k.heartbeat(me), String(Date.now()), 'PX', this.heartbeatTtlMs);
      // Repairs run beside the heartbeat, never inside it: a repair may wait for a survivor's cleanup of
      // this node, and the heartbeat must go on meanwhile or the node would be taken for dead again.
      if (!this.repairing) {
        if (!this.registered || this.dirty) void this.repair();
        else {
          const [member, claimed] = await Promise.all([this.redis.sismember(k.nodes, me), this.redis.exists(k.claim(me))]);
          if (member === 0 || claimed === 1) {
            this.log.warn('this node was taken for dead by the others: restoring its shares');
            this.registered = false;
            this.resyncDue = true;
            this.indexed.clear();
            void this.repair();
          }
        }
      }
      await this.sweep();
    } catch (err) {
      this.failed(err);
    } finally {
      this.ticking = false;
    }
  }

  private async sweep(): Promise<void> {
    const k = this.keys;
    const others = (await this.redis.smembers(k.nodes)).filter((id) => id !== this.nodeId);
    if (others.length === 0) return;
    const alive = await Promise.all(others.map((id) => this.redis.exists(k.heartbeat(id))));
    for (let i = 0; i < others.length; i++) {
      if (alive[i] === 0 && !this.stopped) await this.removeNode(others[i]);
    }
  }

  /** Removes every share of a node whose heartbeat expired; only the node that claims it does this. */
  private async removeNode(node: string): Promise<void> {
    const k = this.keys;
    const claim = k.claim(node);
    if ((await this.redis.set(claim, this.nodeId, 'PX', this.claimTtlMs, 'NX')) !== 'OK') return;
    try {
      // Checked after claiming (the node checks the claim after refreshing its heartbeat): either it sees
      // the claim and waits, or this sees its heartbeat and backs off.
      if ((await this.redis.exists(k.heartbeat(node))) === 1) return;
      const groups = await this.redis.smembers(k.index(node));
      let transitions = 0;
      for (const id of groups) {
        const g = parseGroupId(id);
        if (g) {
          const t = await this.settle(g, node);
          transitions += t.length;
          await this.emit(t);
        }
        await this.redis.srem(k.index(node), id);
      }
      await this.redis.srem(k.nodes, node);
      await this.removeLiveDevicesOf(node);
      this.log.warn({ dead: node, groups: groups.length, transitions }, 'removed the connections of a node whose heartbeat stopped');
    } finally {
      await this.cmd.heraldTakeIfHolds(claim, this.nodeId).catch((err: unknown) => this.failed(err));
    }
  }

  private repair(): Promise<void> {
    if (this.repairing) {
      this.dirty = true;
      return this.repairing;
    }
    this.repairing = this.runRepair().finally(() => {
      this.repairing = null;
    });
    return this.repairing;
  }

  private async runRepair(): Promise<void> {
    for (let pass = 0; pass < 3 && !this.stopped && isReady(this.redis); pass++) {
      try {
        await this.repairOnce();
      } catch (err) {
        this.failed(err);
        return;
      }
      if (!this.dirty) break;
    }
    if (this.resyncDue && this.registered && this.repaired) {
      this.resyncDue = false;
      await this.repaired().catch((err: unknown) => this.log.error({ err }, 'resync after repair failed'));
    }
  }

  /**
   * Registers this node and sets each of its shares in Redis to the ledger's value. Idempotent: shares that
   * are right are left alone; missing ones (Redis restarted empty, or this node was removed as dead) are
   * added back with the transitions that causes; shares the ledger no longer has are removed.
   */
  private async repairOnce(): Promise<void> {
    const k = this.keys;
    const me = this.nodeId;
    this.repairGen++;
    await this.redis.set(k.heartbeat(me), String(Date.now()), 'PX', this.heartbeatTtlMs);
    // A survivor may be removing this node right now: let it finish, or it would take away shares restored here.
    const deadline = Date.now() + this.claimTtlMs;
    while (!this.stopped && (await this.redis.exists(k.claim(me))) === 1 && Date.now() < deadline) await delay(200);
    await this.redis.sadd(k.nodes, me);
    this.registered = true;
    // Everything changed so far is in the ledger, which is read below as each script is sent.
    this.dirty = false;
    const known = await this.redis.smembers(k.index(me));
    const groups: ShareGroup[] = [
      ...this.ledger.appIds().map((appId): ShareGroup => ({ kind: 'app', appId })),
      ...this.ledger.presenceChannels().map(({ appId, channel }): ShareGroup => ({ kind: 'presence', appId, channel })),
    ];
    const ids = groups.map(groupId);
    for (let i = 0; i < ids.length; i += 500) await this.redis.sadd(k.index(me), ...ids.slice(i, i + 500));
    for (const id of ids) this.indexed.add(id);
    let transitions = 0;
    for (const g of groups) {
      const t = await this.settle(g, me);
      transitions += t.length;
      await this.emit(t);
    }
    for (const id of known) {
      if (this.indexed.has(id)) continue;
      const g = parseGroupId(id);
      if (g) {
        const t = await this.settle(g, me);
        transitions += t.length;
        await this.emit(t);
      }
      if (!this.indexed.has(id)) await this.redis.srem(k.index(me), id);
    }
    await this.restoreLiveDevices();
    if (groups.length > 0 || transitions > 0) this.log.info({ groups: groups.length, transitions }, 'restored this node\'s shares in Redis');
  }

  /**
   * Sets a node's shares in one group: to the ledger's values for this node, to zero for a dead one.
   * Returns the transitions that caused (each seen by this caller only: the scripts are atomic).
   */
  private async settle(g: ShareGroup, node: string): Promise<StateTransition[]> {
    const mine = node === this.nodeId;
    const k = this.keys;
    const out: StateTransition[] = [];
    const { appId } = g;
    if (g.kind === 'app') {
      const share = k.appNode(appId, node);
      const keys = [k.meta(appId), k.chans(appId), k.users(appId), share, k.channelMarks(appId)] as const;
      const markMs = (f: string) => (f.startsWith('s:') ? this.leaveMarkMs(appId, f.slice(2), 'channel_vacated') : 0);
      if (mine) {
        const fields = [...this.ledger.appFields(appId)];
        for (let i = 0; i < fields.length; i += BATCH) {
          // Read from the ledger in the tick the script is sent: consistent with changes sent before or after.
          const args = fields.slice(i, i + BATCH).flatMap((f) => [f, this.ledger.appField(appId, f), markMs(f)]);
          this.collectApp(appId, await this.cmd.heraldAppSet(...keys, this.markToken(1), ...args), out);
        }
      }
      let cursor = '0';
      do {
        const [next, flat] = await this.redis.hscan(share, cursor, 'COUNT', BATCH);
        cursor = next;
        const args: (string | number)[] = [];
        for (let i = 0; i < flat.length; i += 2) {
          if (!mine || this.ledger.appField(appId, flat[i]) === 0) args.push(flat[i], 0, markMs(flat[i]));
        }
        if (args.length > 0) this.collectApp(appId, await this.cmd.heraldAppSet(...keys, this.markToken(1), ...args), out);
      } while (cursor !== '0');
      return out;
    }
    const { channel } = g;
    const share = k.channelNode(appId, channel, node);
    const keys = [k.members(appId, channel), k.sockets(appId, channel), share, k.memberMarks(appId, channel)] as const;
    const markMs = this.leaveMarkMs(appId, channel, 'member_removed');
    if (mine) {
      const users = [...this.ledger.presenceUsers(appId, channel).keys()];
      for (let i = 0; i < users.length; i += BATCH) {
        const args = users.slice(i, i + BATCH).flatMap((u) => {
          const s = this.ledger.presenceUser(appId, channel, u);
          return [u, s?.n ?? 0, s?.info ?? '{}', markMs];
        });
        this.collectPresence(appId, channel, await this.cmd.heraldPresenceSet(...keys, this.markToken(1), ...args), out);
      }
    }
    let cursor = '0';
    do {
      const [next, flat] = await this.redis.hscan(share, cursor, 'COUNT', BATCH);
      cursor = next;
      const args: (string | number)[] = [];
      for (let i = 0; i < flat.length; i += 2) {
        if (!mine || !this.ledger.presenceUser(appId, channel, flat[i])) args.push(flat[i], 0, '', markMs);
      }
      if (args.length > 0) this.collectPresence(appId, channel, await this.cmd.heraldPresenceSet(...keys, this.markToken(1), ...args), out);
    } while (cursor !== '0');
    return out;
  }

  private collectApp(appId: string, flat: (string | number)[], out: StateTransition[]): void {
    for (let i = 0; i < flat.length; i += 5) {
      const f = String(flat[i]);
      const before = Number(flat[i + 1]);
      const after = Number(flat[i + 2]);
      if (f.startsWith('s:')) {
        const channel = f.slice(2);
        const { mark, rejoined } = markOf(flat[i + 3], flat[i + 4]);
        if (before === 0 && after > 0) out.push({ kind: 'occupied', appId, channel, count: after, rejoined });
        else if (before > 0 && after === 0) out.push({ kind: 'vacated', appId, channel, mark });
        else if (before !== after) out.push({ kind: 'count', appId, channel, count: after });
      } else if (f.startsWith('u:')) {
        const userId = f.slice(2);
        if (before === 0 && after > 0) out.push({ kind: 'userOnline', appId, userId });
        else if (before > 0 && after === 0) out.push({ kind: 'userOffline', appId, userId });
      }
    }
  }

  private collectPresence(appId: string, channel: string, flat: (string | number)[], out: StateTransition[]): void {
    for (let i = 0; i < flat.length; i += 5) {
      const userId = String(flat[i]);
      const before = Number(flat[i + 1]);
      const after = Number(flat[i + 2]);
      const { mark, rejoined } = markOf(flat[i + 3], flat[i + 4]);
      if (before === 0 && after > 0) {
        out.push({ kind: 'memberAdded', appId, channel, userId, info: this.ledger.presenceUser(appId, channel, userId)?.info ?? '{}', rejoined });
      } else if (before > 0 && after === 0) out.push({ kind: 'memberRemoved', appId, channel, userId, mark });
    }
  }
}

/** A SET script's leave mark for one change: its token if it set one, whether it took one (absent: none asked). */
function markOf(token: string | number, taken: string | number): { mark?: string; rejoined?: boolean } {
  const t = Number(taken);
  if (t < 0) return {};
  return token === '' ? { rejoined: t === 1 } : { mark: String(token), rejoined: false };
}
