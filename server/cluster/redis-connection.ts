/**
 * Where Redis is and how to connect to it: a URL or a config object becomes one `RedisSpec`, and every
 * connection Herald opens (state commands, publishes, subscriptions) is made from it the same way.
 *
 * URL forms: `redis://[user:pass@]host:port[/db]`, `rediss://…` (TLS),
 * `redis+sentinel://[user:pass@]host:26379,host2:26379/masterName[/db]`,
 * `redis+cluster://[user:pass@]host:7000,host2:7001` (`rediss+…` for TLS).
 */
import Redis, { Cluster, type ClusterOptions, type RedisOptions } from 'ioredis';

/** The `redis` config-file form (the URL form is a plain string). */
export interface RedisConfig {
  url?: string;
  /** Redis Cluster seed nodes, `host:port`. */
  cluster?: string[];
  /** Sentinels; `name` is the master's name. */
  sentinels?: { host: string; port?: number }[];
  name?: string;
  username?: string;
  password?: string;
  sentinelPassword?: string;
  db?: number;
  tls?: boolean;
}

interface HostPort {
  host: string;
  port: number;
}

interface Auth {
  username?: string;
  password?: string;
  tls?: boolean;
}

export type RedisSpec =
  | ({ mode: 'standalone'; url?: string; host?: string; port?: number; db?: number } & Auth)
  | ({ mode: 'sentinel'; sentinels: HostPort[]; name: string; db?: number; sentinelPassword?: string } & Auth)
  | ({ mode: 'cluster'; nodes: HostPort[] } & Auth);

export class RedisConfigError extends Error {
  override readonly name = 'RedisConfigError';
}

function hostPort(text: string, defaultPort: number): HostPort {
  const m = /^(\[[^\]]+\]|[^:]+)(?::(\d+))?$/.exec(text.trim());
  if (!m) throw new RedisConfigError(`invalid Redis host '${text}'`);
  return { host: m[1].replace(/^\[|\]$/g, ''), port: m[2] ? Number(m[2]) : defaultPort };
}

function parseAuth(userinfo: string | undefined): { username?: string; password?: string } {
  if (!userinfo) return {};
  const i = userinfo.indexOf(':');
  const username = decodeURIComponent(i < 0 ? userinfo : userinfo.slice(0, i));
  const password = i < 0 ? undefined : decodeURIComponent(userinfo.slice(i + 1));
  return { ...(username ? { username } : {}), ...(password ? { password } : {}) };
}

/** Parses a Redis URL (see the module comment); throws RedisConfigError naming what is wrong. */
export function parseRedisUrl(url: string): RedisSpec {
  const plain = /^(rediss?):\/\//.exec(url);
  if (plain) return { mode: 'standalone', url, tls: plain[1] === 'rediss' };
  const m = /^(rediss?)\+(sentinel|cluster):\/\/(?:([^@/]*)@)?([^/?#]+)(?:\/([^/?#]*))?(?:\/(\d+))?(?:\?(.*))?$/.exec(url);
  if (!m) {
    throw new RedisConfigError(`unsupported Redis URL '${url.replace(/\/\/[^@/]*@/, '//***@')}': use redis://, rediss://, redis+sentinel:// or redis+cluster://`);
  }
  const [, scheme, kind, userinfo, hosts, path, db, query] = m;
  const auth = { ...parseAuth(userinfo), tls: scheme === 'rediss' };
  if (kind === 'cluster') {
    return { mode: 'cluster', nodes: hosts.split(',').map((h) => hostPort(h, 6379)), ...auth };
  }
  if (!path) throw new RedisConfigError('a redis+sentinel:// URL needs the master name as its path (…/mymaster)');
  const params = new URLSearchParams(query ?? '');
  const sentinelPassword = params.get('sentinelPassword') ?? undefined;
  return {
    mode: 'sentinel',
    sentinels: hosts.split(',').map((h) => hostPort(h, 26379)),
    name: decodeURIComponent(path),
    ...(db ? { db: Number(db) } : {}),
    ...(sentinelPassword ? { sentinelPassword } : {}),
    ...auth,
  };
}

/** The `redis` option (URL or object) as a spec. */
export function redisSpec(config: string | RedisConfig): RedisSpec {
  if (typeof config === 'string') return parseRedisUrl(config);
  const auth: Auth = {
    ...(config.username ? { username: config.username } : {}),
    ...(config.password ? { password: config.password } : {}),
    ...(config.tls ? { tls: true } : {}),
  };
  const modes = [config.url, config.cluster, config.sentinels].filter((x) => x !== undefined).length;
  if (modes !== 1) throw new RedisConfigError('redis: give exactly one of url, cluster or sentinels');
  if (config.url !== undefined) {
    const spec = parseRedisUrl(config.url);
    return { ...spec, ...auth, ...(config.db !== undefined && spec.mode !== 'cluster' ? { db: config.db } : {}) } as RedisSpec;
  }
  if (config.cluster) {
    if (config.cluster.length === 0) throw new RedisConfigError('redis.cluster needs at least one host:port');
    return { mode: 'cluster', nodes: config.cluster.map((h) => hostPort(h, 6379)), ...auth };
  }
  const sentinels = config.sentinels ?? [];
  if (sentinels.length === 0 || !config.name) throw new RedisConfigError('redis.sentinels needs at least one sentinel and the master name in redis.name');
  return {
    mode: 'sentinel',
    sentinels: sentinels.map((s) => ({ host: s.host, port: s.port ?? 26379 })),
    name: config.name,
    ...(config.db !== undefined ? { db: config.db } : {}),
    ...(config.sentinelPassword ? { sentinelPassword: config.sentinelPassword } : {}),
    ...auth,
  };
}

/** Where the spec points, for logs (never the password). */
export function describeRedis(spec: RedisSpec): string {
  if (spec.mode === 'standalone') return spec.url ? spec.url.replace(/\/\/[^@/]*@/, '//***@') : `redis://${spec.host ?? '127.0.0.1'}:${spec.port ?? 6379}`;
  if (spec.mode === 'cluster') return `cluster ${spec.nodes.map((n) => `${n.host}:${n.port}`).join(',')}`;
  return `sentinel ${spec.sentinels.map((n) => `${n.host}:${n.port}`).join(',')} master ${spec.name}`;
}

export type RedisClient = Redis | Cluster;

/**
 * Opens a connection (lazily: `connect()` starts it). Commands fail at once while disconnected instead of
 * queueing (no offline queue, no resend of unanswered commands): Herald's state must know whether a
 * command ran, and its outage repair re-asserts what it did not, in order.
 */
export function createRedisClient(spec: RedisSpec, role: string, opts: { sharded?: boolean } = {}): RedisClient {
  const common: RedisOptions = {
    lazyConnect: true,
    enableOfflineQueue: false,
    autoResendUnfulfilledCommands: false,
    autoResubscribe: false,
    maxRetriesPerRequest: 1,
    connectionName: `herald-${role}`,
    connectTimeout: 5000,
    retryStrategy: (times: number) => Math.min(100 * times, 2000),
    ...(spec.username ? { username: spec.username } : {}),
    ...(spec.password ? { password: spec.password } : {}),
    ...(spec.tls ? { tls: {} } : {}),
  };
  if (spec.mode === 'cluster') {
    const { enableOfflineQueue: _ignored, ...nodeOptions } = common;
    const options: ClusterOptions = {
      lazyConnect: true,
      // Queued, unlike a single Redis: ioredis opens each node's connection on its first command and, with
      // no queue, bounces the commands sent meanwhile to a random node and back (MOVED), out of order. Herald
      // checks `isReady` itself before sending, so nothing is queued while the cluster is down.
      enableOfflineQueue: true,
      scaleReads: 'master',
      shardedSubscribers: opts.sharded === true,
      clusterRetryStrategy: (times: number) => Math.min(100 * times, 2000),
      redisOptions: nodeOptions,
    };
    return new Cluster(spec.nodes, options);
  }
  if (spec.mode === 'sentinel') {
    return new Redis({
      ...common,
      sentinels: spec.sentinels,
      name: spec.name,
      ...(spec.db !== undefined ? { db: spec.db } : {}),
      ...(spec.sentinelPassword ? { sentinelPassword: spec.sentinelPassword } : {}),
      ...(spec.tls ? { enableTLSForSentinelMode: true } : {}),
    });
  }
  if (spec.url) return new Redis(spec.url, common);
  return new Redis({ ...common, host: spec.host ?? '127.0.0.1', port: spec.port ?? 6379, ...(spec.db !== undefined ? { db: spec.db } : {}) });
}

/** True when commands can be sent now. */
export function isReady(client: RedisClient): boolean {
  return client.status === 'ready';
}

/** True for errors that mean "not connected" rather than "the command itself failed". */
export function isConnectionError(err: unknown): boolean {
  const message = err instanceof Error ? err.message : String(err);
  return /Connection is closed|Stream isn't writeable|ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE|Connection lost|enableOfflineQueue|Failed to refresh slots|LOADING|MASTERDOWN|READONLY|TRYAGAIN|CLUSTERDOWN/i.test(message);
}

/** Resolves with the client once it is ready, or rejects after `ms`; reconnection carries on either way. */
export async function connectWithin(client: RedisClient, ms: number): Promise<void> {
  if (isReady(client)) return;
  let timer: NodeJS.Timeout | undefined;
  const ready = new Promise<void>((resolve) => client.once('ready', () => resolve()));
  const timeout = new Promise<never>((_r, reject) => {
    timer = setTimeout(() => reject(new Error(`Redis not ready within ${ms} ms`)), ms);
  });
  // connect() rejects on the first failed attempt, but ioredis keeps retrying; the `ready` event decides.
  if (client.status === 'wait') client.connect().catch(() => undefined);
  try {
    await Promise.race([ready, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Closes a client without hanging. QUIT lets pending replies finish, but on a connection that is not
 * ready ioredis queues it behind the offline queue until a reconnect that may never come (Redis down at
 * shutdown): then, or when QUIT takes longer than `graceMs`, the connection is simply dropped.
 */
export async function closeRedis(client: RedisClient, graceMs = 1000): Promise<void> {
  if (client.status !== 'ready') {
    client.disconnect();
    return;
  }
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, graceMs);
    timer.unref();
  });
  await Promise.race([client.quit().then(() => undefined, () => undefined), late]);
  clearTimeout(timer);
  // QUIT may have timed out, or not been sent at all: make sure the socket is gone either way.
  if ((client.status as string) !== 'end') client.disconnect();
}
