/**
 * ClusterState's Web Push liveness (addLiveDevice / removeLiveDevice / liveDevices) on LocalState and on
 * RedisState across nodes, including a node that dies and a Redis that loses its data.
 */
import { strict as assert } from 'node:assert';
import { randomBytes } from 'node:crypto';
import { describe, test, type TestContext } from 'node:test';
import pino from 'pino';
import { redisSpec } from '../../server/cluster/redis-connection';
import type { ClusterState } from '../../server/state/ClusterState';
import { LocalState } from '../../server/state/LocalState';
import { RedisState } from '../../server/state/RedisState';
import { REDIS_URL, deleteKeys, needRedis, redisClient, uniquePrefix, waitFor } from '../helpers/redis';

const appId = () => `app${randomBytes(4).toString('hex')}`;

async function redisNodes(t: TestContext, n: number, prefix = uniquePrefix()): Promise<RedisState[] | null> {
  if (!(await needRedis(t))) return null;
  const log = pino({ level: 'silent' });
  const states: RedisState[] = [];
  for (let i = 0; i < n; i++) {
    const s = new RedisState({ spec: redisSpec(REDIS_URL), prefix, log, heartbeatMs: 100, heartbeatTtlMs: 400 });
    await s.start();
    states.push(s);
  }
  t.after(async () => {
    for (const s of states) await s.stop();
    await deleteKeys(prefix);
  });
  return states;
}

function contract(name: string, start: (t: TestContext, n: number) => Promise<ClusterState[] | null>): void {
  void describe(`live push devices: ${name}`, () => {
    void test('a device is live on a channel while any of its sockets is subscribed, on any node', async (t) => {
      const nodes = await start(t, 2);
      if (!nodes) return;
      const [a, b] = nodes;
      const app = appId();
      assert.deepEqual(await a.liveDevices(app, 'news', ['d1', 'd2']), new Set());
      await a.addLiveDevice(app, 'news', 'd1');
      await b.addLiveDevice(app, 'news', 'd1');
      await b.addLiveDevice(app, 'sport', 'd2');
      assert.deepEqual(await b.liveDevices(app, 'news', ['d1', 'd2', 'd3']), new Set(['d1']));
      assert.deepEqual(await a.liveDevices(app, 'sport', ['d1', 'd2']), new Set(['d2']));
      assert.deepEqual(await a.liveDevices(appId(), 'news', ['d1']), new Set(), 'apps are separate');
      await a.removeLiveDevice(app, 'news', 'd1');
      assert.deepEqual(await a.liveDevices(app, 'news', ['d1']), new Set(['d1']), 'still one socket on the other node');
      await b.removeLiveDevice(app, 'news', 'd1');
      await b.removeLiveDevice(app, 'news', 'd1');
      assert.deepEqual(await a.liveDevices(app, 'news', ['d1']), new Set());
      await a.addLiveDevice(app, 'news', 'd1');
      assert.deepEqual(await b.liveDevices(app, 'news', ['d1']), new Set(['d1']), 'an extra remove did not go below zero');
    });

    void test('a batch of 10 000 ids is answered in one call', async (t) => {
      const nodes = await start(t, 2);
      if (!nodes) return;
      const app = appId();
      const ids = Array.from({ length: 10000 }, (_v, i) => `dev-${i}`);
      for (let i = 0; i < 50; i++) await nodes[i % 2].addLiveDevice(app, 'big', ids[i * 200]);
      const live = await nodes[0].liveDevices(app, 'big', ids);
      assert.equal(live.size, 50);
    });
  });
}

contract('local', async (_t, n) => {
  const s = new LocalState();
  return Array.from({ length: n }, () => s);
});
contract('redis', redisNodes);

void test('redis: a node that dies stops counting once its heartbeat expires, and its keys are removed', async (t) => {
  const prefix = uniquePrefix();
  const nodes = await redisNodes(t, 2, prefix);
  if (!nodes) return;
  const [a, b] = nodes;
  const app = appId();
  await b.addLiveDevice(app, 'news', 'd1');
  assert.deepEqual(await a.liveDevices(app, 'news', ['d1']), new Set(['d1']));
  b.detach();
  await waitFor(async () => (await a.liveDevices(app, 'news', ['d1'])).size === 0, 5000, 'the dead node to stop counting');
  const r = redisClient();
  t.after(() => r.disconnect());
  await waitFor(async () => (await r.keys(`${prefix}*dev*`)).length === 0, 5000, 'the dead node\'s device keys to be removed');
});

void test('redis: a node restores its live devices after Redis lost them', async (t) => {
  const prefix = uniquePrefix();
  const nodes = await redisNodes(t, 2, prefix);
  if (!nodes) return;
  const [a, b] = nodes;
  const app = appId();
  await a.addLiveDevice(app, 'news', 'd1');
  await deleteKeys(prefix);
  await waitFor(async () => (await b.liveDevices(app, 'news', ['d1'])).size === 1, 5000, 'node a to restore its shares');
});
