/**
 * Failures of a cluster: a node killed with SIGKILL (a separate `node dist/server/main.js` process) is
 * removed by the others within 30 s, with member_removed, channel_vacated and watchlist offline; and a
 * Redis restarted mid-test (a private redis-server, empty when it returns) is survived without a restart:
 * nodes serve locally meanwhile, report degraded on /ready, then resubscribe and restore their state.
 */
import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { redisKeys } from '../../server/cluster/redis-keys';
import type { AppOptions } from '../../server/options/Options';
import type { RedisState } from '../../server/state/RedisState';
import { RawClient, authFor, nextEvent, pusherJs, serverSdk, type PusherClient } from '../helpers/clients';
import { startCluster } from '../helpers/cluster';
import type { TestHerald } from '../helpers/herald';
import { REDIS_URL, needRedisServer, redisClient, startRedisServer, waitFor } from '../helpers/redis';

const MAIN = join(__dirname, '..', '..', 'server', 'main.js');

/** Starts `node dist/server/main.js` as its own process on the cluster's Redis, prefix and app. */
async function spawnNode(prefix: string, app: AppOptions): Promise<{ h: TestHerald; pid: number; kill(): void }> {
  const dir = mkdtempSync(join(tmpdir(), 'herald-node-'));
  const config = join(dir, 'config.json');
  writeFileSync(config, JSON.stringify({ apps: [app] }));
  const child = spawn(process.execPath, [MAIN], {
    env: {
      ...process.env,
      HERALD_CONFIG: config,
      HERALD_REDIS_URL: REDIS_URL,
      HERALD_REDIS_PREFIX: prefix,
      HERALD_HOST: '127.0.0.1',
      HERALD_PORT: '0',
      HERALD_DATA_DIR: dir,
      HERALD_LOG_LEVEL: 'info',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const kill = () => {
    if (child.exitCode === null && child.signalCode === null) process.kill(child.pid as number, 'SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  };
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`node did not start: ${out}`)), 15000);
    child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      for (const line of out.split('\n')) {
        if (!line.includes('Herald is listening')) continue;
        clearTimeout(timer);
        resolve((JSON.parse(line) as { port: number }).port);
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`node exited with ${code}: ${out}`));
    });
  });
  const h = { host: '127.0.0.1', port, app, apps: [app], baseUrl: `http://127.0.0.1:${port}` } as unknown as TestHerald;
  return { h, pid: child.pid as number, kill };
}

void test('kill -9 of a node: the others remove its connections within 30 s and send member_removed, channel_vacated and offline, once', { timeout: 60000 }, async (t) => {
  const cl = await startCluster(t, 2, { app: { watchlist: true } });
  if (!cl) return;
  const [a, b] = cl.nodes;
  const c = await spawnNode(cl.prefix, cl.app);
  t.after(() => c.kill());

  const seen: string[] = [];
  for (const h of [a, b]) {
    h.server.gateway.observe({
      channelVacated: (_app, ch) => seen.push(`vacated ${ch}`),
      memberRemoved: (_app, ch, user) => seen.push(`member_removed ${ch} ${user}`),
    });
  }
  // On A: a presence member who also watches `uc`.
  const x: PusherClient = pusherJs(a, { presence: { user_id: 'ua' }, user: { id: 'ua', watchlist: ['uc'] } });
  t.after(() => x.disconnect());
  const room = x.subscribe('presence-kill');
  await nextEvent(room, 'pusher:subscription_succeeded');
  const removed: string[] = [];
  room.bind('pusher:member_removed', (m: { id: string }) => removed.push(m.id));
  const offline: string[][] = [];
  x.user.watchlist.bind('offline', (e: { user_ids: string[] }) => offline.push(e.user_ids));
  const online = nextEvent<{ user_ids: string[] }>(x.user.watchlist, 'online');
  const joined = nextEvent<{ id: string }>(room, 'pusher:member_added');
  x.signin();
  await waitFor(() => offline.length === 1, 5000, 'the initial watchlist state');
  offline.length = 0;

  // On C: the watched user, in the presence channel and alone in another channel.
  const y = await RawClient.connect(c.h);
  const { auth, user_data } = serverSdk(c.h).authenticateUser(y.socketId, { id: 'uc' });
  y.send({ event: 'pusher:signin', data: { auth, user_data } });
  await y.next('pusher:signin_success');
  const channelData = JSON.stringify({ user_id: 'uc' });
  y.send({ event: 'pusher:subscribe', data: { channel: 'presence-kill', channel_data: channelData, auth: authFor(cl.app, y.socketId, 'presence-kill', channelData) } });
  y.send({ event: 'pusher:subscribe', data: { channel: 'only-on-c' } });
  await y.next('pusher_internal:subscription_succeeded', 5000, 'only-on-c');
  assert.equal((await joined).id, 'uc');
  assert.deepEqual((await online).user_ids, ['uc']);

  const r = redisClient();
  t.after(() => r.disconnect());
  const k = redisKeys(cl.prefix);
  const survivors = [a, b].map((h) => (h.server.gateway.state as RedisState).nodeId);
  const dead = (await r.smembers(k.nodes)).filter((id) => !survivors.includes(id));
  assert.equal(dead.length, 1, 'the spawned node is a member');

  const killedAt = Date.now();
  c.kill();
  await waitFor(() => removed.includes('uc') && offline.length > 0 && seen.includes('vacated only-on-c'), 30000, 'the dead node\'s connections to be removed', 100);
  const took = Date.now() - killedAt;
  assert.ok(took < 30000, `took ${took} ms`);
  // Wait until the removal is complete (no node claims it any more), then check nothing was doubled.
  await waitFor(async () => (await r.sismember(k.nodes, dead[0])) === 0 && (await r.exists(k.claim(dead[0]))) === 0, 10000, 'the removal to finish');
  assert.deepEqual(seen.sort(), ['member_removed presence-kill uc', 'vacated only-on-c']);
  assert.deepEqual(removed, ['uc']);
  assert.deepEqual(offline, [['uc']]);
  const info = await (await serverSdk(b).get({ path: '/channels/only-on-c', params: { info: 'subscription_count' } })).json();
  assert.deepEqual(info, { occupied: false, subscription_count: 0 });
  const users = (await (await serverSdk(a).get({ path: '/channels/presence-kill/users', params: {} })).json()) as { users: { id: string }[] };
  assert.deepEqual(users.users, [{ id: 'ua' }]);
  t.diagnostic(`dead node removed ${took} ms after kill -9`);
});

void test('Redis restarted mid-test: nodes serve locally, report degraded, then resubscribe and restore their state', { timeout: 60000 }, async (t) => {
  if (!needRedisServer(t)) return;
  const srv = await startRedisServer();
  const cl = await startCluster(t, 2, { redisUrl: srv.url, checkRedis: false });
  t.after(() => srv.stop()); // after the nodes' own stop hooks
  if (!cl) return;
  const [a, b] = cl.nodes;
  const ready = async (h: TestHerald) => (await fetch(`${h.baseUrl}/ready`)).status;

  const na = pusherJs(a);
  const nb = pusherJs(b);
  const pa = pusherJs(a, { presence: { user_id: 'ua' } });
  const pb = pusherJs(b, { presence: { user_id: 'ub' } });
  const late = pusherJs(a, { presence: { user_id: 'uc' } });
  t.after(() => [na, nb, pa, pb, late].forEach((c) => c.disconnect()));
  const newsA = na.subscribe('news');
  const newsB = nb.subscribe('news');
  const roomB = pb.subscribe('presence-r');
  await Promise.all([newsA, newsB, pa.subscribe('presence-r'), roomB].map((ch) => nextEvent(ch, 'pusher:subscription_succeeded')));

  await srv.kill();
  await waitFor(async () => (await ready(a)) === 503 && (await ready(b)) === 503, 10000, '/ready to report the outage');
  const body = (await (await fetch(`${a.baseUrl}/ready`)).json()) as { adapter: { healthy: boolean }; state: { healthy: boolean } };
  assert.equal(body.adapter.healthy, false);
  assert.equal(body.state.healthy, false);

  // Meanwhile node A keeps serving its own sockets.
  const local = nextEvent(newsA, 'during');
  await serverSdk(a).trigger('news', 'during', { n: 1 });
  assert.deepEqual(await local, { n: 1 });
  const lateRoom = late.subscribe('presence-r');
  await nextEvent(lateRoom, 'pusher:subscription_succeeded');
  assert.equal(na.connection.state, 'connected');
  assert.equal(nb.connection.state, 'connected');

  // Redis comes back empty: every node re-registers, resubscribes and restores its shares.
  const membersB = (roomB as unknown as { members: { get(id: string): unknown; count: number } }).members;
  assert.equal(membersB.get('uc'), null, 'b has not heard of uc yet');
  await srv.restart();
  await waitFor(async () => (await ready(a)) === 200 && (await ready(b)) === 200, 15000, '/ready to recover');
  // The member who joined on A during the outage reaches B's clients (member_added, or B's resync).
  await waitFor(() => membersB.get('uc') !== null && membersB.count === 3, 10000, 'uc in the member list on b');

  const atB = nextEvent(newsB, 'after');
  await serverSdk(a).trigger('news', 'after', { n: 2 });
  assert.deepEqual(await atB, { n: 2 });
  const atA = nextEvent(newsA, 'after-b');
  await serverSdk(b).trigger('news', 'after-b', { n: 3 });
  assert.deepEqual(await atA, { n: 3 });

  for (const h of [a, b]) {
    const users = (await (await serverSdk(h).get({ path: '/channels/presence-r/users', params: {} })).json()) as { users: { id: string }[] };
    assert.deepEqual(users.users.map((u) => u.id).sort(), ['ua', 'ub', 'uc']);
    const news = await (await serverSdk(h).get({ path: '/channels/news', params: { info: 'subscription_count' } })).json();
    assert.deepEqual(news, { occupied: true, subscription_count: 2 });
  }
  const newcomer = pusherJs(b, { presence: { user_id: 'ud' } });
  t.after(() => newcomer.disconnect());
  const room = newcomer.subscribe('presence-r') as unknown as { members: { count: number } };
  await nextEvent(room as never, 'pusher:subscription_succeeded');
  assert.equal(room.members.count, 4);
});
