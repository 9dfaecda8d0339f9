/**
 * RedisState across nodes: a dead node's shares are removed by exactly one survivor with the transitions
 * that follow; a node whose shares were lost (Redis emptied, or it was taken for dead) restores them, and
 * the repair is idempotent.
 */
import { strict as assert } from 'node:assert';
import { test, type TestContext } from 'node:test';
import type { Redis } from 'ioredis';
import pino from 'pino';
import { redisSpec } from '../../server/cluster/redis-connection';
import { redisKeys } from '../../server/cluster/redis-keys';
import { RedisState } from '../../server/state/RedisState';
import type { StateTransition } from '../../server/state/StateTransition';
import { REDIS_URL, deleteKeys, needRedis, redisClient, uniquePrefix, waitFor } from '../helpers/redis';

interface Node {
  state: RedisState;
  seen: StateTransition[];
}

async function nodes(t: TestContext, prefix: string, timings: { heartbeatMs: number; heartbeatTtlMs: number }[]): Promise<Node[]> {
  const log = pino({ level: 'silent' });
  const out: Node[] = [];
  for (const tm of timings) {
    const state = new RedisState({ spec: redisSpec(REDIS_URL), prefix, log, ...tm });
    const node: Node = { state, seen: [] };
    state.onTransitions(async (list) => {
      node.seen.push(...list);
    });
    await state.start();
    out.push(node);
    t.after(() => state.stop());
  }
  // Registered last, so it runs after the nodes stopped (hooks run in order).
  t.after(() => deleteKeys(prefix));
  return out;
}

/** Detaches `node` (as if its process died) and waits until a survivor has removed it; a client for checks. */
async function detachUntilRemoved(t: TestContext, prefix: string, node: Node): Promise<ReturnType<typeof redisClient>> {
  const r = redisClient();
  t.after(() => r.disconnect());
  const k = redisKeys(prefix);
  node.state.detach();
  await waitFor(async () => (await r.sismember(k.nodes, node.state.nodeId)) === 0 && (await r.exists(k.claim(node.state.nodeId))) === 0, 5000, 'the node to be removed');
  return r;
}

const key = (t: StateTransition) => `${t.kind}:${'channel' in t ? t.channel : ''}:${'userId' in t ? t.userId : ''}`;

void test('a dead node\'s shares are removed by exactly one survivor, with the transitions that follow', async (t) => {
  if (!(await needRedis(t))) return;
  const prefix = uniquePrefix();
  const fast = { heartbeatMs: 100, heartbeatTtlMs: 500 };
  const [a, b, c] = await nodes(t, prefix, [fast, fast, fast]);
  const app = 'app1';
  await a.state.addConnection(app, -1);
  await b.state.addConnection(app, -1);
  await a.state.addSubscriber(app, 'only-a');
  await a.state.addSubscriber(app, 'shared');
  await b.state.addSubscriber(app, 'shared');
  await a.state.addMember(app, 'presence-p', 'ua', '{}', 100);
  await a.state.addMember(app, 'presence-p', 'ub', '{}', 100);
  await b.state.addMember(app, 'presence-p', 'ub', '{}', 100);
  await a.state.addUser(app, 'ua');
  await a.state.addUser(app, 'ub');
  await c.state.addUser(app, 'ub');

  const r = await detachUntilRemoved(t, prefix, a);
  const k = redisKeys(prefix);

  const all = [...b.seen, ...c.seen].map(key).sort();
  assert.deepEqual(all, ['count:shared:', 'memberRemoved:presence-p:ua', 'userOffline::ua', 'vacated:only-a:'].sort());
  assert.ok(b.seen.length === 0 || c.seen.length === 0, 'one survivor did the removal');
  assert.equal(await b.state.connectionCount(app), 1);
  assert.equal(await b.state.subscriberCount(app, 'shared'), 1);
  assert.equal(await c.state.subscriberCount(app, 'only-a'), 0);
  assert.deepEqual([...(await c.state.members(app, 'presence-p')).keys()], ['ub']);
  assert.deepEqual([...(await c.state.onlineUsers(app, ['ua', 'ub']))], ['ub']);
  for (const key of [k.index(a.state.nodeId), k.appNode(app, a.state.nodeId), k.channelNode(app, 'presence-p', a.state.nodeId)]) {
    assert.equal(await r.exists(key), 0, `${key} is gone`);
  }
});

void test('a node whose shares Redis lost restores them, reports the transitions once, and a second repair changes nothing', async (t) => {
  if (!(await needRedis(t))) return;
  const prefix = uniquePrefix();
  const [a] = await nodes(t, prefix, [{ heartbeatMs: 100, heartbeatTtlMs: 500 }]);
  const app = 'app1';
  await a.state.addConnection(app, -1);
  await a.state.addSubscriber(app, 'chan');
  await a.state.addSubscriber(app, 'chan');
  await a.state.addMember(app, 'presence-p', 'ua', '{"n":1}', 100);
  await a.state.addUser(app, 'ua');

  await deleteKeys(prefix); // what a Redis restart without persistence does
  await waitFor(async () => (await a.state.subscriberCount(app, 'chan')) === 2, 5000, 'the shares to be restored');
  await waitFor(async () => (await a.state.memberCount(app, 'presence-p')) === 1, 5000, 'the member to be restored');
  assert.equal(await a.state.connectionCount(app), 1);
  assert.deepEqual(Object.fromEntries(await a.state.members(app, 'presence-p')), { ua: '{"n":1}' });
  assert.deepEqual([...(await a.state.onlineUsers(app, ['ua']))], ['ua']);
  await waitFor(() => a.seen.length >= 3, 2000, 'the transitions');
  assert.deepEqual(a.seen.map(key).sort(), ['memberAdded:presence-p:ua', 'occupied:chan:', 'userOnline::ua']);

  // Idempotent: repairing again changes no count and reports nothing.
  a.seen.length = 0;
  await (a.state as unknown as { repair(): Promise<void> }).repair();
  assert.deepEqual(a.seen, []);
  assert.equal(await a.state.subscriberCount(app, 'chan'), 2);
  assert.equal(await a.state.connectionCount(app), 1);
});

void test('a live node taken for dead (its heartbeat lapsed) gets its shares back after the survivors removed them', async (t) => {
  if (!(await needRedis(t))) return;
  const prefix = uniquePrefix();
  const [a, b] = await nodes(t, prefix, [
    { heartbeatMs: 1500, heartbeatTtlMs: 10000 },
    { heartbeatMs: 50, heartbeatTtlMs: 10000 },
  ]);
  const app = 'app1';
  await a.state.addSubscriber(app, 'chan');
  await a.state.addMember(app, 'presence-p', 'ua', '{}', 100);
  const r = redisClient();
  t.after(() => r.disconnect());
  await r.del(redisKeys(prefix).heartbeat(a.state.nodeId)); // as if a had stalled for longer than the TTL

  // The member and the channel are cleaned up in separate batches: wait for both transitions.
  await waitFor(() => b.seen.some((x) => x.kind === 'memberRemoved') && b.seen.some((x) => x.kind === 'vacated'), 5000, 'b to remove a');
  assert.deepEqual(b.seen.map(key).sort(), ['memberRemoved:presence-p:ua', 'vacated:chan:']);
  await waitFor(() => a.seen.some((x) => x.kind === 'memberAdded') && a.seen.some((x) => x.kind === 'occupied'), 5000, 'a to restore its shares');
  assert.deepEqual(a.seen.map(key).sort(), ['memberAdded:presence-p:ua', 'occupied:chan:']);
  assert.equal(await b.state.subscriberCount(app, 'chan'), 1);
  assert.deepEqual([...(await b.state.members(app, 'presence-p')).keys()], ['ua']);
  assert.equal(await r.sismember(redisKeys(prefix).nodes, a.state.nodeId), 1);
});

void test('a burst of joins into one channel shares member-list reads, and every joiner is in its own list', async (t) => {
  if (!(await needRedis(t))) return;
  const prefix = uniquePrefix();
  const [a, b] = await nodes(t, prefix, [{ heartbeatMs: 1000, heartbeatTtlMs: 5000 }, { heartbeatMs: 1000, heartbeatTtlMs: 5000 }]);
  const app = 'app1';
  const channel = 'presence-burst';
  for (let i = 0; i < 200; i++) await b.state.addMember(app, channel, `old${i}`, '{}', -1);
  // Count the HGETALLs of this channel's member hash as Redis sees them.
  const client = redisClient() as Redis;
  const monitor = await client.monitor();
  const reads: string[] = [];
  monitor.on('monitor', (_time: string, args: string[]) => {
    if (args[0]?.toLowerCase() === 'hgetall' && args[1]?.startsWith(prefix)) reads.push(args[1]);
  });
  t.after(() => {
    monitor.disconnect();
    client.disconnect();
  });
  await new Promise((r) => setTimeout(r, 100)); // MONITOR is on before the burst
  // As the gateway does: store the join, then read the list for the joiner.
  const joins = Array.from({ length: 50 }, (_, i) => `new${i}`);
  const frames = await Promise.all(
    joins.map(async (user) => {
      await a.state.addMember(app, channel, user, '{}', -1);
      return { user, frame: await a.state.presenceSubscribedFrame(app, channel) };
    }),
  );
  for (const { user, frame } of frames) {
    const ids = (JSON.parse((JSON.parse(frame) as { data: string }).data) as { presence: { ids: string[] } }).presence.ids;
    assert.ok(ids.includes(user), `${user} is in its own list`);
    assert.ok(ids.length >= 201);
  }
  // The last joiner's list is complete.
  const last = await a.state.presenceSubscribedFrame(app, channel);
  assert.equal((JSON.parse((JSON.parse(last) as { data: string }).data) as { presence: { count: number } }).presence.count, 250);
  await waitFor(() => reads.length >= 2, 2000, 'MONITOR to report the reads');
  // Without sharing it is one per read (51); a busy machine may spread the burst over a few more waves.
  assert.ok(reads.length <= 15, `${reads.length} HGETALLs for 51 reads`);
});

void test('a dead node\'s leaves carry marks set by the same script, and a rejoin on a survivor takes them', async (t) => {
  if (!(await needRedis(t))) return;
  const prefix = uniquePrefix();
  const fast = { heartbeatMs: 100, heartbeatTtlMs: 500 };
  const [a, b] = await nodes(t, prefix, [fast, fast]);
  b.state.setLeaveMarks((_app, channel) => (channel === 'unwatched' ? 0 : 5000));
  const app = 'app1';
  await a.state.addSubscriber(app, 'room');
  await a.state.addSubscriber(app, 'unwatched');
  await a.state.addMember(app, 'presence-p', 'ua', '{}', 100);
  await a.state.addUser(app, 'ua');
  await detachUntilRemoved(t, prefix, a);

  const vacated = b.seen.find((s) => s.kind === 'vacated' && s.channel === 'room');
  const removed = b.seen.find((s) => s.kind === 'memberRemoved' && s.userId === 'ua');
  const plain = b.seen.find((s) => s.kind === 'vacated' && s.channel === 'unwatched');
  assert.ok(vacated?.kind === 'vacated' && typeof vacated.mark === 'string', JSON.stringify(b.seen));
  assert.ok(removed?.kind === 'memberRemoved' && typeof removed.mark === 'string', JSON.stringify(b.seen));
  assert.ok(plain?.kind === 'vacated' && plain.mark === undefined, 'no mark where none is asked for');
  // The rejoin on the survivor finds both marks; the leaves' own timers then find none.
  assert.equal((await b.state.addSubscriber(app, 'room', 5000)).rejoined, true);
  assert.equal((await b.state.addMember(app, 'presence-p', 'ua', '{}', 100, 5000)).rejoined, true);
  assert.equal(await b.state.takeMark(app, { channel: 'room', userId: null }, vacated.mark), false);
  assert.equal(await b.state.takeMark(app, { channel: 'presence-p', userId: 'ua' }, removed.mark), false);
});
