/**
 * The server SDK's push methods against a real Herald: `publishToInterests`, `publishToUsers`,
 * `getPublish`, `deleteUser`, and `trigger(..., { push })`. Written against the push API contract
 * (`POST /apps/:appId/push/interests|users`, `GET /apps/:appId/push/publishes/:id`,
 * `DELETE /apps/:appId/push/users/:id`, device API under `/push/v1/:appKey/`); these tests fail until
 * the server has those routes. Devices are registered the way the browser SDK does, with subscriptions
 * from the in-process fake push service, which decrypts what Herald sends.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { Herald, HeraldInputError, HeraldRequestError } from '../../sdk/server';
import { startHerald, type TestHerald } from '../helpers/herald';
import { FakePushService } from '../helpers/FakePushService';
import type { HeraldOptions } from '../../server/options/Options';

/** Push on for every app, allowed to reach the fake's `http://127.0.0.1` endpoints. */
const PUSH_TEST_OPTIONS: Partial<HeraldOptions> = { push: { subject: 'mailto:ops@herald.example.com', allowInsecureEndpoints: true } };

async function setup(t: TestContext) {
  const h = await startHerald({ options: PUSH_TEST_OPTIONS });
  const fake = await FakePushService.start();
  const sdk = new Herald({ appId: h.app.id, key: h.app.key, secret: h.app.secret, host: h.host, port: h.port });
  t.after(async () => {
    sdk.close();
    await fake.close();
    await h.stop();
  });
  return { h, fake, sdk };
}

/** The device API as the browser SDK calls it (no signature: it is public, like Beams' device API). */
async function device(h: TestHerald, method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${h.baseUrl}/push/v1/${h.app.key}${path}`, {
    method,
    headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
}

async function registerDevice(h: TestHerald, fake: FakePushService, interests: string[]): Promise<{ deviceId: string; subscriptionId: string }> {
  const key = await device(h, 'GET', '/vapid-public-key');
  assert.equal(key.status, 200, `vapid-public-key: ${JSON.stringify(key.body)}`);
  const vapid = (key.body.vapidPublicKey ?? key.body.publicKey) as string;
  const sub = fake.createSubscription(vapid);
  const res = await device(h, 'POST', '/devices', { subscription: { endpoint: sub.endpoint, expirationTime: null, keys: sub.keys }, interests });
  assert.ok(res.status === 200 || res.status === 201, `register device: ${res.status} ${JSON.stringify(res.body)}`);
  assert.equal(typeof res.body.deviceId, 'string');
  return { deviceId: res.body.deviceId as string, subscriptionId: sub.id };
}

const WEB = { notification: { title: 'Hello', body: 'From Herald', deep_link: 'http://127.0.0.1/x', hide_if_focused: true }, data: { n: 1 }, ttl: 60 };

void test('publishToInterests reaches each interested device once and getPublish reports it', { timeout: 20_000 }, async (t) => {
  const { h, fake, sdk } = await setup(t);
  const a = await registerDevice(h, fake, ['news', 'sport']);
  const b = await registerDevice(h, fake, ['weather']);
  const { publishId } = await sdk.publishToInterests(['news', 'sport'], { web: WEB });
  assert.equal(typeof publishId, 'string');
  const [msg] = await fake.waitFor(1);
  assert.equal(msg.subscriptionId, a.subscriptionId);
  const payload = JSON.parse(msg.payload) as { notification: Record<string, unknown>; data: Record<string, unknown> };
  assert.equal(payload.notification.title, 'Hello');
  assert.equal(payload.notification.body, 'From Herald');
  assert.equal(payload.notification.deep_link, WEB.notification.deep_link);
  // herald-sw.js reads either spelling of the focus flag.
  assert.equal(payload.notification.hide_if_focused ?? payload.notification.hide_notification_if_site_has_focus, true);
  assert.equal(payload.data.n, 1);
  assert.equal(fake.messagesFor(b.subscriptionId).length, 0);
  let status = await sdk.getPublish(publishId);
  for (let i = 0; i < 50 && status.sent !== 1; i++) {
    await new Promise((r) => setTimeout(r, 50));
    status = await sdk.getPublish(publishId);
  }
  assert.equal(status.publishId, publishId);
  assert.equal(status.kind, 'interests');
  assert.equal(status.targeted, 1);
  assert.equal(status.sent, 1);
});

void test('publishToUsers reaches devices bound with a generatePushToken token; deleteUser removes them', { timeout: 20_000 }, async (t) => {
  const { h, fake, sdk } = await setup(t);
  const d = await registerDevice(h, fake, []);
  const { token } = sdk.generatePushToken('alice');
  const bound = await device(h, 'PUT', `/devices/${d.deviceId}/user`, undefined, { authorization: `Bearer ${token}` });
  assert.ok(bound.status < 300, `bind user: ${bound.status} ${JSON.stringify(bound.body)}`);
  // A token signed with another secret is refused.
  const forged = new Herald({ appId: h.app.id, key: h.app.key, secret: 'not-the-secret' }).generatePushToken('alice').token;
  assert.equal((await device(h, 'PUT', `/devices/${d.deviceId}/user`, undefined, { authorization: `Bearer ${forged}` })).status, 401);

  await sdk.publishToUsers(['alice'], { web: WEB });
  const [msg] = await fake.waitFor(1);
  assert.equal(msg.subscriptionId, d.subscriptionId);

  assert.deepEqual(await sdk.deleteUser('alice'), { deletedDevices: 1 });
  await sdk.publishToUsers(['alice'], { web: WEB });
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(fake.messagesFor(d.subscriptionId).length, 1, 'a deleted user’s device gets nothing');
});

void test('trigger with push pushes offline interested devices and skips the live one', { timeout: 20_000 }, async (t) => {
  const { h, fake, sdk } = await setup(t);
  const live = await registerDevice(h, fake, ['alerts']);
  const offline = await registerDevice(h, fake, ['alerts']);
  const { RawClient } = await import('../helpers/clients');
  const ws = await RawClient.connect(h, { query: `protocol=7&client=herald-js&version=0.1.0&device_id=${live.deviceId}` });
  t.after(() => ws.close());
  ws.send({ event: 'pusher:subscribe', data: { channel: 'alerts' } });
  await ws.next('pusher_internal:subscription_succeeded');

  const res = await sdk.trigger('alerts', 'alert', { level: 'red' }, { push: WEB });
  assert.equal(typeof res.body.push?.publishId, 'string');
  assert.deepEqual((await ws.next('alert')).data, { level: 'red' });
  const [msg] = await fake.waitFor(1);
  assert.equal(msg.subscriptionId, offline.subscriptionId);
  const status = await sdk.getPublish(res.body.push?.publishId ?? '');
  assert.equal(status.skippedOnline, 1);
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(fake.messagesFor(live.subscriptionId).length, 0, 'the live device is not pushed twice');
});

void test('push input is checked before sending; Herald’s refusals are typed', { timeout: 20_000 }, async (t) => {
  const { sdk } = await setup(t);
  const rejects = (p: Promise<unknown>, re: RegExp) => assert.rejects(p, (e: unknown) => e instanceof HeraldInputError && re.test(e.message));
  await rejects(sdk.publishToInterests([], { web: WEB }), /1-100 interests/);
  await rejects(sdk.publishToInterests(Array.from({ length: 101 }, (_, i) => `i${i}`), { web: WEB }), /1-100 interests/);
  await rejects(sdk.publishToInterests(['bad interest'], { web: WEB }), /may contain only/);
  await rejects(sdk.publishToInterests(['x'.repeat(165)], { web: WEB }), /longer than 164/);
  await rejects(sdk.publishToInterests(['a'], { web: { ttl: -1 } }), /ttl/);
  await rejects(sdk.publishToInterests(['a'], { web: { topic: 'has spaces' } }), /topic/);
  await rejects(sdk.publishToInterests(['a'], { web: WEB, deliverAt: 'not a date' }), /deliverAt/);
  await rejects(sdk.publishToUsers(Array.from({ length: 1001 }, (_, i) => `u${i}`), { web: WEB }), /1-1000 users/);
  await rejects(sdk.publishToUsers([''], { web: WEB }), /User id/);
  await rejects(sdk.publishToUsers(['x'.repeat(165)], { web: WEB }), /longer than 164/);
  await rejects(sdk.publishToInterests(['a'], { web: { data: { pusher: 1 } } }), /"pusher"/);
  await assert.rejects(sdk.getPublish('no-such-publish'), (e: unknown) => e instanceof HeraldRequestError && e.status === 404);
  // A scheduled publish is accepted.
  const { publishId } = await sdk.publishToInterests(['later'], { web: WEB, deliverAt: new Date(Date.now() + 3_600_000) });
  assert.equal(typeof publishId, 'string');
});
