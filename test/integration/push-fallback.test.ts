/**
 * Live with fallback: `POST /apps/:appId/events` with a `push` block reaches live sockets at once and gives
 * the channel's interest subscribers with no live socket a Web Push, on one node and across two nodes on
 * one Redis (a socket that connected with `device_id` on node A makes the device online for node B).
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import { createRedisBackends } from '../../server/cluster/create-backends';
import { FakePushService } from '../helpers/FakePushService';
import { RawClient } from '../helpers/clients';
import { startHerald, testApp, type TestHerald } from '../helpers/herald';
import { publishStatus, pushOptions, registerDevice, signed } from '../helpers/push';
import { REDIS_URL, deleteKeys, needRedis, uniquePrefix, waitFor } from '../helpers/redis';

const QUERY = 'protocol=7&client=js&version=8.4.0&flash=false';

/** A raw socket that connected with `device_id` and subscribed to `channel`. */
async function liveDevice(h: TestHerald, deviceId: string, channel: string): Promise<RawClient> {
  const c = await RawClient.connect(h, { query: `${QUERY}&device_id=${encodeURIComponent(deviceId)}` });
  c.send({ event: 'pusher:subscribe', data: { channel } });
  await c.next('pusher_internal:subscription_succeeded', 5000, channel);
  return c;
}

const event = (channel: string, push?: unknown) => ({ name: 'message', channel, data: JSON.stringify({ text: 'hi' }), ...(push !== undefined ? { push } : {}) });
const push = { notification: { title: 'New message', hide_if_focused: true } };

async function single(t: TestContext): Promise<{ h: TestHerald; fake: FakePushService }> {
  const h = await startHerald({ options: pushOptions() });
  const fake = await FakePushService.start();
  t.after(async () => {
    await h.stop();
    await fake.close();
  });
  return { h, fake };
}

void test('one node: the online device gets the event on its socket, the offline one a push', async (t) => {
  const { h, fake } = await single(t);
  const online = await registerDevice(h, fake, ['news']);
  const offline = await registerDevice(h, fake, ['news', 'other']);
  const elsewhere = await registerDevice(h, fake, ['weather']);
  const socket = await liveDevice(h, online.deviceId, 'news');
  t.after(() => socket.close());

  const r = await signed<{ push: { publishId: string } }>(h, 'POST', '/events', event('news', push));
  assert.equal(r.status, 200);
  const frame = await socket.next('message', 5000, 'news');
  assert.deepEqual(frame.data, { text: 'hi' });

  const [m] = await fake.waitFor(1);
  assert.equal(m.subscriptionId, offline.sub.id);
  const payload = JSON.parse(m.payload) as { notification: unknown; data: { pusher: Record<string, unknown> } };
  assert.deepEqual(payload.notification, { title: 'New message', hide_notification_if_site_has_focus: true });
  assert.deepEqual(payload.data.pusher, { publishId: r.body.push.publishId, hasDisplayableContent: true, hasData: false, channel: 'news', event: 'message' });
  const st = await publishStatus(h, r.body.push.publishId);
  assert.deepEqual([st.targeted, st.skippedOnline, st.sent, st.pending], [2, 1, 1, 0]);
  assert.equal(fake.messagesFor(online.sub.id).length, 0);
  assert.equal(fake.messagesFor(elsewhere.sub.id).length, 0);

  // Once its socket has left, the device is offline too.
  socket.close();
  await waitFor(async () => (await h.server.gateway.state.liveDevices(h.app.id, 'news', [online.deviceId])).size === 0, 5000, 'the socket to leave');
  const r2 = await signed<{ push: { publishId: string } }>(h, 'POST', '/events', event('news', push));
  await fake.waitFor(3);
  assert.equal(fake.messagesFor(online.sub.id).length, 1);
  assert.deepEqual((await publishStatus(h, r2.body.push.publishId)).skippedOnline, 0);

  // Asked for info as well, the answer carries both (the route's response schema lists both). Last, so the
  // pushes it sends do not count towards the waits above.
  const both = await signed<{ channels: Record<string, Record<string, number>>; push: { publishId: string } }>(h, 'POST', '/events', { ...event('news', push), info: 'subscription_count' });
  assert.equal(both.status, 200);
  assert.deepEqual(Object.keys(both.body.channels), ['news']);
  assert.equal(typeof both.body.channels.news.subscription_count, 'number');
  assert.equal(typeof both.body.push.publishId, 'string');
});

void test('herald:device names the device of an open socket (and null forgets it): live without reconnecting; a bad id, sent or in the URL, gets 4200 and changes nothing', async (t) => {
  const { h, fake } = await single(t);
  const d = await registerDevice(h, fake, ['news']);
  const other = await registerDevice(h, fake, ['news']);
  const c = await RawClient.connect(h, { query: QUERY });
  t.after(() => c.close());
  c.send({ event: 'pusher:subscribe', data: { channel: 'news' } });
  await c.next('pusher_internal:subscription_succeeded', 5000, 'news');
  const live = async () => [...(await h.server.gateway.state.liveDevices(h.app.id, 'news', [d.deviceId, other.deviceId]))].sort();

  c.send({ event: 'herald:device', data: { device_id: d.deviceId } });
  assert.deepEqual((await c.next('herald:device_set', 5000)).data, { device_id: d.deviceId });
  assert.deepEqual(await live(), [d.deviceId]);
  const r = await signed<{ push: { publishId: string } }>(h, 'POST', '/events', event('news', push));
  await c.next('message', 5000, 'news');
  await fake.waitFor(1);
  const st = await publishStatus(h, r.body.push.publishId);
  assert.deepEqual([st.targeted, st.skippedOnline, st.sent], [2, 1, 1]);
  assert.equal(fake.messagesFor(d.sub.id).length, 0, 'the named device is live: no push');

  // Renaming moves liveness; a channel joined later counts too.
  c.send({ event: 'herald:device', data: { device_id: other.deviceId } });
  await c.next('herald:device_set', 5000);
  assert.deepEqual(await live(), [other.deviceId]);
  c.send({ event: 'pusher:subscribe', data: { channel: 'later' } });
  await c.next('pusher_internal:subscription_succeeded', 5000, 'later');
  assert.equal((await h.server.gateway.state.liveDevices(h.app.id, 'later', [other.deviceId])).size, 1);

  c.send({ event: 'herald:device', data: { device_id: null } });
  assert.deepEqual((await c.next('herald:device_set', 5000)).data, { device_id: null });
  assert.deepEqual(await live(), []);

  for (const bad of ['', 'x'.repeat(129), 42]) {
    c.send({ event: 'herald:device', data: { device_id: bad } });
    const err = await c.next('pusher:error', 5000);
    assert.deepEqual(err.data, { code: 4200, message: 'device_id must be a string of 1 to 128 characters, or null' });
  }
  assert.deepEqual(await live(), [], 'a refused id changes nothing');
  assert.equal(c.ws.readyState, c.ws.OPEN, 'the socket stays open');

  // The same refusal for a bad `device_id` in the URL: told at once, connected anyway, not live.
  for (const bad of ['', 'x'.repeat(129), `${d.deviceId}&device_id=${other.deviceId}`]) {
    const b = await RawClient.connect(h, { query: `${QUERY}&device_id=${bad.includes('&') ? bad : encodeURIComponent(bad)}` });
    t.after(() => b.close());
    assert.deepEqual((await b.next('pusher:error', 5000)).data, { code: 4200, message: 'device_id must be a string of 1 to 128 characters, or null' });
    b.send({ event: 'pusher:subscribe', data: { channel: 'news' } });
    await b.next('pusher_internal:subscription_succeeded', 5000, 'news');
    assert.deepEqual(await live(), []);
  }
});

void test('a device online on any of the event\'s channels is skipped; one push across several channels', async (t) => {
  const { h, fake } = await single(t);
  const d = await registerDevice(h, fake, ['a', 'b']);
  const onB = await registerDevice(h, fake, ['a']);
  const socket = await liveDevice(h, onB.deviceId, 'b');
  t.after(() => socket.close());
  const r = await signed<{ push: { publishId: string } }>(h, 'POST', '/events', { name: 'x', channels: ['a', 'b'], data: '{}', push });
  const st = await publishStatus(h, r.body.push.publishId);
  assert.deepEqual([st.targeted, st.skippedOnline, st.sent], [2, 1, 1]);
  assert.equal(fake.messagesFor(d.sub.id).length, 1);
});

void test('a bad or oversized push block is refused before the event is published', async (t) => {
  const { h, fake } = await single(t);
  await registerDevice(h, fake, ['news']);
  const socket = await RawClient.connect(h);
  t.after(() => socket.close());
  socket.send({ event: 'pusher:subscribe', data: { channel: 'news' } });
  await socket.next('pusher_internal:subscription_succeeded');

  const big = await signed<{ error: string }>(h, 'POST', '/events', event('news', { notification: { body: 'x'.repeat(4000) } }));
  assert.equal(big.status, 413);
  assert.match(big.body.error, /3993/);
  const bad = await signed<{ error: string }>(h, 'POST', '/events', event('news', { urgency: 'now' }));
  assert.equal(bad.status, 400);
  const longChannel = `c${'x'.repeat(170)}`;
  const notInterest = await signed<{ error: string }>(h, 'POST', '/events', event(longChannel, push));
  assert.equal(notInterest.status, 400);
  assert.match(notInterest.body.error, /cannot name an interest/);

  // Nothing was published: the next frame on the socket is the plain event sent now.
  assert.equal((await signed(h, 'POST', '/events', event('news'))).status, 200);
  const next = await socket.next((m) => m.channel === 'news');
  assert.equal(next.event, 'message');
  assert.equal(socket.pending().filter((m) => m.channel === 'news').length, 0);
  assert.equal(fake.requests, 0);
});

void test('events with push on a node without push: 501, nothing published', async (t) => {
  const h = await startHerald();
  t.after(() => h.stop());
  const r = await signed(h, 'POST', '/events', event('news', push));
  assert.equal(r.status, 501);
});

void test('two nodes on one Redis: online on node A is skipped when node B publishes; offline devices pushed once', async (t) => {
  if (!(await needRedis(t))) return;
  const prefix = uniquePrefix();
  const app = testApp();
  const log = pino({ level: process.env.HERALD_TEST_LOG ?? 'silent' });
  const node = () =>
    startHerald({
      apps: [app],
      options: { ...pushOptions(), redis: REDIS_URL, redisPrefix: prefix },
      backends: createRedisBackends({ redis: REDIS_URL, prefix, log }),
    });
  const a = await node();
  const b = await node();
  const fake = await FakePushService.start();
  t.after(async () => {
    await a.stop();
    await b.stop();
    await fake.close();
    await deleteKeys(prefix);
  });

  const online = await registerDevice(a, fake, ['news']);
  const offline = await registerDevice(b, fake, ['news', 'sport']);
  const socket = await liveDevice(a, online.deviceId, 'news');
  t.after(() => socket.close());

  const r = await signed<{ push: { publishId: string } }>(b, 'POST', '/events', { name: 'message', channels: ['news', 'sport'], data: '"hi"', push });
  assert.equal(r.status, 200);
  await socket.next('message', 5000, 'news');
  const st = await publishStatus(a, r.body.push.publishId);
  assert.deepEqual([st.targeted, st.skippedOnline, st.sent, st.failed], [2, 1, 1, 0]);
  assert.equal(fake.messagesFor(offline.sub.id).length, 1, 'one push although two interests matched');
  assert.equal(fake.messagesFor(online.sub.id).length, 0);
});
