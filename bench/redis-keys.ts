/**
 * The Redis side of multi-node scenarios: a per-run key prefix, a reachability check, and deleting every key
 * of that prefix afterwards (SCAN + UNLINK, never anything outside the prefix). Also runnable on its own
 * (`node dist/bench/redis-keys.js delete HOST PORT PREFIX`) so that the SIGINT path can do it synchronously.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import Redis from 'ioredis';

export interface RedisAddress {
  host: string;
  port: number;
}

/** The machine's Redis the scenarios use; loopback only. */
export const LOCAL_REDIS: RedisAddress = { host: '127.0.0.1', port: 6379 };

/** Only prefixes of this shape are ever deleted, so a bug cannot turn into `SCAN *` + delete. */
const BENCH_PREFIX = /^bench-\d+-\d+:$/;
const CONNECT_TIMEOUT_MS = 2000;
const DELETE_LIMIT_MS = 10_000;
const SCAN_COUNT = 1000;

/** A prefix no other run (or Herald deployment) uses: `bench-<pid>-<ms since epoch>:`. */
export function uniqueBenchPrefix(): string {
  return `bench-${process.pid}-${Date.now()}:`;
}

function connect(addr: RedisAddress): Redis {
  return new Redis({
    host: addr.host,
    port: addr.port,
    lazyConnect: true,
    connectTimeout: CONNECT_TIMEOUT_MS,
    maxRetriesPerRequest: 1,
    // One attempt: a missing Redis is reported, not retried forever.
    retryStrategy: () => null,
  });
}

/** null when Redis answers PING, else why not. */
export async function redisProblem(addr: RedisAddress): Promise<string | null> {
  const redis = connect(addr);
  redis.on('error', () => undefined);
  try {
    await redis.connect();
    const pong = await redis.ping();
    return pong === 'PONG' ? null : `PING answered ${pong}`;
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  } finally {
    redis.disconnect();
  }
}

/**
 * PID of the Redis server (`INFO server` → `process_id`) when it runs on this machine and its /proc entry is
 * readable, so that its CPU can be reported; null otherwise.
 */
export async function redisServerPid(addr: RedisAddress): Promise<number | null> {
  const redis = connect(addr);
  redis.on('error', () => undefined);
  try {
    await redis.connect();
    const m = /^process_id:(\d+)/m.exec(await redis.info('server'));
    const pid = m === null ? null : Number(m[1]);
    return pid !== null && existsSync(`/proc/${pid}/stat`) ? pid : null;
  } catch {
    return null;
  } finally {
    redis.disconnect();
  }
}

/** Number of keys whose name starts with `prefix`. */
export async function countKeys(addr: RedisAddress, prefix: string): Promise<number> {
  let n = 0;
  await scanPrefix(addr, prefix, async (_redis, keys) => {
    n += keys.length;
  });
  return n;
}

/** Deletes every key whose name starts with `prefix` (a bench prefix only); returns how many. */
export async function deleteKeysWithPrefix(addr: RedisAddress, prefix: string): Promise<number> {
  let n = 0;
  await scanPrefix(addr, prefix, async (redis, keys) => {
    n += await redis.unlink(...keys);
  });
  return n;
}

/** The same, from a child process, for exit paths that cannot wait for a promise. */
export function deleteKeysWithPrefixSync(addr: RedisAddress, prefix: string): void {
  checkPrefix(prefix);
  execFileSync(process.execPath, [__filename, 'delete', addr.host, String(addr.port), prefix], {
    timeout: DELETE_LIMIT_MS + 2000,
    stdio: 'ignore',
  });
}

function checkPrefix(prefix: string): void {
  if (!BENCH_PREFIX.test(prefix)) throw new Error(`refusing to touch Redis keys outside a bench prefix: ${prefix}`);
}

async function scanPrefix(
  addr: RedisAddress,
  prefix: string,
  onKeys: (redis: Redis, keys: string[]) => Promise<void>,
): Promise<void> {
  checkPrefix(prefix);
  const redis = connect(addr);
  redis.on('error', () => undefined);
  const endMs = performance.now() + DELETE_LIMIT_MS;
  try {
    await redis.connect();
    let cursor = '0';
    do {
      if (performance.now() > endMs) throw new Error(`SCAN of ${prefix}* did not finish within ${DELETE_LIMIT_MS} ms`);
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', SCAN_COUNT);
      if (keys.length > 0) await onKeys(redis, keys);
      cursor = next;
    } while (cursor !== '0');
  } finally {
    redis.disconnect();
  }
}

if (require.main === module && process.argv[2] === 'delete') {
  const [host, port, prefix] = process.argv.slice(3);
  deleteKeysWithPrefix({ host, port: Number(port) }, prefix).then(
    (n) => process.stdout.write(`${n}\n`),
    (err: unknown) => {
      process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
      process.exitCode = 1;
    },
  );
}
