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

/**
 * Encodes a message once per publish: one kind letter (`F` frame, `T` terminate), the excepted socket id,
 * a newline, then the frame text unchanged. App and channel come from the Redis channel it arrives on, so
 * nothing is parsed or re-serialised on the way.
 */
export function encodeMessage(msg: AdapterMessage): string {
  return `${msg.action === 'terminate' ? 'T' : 'F'}${msg.except ?? ''}\n${msg.frame ?? ''}`;
}

export function decodeMessage(appId: string, channel: string, text: string): AdapterMessage | null {
  const nl = text.indexOf('\n');
  if (nl < 1) return null;
  const kind = text[0];
  const except = nl > 1 ? text.slice(1, nl) : undefined;
  if (kind === 'T') return { appId, channel, action: 'terminate', ...(except ? { except } : {}) };
  if (kind !== 'F') return null;
  return { appId, channel, frame: text.slice(nl + 1), ...(except ? { except } : {}) };
}

/**
 * Moves messages between nodes over Redis pub/sub, one Redis channel per routing channel, so a node only
 * receives channels it has subscribers on. Publishes go out on one connection and subscriptions arrive on
 * another, in order, so a node's publishes on a channel reach every node in publish order (its own included:
 * the handler gets them back through Redis, like everyone else's). On Redis Cluster it uses sharded pub/sub
 * (SPUBLISH/SSUBSCRIBE, Redis 7), which keeps each channel's traffic on one shard.
 *
 * While Redis is unreachable, publishes are handed straight to the local handler, so this node's sockets
 * keep working; other nodes miss them (at most once). On reconnect every channel with local subscribers
 * (`registry.localChannels()`) is subscribed again.
 */
export class RedisAdapter implements Adapter {
  readonly name = 'redis';
  private readonly pub: RedisClient;
  private readonly sub: RedisClient;
  private readonly sharded: boolean;
  private readonly keys: RedisKeys;
  private readonly log: Logger;
  private readonly unsubscribeDelayMs: number;
  private readonly startTimeoutMs: number;
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
    const pubUp = isReady(this.pub);
    if (pubUp) {
      const name = this.keys.topic(msg.appId, msg.channel);
      const payload = encodeMessage(msg);
      try {
        if (this.sharded) await (this.pub as Cluster).spublish(name, payload);
        else await this.pub.publish(name, payload);
      } catch (err) {
        // It may or may not have gone out: not delivered locally as well, or it could arrive twice.
        this.log.warn({ err: (err as Error).message, channel: msg.channel }, 'publish failed');
        return;
      }
    }
    // Not sent, or sent while this node cannot hear it back: this node's sockets still get it.
    if (!pubUp || !isReady(this.sub)) this.handler?.(msg);
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
    const msg = decodeMessage(route.appId, route.channel, text);
    if (msg) this.handler(msg);
    else this.log.warn({ channel: route.channel }, 'ignored a malformed cluster message');
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
