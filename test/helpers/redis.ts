/**
 * Redis for tests: the machine's Redis (HERALD_TEST_REDIS_URL, default 127.0.0.1:6379) under a unique key
 * prefix per test, and a private `redis-server` child process for tests that stop and restart Redis.
 * Outside CI a missing Redis skips the test; in CI (`CI=true`) it fails it.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import type { TestContext } from 'node:test';
import Redis, { Cluster } from 'ioredis';
import { connectWithin, createRedisClient, redisSpec } from '../../server/cluster/redis-connection';

export const REDIS_URL = process.env.HERALD_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const inCi = process.env.CI === 'true' || process.env.CI === '1';

let reachable: Promise<boolean> | null = null;

async function ping(url: string): Promise<boolean> {
  const r = createRedisClient(redisSpec(url), 'test-ping');
  r.on('error', () => undefined);
  try {
    await connectWithin(r, 1500);
    return (await r.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    r.disconnect();
  }
}

/** True when the test Redis answers; skips the test otherwise (fails it in CI). */
export async function needRedis(t: TestContext): Promise<boolean> {
  reachable ??= ping(REDIS_URL);
  if (await reachable) return true;
  if (inCi) throw new Error(`Redis is required in CI and is not reachable at ${REDIS_URL}`);
  t.skip(`no Redis at ${REDIS_URL}`);
  return false;
}

/** True when `redis-server` can be started; skips the test otherwise (fails it in CI). */
export function needRedisServer(t: TestContext): boolean {
  const r = spawnSync('redis-server', ['--version'], { encoding: 'utf8' });
  if (r.status === 0) return true;
  if (inCi) throw new Error('redis-server is required in CI and was not found on PATH');
  t.skip('redis-server not found on PATH');
  return false;
}

/** A key prefix no other test uses. */
export function uniquePrefix(): string {
  return `herald-test:${randomBytes(6).toString('hex')}:`;
}

/**
 * More Redis deployments to run the Redis contract suites against (opt-in, space-separated URLs), e.g. a
 * local Redis Cluster `redis+cluster://127.0.0.1:17001` or Sentinel `redis+sentinel://127.0.0.1:26379/mymaster`.
 */
export const EXTRA_REDIS_URLS = (process.env.HERALD_TEST_REDIS_EXTRA_URLS ?? '').split(/\s+/).filter(Boolean);

/** Deletes every key under `prefix` (tests call it in `t.after`); on Redis Cluster, on every master. */
export async function deleteKeys(prefix: string, url = REDIS_URL): Promise<void> {
  const client = createRedisClient(redisSpec(url), 'test-cleanup');
  client.on('error', () => undefined);
  try {
    await connectWithin(client, 5000);
    const nodes = client instanceof Cluster ? client.nodes('master') : [client];
    for (const r of nodes) {
      let cursor = '0';
      do {
        const [next, keys] = await r.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
        cursor = next;
        // One key per command: on Redis Cluster keys of one call must share a slot.
        await Promise.all(keys.map((k) => r.unlink(k)));
      } while (cursor !== '0');
    }
  } finally {
    client.disconnect();
  }
}

/** A connection for a test's own checks (queues until connected); closed by the caller. */
export function redisClient(url = REDIS_URL): Redis | Cluster {
  const spec = redisSpec(url);
  const r =
    spec.mode === 'cluster' ? new Cluster(spec.nodes)
    : spec.mode === 'sentinel' ? new Redis({ sentinels: spec.sentinels, name: spec.name })
    : new Redis(spec.url ?? REDIS_URL);
  r.on('error', () => undefined);
  return r;
}

/** Polls `check` until it returns a truthy value or `timeoutMs` passes. */
export async function waitFor<T>(check: () => T | Promise<T>, timeoutMs = 5000, what = 'condition', everyMs = 25): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v) return v as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}

/** A TCP port free on 127.0.0.1 just now (for a server a test starts outside this process). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** A private redis-server (no persistence) that a test may kill and start again on the same port. */
export interface TestRedisServer {
  port: number;
  url: string;
  /** Kills the process (SIGKILL) and waits for it to exit. */
  kill(): Promise<void>;
  /** Starts it again on the same port, empty. */
  restart(): Promise<void>;
  /** Kills it if running; safe to call twice. */
  stop(): Promise<void>;
}

export async function startRedisServer(): Promise<TestRedisServer> {
  const port = await freePort();
  let proc: ChildProcess | null = null;
  const launch = async () => {
    const p = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--protected-mode', 'no'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    proc = p;
    await new Promise<void>((resolve, reject) => {
      let out = '';
      const timer = setTimeout(() => reject(new Error(`redis-server did not start on ${port}: ${out}`)), 10000);
      p.stdout?.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.includes('Ready to accept connections')) {
          clearTimeout(timer);
          resolve();
        }
      });
      p.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`redis-server exited with ${code}: ${out}`));
      });
    });
  };
  const kill = async () => {
    const p = proc as ChildProcess | null;
    proc = null;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => p.once('exit', () => resolve()));
    process.kill(p.pid as number, 'SIGKILL');
    await exited;
  };
  await launch();
  return { port, url: `redis://127.0.0.1:${port}`, kill, restart: launch, stop: kill };
}
