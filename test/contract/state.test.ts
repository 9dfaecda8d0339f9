/**
 * The ClusterState contract (server/state/ClusterState.ts), run against every implementation: each method,
 * and exactly-once transitions under concurrent callers. For Redis the callers are spread over several
 * RedisState instances (separate nodes on one Redis), as in a cluster.
 */
import { strict as assert } from 'node:assert';
import { randomBytes } from 'node:crypto';
import { describe, test, type TestContext } from 'node:test';
import pino from 'pino';
import { redisSpec } from '../../server/cluster/redis-connection';
import type { ClusterState, SubscriberChange } from '../../server/state/ClusterState';
import { LocalState } from '../../server/state/LocalState';
import { RedisState } from '../../server/state/RedisState';
import { payloadBytes, type FramePieces } from '../../server/ws/frame';
import { EXTRA_REDIS_URLS, REDIS_URL, deleteKeys, needRedis, needRedisServer, startRedisServer, uniquePrefix, waitFor } from '../helpers/redis';

/** The text of a presence reply, given as text (RedisState) or as the pieces of a built frame (LocalState). */
function frameText(frame: string | FramePieces): string {
  if (typeof frame === 'string') return frame;
  const whole = Buffer.concat(frame);
  return whole.subarray(whole.length - payloadBytes(whole)).toString('utf8');
}

interface Harness {
  /** `n` handles on one shared state (the same instance n times when it cannot be shared). */
  start(t: TestContext, n: number): Promise<ClusterState[] | null>;
}

const local: Harness = {
  async start(_t, n) {
    const s = new LocalState();
    await s.start();
    return Array.from({ length: n }, () => s);
  },
};

const redis = (url: string): Harness => ({
  async start(t, n) {
    if (url === REDIS_URL && !(await needRedis(t))) return null;
    const prefix = uniquePrefix();
    const log = pino({ level: 'silent' });
    const states: RedisState[] = [];
    for (let i = 0; i < n; i++) {
      const s = new RedisState({ spec: redisSpec(url), prefix, log });
      await s.start();
      states.push(s);
    }
    t.after(async () => {
      for (const s of states) await s.stop();
      await deleteKeys(prefix, url);
    });
    return states;
  },
});

const appId = () => `app${randomBytes(4).toString('hex')}`;
/** Runs `count` calls spread round-robin over the handles, all at once. */
const spread = <T>(states: ClusterState[], count: number, fn: (s: ClusterState, i: number) => Promise<T>) =>
  Promise.all(Array.from({ length: count }, (_v, i) => fn(states[i % states.length], i)));

function contract(name: string, h: Harness): void {
  void describe(`ClusterState contract: ${name}`, () => {
    void test('healthy() is true once started', async (t) => {
      const s = await h.start(t, 1);
      if (!s) return;
      assert.equal(s[0].healthy(), true);
    });

    void test('connections: the quota admits exactly `max` of many concurrent connects', async (t) => {
      const s = await h.start(t, 2);
      if (!s) return;
      const app = appId();
      const results = await spread(s, 20, (st) => st.addConnection(app, 7));
      assert.equal(results.filter(Boolean).length, 7);
      assert.equal(await s[1].connectionCount(app), 7);
      // A connection is removed by the node that counted it.
      const counted = results.flatMap((ok, i) => (ok ? [s[i % s.length]] : []));
      await counted[0].removeConnection(app);
      await counted[6].removeConnection(app);
      assert.equal(await s[0].connectionCount(app), 5);
      assert.equal(await s[0].addConnection(app, -1), true);
      assert.equal(await s[1].connectionCount(app), 6);
      assert.equal(await s[0].connectionCount(appId()), 0);
    });

    void test('subscribers: 100 concurrent subscribes from two nodes report `occupied` once, the unsubscribes `vacated` once', async (t) => {
      const s = await h.start(t, 2);
      if (!s) return;
      const app = appId();
      const adds = await spread(s, 100, (st) => st.addSubscriber(app, 'presence-room'));
      assert.equal(adds.filter((c) => c.occupied).length, 1);
      assert.equal(adds.filter((c) => c.vacated).length, 0);
      assert.equal(Math.max(...adds.map((c) => c.count)), 100);
      assert.equal(await s[0].subscriberCount(app, 'presence-room'), 100);
      assert.equal(await s[1].subscriberCount(app, 'presence-room'), 100);
      const removes = await spread(s, 100, (st) => st.removeSubscriber(app, 'presence-room'));
      assert.equal(removes.filter((c) => c.vacated).length, 1);
      assert.equal(removes.filter((c) => c.occupied).length, 0);
      assert.equal(Math.min(...removes.map((c) => c.count)), 0);
      assert.equal(await s[1].subscriberCount(app, 'presence-room'), 0);
    });

    void test('subscribers: removing from an empty channel changes nothing', async (t) => {
      const s = await h.start(t, 1);
      if (!s) return;
      const app = appId();
      assert.deepEqual(await s[0].removeSubscriber(app, 'nobody'), { count: 0, occupied: false, vacated: false, mark: null, rejoined: false });
      assert.deepEqual(await s[0].addSubscriber(app, 'nobody'), { count: 1, occupied: true, vacated: false, mark: null, rejoined: false });
    });

    void test('channels: occupied channels by prefix with their counts', async (t) => {
      const s = await h.start(t, 2);
      if (!s) return;
      const app = appId();
      await s[0].addSubscriber(app, 'presence-a');
      await s[1].addSubscriber(app, 'presence-a');
      await s[1].addSubscriber(app, 'private-b');
      await s[0].addSubscriber(app, 'public*[x]');
      await s[0].addSubscriber(appId(), 'presence-other-app');
      assert.deepEqual(Object.fromEntries(await s[0].channels(app, '')), { 'presence-a': 2, 'private-b': 1, 'public*[x]': 1 });
      assert.deepEqual(Object.fromEntries(await s[1].channels(app, 'presence-')), { 'presence-a': 2 });
      assert.deepEqual(Object.fromEntries(await s[1].channels(app, 'public*')), { 'public*[x]': 1 });
      await s[1].removeSubscriber(app, 'private-b');
      assert.deepEqual([...(await s[0].channels(app, 'private-')).keys()], []);
    });

    void test('members: one user\'s sockets on two nodes make one member, added once and removed once', async (t) => {
      const s = await h.start(t, 2);
      if (!s) return;
      const app = appId();
      const ch = 'presence-team';
      const joins = await spread(s, 50, (st) => st.addMember(app, ch, 'u1', '{"name":"Ann"}', 100));
      assert.equal(joins.filter((j) => j.added).length, 1);
      assert.equal(joins.filter((j) => j.full).length, 0);
      await s[1].addMember(app, ch, 'u2', '{}', 100);
      assert.deepEqual(Object.fromEntries(await s[0].members(app, ch)), { u1: '{"name":"Ann"}', u2: '{}' });
      assert.deepEqual(Object.fromEntries(await s[1].members(app, ch)), { u1: '{"name":"Ann"}', u2: '{}' });
      assert.equal(await s[0].memberCount(app, ch), 2);
      assert.equal(await s[0].isMember(app, ch, 'u2'), true, 'added on the other node');
      const leaves = await spread(s, 50, (st) => st.removeMember(app, ch, 'u1'));
      assert.equal(leaves.filter((l) => l.removed).length, 1);
      assert.deepEqual([...(await s[0].members(app, ch)).keys()], ['u2']);
      assert.equal(await s[1].isMember(app, ch, 'u1'), false);
      assert.equal(await s[1].isMember(app, 'presence-empty', 'u1'), false);
      assert.deepEqual(await s[0].removeMember(app, ch, 'nobody'), { removed: false, mark: null });
      assert.equal(await s[1].memberCount(app, 'presence-empty'), 0);
    });

    void test('presence frame: the subscription_succeeded frame follows every join and leave', async (t) => {
      const s = await h.start(t, 2);
      if (!s) return;
      const app = appId();
      const ch = 'presence-frame';
      // Each node removes only the sockets it added, as the gateway does.
      const expect = async (members: Record<string, unknown>) => {
        for (const st of s) {
          const frame = JSON.parse(frameText(await st.presenceSubscribedFrame(app, ch))) as { event: string; channel: string; data: string };
          assert.equal(frame.event, 'pusher_internal:subscription_succeeded');
          assert.equal(frame.channel, ch);
          const { presence } = JSON.parse(frame.data) as { presence: { ids: string[]; hash: Record<string, unknown>; count: number } };
          assert.deepEqual([...presence.ids].sort(), Object.keys(members).sort());
          assert.deepEqual(presence.hash, members);
          assert.equal(presence.count, Object.keys(members).length);
        }
      };
      await expect({});
      await s[0].addMember(app, ch, 'u1', '{"name":"Ann"}', 100);
      await s[1].addMember(app, ch, 'u2', '{}', 100);
      await expect({ u1: { name: 'Ann' }, u2: {} });
      await s[1].addMember(app, ch, 'u1', '{"name":"Ann"}', 100);
      await s[1].removeMember(app, ch, 'u2');
      await expect({ u1: { name: 'Ann' } });
      const odd = '{"quote":"\\"x\\"","back":"\\\\","emoji":"😀","nl":"\\n"}';
      await s[1].addMember(app, ch, 'ü "3"', odd, 100);
      await s[0].removeMember(app, ch, 'u1');
      await expect({ u1: { name: 'Ann' }, 'ü "3"': JSON.parse(odd) as unknown });
      await s[1].removeMember(app, ch, 'u1');
      await expect({ 'ü "3"': JSON.parse(odd) as unknown });
    });

    void test('members: a full channel refuses new users but not more sockets of a member', async (t) => {
      const s = await h.start(t, 2);
      if (!s) return;
      const app = appId();
      const ch = 'presence-small';
      const joins = await spread(s, 6, (st, i) => st.addMember(app, ch, `u${i}`, '{}', 3));
      assert.equal(joins.filter((j) => j.added).length, 3);
      assert.equal(joins.filter((j) => j.full).length, 3);
      const member = [...(await s[0].members(app, ch)).keys()][0];
      assert.deepEqual(await s[1].addMember(app, ch, member, '{}', 3), { added: false, full: false, rejoined: false });
      assert.equal(await s[1].memberCount(app, ch), 3);
    });

    void test('users: first and last signed-in socket reported once each; onlineUsers', async (t) => {
      const s = await h.start(t, 2);
      if (!s) return;
      const app = appId();
      const firsts = await spread(s, 30, (st) => st.addUser(app, 'alice'));
      assert.equal(firsts.filter(Boolean).length, 1);
      await s[0].addUser(app, 'bob');
      assert.deepEqual([...(await s[1].onlineUsers(app, ['alice', 'bob', 'carol']))].sort(), ['alice', 'bob']);
      assert.deepEqual([...(await s[1].onlineUsers(app, []))], []);
      const lasts = await spread(s, 30, (st) => st.removeUser(app, 'alice'));
      assert.equal(lasts.filter(Boolean).length, 1);
      assert.deepEqual([...(await s[0].onlineUsers(app, ['alice', 'bob']))], ['bob']);
      assert.equal(await s[0].removeUser(app, 'nobody'), false);
    });

    void test('cache: the last event with its time to live, shared by every node', async (t) => {
      const s = await h.start(t, 2);
      if (!s) return;
      const app = appId();
      assert.equal(await s[0].getCache(app, 'cache-x'), null);
      await s[0].setCache(app, 'cache-x', '{"event":"a"}', 60);
      await s[1].setCache(app, 'cache-x', '{"event":"b"}', 30);
      const got = await s[0].getCache(app, 'cache-x');
      assert.equal(got?.frame, '{"event":"b"}');
      assert.ok(got && got.ttl >= 29 && got.ttl <= 30, `ttl ${got?.ttl}`);
    });

    void test('takeRate: a per-second budget shared by the cluster', async (t) => {
      const s = await h.start(t, 2);
      if (!s) return;
      const app = appId();
      assert.equal(await s[0].takeRate(app, 'rest', -1, 1000), 0);
      // Budgets refill each second: retry if the calls straddled a second boundary.
      for (let attempt = 0; ; attempt++) {
        const bucket = `b${attempt}`;
        const start = Math.floor(Date.now() / 1000);
        const waits = await spread(s, 8, (st) => st.takeRate(app, bucket, 5, 1));
        if (Math.floor(Date.now() / 1000) !== start && attempt < 5) continue;
        assert.equal(waits.filter((w) => w === 0).length, 5);
        assert.ok(waits.filter((w) => w > 0).every((w) => w >= 1));
        break;
      }
    });

    void test('marks: exactly one of many concurrent takers finds a mark; an expired mark is gone', async (t) => {
      const s = await h.start(t, 2);
      if (!s) return;
      const app = appId();
      const ch = { channel: 'ch', userId: null };
      await s[0].setMark(app, ch, 'token-1', 10000);
      const takes = await spread(s, 20, (st) => st.takeMark(app, ch));
      assert.equal(takes.filter(Boolean).length, 1);
      assert.equal(await s[1].takeMark(app, { channel: 'never-set', userId: null }), false);
      await s[1].setMark(app, { channel: 'short', userId: 'u1' }, 'token-2', 1);
      await new Promise((resolve) => setTimeout(resolve, 30)); // the TTL itself is what is tested
      assert.equal(await s[0].takeMark(app, { channel: 'short', userId: 'u1' }), false);
    });

    void test('marks: with a token only the mark that token set is taken; without, any', async (t) => {
      const s = await h.start(t, 2);
      if (!s) return;
      const app = appId();
      const ch = { channel: 'ch', userId: null };
      // A leave's timer on node 0 must not take the mark a later leave set on node 1 under the same key.
      await s[0].setMark(app, ch, 'first', 10000);
      await s[1].setMark(app, ch, 'second', 10000);
      assert.equal(await s[0].takeMark(app, ch, 'first'), false);
      assert.equal(await s[1].takeMark(app, ch, 'second'), true);
      assert.equal(await s[1].takeMark(app, ch, 'second'), false, 'taken once');
      // A join takes whatever mark is there.
      await s[0].setMark(app, ch, 'third', 10000);
      assert.equal(await s[1].takeMark(app, ch), true);
      assert.equal(await s[0].takeMark(app, ch, 'third'), false);
      // A channel's mark and its members' marks are apart.
      await s[0].setMark(app, { channel: 'ch', userId: 'u1' }, 'member', 10000);
      assert.equal(await s[1].takeMark(app, ch), false);
      assert.equal(await s[1].takeMark(app, { channel: 'ch', userId: 'u2' }), false);
      assert.equal(await s[1].takeMark(app, { channel: 'ch', userId: 'u1' }, 'member'), true);
    });

    void test('leave marks: the unsubscribe that vacates sets the mark, the subscribe that occupies again takes it', async (t) => {
      const s = await h.start(t, 2);
      if (!s) return;
      const app = appId();
      const key = { channel: 'room', userId: null };
      await s[0].addSubscriber(app, 'room', 5000);
      await s[1].addSubscriber(app, 'room', 5000);
      assert.deepEqual(await s[0].removeSubscriber(app, 'room', 5000), { count: 1, occupied: false, vacated: false, mark: null, rejoined: false });
      const vacated = await s[1].removeSubscriber(app, 'room', 5000);
      assert.equal(vacated.vacated, true);
      assert.equal(typeof vacated.mark, 'string');
      // The next subscribe, on the other node, straight after: the mark is there already.
      const back = await s[0].addSubscriber(app, 'room', 5000);
      assert.deepEqual(back, { count: 1, occupied: true, vacated: false, mark: null, rejoined: true });
      assert.equal(await s[1].takeMark(app, key, vacated.mark ?? undefined), false, 'the rejoin took it');
      // A second subscribe does not occupy, so takes nothing; the next vacate marks again, with a new token.
      assert.equal((await s[1].addSubscriber(app, 'room', 5000)).rejoined, false);
      await s[0].removeSubscriber(app, 'room', 5000);
      const again = await s[1].removeSubscriber(app, 'room', 5000);
      assert.equal(again.vacated, true);
      assert.notEqual(again.mark, vacated.mark);
      // The leave's own timer takes it back; a subscribe after that rejoins nothing.
      assert.equal(await s[1].takeMark(app, key, again.mark ?? undefined), true);
      assert.equal((await s[0].addSubscriber(app, 'room', 5000)).rejoined, false);
      // Without a lifetime nothing is marked, and nothing is taken.
      const plain = await s[0].removeSubscriber(app, 'room');
      assert.deepEqual(plain, { count: 0, occupied: false, vacated: true, mark: null, rejoined: false });
      assert.equal(await s[0].takeMark(app, key), false);
      await s[1].setMark(app, key, 'kept', 5000);
      assert.equal((await s[1].addSubscriber(app, 'room')).rejoined, false);
      assert.equal(await s[1].takeMark(app, key, 'kept'), true, 'a subscribe without a lifetime leaves marks alone');
      // A mark outlives its leave by its lifetime only.
      const short = await s[1].removeSubscriber(app, 'room', 1);
      assert.equal(typeof short.mark, 'string');
      await new Promise((resolve) => setTimeout(resolve, 30)); // the TTL itself is what is tested
      assert.equal((await s[0].addSubscriber(app, 'room', 5000)).rejoined, false);
    });

    void test('leave marks: many concurrent joins and leaves of one channel pair every mark with one rejoin or its own timer', async (t) => {
      const s = await h.start(t, 2);
      if (!s) return;
      const app = appId();
      const key = { channel: 'busy', userId: null };
      // Each round: a vacate on one node races occupies on both; exactly one occupy may take the mark.
      for (let round = 0; round < 20; round++) {
        await s[round % 2].addSubscriber(app, 'busy', 5000);
        const results: SubscriberChange[] = await Promise.all([
          s[round % 2].removeSubscriber(app, 'busy', 5000),
          s[0].addSubscriber(app, 'busy', 5000),
          s[1].addSubscriber(app, 'busy', 5000),
        ]);
        const [left, ...joins] = results;
        const rejoins = joins.filter((j) => j.rejoined).length;
        const occupies = joins.filter((j) => j.occupied).length;
        assert.ok(rejoins <= 1 && rejoins <= occupies, `round ${round}: ${rejoins} rejoins for ${occupies} occupies`);
        if (left.vacated) {
          // The vacate came first: the one occupy after it took its mark, and the timer finds none.
          assert.equal(occupies, 1, `round ${round}`);
          assert.equal(rejoins, 1, `round ${round}: the occupy after the vacate must find its mark`);
          assert.equal(await s[round % 2].takeMark(app, key, left.mark ?? undefined), false);
        } else assert.equal(rejoins, 0, `round ${round}`);
        for (const j of joins) assert.equal(j.mark, null);
        await s[0].removeSubscriber(app, 'busy');
        await s[1].removeSubscriber(app, 'busy');
        assert.equal(await s[0].subscriberCount(app, 'busy'), 0);
      }
    });

    void test('leave marks: the last socket of a member marks its leave, the member\'s next join on any node takes it', async (t) => {
      const s = await h.start(t, 2);
      if (!s) return;
      const app = appId();
      const ch = 'presence-marks';
      const key = { channel: ch, userId: 'u1' };
      assert.deepEqual(await s[0].addMember(app, ch, 'u1', '{}', 100, 5000), { added: true, full: false, rejoined: false });
      await s[1].addMember(app, ch, 'u1', '{}', 100, 5000);
      await s[1].addMember(app, ch, 'u2', '{}', 100, 5000);
      assert.deepEqual(await s[0].removeMember(app, ch, 'u1', 5000), { removed: false, mark: null });
      const left = await s[1].removeMember(app, ch, 'u1', 5000);
      assert.equal(left.removed, true);
      assert.equal(typeof left.mark, 'string');
      // Another member's join, and the channel's own mark, are untouched by it.
      assert.equal(await s[0].takeMark(app, { channel: ch, userId: null }), false);
      assert.equal((await s[0].addMember(app, ch, 'u3', '{}', 100, 5000)).rejoined, false);
      assert.deepEqual(await s[0].addMember(app, ch, 'u1', '{}', 100, 5000), { added: true, full: false, rejoined: true });
      assert.equal(await s[1].takeMark(app, key, left.mark ?? undefined), false, 'the rejoin took it');
      // A refused join (channel full) takes nothing.
      const u2 = await s[1].removeMember(app, ch, 'u2', 5000);
      await s[1].addMember(app, ch, 'u4', '{}', 100);
      assert.deepEqual(await s[0].addMember(app, ch, 'u2', '{}', 3, 5000), { added: false, full: true, rejoined: false });
      assert.equal(await s[1].takeMark(app, { channel: ch, userId: 'u2' }, u2.mark ?? undefined), true);
    });
  });
}

contract('LocalState', local);
contract('RedisState', redis(REDIS_URL));
for (const url of EXTRA_REDIS_URLS) contract(`RedisState on ${url}`, redis(url));

void test('RedisState: leave marks while Redis is unreachable are kept on the node, and taken there', { timeout: 30000 }, async (t) => {
  if (!needRedisServer(t)) return;
  const srv = await startRedisServer();
  t.after(() => srv.stop());
  const s = new RedisState({ spec: redisSpec(srv.url), prefix: uniquePrefix(), log: pino({ level: 'silent' }) });
  await s.start();
  t.after(() => s.stop());
  const app = appId();
  await s.addSubscriber(app, 'room', 5000);
  await s.addMember(app, 'presence-room', 'u1', '{}', 100, 5000);
  await srv.kill();
  await waitFor(async () => !s.healthy(), 10000, 'the state to notice the outage');
  // A leave and a rejoin during the outage pair up on this node, as they would in Redis.
  const left = await s.removeSubscriber(app, 'room', 5000);
  assert.equal(left.vacated, true);
  assert.equal(typeof left.mark, 'string');
  assert.equal((await s.addSubscriber(app, 'room', 5000)).rejoined, true);
  assert.equal(await s.takeMark(app, { channel: 'room', userId: null }, left.mark ?? undefined), false, 'the rejoin took it');
  // A leave whose own timer comes first takes its mark back, from the node.
  const gone = await s.removeMember(app, 'presence-room', 'u1', 5000);
  assert.equal(gone.removed, true);
  assert.equal(await s.takeMark(app, { channel: 'presence-room', userId: 'u1' }, gone.mark ?? undefined), true);
  assert.equal((await s.addMember(app, 'presence-room', 'u1', '{}', 100, 5000)).rejoined, false);
});
