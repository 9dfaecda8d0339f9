/**
 * Three Herald nodes on one Redis, with real pusher-js clients and the `pusher` server SDK: publishes,
 * presence, REST counts, terminate, server-to-user, client events and watchlist work across nodes, and
 * transitions are reported by exactly one node.
 */
import { strict as assert } from 'node:assert';
import { test, type TestContext } from 'node:test';
import type PusherServer from 'pusher';
import type { GatewayObserver } from '../../server/GatewayObserver';
import { RawClient, nextEvent, pusherJs, serverSdk, type ClientOptions, type PusherClient } from '../helpers/clients';
import { startCluster } from '../helpers/cluster';
import type { TestHerald } from '../helpers/herald';
import { waitFor } from '../helpers/redis';

type Channel = ReturnType<PusherClient['subscribe']>;
interface Member {
  id: string;
  info: unknown;
}
interface PresenceChannel extends Channel {
  members: { count: number; each(fn: (m: Member) => void): void };
}

function client(t: TestContext, h: TestHerald, opts: ClientOptions = {}): PusherClient {
  const c = pusherJs(h, opts);
  t.after(() => c.disconnect());
  return c;
}

async function join(c: PusherClient, name: string): Promise<Channel> {
  const ch = c.subscribe(name);
  await nextEvent(ch, 'pusher:subscription_succeeded');
  return ch;
}

async function rest<T>(h: TestHerald, path: string, params: Record<string, string> = {}): Promise<T> {
  const res = await serverSdk(h).get({ path, params });
  return (await res.json()) as T;
}

/** Resolves when node `h` has finished tearing down its next closed connection. */
function nextClose(h: TestHerald): Promise<void> {
  return new Promise((resolve) => {
    let done = false;
    const observer: GatewayObserver = {
      connectionClosed: () => {
        if (!done) resolve();
        done = true;
      },
    };
    h.server.gateway.observe(observer);
  });
}

async function signedIn(t: TestContext, h: TestHerald, user: PusherServer.UserChannelData): Promise<RawClient> {
  const c = await RawClient.connect(h);
  t.after(() => c.close());
  const { auth, user_data } = serverSdk(h).authenticateUser(c.socketId, user);
  c.send({ event: 'pusher:signin', data: { auth, user_data } });
  await c.next('pusher:signin_success');
  return c;
}

void test('a trigger on node A reaches pusher-js clients on nodes B and C, in order', async (t) => {
  const cl = await startCluster(t, 3);
  if (!cl) return;
  const [a, b, c] = cl.nodes;
  const got: Record<string, number[]> = { b: [], c: [] };
  for (const [name, h] of [['b', b], ['c', c]] as const) {
    const ch = await join(client(t, h), 'news');
    ch.bind('tick', (d: { n: number }) => got[name].push(d.n));
  }
  const sdk = serverSdk(a);
  for (let n = 0; n < 20; n++) await sdk.trigger('news', 'tick', { n });
  await waitFor(() => got.b.length === 20 && got.c.length === 20, 5000, 'every event on b and c');
  const expected = Array.from({ length: 20 }, (_v, i) => i);
  assert.deepEqual(got.b, expected);
  assert.deepEqual(got.c, expected);
});

void test('presence across nodes: one member per user, the same list everywhere, member_removed once after the last socket', async (t) => {
  const cl = await startCluster(t, 3, { app: { clientEvents: true } });
  if (!cl) return;
  const [a, b, c] = cl.nodes;
  const room = 'presence-room';
  const watcher = (await join(client(t, c, { presence: { user_id: 'u2', user_info: { name: 'Two' } } }), room)) as PresenceChannel;
  const added: string[] = [];
  const removed: string[] = [];
  watcher.bind('pusher:member_added', (m: Member) => added.push(m.id));
  watcher.bind('pusher:member_removed', (m: Member) => removed.push(m.id));

  const u1 = { user_id: 'u1', user_info: { name: 'One' } };
  const onA = (await join(client(t, a, { presence: u1 }), room)) as PresenceChannel;
  await waitFor(() => added.length === 1, 5000, 'member_added on c');
  const clientB = client(t, b, { presence: u1 });
  const onB = (await join(clientB, room)) as PresenceChannel;
  // Barrier: a client event from the socket on B follows any member_added node B published for it.
  const barrier = nextEvent(watcher, 'client-barrier');
  onB.trigger('client-barrier', {});
  await barrier;
  assert.deepEqual(added, ['u1'], 'u1\'s second socket is not a new member');

  const list = (ch: PresenceChannel) => {
    const out: string[] = [];
    ch.members.each((m) => out.push(`${m.id}=${JSON.stringify(m.info)}`));
    return out.sort();
  };
  const expected = ['u1={"name":"One"}', 'u2={"name":"Two"}'];
  for (const ch of [onA, onB, watcher]) {
    assert.deepEqual(list(ch), expected);
    assert.equal(ch.members.count, 2);
  }
  for (const h of cl.nodes) {
    const { users } = await rest<{ users: { id: string }[] }>(h, `/channels/${room}/users`);
    assert.deepEqual(users.map((u) => u.id).sort(), ['u1', 'u2']);
  }

  // u1 leaves node A but is still on B: nobody is told.
  const closedA = nextClose(a);
  onA.pusher.disconnect();
  await closedA;
  const barrierA = nextEvent(watcher, 'after-a');
  await serverSdk(a).trigger(room, 'after-a', {});
  await barrierA;
  assert.deepEqual(removed, []);

  // u1's last socket leaves: member_removed, once.
  const closedB = nextClose(b);
  clientB.disconnect();
  await closedB;
  await waitFor(() => removed.length === 1, 5000, 'member_removed on c');
  const barrierB = nextEvent(watcher, 'after-b');
  await serverSdk(b).trigger(room, 'after-b', {});
  await barrierB;
  assert.deepEqual(removed, ['u1']);
  assert.deepEqual(list(watcher), ['u2={"name":"Two"}']);
});

void test('REST counts and channel lists are the same on every node', async (t) => {
  const cl = await startCluster(t, 3);
  if (!cl) return;
  const [a, b, c] = cl.nodes;
  await join(client(t, a, { presence: { user_id: 'u1' } }), 'presence-count');
  await join(client(t, b, { presence: { user_id: 'u1' } }), 'presence-count');
  await join(client(t, c, { presence: { user_id: 'u2' } }), 'presence-count');
  await join(client(t, a), 'public-count');
  await join(client(t, a), 'public-count');
  await join(client(t, c), 'public-count');
  for (const h of cl.nodes) {
    assert.deepEqual(await rest(h, '/channels/presence-count', { info: 'user_count,subscription_count' }), { occupied: true, user_count: 2, subscription_count: 3 });
    assert.deepEqual(await rest(h, '/channels/public-count', { info: 'subscription_count' }), { occupied: true, subscription_count: 3 });
    assert.deepEqual(await rest(h, '/channels', { filter_by_prefix: 'presence-', info: 'user_count' }), { channels: { 'presence-count': { user_count: 2 } } });
    const all = await rest<{ channels: Record<string, unknown> }>(h, '/channels');
    assert.deepEqual(Object.keys(all.channels).sort(), ['presence-count', 'public-count']);
  }
});

void test('terminate_connections on node A closes the user\'s sockets on B and C', async (t) => {
  const cl = await startCluster(t, 3);
  if (!cl) return;
  const [a, b, c] = cl.nodes;
  const onB = await signedIn(t, b, { id: 'victim' });
  const onC = await signedIn(t, c, { id: 'victim' });
  const bystander = await signedIn(t, c, { id: 'other' });
  await serverSdk(a).terminateUserConnections('victim');
  assert.equal((await onB.closed).code, 4009);
  assert.equal((await onC.closed).code, 4009);
  bystander.send({ event: 'pusher:ping', data: {} });
  await bystander.next('pusher:pong');
});

void test('sendToUser on node A reaches the signed-in user on node C (#server-to-user)', async (t) => {
  const cl = await startCluster(t, 3);
  if (!cl) return;
  const [a, , c] = cl.nodes;
  const target = client(t, c, { user: { id: 'target' } });
  target.signin();
  await waitFor(() => target.user.serverToUserChannel?.subscribed, 5000, 'the #server-to-user subscription');
  const note = nextEvent<{ x: number }>(target.user, 'note');
  await serverSdk(a).sendToUser('target', 'note', { x: 1 });
  assert.deepEqual(await note, { x: 1 });
});

void test('client events cross nodes and are not echoed to the sender', async (t) => {
  const cl = await startCluster(t, 2, { app: { clientEvents: true } });
  if (!cl) return;
  const [a, b] = cl.nodes;
  const onA = await join(client(t, a), 'private-chat');
  const onB = await join(client(t, b), 'private-chat');
  const echoed: unknown[] = [];
  onA.bind('client-hello', (d: unknown) => echoed.push(d));
  const atB = nextEvent(onB, 'client-hello');
  onA.trigger('client-hello', { from: 'a' });
  assert.deepEqual(await atB, { from: 'a' });
  // The reply from B follows A's event on A's node; by then an echo would have arrived.
  const reply = nextEvent(onA, 'client-reply');
  onB.trigger('client-reply', {});
  await reply;
  assert.deepEqual(echoed, []);
});

void test('watchlist: online and offline events for a user on another node', async (t) => {
  const cl = await startCluster(t, 2, { app: { watchlist: true } });
  if (!cl) return;
  const [a, b] = cl.nodes;
  const watcher = client(t, a, { user: { id: 'w', watchlist: ['friend'] } });
  const initial = nextEvent<{ name: string; user_ids: string[] }>(watcher.user.watchlist, 'offline');
  watcher.signin();
  assert.deepEqual((await initial).user_ids, ['friend']);
  const online = nextEvent<{ user_ids: string[] }>(watcher.user.watchlist, 'online');
  const friend = await signedIn(t, b, { id: 'friend' });
  assert.deepEqual((await online).user_ids, ['friend']);
  const offline = nextEvent<{ user_ids: string[] }>(watcher.user.watchlist, 'offline');
  friend.close();
  assert.deepEqual((await offline).user_ids, ['friend']);
});

void test('channel_occupied and channel_vacated are reported by exactly one node', async (t) => {
  const cl = await startCluster(t, 3);
  if (!cl) return;
  const events: string[] = [];
  for (const h of cl.nodes) {
    h.server.gateway.observe({
      channelOccupied: (_app, ch) => events.push(`occupied ${ch}`),
      channelVacated: (_app, ch) => events.push(`vacated ${ch}`),
    });
  }
  const clients = await Promise.all(cl.nodes.map((h) => RawClient.connect(h)));
  for (const c of clients) c.send({ event: 'pusher:subscribe', data: { channel: 'busy' } });
  await Promise.all(clients.map((c) => c.next('pusher_internal:subscription_succeeded')));
  assert.deepEqual(events, ['occupied busy']);
  const closed = cl.nodes.map((h) => nextClose(h));
  for (const c of clients) c.close();
  await Promise.all(closed);
  assert.deepEqual(events, ['occupied busy', 'vacated busy']);
});
