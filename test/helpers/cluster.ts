/**
 * Several Herald nodes in this process on one Redis, serving the same app under a key prefix of their own.
 * Everything (nodes, keys) is released in `t.after`.
 */
import { randomBytes, randomInt } from 'node:crypto';
import type { TestContext } from 'node:test';
import pino from 'pino';
import { createRedisBackends, type ClusterTuning } from '../../server/cluster/create-backends';
import type { AppOptions } from '../../server/options/Options';
import { startHerald, type TestHerald } from './herald';
import { REDIS_URL, deleteKeys, needRedis, uniquePrefix } from './redis';

export interface TestCluster {
  nodes: TestHerald[];
  prefix: string;
  app: AppOptions;
  /** Starts one more node on the same Redis, prefix and app. */
  add(): Promise<TestHerald>;
}

/** Starts `n` nodes; null (test skipped) when Redis is missing outside CI. */
export async function startCluster(
  t: TestContext,
  n: number,
  opts: { app?: Partial<AppOptions>; tuning?: ClusterTuning; redisUrl?: string; checkRedis?: boolean } = {},
): Promise<TestCluster | null> {
  const url = opts.redisUrl ?? REDIS_URL;
  if (opts.checkRedis !== false && url === REDIS_URL && !(await needRedis(t))) return null;
  const prefix = uniquePrefix();
  const app = {
    id: String(randomInt(100000, 999999999)),
    key: `key-${randomBytes(6).toString('hex')}`,
    secret: `secret-${randomBytes(8).toString('hex')}`,
    ...opts.app,
  } as AppOptions;
  const log = pino({ level: process.env.HERALD_TEST_LOG ?? 'silent' });
  const nodes: TestHerald[] = [];
  const add = async () => {
    const h = await startHerald({ apps: [app], backends: createRedisBackends({ redis: url, prefix, log, ...opts.tuning }) });
    nodes.push(h);
    return h;
  };
  t.after(async () => {
    await Promise.all(nodes.map((h) => h.stop()));
    if (url === REDIS_URL) await deleteKeys(prefix);
  });
  for (let i = 0; i < n; i++) await add();
  return { nodes, prefix, app: nodes[0].app, add };
}
