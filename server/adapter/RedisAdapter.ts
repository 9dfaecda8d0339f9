import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { Cluster } from 'ioredis';
import { connectWithin, createRedisClient, isConnectionError, isReady, type RedisClient, type RedisSpec, closeRedis } from '../cluster/redis-connection';
import { redisKeys, type RedisKeys } from '../cluster/redis-keys';
import type { Adapter, AdapterMessage, MessageHandler } from './Adapter';

export interface RedisAdapterOptions {
  spec: RedisSpec;
  prefix: string;
  log: Logger;
  /** How long a channel stays subscribed after its last local subscriber left (default 2 s). */
  unsubscribeDelayMs?: number;
  startTimeoutMs?: number;
}

interface Route {
  appId: string;
  channel: string;
  /** Pending deferred unsubscribe. */
  timer: NodeJS.Timeout | null;
}

/** Length of a node id on the wire (base64url of 6 random bytes). */
const NODE_ID_CHARS = 8;

/** A random id for one adapter instance, so it can recognise its own messages when Redis echoes them. */
export function newNodeId(): string {
  return randomBytes(6).toString('base64url');
}

/**
 * Encodes a message once per publish: one kind letter (`F` frame, `T` terminate), the publishing node's id
 * (8 characters), the excepted socket id, a newline, then the frame text unchanged. App and channel come
 * from the Redis channel it arrives on, so nothing is parsed or re-serialised on the way. All nodes of a
 * cluster must run the same version of this format.
 */
export function encodeMessage(msg: AdapterMessage, origin: string): string {
  return `${msg.action === 'terminate' ? 'T' : 'F'}${origin}${msg.except ?? ''}\n${msg.frame ?? ''}`;
}

export function decodeMessage(appId: string, channel: string, text: string): { origin: string; msg: AdapterMessage } | null {
  const nl = text.indexOf('\n');
  if (nl < 1 + NODE_ID_CHARS) return null;
  const kind = text[0];
  const origin = text.slice(1, 1 + NODE_ID_CHARS);
  const except = nl > 1 + NODE_ID_CHARS ? text.slice(1 + NODE_ID_CHARS, nl) : undefined;
  if (kind === 'T') return { origin, msg: { appId, channel, action: 'terminate', ...(except ? { except } : {}) } };
  if (kind !== 'F') return null;
  return { origin, msg: { appId, channel, frame: text.slice(nl + 1), ...(except ? { except } : {}) } };
}

/**
 * Moves messages between nodes over Redis pub/sub, one Redis channel per routing channel, so a node only
 * receives channels it has subscribers on. Publishes go out on one connection and subscriptions arrive on
 * another, in order, so a node's publishes on a channel reach every node in publish order. On Redis Cluster
 * it uses sharded pub/sub (SPUBLISH/SSUBSCRIBE, Redis 7), which keeps each channel's traffic on one shard.
 *
 * A node's own publishes go to its handler at once, in the caller's tick (as with the local adapter), and
 * their echo from Redis is recognised by the node id and dropped: local subscribers do not pay a Redis round
 * trip, and keep working while Redis is unreachable (other nodes miss those messages: at most once). Only
 * the order between different nodes' publishes on one channel may differ from node to node, which Pusher
 * does not promise either. On reconnect every channel with local subscribers (`registry.localChannels()`) is
 * subscribed again.
 */
export class RedisAdapter implements Adapter {
  readonly name = 'redis';
  readonly reachesOtherNodes = true;
  private readonly pub: RedisClient;
  private readonly sub: RedisClient;
  private readonly sharded: boolean;
  private readonly keys: RedisKeys;
  private readonly log: Logger;
  private readonly unsubscribeDelayMs: number;
  private readonly startTimeoutMs: number;
  /** This instance's id in every message it publishes. */
  readonly nodeId = newNodeId();
  private handler: MessageHandler | null = null;
  /** Redis channel name → route, for every subscribed (or pending-unsubscribe) channel. */
  private readonly routes = new Map<string, Route>();
  private localChannels: (() => Iterable<[string, string]>) | null = null;
  private subscribedOnce = false;
  private stopped = false;
  /** False from a lost subscriber connection until every channel is subscribed again. */
  private synced = true;
  private syncWaiters: (() => void)[] = [];

  constructor(opts: RedisAdapterOptions) {
    this.keys = redisKeys(opts.prefix);
    this.log = opts.log.child({ component: 'redis-adapter' });
    this.unsubscribeDelayMs = opts.unsubscribeDelayMs ?? 2000;
    this.startTimeoutMs = opts.startTimeoutMs ?? 5000;
    this.sharded = opts.spec.mode === 'cluster';
    this.pub = createRedisClient(opts.spec, 'pub');
    this.sub = createRedisClient(opts.spec, 'sub', { sharded: this.sharded });
    for (const c of [this.pub, this.sub]) c.on('error', (err: Error) => this.log.debug({ err: err.message }, 'redis error'));
    const onMessage = (name: string, text: string) => this.receive(name, text);
    this.sub.on(this.sharded ? 'smessage' : 'message', onMessage);
    this.sub.on('ready', () => {
      if (this.subscribedOnce && !this.stopped) void this.resubscribe();
    });
    this.sub.on('close', () => {
      if (this.subscribedOnce) this.synced = false;
    });
  }

  /**
   * Resolves true once this node hears every channel it has subscribers on (at once unless a reconnect is
   * still resubscribing), or false after `timeoutMs`.
   */
  whenSynced(timeoutMs: number): Promise<boolean> {
    if (this.synced && isReady(this.sub)) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.syncWaiters = this.syncWaiters.filter((w) => w !== done);
        resolve(false);
      }, timeoutMs);
      timer.unref();
      const done = () => {
        clearTimeout(timer);
        resolve(true);
      };
      this.syncWaiters.push(done);
    });
  }

  /** The gateway's registry: the channels to subscribe again after a reconnect. */
  bindLocalChannels(fn: () => Iterable<[string, string]>): void {
    this.localChannels = fn;
  }

  async start(handler: MessageHandler): Promise<void> {
    this.handler = handler;
    try {
      await Promise.all([connectWithin(this.pub, this.startTimeoutMs), connectWithin(this.sub, this.startTimeoutMs)]);
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'Redis is not reachable: delivering to local sockets only until it is');
    }
    this.subscribedOnce = true;
    if (!isReady(this.sub)) this.synced = false;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.handler = null;
    for (const r of this.routes.values()) if (r.timer) clearTimeout(r.timer);
    this.routes.clear();
    for (const w of this.syncWaiters.splice(0)) w();
    await Promise.all([this.pub, this.sub].map((c) => closeRedis(c)));
  }

  healthy(): boolean {
    return !this.stopped && isReady(this.pub) && isReady(this.sub);
  }

  async publish(msg: AdapterMessage): Promise<void> {
    const name = this.keys.topic(msg.appId, msg.channel);
    // Local subscribers first, and only for a channel this node routes (as Redis would deliver it).
    if (this.routes.has(name)) this.handler?.(msg);
    if (!isReady(this.pub)) return;
    const payload = encodeMessage(msg, this.nodeId);
    try {
      if (this.sharded) await (this.pub as Cluster).spublish(name, payload);
      else await this.pub.publish(name, payload);
    } catch (err) {
      // It may or may not have reached the other nodes; this node's sockets have it either way.
      this.log.warn({ err: (err as Error).message, channel: msg.channel }, 'publish failed');
    }
  }

  async subscribe(appId: string, channel: string): Promise<void> {
    const name = this.keys.topic(appId, channel);
    const known = this.routes.get(name);
    if (known) {
      if (known.timer) {
        clearTimeout(known.timer);
        known.timer = null;
      }
      return;
    }
    this.routes.set(name, { appId, channel, timer: null });
    // While disconnected the route is kept and subscribed on reconnect.
    if (!isReady(this.sub)) return;
    try {
      await this.redisSubscribe([name]);
    } catch (err) {
      if (isConnectionError(err) || !isReady(this.sub)) return;
      this.routes.delete(name);
      throw err;
    }
  }

  async unsubscribe(appId: string, channel: string): Promise<void> {
    const name = this.keys.topic(appId, channel);
    const route = this.routes.get(name);
    if (!route || route.timer) return;
    // Deferred: a channel that is left and joined again at once (page reloads) keeps its subscription.
    route.timer = setTimeout(() => {
      if (this.routes.get(name) !== route) return;
      this.routes.delete(name);
      if (!isReady(this.sub)) return;
      const done = this.sharded ? (this.sub as Cluster).sunsubscribe(name) : this.sub.unsubscribe(name);
      done.catch((err: unknown) => this.log.debug({ err: (err as Error).message, channel }, 'unsubscribe failed'));
    }, this.unsubscribeDelayMs);
    route.timer.unref();
  }

  private async redisSubscribe(names: string[]): Promise<void> {
    if (this.sharded) {
      // Channels of one SSUBSCRIBE must share a slot: one at a time.
      await Promise.all(names.map((n) => (this.sub as Cluster).ssubscribe(n)));
    } else {
      await this.sub.subscribe(...names);
    }
  }

  private receive(name: string, text: string): void {
    const route = this.routes.get(name);
    if (!route || !this.handler) return;
    const decoded = decodeMessage(route.appId, route.channel, text);
    if (!decoded) this.log.warn({ channel: route.channel }, 'ignored a malformed cluster message');
    else if (decoded.origin !== this.nodeId) this.handler(decoded.msg);
  }

  /** After a reconnect: subscribe again to every channel with local subscribers. */
  private async resubscribe(): Promise<void> {
    if (this.localChannels) {
      for (const r of this.routes.values()) if (r.timer) clearTimeout(r.timer);
      this.routes.clear();
      for (const [appId, channel] of this.localChannels()) this.routes.set(this.keys.topic(appId, channel), { appId, channel, timer: null });
    }
    const names = [...this.routes.keys()];
    try {
      for (let i = 0; i < names.length; i += 500) await this.redisSubscribe(names.slice(i, i + 500));
      this.log.info({ channels: names.length }, 'resubscribed after reconnecting to Redis');
      this.synced = true;
      for (const w of this.syncWaiters.splice(0)) w();
    } catch (err) {
      // The next reconnect tries again.
      this.log.warn({ err: (err as Error).message }, 'resubscribe failed');
    }
  }
}
