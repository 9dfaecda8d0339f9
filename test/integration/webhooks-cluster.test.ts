/**
 * Webhooks across a cluster: two nodes on one Redis (each test under its own key prefix), one receiver.
 * Each webhook must be sent once for the whole cluster, and a reload that lands on another node must
 * still send nothing.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes, randomInt } from 'node:crypto';
import pino from 'pino';
import { createRedisBackends } from '../../server/cluster/create-backends';
import type { WebhookEventType, WebhookTarget } from '../../server/options/Options';
import { RawClient, authFor, serverSdk } from '../helpers/clients';
import { startHerald, type TestHerald } from '../helpers/herald';
import { REDIS_URL, deleteKeys, needRedis, uniquePrefix } from '../helpers/redis';
import { WebhookReceiver } from '../helpers/WebhookReceiver';

const ALL: WebhookEventType[] = ['channel_occupied', 'channel_vacated', 'member_added', 'member_removed', 'client_event', 'cache_miss', 'subscription_count'];
type Event = Record<string, unknown>;

/** Two nodes serving the same app on one Redis, posting to one receiver; null when Redis is missing. */
async function cluster(t: TestContext, debounceMs: number): Promise<{ a: TestHerald; b: TestHerald; rx: WebhookReceiver } | null> {
  if (!(await needRedis(t))) return null;
  const prefix = uniquePrefix();
  const rx = await WebhookReceiver.start();
  const app = {
    id: String(randomInt(100000, 999999999)),
    key: `key-${randomBytes(6).toString('hex')}`,
    secret: `secret-${randomBytes(8).toString('hex')}`,
    clientEvents: true,
    webhooks: [{ url: rx.url(), events: ALL }] as WebhookTarget[],
  };
  const log = pino({ level: process.env.HERALD_TEST_LOG ?? 'silent' });
  const node = () => startHerald({ apps: [app], backends: { ...createRedisBackends({ redis: REDIS_URL, prefix, log }), webhooks: { debounceMs } } });
  const a = await node();
  const b = await node();
  t.after(async () => {
    await Promise.all([a.stop(), b.stop()]);
    await rx.close();
    await deleteKeys(prefix);
  });
  return { a, b, rx };
}

async function client(t: TestContext, h: TestHerald): Promise<RawClient> {
  const c = await RawClient.connect(h);
  t.after(() => c.close());
  return c;
}

async function subscribe(h: TestHerald, c: RawClient, channel: string, userId?: string): Promise<void> {
  const data: Record<string, unknown> = { channel };
  if (userId !== undefined) {
    data.channel_data = JSON.stringify({ user_id: userId });
    data.auth = authFor(h.app, c.socketId, channel, data.channel_data as string);
  } else if (channel.startsWith('private-')) {
    data.auth = authFor(h.app, c.socketId, channel);
  }
  c.send({ event: 'pusher:subscribe', data });
  await c.next('pusher_internal:subscription_succeeded', 5000, channel);
}

function verified(h: TestHerald, rx: WebhookReceiver): Event[] {
  const sdk = serverSdk(h);
  return rx.accepted().flatMap((r) => {
    const webhook = sdk.webhook({ headers: r.headers, rawBody: r.rawBody });
    assert.ok(webhook.isValid());
    return webhook.getEvents() as unknown as Event[];
  });
}

const line = (e: Event) => [e.name, e.channel, e.user_id].filter((x) => x !== undefined).join(' ');

void test('cluster: occupied, members, client events and vacated are each sent once for the whole cluster', async (t) => {
  const c = await cluster(t, 200);
  if (!c) return;
  const { a, b, rx } = c;
  const onA = await client(t, a);
  const onB = await client(t, b);
  await subscribe(a, onA, 'presence-shared', 'ua');
  await subscribe(b, onB, 'presence-shared', 'ub');
  onB.send({ event: 'client-hi', channel: 'presence-shared', data: {} });
  await rx.waitForEvents(1, (e) => e.name === 'client_event');
  onA.close();
  onB.close();
  // The two member_removed come from two nodes' timers: wait for all seven, then for both senders.
  await rx.waitForEvents(7);
  await Promise.all([a.server.webhooks.sender.idle(), b.server.webhooks.sender.idle()]);
  assert.equal(a.server.webhooks.stats().total.queued + b.server.webhooks.stats().total.queued, 7);
  assert.deepEqual(verified(a, rx).map(line).sort(), [
    'channel_occupied presence-shared',
    'channel_vacated presence-shared',
    'client_event presence-shared ub',
    'member_added presence-shared ua',
    'member_added presence-shared ub',
    'member_removed presence-shared ua',
    'member_removed presence-shared ub',
  ]);
});

void test('cluster: a reload that lands on the other node within 3 s sends nothing', async (t) => {
  const c = await cluster(t, 3000);
  if (!c) return;
  const { a, b, rx } = c;
  const first = await client(t, a);
  await subscribe(a, first, 'presence-reload', 'u1');
  await rx.waitForEvents(2);
  first.close();
  await first.closed;
  const again = await client(t, b);
  await subscribe(b, again, 'presence-reload', 'u1');
  await new Promise((r) => setTimeout(r, 3500));
  assert.deepEqual(verified(a, rx).map(line), ['channel_occupied presence-reload', 'member_added presence-reload u1']);
  const queued = a.server.webhooks.stats().total.queued + b.server.webhooks.stats().total.queued;
  assert.equal(queued, 2);
});

void test('cluster: leave, rejoin on the other node, leave there: the first leave\'s timer does not send the second leave early', async (t) => {
  const debounceMs = 1500;
  const c = await cluster(t, debounceMs);
  if (!c) return;
  const { a, b, rx } = c;
  const events = (channel: string) => verified(a, rx).filter((e) => e.channel === channel).map(line);
  // The check needs node B's leave to come well after node A's; on a machine too slow for that, try again.
  for (let attempt = 1; ; attempt++) {
    const channel = `race-early-${attempt}`;
    const first = await client(t, a);
    await subscribe(a, first, channel);
    await rx.waitForEvents(1, (e) => e.channel === channel);
    first.close();
    await first.closed; // node A's leave timer runs from here
    const leftA = Date.now();
    await new Promise((r) => setTimeout(r, 300));
    const second = await client(t, b);
    await subscribe(b, second, channel); // takes A's mark: nothing sent
    // Node B's leave comes late enough that its timer ends well after node A's.
    await new Promise((r) => setTimeout(r, 500));
    second.close();
    await second.closed; // node B's leave, with a mark of its own
    const leftB = Date.now();
    // Past node A's timer, before node B's: nothing may have been sent yet.
    await new Promise((r) => setTimeout(r, Math.max(0, leftA + debounceMs + 300 - Date.now())));
    const inTime = Date.now() < leftB + debounceMs - 100 && leftB - leftA < debounceMs - 200;
    if (inTime) assert.deepEqual(events(channel), [`channel_occupied ${channel}`]);
    await rx.waitForEvents(1, (e) => e.channel === channel && e.name === 'channel_vacated');
    const sentAt = rx.accepted().find((r) => r.body.events.some((e) => e.name === 'channel_vacated' && e.channel === channel))?.receivedAt ?? 0;
    assert.ok(sentAt >= leftB + debounceMs - 50, `channel_vacated came ${leftB + debounceMs - sentAt} ms early`);
    assert.deepEqual(events(channel), [`channel_occupied ${channel}`, `channel_vacated ${channel}`]);
    if (inTime) break;
    assert.ok(attempt < 3, 'three attempts were all too slow to check the timing');
  }
});

/** Delays node `h`'s own mark calls to Redis by `ms`, as a slow round trip or a busy event loop would. */
function slowMarks(h: TestHerald, ms: number): void {
  const state = h.server.gateway.state;
  const setMark = state.setMark.bind(state);
  const takeMark = state.takeMark.bind(state);
  const late = () => new Promise((r) => setTimeout(r, ms));
  state.setMark = async (...args) => (await late(), setMark(...args));
  state.takeMark = async (...args) => (await late(), takeMark(...args));
}

/**
 * A two-node cluster with user u1 in `presence-race` on node A, and the webhooks of that join received;
 * `before` then runs, u1 leaves node A, and rejoins on node B at once (`onB`).
 */
async function rejoinOnB(t: TestContext, debounceMs: number, before: (a: TestHerald) => void): Promise<{ a: TestHerald; b: TestHerald; rx: WebhookReceiver; onB: RawClient } | null> {
  const c = await cluster(t, debounceMs);
  if (!c) return null;
  const { a, b, rx } = c;
  const onA = await client(t, a);
  await subscribe(a, onA, 'presence-race', 'u1');
  await rx.waitForEvents(2);
  before(a);
  onA.close();
  await onA.closed;
  const onB = await client(t, b);
  await subscribe(b, onB, 'presence-race', 'u1');
  return { a, b, rx, onB };
}

void test('cluster: a rejoin on the other node straight after a leave cancels it, however late the leaving node gets to its mark', async (t) => {
  const debounceMs = 1500;
  // Node A's own calls on its marks take a second: the marks must already be there, set with the leave.
  const c = await rejoinOnB(t, debounceMs, (a) => slowMarks(a, 1000));
  if (!c) return;
  const { a, b, rx, onB } = c;
  // Well past node A's timers (and their slow calls): the leave and the rejoin cancelled out.
  await new Promise((r) => setTimeout(r, debounceMs + 1500));
  await Promise.all([a.server.webhooks.sender.idle(), b.server.webhooks.sender.idle()]);
  assert.deepEqual(verified(a, rx).map(line).sort(), ['channel_occupied presence-race', 'member_added presence-race u1']);
  // The real leave is still sent, once.
  onB.close();
  await rx.waitForEvents(4);
  await new Promise((r) => setTimeout(r, 300));
  await Promise.all([a.server.webhooks.sender.idle(), b.server.webhooks.sender.idle()]);
  assert.deepEqual(verified(a, rx).map(line).slice(2).sort(), ['channel_vacated presence-race', 'member_removed presence-race u1']);
  assert.equal(verified(a, rx).length, 4);
});

void test('cluster: a leave whose mark is set apart from it (a node that reports leaves without marks) is not sent after a join that beat its mark', async (t) => {
  const debounceMs = 1500;
  // Node A's leaves come without marks, as a dead node's cleanup or a node of the previous release reports
  // them, and its own marks land late: node B's join finds nothing to cancel.
  const c = await rejoinOnB(t, debounceMs, (a) => {
    a.server.gateway.setLeaveMarks({ leaveMarkMs: () => 0 });
    slowMarks(a, 1000);
  });
  if (!c) return;
  const { a, b, rx, onB } = c;
  await rx.waitForEvents(4);
  // Well past node A's timers: its leaves were dropped, as the channel and the member are back.
  await new Promise((r) => setTimeout(r, debounceMs + 1500));
  assert.deepEqual(verified(a, rx).map(line).sort(), [
    'channel_occupied presence-race',
    'channel_occupied presence-race',
    'member_added presence-race u1',
    'member_added presence-race u1',
  ]);
  // The real leave is still sent, once.
  onB.close();
  await rx.waitForEvents(6);
  await Promise.all([a.server.webhooks.sender.idle(), b.server.webhooks.sender.idle()]);
  assert.deepEqual(verified(a, rx).map(line).slice(4).sort(), ['channel_vacated presence-race', 'member_removed presence-race u1']);
  assert.equal(verified(a, rx).length, 6);
});
