/**
 * The Adapter contract (server/adapter/Adapter.ts), run against every implementation: own messages come
 * back through the handler, per-channel publish order, frames and routing fields unchanged, subscribe /
 * unsubscribe semantics. Implementations that connect nodes are also checked across nodes.
 */
import { strict as assert } from 'node:assert';
import { describe, test, type TestContext } from 'node:test';
import pino from 'pino';
import type { Adapter, AdapterMessage } from '../../server/adapter/Adapter';
import { LocalAdapter } from '../../server/adapter/LocalAdapter';
import { RedisAdapter, decodeMessage, encodeMessage, newNodeId } from '../../server/adapter/RedisAdapter';
import { Cluster } from 'ioredis';
import { connectWithin, createRedisClient, redisSpec } from '../../server/cluster/redis-connection';
import { redisKeys } from '../../server/cluster/redis-keys';
import { EXTRA_REDIS_URLS, REDIS_URL, deleteKeys, needRedis, uniquePrefix, waitFor } from '../helpers/redis';

interface Node {
  adapter: Adapter;
  got: AdapterMessage[];
}

interface Harness {
  /** Starts `n` adapters on one bus. */
  start(t: TestContext, n: number): Promise<Node[] | null>;
  /** How many nodes can share a bus. */
  maxNodes: number;
  /** Delivers only subscribed channels (the contract allows more; Redis is exact). */
  exactRouting: boolean;
  /** Waits until node `i`'s deferred unsubscribe of a channel has reached the broker. */
  unsubscribed?(nodes: Node[], i: number, appId: string, channel: string): Promise<void>;
}

async function startNodes(t: TestContext, make: () => Adapter, n: number): Promise<Node[]> {
  const nodes: Node[] = [];
  for (let i = 0; i < n; i++) {
    const node: Node = { adapter: make(), got: [] };
    await node.adapter.start((m) => node.got.push(m));
    nodes.push(node);
    t.after(() => node.adapter.stop());
  }
  return nodes;
}

const local: Harness = {
  maxNodes: 1,
  exactRouting: false,
  start: async (t, n) => startNodes(t, () => new LocalAdapter(), n),
};

const redis = (url: string): Harness => {
  let prefix = '';
  return {
    maxNodes: 3,
    exactRouting: true,
    async start(t, n) {
      if (url === REDIS_URL && !(await needRedis(t))) return null;
      prefix = uniquePrefix();
      const mine = prefix;
      t.after(() => deleteKeys(mine, url));
      const log = pino({ level: 'silent' });
      return startNodes(t, () => new RedisAdapter({ spec: redisSpec(url), prefix: mine, log, unsubscribeDelayMs: 50 }), n);
    },
    async unsubscribed(_nodes, _i, appId, channel) {
      const topic = redisKeys(prefix).topic(appId, channel);
      const client = createRedisClient(redisSpec(url), 'test');
      client.on('error', () => undefined);
      try {
        await connectWithin(client, 5000);
        // Plain pub/sub on one Redis; sharded pub/sub (SSUBSCRIBE) on every master of a Cluster.
        const count = async () => {
          if (!(client instanceof Cluster)) return Number(((await client.pubsub('NUMSUB', topic)) as [string, number])[1]);
          const counts = await Promise.all(client.nodes('master').map(async (m) => Number(((await m.call('PUBSUB', 'SHARDNUMSUB', topic)) as [string, number])[1])));
          return counts.reduce((x, y) => x + y, 0);
        };
        await waitFor(async () => (await count()) === 0, 3000, 'the unsubscribe');
      } finally {
        client.disconnect();
      }
    },
  };
};

const frames = (node: Node, channel?: string) => node.got.filter((m) => channel === undefined || m.channel === channel).map((m) => m.frame);

function contract(name: string, h: Harness): void {
  void describe(`Adapter contract: ${name}`, () => {
    void test('the handler gets the node\'s own messages, with every field unchanged', async (t) => {
      const nodes = await h.start(t, 1);
      if (!nodes) return;
      const [a] = nodes;
      await a.adapter.subscribe('app1', 'chan');
      const frame = '{"event":"ev","channel":"chan","data":"{\\"x\\":\\"é ✓ \\\\n line\\"}"}\n second line';
      await a.adapter.publish({ appId: 'app1', channel: 'chan', frame, except: '123.456' });
      await a.adapter.publish({ appId: 'app1', channel: 'chan', action: 'terminate' });
      await a.adapter.publish({ appId: 'app1', channel: 'chan', frame: '' });
      await waitFor(() => a.got.length >= 3, 3000, 'three messages');
      assert.deepEqual(a.got[0], { appId: 'app1', channel: 'chan', frame, except: '123.456' });
      assert.equal(a.got[1].action, 'terminate');
      assert.equal(a.got[1].frame === undefined || a.got[1].frame === '', true);
      assert.equal(a.got[2].frame, '');
      assert.equal(a.got[2].except, undefined);
    });

    void test('messages on one channel arrive in publish order', async (t) => {
      const nodes = await h.start(t, 1);
      if (!nodes) return;
      const [a] = nodes;
      await a.adapter.subscribe('app1', 'ordered');
      const sent = Array.from({ length: 500 }, (_v, i) => `frame-${i}`);
      await Promise.all(sent.map((frame) => a.adapter.publish({ appId: 'app1', channel: 'ordered', frame })));
      await waitFor(() => a.got.length >= sent.length, 5000, 'every message');
      assert.deepEqual(frames(a), sent);
    });

    void test('subscribe is idempotent and a quick unsubscribe + subscribe keeps the channel', async (t) => {
      const nodes = await h.start(t, 1);
      if (!nodes) return;
      const [a] = nodes;
      await a.adapter.subscribe('app1', 'c');
      await a.adapter.subscribe('app1', 'c');
      await a.adapter.unsubscribe('app1', 'c');
      await a.adapter.subscribe('app1', 'c');
      await a.adapter.publish({ appId: 'app1', channel: 'c', frame: 'one' });
      await waitFor(() => a.got.length >= 1, 3000, 'the message');
      // Published once, received once: a double subscription would deliver it twice.
      await a.adapter.publish({ appId: 'app1', channel: 'c', frame: 'two' });
      await waitFor(() => a.got.length >= 2, 3000, 'the second message');
      assert.deepEqual(frames(a), ['one', 'two']);
    });

    void test('channels of different apps are kept apart', async (t) => {
      const nodes = await h.start(t, 1);
      if (!nodes) return;
      const [a] = nodes;
      await a.adapter.subscribe('app1', 'same');
      await a.adapter.subscribe('app2', 'same');
      await a.adapter.publish({ appId: 'app1', channel: 'same', frame: 'for-1' });
      await a.adapter.publish({ appId: 'app2', channel: 'same', frame: 'for-2' });
      await waitFor(() => a.got.length >= 2, 3000, 'both messages');
      assert.deepEqual(a.got.map((m) => [m.appId, m.frame]), [['app1', 'for-1'], ['app2', 'for-2']]);
    });

    void test('healthy() is true once started', async (t) => {
      const nodes = await h.start(t, 1);
      if (!nodes) return;
      assert.equal(nodes[0].adapter.healthy(), true);
    });

    if (h.maxNodes >= 3) {
      void test('a publish reaches every subscribed node, in order, and only those', async (t) => {
        const nodes = await h.start(t, 3);
        if (!nodes) return;
        const [a, b, c] = nodes;
        await b.adapter.subscribe('app1', 'room');
        await c.adapter.subscribe('app1', 'room');
        await c.adapter.subscribe('app1', 'other');
        const sent = Array.from({ length: 200 }, (_v, i) => `m${i}`);
        await Promise.all(sent.map((frame) => a.adapter.publish({ appId: 'app1', channel: 'room', frame })));
        await a.adapter.publish({ appId: 'app1', channel: 'other', frame: 'done' });
        await waitFor(() => frames(b).length >= sent.length && frames(c, 'other').length === 1, 5000, 'delivery on b and c');
        assert.deepEqual(frames(b, 'room'), sent);
        assert.deepEqual(frames(c, 'room'), sent);
        // a never subscribed, b never subscribed to `other`; the last message proves the rest arrived.
        if (h.exactRouting) {
          assert.equal(a.got.length, 0);
          assert.deepEqual(frames(b, 'other'), []);
        }
      });

      void test('a node gets its own publish at once and exactly once, and so does every other node', async (t) => {
        const nodes = await h.start(t, 2);
        if (!nodes) return;
        const [a, b] = nodes;
        await a.adapter.subscribe('app1', 'both');
        await b.adapter.subscribe('app1', 'both');
        const published = a.adapter.publish({ appId: 'app1', channel: 'both', frame: 'one' });
        // In the caller's tick, before any broker round trip: local subscribers never wait for Redis.
        assert.deepEqual(frames(a), ['one']);
        await published;
        await waitFor(() => frames(b).length === 1, 3000, 'b gets it');
        // b's reply reaches a after a's own echo of `one` (one Redis connection delivers in order): by the
        // time a has the reply, a dropped or would have delivered the echo.
        await b.adapter.publish({ appId: 'app1', channel: 'both', frame: 'reply' });
        await waitFor(() => frames(a).length >= 2, 3000, 'a gets the reply');
        assert.deepEqual(frames(a), ['one', 'reply']);
        assert.deepEqual(frames(b), ['one', 'reply']);
      });

      void test('after unsubscribe a node stops receiving the channel', async (t) => {
        const nodes = await h.start(t, 2);
        if (!nodes) return;
        const [a, b] = nodes;
        await b.adapter.subscribe('app1', 'leaving');
        await b.adapter.subscribe('app1', 'marker');
        await a.adapter.publish({ appId: 'app1', channel: 'leaving', frame: 'before' });
        await waitFor(() => frames(b, 'leaving').length === 1, 3000, 'the first message');
        await b.adapter.unsubscribe('app1', 'leaving');
        await h.unsubscribed?.(nodes, 1, 'app1', 'leaving');
        await a.adapter.publish({ appId: 'app1', channel: 'leaving', frame: 'after' });
        await a.adapter.publish({ appId: 'app1', channel: 'marker', frame: 'marker' });
        await waitFor(() => frames(b, 'marker').length === 1, 3000, 'the marker');
        if (h.exactRouting) assert.deepEqual(frames(b, 'leaving'), ['before']);
      });
    }
  });
}

contract('LocalAdapter', local);
contract('RedisAdapter', redis(REDIS_URL));
for (const url of EXTRA_REDIS_URLS) contract(`RedisAdapter on ${url}`, redis(url));

void test('the Redis message encoding round-trips every field without parsing the frame', () => {
  const cases: AdapterMessage[] = [
    { appId: 'a', channel: 'c', frame: '{"event":"x"}\n\n' },
    { appId: 'a', channel: 'c', frame: 'f', except: '1.2' },
    { appId: 'a', channel: 'c', action: 'terminate' },
    { appId: 'a', channel: 'c', action: 'terminate', except: '9.9' },
  ];
  const origin = newNodeId();
  assert.equal(origin.length, 8);
  for (const m of cases) {
    const back = decodeMessage('a', 'c', encodeMessage(m, origin));
    assert.deepEqual(back, { origin, msg: m.action ? { appId: 'a', channel: 'c', action: 'terminate', ...(m.except ? { except: m.except } : {}) } : m });
  }
  assert.equal(decodeMessage('a', 'c', 'garbage'), null);
  assert.equal(decodeMessage('a', 'c', 'Fshort\n{}'), null, 'too short for a node id');
});
