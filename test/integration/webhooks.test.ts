/**
 * Webhooks end to end: a real Herald node, real sockets, and a real HTTP receiver in this process whose
 * every delivery is checked with the `pusher` package's own webhook verifier (protocol.md §4).
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { startHerald, type TestHerald } from '../helpers/herald';
import { RawClient, authFor, roundTrip, serverSdk } from '../helpers/clients';
import { WebhookReceiver, type ReceivedWebhook } from '../helpers/WebhookReceiver';
import type { AppOptions, WebhookEventType, WebhookTarget } from '../../server/options/Options';
import type { WebhookSettings } from '../../server/webhooks/WebhookObserver';

const ALL: WebhookEventType[] = ['channel_occupied', 'channel_vacated', 'member_added', 'member_removed', 'client_event', 'cache_miss', 'subscription_count'];

type Event = Record<string, unknown>;

interface Setup {
  h: TestHerald;
  rx: WebhookReceiver;
}

/**
 * A receiver and a node whose first app posts to it. Debounce is 100 ms unless a test asks for the real
 * 3 s. Stopping the node first lets its last webhooks reach the receiver.
 */
async function setup(
  t: TestContext,
  opts: { targets?: (rx: WebhookReceiver) => Partial<WebhookTarget>[]; app?: Partial<AppOptions>; settings?: WebhookSettings } = {},
): Promise<Setup> {
  const rx = await WebhookReceiver.start();
  const webhooks = (opts.targets?.(rx) ?? [{ url: rx.url(), events: ALL }]) as WebhookTarget[];
  let h: TestHerald;
  try {
    h = await startHerald({
      apps: [{ clientEvents: true, ...opts.app, webhooks }],
      backends: { webhooks: { debounceMs: 100, ...opts.settings } },
    });
  } catch (err) {
    await rx.close();
    throw err;
  }
  t.after(async () => {
    await h.stop();
    await rx.close();
  });
  return { h, rx };
}

/** Every request the receiver accepted passes the `pusher` package's check; returns their events. */
function verifiedEvents(h: TestHerald, rx: WebhookReceiver, path?: string): Event[] {
  const sdk = serverSdk(h);
  return rx.accepted(path).flatMap((r) => verify(sdk, r));
}

function verify(sdk: ReturnType<typeof serverSdk>, r: ReceivedWebhook): Event[] {
  const webhook = sdk.webhook({ headers: r.headers, rawBody: r.rawBody });
  assert.ok(webhook.isValid(), `invalid webhook: ${JSON.stringify(r.headers)} ${r.rawBody}`);
  return webhook.getEvents() as unknown as Event[];
}

async function connect(t: TestContext, h: TestHerald): Promise<RawClient> {
  const c = await RawClient.connect(h);
  t.after(() => c.close());
  return c;
}

async function subscribe(h: TestHerald, c: RawClient, channel: string, member?: { user_id: string; user_info?: unknown }): Promise<void> {
  const data: Record<string, unknown> = { channel };
  if (channel.startsWith('presence-')) {
    const channelData = JSON.stringify(member);
    data.channel_data = channelData;
    data.auth = authFor(h.app, c.socketId, channel, channelData);
  } else if (channel.startsWith('private-')) {
    data.auth = authFor(h.app, c.socketId, channel);
  }
  c.send({ event: 'pusher:subscribe', data });
  await c.next('pusher_internal:subscription_succeeded', 5000, channel);
}

const named = (name: string, channel?: string) => (e: Event) => e.name === name && (channel === undefined || e.channel === channel);
const stats = (h: TestHerald) => h.server.webhooks.stats().total;
/** Resolves when the node has nothing left to send (the receiver answers before the sender has read it). */
const idle = (h: TestHerald) => h.server.webhooks.sender.idle();

void test('channel_occupied, and a page reload within 3 s sends nothing; a real leave sends channel_vacated after 3 s', async (t) => {
  const { h, rx } = await setup(t, { settings: { debounceMs: 3000 } });
  const a = await connect(t, h);
  await subscribe(h, a, 'lobby');
  const [occupied] = await rx.waitForEvents(1, named('channel_occupied', 'lobby'));
  assert.deepEqual(occupied, { name: 'channel_occupied', channel: 'lobby' });

  // The reload: the socket goes away and a new one subscribes again within the delay.
  a.close();
  await a.closed;
  const b = await connect(t, h);
  await subscribe(h, b, 'lobby');
  await new Promise((r) => setTimeout(r, 3500));
  assert.deepEqual(verifiedEvents(h, rx), [occupied], 'neither channel_vacated nor a second channel_occupied');

  const left = Date.now();
  b.send({ event: 'pusher:unsubscribe', data: { channel: 'lobby' } });
  await rx.waitForEvents(1, named('channel_vacated', 'lobby'));
  const req = rx.accepted().find((r) => r.body.events.some(named('channel_vacated')));
  assert.ok(req);
  assert.ok(req.receivedAt - left >= 2900, `sent ${req.receivedAt - left} ms after the leave`);
  assert.ok(req.body.time_ms >= left + 2900 && req.body.time_ms <= req.receivedAt, 'time_ms is when the body was made');
  assert.equal(req.headers['content-type'], 'application/json');
  assert.equal(req.headers['x-pusher-key'], h.app.key);
  assert.match(String(req.headers['user-agent']), /^Herald-Webhooks\/\S+$/);
  assert.deepEqual(verifiedEvents(h, rx), [occupied, { name: 'channel_vacated', channel: 'lobby' }]);
});

void test('a member leaving and rejoining within 3 s sends neither member_removed nor member_added', async (t) => {
  const { h, rx } = await setup(t, { settings: { debounceMs: 3000 }, targets: (r) => [{ url: r.url(), events: ['member_added', 'member_removed'] }] });
  const stay = await connect(t, h);
  await subscribe(h, stay, 'presence-room', { user_id: 'stays' });
  const a = await connect(t, h);
  await subscribe(h, a, 'presence-room', { user_id: 'reloads' });
  await rx.waitForEvents(2, named('member_added'));

  a.close();
  await a.closed;
  const b = await connect(t, h);
  await subscribe(h, b, 'presence-room', { user_id: 'reloads' });
  await new Promise((r) => setTimeout(r, 3500));
  assert.deepEqual(verifiedEvents(h, rx), [
    { name: 'member_added', channel: 'presence-room', user_id: 'stays' },
    { name: 'member_added', channel: 'presence-room', user_id: 'reloads' },
  ]);
  assert.equal(stats(h).queued, 2);
});

void test('a rejoin whose subscribe fails still owes the leave it cancelled: member_removed is sent after the delay', async (t) => {
  const { h, rx } = await setup(t, { settings: { debounceMs: 300 } });
  const a = await connect(t, h);
  await subscribe(h, a, 'presence-flaky', { user_id: 'u1' });
  await rx.waitForEvents(2);
  a.close();
  await a.closed;
  // The rejoin takes the leave's mark, then its broker subscription fails and the join is rolled back.
  const adapter = h.server.gateway.adapter;
  const subscribeOnce = adapter.subscribe.bind(adapter);
  adapter.subscribe = async () => {
    adapter.subscribe = subscribeOnce;
    throw new Error('broker unreachable (injected)');
  };
  const b = await connect(t, h);
  const channelData = JSON.stringify({ user_id: 'u1' });
  b.send({ event: 'pusher:subscribe', data: { channel: 'presence-flaky', channel_data: channelData, auth: authFor(h.app, b.socketId, 'presence-flaky', channelData) } });
  await b.next('pusher:subscription_error', 5000, 'presence-flaky');
  await rx.waitForEvents(4);
  await new Promise((r) => setTimeout(r, 500));
  await idle(h);
  assert.deepEqual(verifiedEvents(h, rx).map((e) => e.name).sort(), ['channel_occupied', 'channel_vacated', 'member_added', 'member_removed']);
  assert.equal((await h.server.gateway.state.members(h.app.id, 'presence-flaky')).size, 0);
});

void test('member_added and member_removed (once per user, not per socket)', async (t) => {
  const { h, rx } = await setup(t);
  const a = await connect(t, h);
  await subscribe(h, a, 'presence-team', { user_id: 'u1', user_info: { name: 'Ann' } });
  const b1 = await connect(t, h);
  await subscribe(h, b1, 'presence-team', { user_id: 'u2' });
  const b2 = await connect(t, h);
  await subscribe(h, b2, 'presence-team', { user_id: 'u2' });
  b1.close();
  await b1.closed;
  await roundTrip(a);
  b2.close();
  await rx.waitForEvents(1, named('member_removed'));
  a.close();
  await rx.waitForEvents(1, named('channel_vacated'));
  assert.deepEqual(verifiedEvents(h, rx), [
    { name: 'channel_occupied', channel: 'presence-team' },
    { name: 'member_added', channel: 'presence-team', user_id: 'u1' },
    { name: 'member_added', channel: 'presence-team', user_id: 'u2' },
    { name: 'member_removed', channel: 'presence-team', user_id: 'u2' },
    { name: 'member_removed', channel: 'presence-team', user_id: 'u1' },
    { name: 'channel_vacated', channel: 'presence-team' },
  ]);
});

void test('client_event: socket_id on private channels, and user_id too on presence channels', async (t) => {
  const { h, rx } = await setup(t, { targets: (r) => [{ url: r.url(), events: ['client_event'] }] });
  const a = await connect(t, h);
  await subscribe(h, a, 'private-chat');
  await subscribe(h, a, 'presence-chat', { user_id: 'u42' });
  a.send({ event: 'client-typing', channel: 'private-chat', data: { text: 'héllo ✓' } });
  a.send({ event: 'client-typing', channel: 'presence-chat', data: 'plain string' });
  await rx.waitForEvents(2);
  const events = verifiedEvents(h, rx);
  const priv = events.find((e) => e.channel === 'private-chat');
  const pres = events.find((e) => e.channel === 'presence-chat');
  assert.deepEqual(priv, { name: 'client_event', channel: 'private-chat', event: 'client-typing', data: '{"text":"héllo ✓"}', socket_id: a.socketId });
  assert.equal(Object.hasOwn(priv, 'user_id'), false);
  assert.deepEqual(pres, { name: 'client_event', channel: 'presence-chat', event: 'client-typing', data: 'plain string', socket_id: a.socketId, user_id: 'u42' });
});

void test('cache_miss on a cache channel without a cached event, not after one is cached', async (t) => {
  const { h, rx } = await setup(t, { targets: (r) => [{ url: r.url(), events: ['cache_miss'] }] });
  const a = await connect(t, h);
  await subscribe(h, a, 'cache-news');
  const [miss] = await rx.waitForEvents(1);
  assert.deepEqual(miss, { name: 'cache_miss', channel: 'cache-news' });

  await serverSdk(h).trigger('cache-news', 'headline', { title: 'x' });
  const b = await connect(t, h);
  await subscribe(h, b, 'cache-news');
  await b.next('headline');
  // The webhook decision is made before the cached event is written to the socket.
  assert.equal(stats(h).queued, 1);
  assert.deepEqual(verifiedEvents(h, rx), [miss]);
});

void test('subscription_count on every change when the app enables it; never for presence channels', async (t) => {
  const { h, rx } = await setup(t, { app: { subscriptionCount: true }, targets: (r) => [{ url: r.url(), events: ['subscription_count'] }] });
  const a = await connect(t, h);
  await subscribe(h, a, 'counted');
  await subscribe(h, a, 'presence-counted', { user_id: 'u1' });
  const b = await connect(t, h);
  await subscribe(h, b, 'counted');
  b.send({ event: 'pusher:unsubscribe', data: { channel: 'counted' } });
  await rx.waitForEvents(3);
  assert.deepEqual(verifiedEvents(h, rx), [
    { name: 'subscription_count', channel: 'counted', subscription_count: 1 },
    { name: 'subscription_count', channel: 'counted', subscription_count: 2 },
    { name: 'subscription_count', channel: 'counted', subscription_count: 1 },
  ]);
  assert.equal(stats(h).queued, 3);
});

void test('retry: the receiver fails twice, then accepts; the event is delivered exactly once, same body each time', async (t) => {
  const { h, rx } = await setup(t, { settings: { backoff: { baseMs: 50 } } });
  rx.respond = (_r, n) => (n < 2 ? 500 : 200);
  const a = await connect(t, h);
  await subscribe(h, a, 'retried');
  await rx.waitForEvents(1);
  await idle(h);
  assert.deepEqual(verifiedEvents(h, rx), [{ name: 'channel_occupied', channel: 'retried' }]);
  assert.deepEqual(rx.requests.map((r) => r.status), [500, 500, 200]);
  assert.equal(new Set(rx.requests.map((r) => r.rawBody)).size, 1, 'a retry posts the same signed bytes');
  assert.deepEqual({ ...stats(h), queued: undefined }, { queued: undefined, sent: 1, failed: 2, dropped: 0, expired: 0, depth: 0, inFlight: 0 });
});

void test('timeout: a receiver that does not answer in time is retried', async (t) => {
  const { h, rx } = await setup(t, { settings: { timeoutMs: 300, backoff: { baseMs: 50 } } });
  rx.respond = (_r, n) => (n === 0 ? 'hang' : 200);
  const a = await connect(t, h);
  await subscribe(h, a, 'slow');
  await rx.waitForEvents(1);
  await idle(h);
  assert.equal(rx.requests.length, 2);
  assert.equal(rx.requests[0].rawBody, rx.requests[1].rawBody);
  assert.deepEqual(verifiedEvents(h, rx), [{ name: 'channel_occupied', channel: 'slow' }]);
  assert.equal(stats(h).failed, 1);
});

void test('filters: each target gets only its event types and channels, and nothing else in its bodies', async (t) => {
  const { h, rx } = await setup(t, {
    targets: (r) => [
      { url: r.url('/private'), events: ['channel_occupied', 'client_event'], channelPrefix: 'private-' },
      { url: r.url('/rooms'), events: ['channel_occupied'], channelSuffix: '-room' },
      { url: r.url('/both'), events: ALL, channelPrefix: 'private-', channelSuffix: '-room', batch: true },
    ],
  });
  const a = await connect(t, h);
  for (const channel of ['private-a-room', 'private-b', 'public-room', 'other']) await subscribe(h, a, channel);
  a.send({ event: 'client-x', channel: 'private-b', data: {} });
  a.send({ event: 'client-x', channel: 'private-a-room', data: {} });
  const count = (path: string) => rx.events(path).length;
  await rx.waitFor(() => count('/private') >= 4 && count('/rooms') >= 2 && count('/both') >= 2, 'every delivery');
  await idle(h);
  // Eight events were queued and eight arrived: no body carried anything else.
  assert.equal(stats(h).queued, 8);

  const summary = (path: string) => verifiedEvents(h, rx, path).map((e) => `${String(e.name)} ${String(e.channel)}`).sort();
  assert.deepEqual(summary('/private'), ['channel_occupied private-a-room', 'channel_occupied private-b', 'client_event private-a-room', 'client_event private-b']);
  assert.deepEqual(summary('/rooms'), ['channel_occupied private-a-room', 'channel_occupied public-room']);
  assert.deepEqual(summary('/both'), ['channel_occupied private-a-room', 'client_event private-a-room']);
});

void test('batching: a batch target gets several events in one body, in order; others get one per request', async (t) => {
  const { h, rx } = await setup(t, {
    targets: (r) => [
      { url: r.url('/batch'), events: ['client_event'], batch: true },
      { url: r.url('/single'), events: ['client_event'] },
    ],
  });
  const a = await connect(t, h);
  await subscribe(h, a, 'private-batch');
  for (let i = 0; i < 5; i++) a.send({ event: 'client-n', channel: 'private-batch', data: { i } });
  await rx.waitForEvents(5, () => true, '/batch');
  await rx.waitForEvents(5, () => true, '/single');
  const seq = (path: string) => verifiedEvents(h, rx, path).map((e) => (JSON.parse(String(e.data)) as { i: number }).i);
  assert.deepEqual(seq('/batch'), [0, 1, 2, 3, 4]);
  assert.deepEqual(seq('/single'), [0, 1, 2, 3, 4]);
  assert.ok(rx.accepted('/batch').length < 5, `batch bodies: ${rx.accepted('/batch').map((r) => r.body.events.length).join(',')}`);
  assert.ok(rx.accepted('/batch').some((r) => r.body.events.length > 1));
  assert.ok(rx.accepted('/single').every((r) => r.body.events.length === 1));
});

void test('a full queue drops and counts, and never holds up sockets', async (t) => {
  const { h, rx } = await setup(t, {
    app: { maxClientEventsPerSecond: -1 },
    settings: { maxQueue: 5 },
    targets: (r) => [{ url: r.url(), events: ['client_event'] }],
  });
  let open!: () => void;
  const gate = new Promise<void>((r) => (open = r));
  rx.respond = async () => {
    await gate;
    return 200;
  };
  const a = await connect(t, h);
  const b = await connect(t, h);
  await subscribe(h, a, 'private-flood');
  await subscribe(h, b, 'private-flood');
  for (let i = 0; i < 30; i++) a.send({ event: 'client-n', channel: 'private-flood', data: { i } });
  for (let i = 0; i < 30; i++) assert.deepEqual((await b.next('client-n')).data, { i });
  await roundTrip(a);
  assert.deepEqual({ ...stats(h) }, { queued: 5, sent: 0, failed: 0, dropped: 25, expired: 0, depth: 5, inFlight: 1 }, 'one request (one channel) is held by the receiver');

  open();
  await rx.waitForEvents(5);
  await idle(h);
  assert.deepEqual(verifiedEvents(h, rx).map((e) => e.data), [0, 1, 2, 3, 4].map((i) => `{"i":${i}}`), 'the oldest are kept');
  assert.equal(stats(h).depth, 0);
});

void test('order per channel holds with parallel requests, slow answers and failures', async (t) => {
  const { h, rx } = await setup(t, {
    app: { maxClientEventsPerSecond: -1 },
    settings: { backoff: { baseMs: 20 } },
    targets: (r) => [{ url: r.url(), events: ['client_event'] }],
  });
  rx.respond = async (_r, n) => {
    await new Promise((r) => setTimeout(r, (n * 7) % 15));
    return n % 6 === 5 ? 503 : 200;
  };
  const a = await connect(t, h);
  const channels = ['private-o1', 'private-o2', 'private-o3'];
  for (const c of channels) await subscribe(h, a, c);
  for (let i = 0; i < 15; i++) for (const c of channels) a.send({ event: 'client-n', channel: c, data: { i } });
  await rx.waitForEvents(45, () => true, undefined, 15000);
  const events = verifiedEvents(h, rx);
  for (const c of channels) {
    const seq = events.filter((e) => e.channel === c).map((e) => (JSON.parse(String(e.data)) as { i: number }).i);
    assert.deepEqual(seq, [...Array(15).keys()], `order on ${c}`);
  }
  assert.ok(stats(h).failed > 0, 'some requests failed and were retried');
  assert.ok(rx.requests.some((r, i) => i > 0 && r.body.events[0]?.channel !== rx.requests[i - 1].body.events[0]?.channel), 'channels interleave');
});

void test('graceful stop sends a pending channel_vacated before the node goes away', async (t) => {
  const { h, rx } = await setup(t, { settings: { debounceMs: 3000 } });
  const a = await connect(t, h);
  await subscribe(h, a, 'closing');
  await rx.waitForEvents(1);
  a.send({ event: 'pusher:unsubscribe', data: { channel: 'closing' } });
  const started = Date.now();
  await h.stop();
  assert.ok(Date.now() - started < 2500, 'within the grace period');
  assert.deepEqual(verifiedEvents(h, rx), [
    { name: 'channel_occupied', channel: 'closing' },
    { name: 'channel_vacated', channel: 'closing' },
  ]);
});

void test('Pusher-internal #server-to-user channels send no webhooks', async (t) => {
  const { h, rx } = await setup(t);
  const a = await connect(t, h);
  const userData = JSON.stringify({ id: 'u7' });
  a.send({ event: 'pusher:signin', data: { user_data: userData, auth: `${h.app.key}:${createHmac('sha256', h.app.secret).update(`${a.socketId}::user::${userData}`).digest('hex')}` } });
  await a.next('pusher:signin_success');
  await subscribe(h, a, '#server-to-user-u7');
  await subscribe(h, a, 'marker');
  await rx.waitForEvents(1);
  assert.deepEqual(verifiedEvents(h, rx), [{ name: 'channel_occupied', channel: 'marker' }]);
  assert.equal(stats(h).queued, 1);
});

void test('an app without webhooks queues nothing', async (t) => {
  const plain = await startHerald({ apps: [{ clientEvents: true }] });
  t.after(() => plain.stop());
  const c = await connect(t, plain);
  await subscribe(plain, c, 'private-anything');
  c.send({ event: 'client-x', channel: 'private-anything', data: {} });
  await roundTrip(c);
  assert.deepEqual(plain.server.webhooks.stats(), { total: { queued: 0, sent: 0, failed: 0, dropped: 0, expired: 0, depth: 0, inFlight: 0 }, apps: {} });
});
