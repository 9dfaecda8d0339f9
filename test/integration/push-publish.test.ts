/**
 * The signed publish API end to end against the fake push service: delivery and payload, one push per
 * device, users, status counts, 413 before 202, the §2.5 status handling, key rotation and scheduled
 * publishes across a restart.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateVapidKeys } from '../../server/push/vapid';
import { FakePushService } from '../helpers/FakePushService';
import { startHerald, testApp, type StartOptions, type TestHerald } from '../helpers/herald';
import { deviceApi, publishStatus, pushOptions, registerDevice, signed, PUSH_SUBJECT } from '../helpers/push';

async function setup(t: TestContext, opts: StartOptions = {}): Promise<{ h: TestHerald; fake: FakePushService }> {
  const h = await startHerald({ options: pushOptions(), backends: { push: { backoff: { baseMs: 50, maxMs: 200 } } }, ...opts });
  const fake = await FakePushService.start();
  t.after(async () => {
    await h.stop();
    await fake.close();
  });
  return { h, fake };
}

const web = { notification: { title: 'Hello', body: 'From Herald', icon: 'https://app.example.com/i.png', deep_link: 'https://app.example.com/chat', hide_if_focused: true }, data: { room: 7 } };

void test('publish to interests: 202, one decrypted push per device however many interests match, counts', async (t) => {
  const { h, fake } = await setup(t);
  const both = await registerDevice(h, fake, ['news', 'sport']);
  const news = await registerDevice(h, fake, ['news']);
  const other = await registerDevice(h, fake, ['weather']);

  const r = await signed<{ publishId: string }>(h, 'POST', '/push/interests', { interests: ['news', 'sport'], web: { ...web, ttl: 120, urgency: 'high', topic: 'room_7' } });
  assert.equal(r.status, 202);
  assert.match(r.body.publishId, /^pubid-/);
  await fake.waitFor(2);
  const st = await publishStatus(h, r.body.publishId);
  assert.deepEqual({ ...st, publishId: undefined }, {
    ...st,
    publishId: undefined,
    kind: 'interests',
    status: 'done',
    targeted: 2,
    sent: 2,
    skippedOnline: 0,
    expired: 0,
    failed: 0,
    pending: 0,
    delivered: 0,
    opened: 0,
  });
  assert.equal(fake.messagesFor(both.sub.id).length, 1, 'one push for a device on both interests');
  assert.equal(fake.messagesFor(other.sub.id).length, 0);
  const [m] = fake.messagesFor(news.sub.id);
  assert.deepEqual(JSON.parse(m.payload), {
    notification: { title: 'Hello', body: 'From Herald', icon: 'https://app.example.com/i.png', deep_link: 'https://app.example.com/chat', hide_notification_if_site_has_focus: true },
    data: { room: 7, pusher: { publishId: r.body.publishId, hasDisplayableContent: true, hasData: true } },
  });
  assert.equal(m.headers['urgency'], 'high');
  assert.equal(m.headers['topic'], 'room_7');
  assert.ok(Number(m.headers['ttl']) <= 120 && Number(m.headers['ttl']) >= 110);
  assert.equal(m.vapid.claims.aud, fake.origin);
  assert.equal(m.vapid.claims.sub, PUSH_SUBJECT);
  assert.equal(fake.rejections.length, 0);
});

void test('service worker reports: delivered and opened counted once per device, only for devices the publish targeted', async (t) => {
  const { h, fake } = await setup(t);
  const a = await registerDevice(h, fake, ['news']);
  const b = await registerDevice(h, fake, ['news']);
  const other = await registerDevice(h, fake, ['weather']);
  const r = await signed<{ publishId: string }>(h, 'POST', '/push/interests', { interests: ['news'], web });
  assert.equal(r.status, 202);
  await publishStatus(h, r.body.publishId);
  const publishId = r.body.publishId;
  const report = (endpoint: string, kind: unknown, id: unknown = publishId) => deviceApi<{ error?: string }>(h, 'POST', '/reports', { publishId: id, endpoint, report: kind });

  assert.equal((await report(a.sub.endpoint, 'delivered')).status, 204);
  assert.equal((await report(a.sub.endpoint, 'delivered')).status, 204, 'a repeat is answered alike, and not counted');
  assert.equal((await report(a.sub.endpoint, 'opened')).status, 204);
  // herald-sw.js sends text/plain, which needs no CORS preflight.
  const plain = await fetch(`${h.baseUrl}/push/v1/${h.app.key}/reports`, {
    method: 'POST',
    headers: { 'content-type': 'text/plain;charset=UTF-8', origin: 'https://app.example.com' },
    body: JSON.stringify({ publishId, endpoint: b.sub.endpoint, report: 'delivered' }),
  });
  assert.equal(plain.status, 204);
  assert.equal(plain.headers.get('access-control-allow-origin'), 'https://app.example.com');

  let bad = await report(other.sub.endpoint, 'delivered');
  assert.equal(bad.status, 404, 'a device the publish did not target');
  assert.match(bad.body.error ?? '', /No push of publish/);
  assert.equal((await report(a.sub.endpoint, 'delivered', 'pubid-unknown')).status, 404);
  bad = await report(a.sub.endpoint, 'seen');
  assert.equal(bad.status, 400);
  assert.match(bad.body.error ?? '', /report must be "delivered" or "opened"/);
  bad = await report(a.sub.endpoint, 'opened', '../x');
  assert.match(bad.body.error ?? '', /publishId must be/);
  bad = await report('', 'opened');
  assert.match(bad.body.error ?? '', /endpoint must be/);
  bad = await deviceApi<{ error?: string }>(h, 'POST', '/reports', ['not', 'an', 'object']);
  assert.equal(bad.status, 400);
  const notJson = await fetch(`${h.baseUrl}/push/v1/${h.app.key}/reports`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: '{' });
  assert.equal(notJson.status, 400);

  const st = await publishStatus(h, publishId);
  assert.deepEqual([st.targeted, st.sent, st.delivered, st.opened], [2, 2, 2, 1]);
  const metrics = await (await fetch(`${h.baseUrl}/metrics`)).text();
  const reported = (kind: string) => new RegExp(`^herald_push_reports_total\\{app_id="${h.app.id}",report="${kind}"\\} (\\d+)$`, 'm').exec(metrics)?.[1];
  assert.deepEqual([reported('delivered'), reported('opened')], ['2', '1'], 'counted reports only, not repeats');
  assert.equal((await deviceApi(h, 'GET', '/vapid-public-key')).status, 200, 'still serving');
});

void test('a renewed subscription: the device keeps its id, interests and user, and is pushed at the new endpoint', async (t) => {
  const { h, fake } = await setup(t);
  const { signPushToken } = await import('../../server/push/push-token');
  const d = await registerDevice(h, fake, ['news']);
  const other = await registerDevice(h, fake, []);
  assert.equal((await deviceApi(h, 'PUT', `/devices/${d.deviceId}/user`, undefined, { authorization: `Bearer ${signPushToken(h.app.secret, 'carol')}` })).status, 200);
  const key = (await deviceApi<{ vapidPublicKey: string }>(h, 'GET', '/vapid-public-key')).body.vapidPublicKey;
  const renewed = fake.createSubscription(key);
  const renew = (id: string, body: unknown) => deviceApi<{ deviceId?: string; error?: string }>(h, 'PUT', `/devices/${id}/subscription`, body);

  // Without the endpoint the device has, a device id alone moves nothing (ids travel in connection URLs).
  let bad = await renew(d.deviceId, { oldEndpoint: other.sub.endpoint, subscription: { endpoint: renewed.endpoint, keys: renewed.keys } });
  assert.equal(bad.status, 404);
  bad = await renew(d.deviceId, { subscription: { endpoint: renewed.endpoint, keys: renewed.keys } });
  assert.equal(bad.status, 400);
  assert.match(bad.body.error ?? '', /oldEndpoint must be/);
  const r = await renew(d.deviceId, { oldEndpoint: d.sub.endpoint, subscription: { endpoint: renewed.endpoint, keys: renewed.keys }, vapidPublicKey: key });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.deepEqual(r.body, { deviceId: d.deviceId });
  assert.deepEqual((await deviceApi(h, 'GET', `/devices/${d.deviceId}/interests`)).body, { interests: ['news'] });
  const byInterest = await signed<{ publishId: string }>(h, 'POST', '/push/interests', { interests: ['news'], web });
  const byUser = await signed<{ publishId: string }>(h, 'POST', '/push/users', { users: ['carol'], web });
  await publishStatus(h, byInterest.body.publishId);
  await publishStatus(h, byUser.body.publishId);
  assert.equal(fake.messagesFor(renewed.id).length, 2, 'pushed at the new endpoint, by interest and by user');
  assert.equal(fake.messagesFor(d.sub.id).length, 0, 'not at the old one');

  const now = { oldEndpoint: renewed.endpoint };
  bad = await renew(d.deviceId, { ...now, subscription: { endpoint: other.sub.endpoint, keys: other.sub.keys } });
  assert.equal(bad.status, 409);
  assert.match(bad.body.error ?? '', /already registered as another device/);
  bad = await renew('web-nobody', { ...now, subscription: { endpoint: renewed.endpoint, keys: renewed.keys } });
  assert.equal(bad.status, 404);
  bad = await renew(d.deviceId, { ...now, subscription: { endpoint: renewed.endpoint, keys: renewed.keys }, vapidPublicKey: 'not-a-key-of-this-app' });
  assert.equal(bad.status, 400);
  assert.match(bad.body.error ?? '', /vapidPublicKey is not a key of this app/);
  bad = await renew(d.deviceId, { ...now, subscription: { endpoint: 'ftp://127.0.0.1/x', keys: renewed.keys } });
  assert.equal(bad.status, 400);
  assert.match(bad.body.error ?? '', /must use https/);
  bad = await renew(d.deviceId, 'nonsense');
  assert.equal(bad.status, 400);
  // The old endpoint, registered again (the page's next register()), is a new device.
  const again = await deviceApi<{ deviceId: string }>(h, 'POST', '/devices', { subscription: { endpoint: d.sub.endpoint, keys: d.sub.keys } });
  assert.equal(again.status, 201);
  assert.notEqual(again.body.deviceId, d.deviceId);
});

void test('publish to users, delete a user, test a device', async (t) => {
  const { h, fake } = await setup(t);
  const { signPushToken } = await import('../../server/push/push-token');
  const d1 = await registerDevice(h, fake, []);
  const d2 = await registerDevice(h, fake, []);
  for (const d of [d1, d2]) {
    const bound = await deviceApi(h, 'PUT', `/devices/${d.deviceId}/user`, undefined, { authorization: `Bearer ${signPushToken(h.app.secret, 'alice')}` });
    assert.equal(bound.status, 200);
  }
  const r = await signed<{ publishId: string }>(h, 'POST', '/push/users', { users: ['alice', 'bob'], web });
  assert.equal(r.status, 202);
  await fake.waitFor(2);
  assert.equal((await publishStatus(h, r.body.publishId)).sent, 2);

  const test1 = await signed<{ publishId: string }>(h, 'POST', `/push/devices/${d1.deviceId}/test`);
  assert.equal(test1.status, 202);
  await fake.waitFor(3);
  assert.match(JSON.parse(fake.messagesFor(d1.sub.id)[1].payload).notification.title as string, /test/i);
  assert.equal((await signed(h, 'POST', '/push/devices/web-unknown/test')).status, 404);

  const del = await signed(h, 'DELETE', '/push/users/alice');
  assert.deepEqual(del.body, { deletedDevices: 2 });
  assert.equal((await deviceApi(h, 'GET', `/devices/${d1.deviceId}/interests`)).status, 404);
});

void test('publish validation: 413 for a payload that cannot fit, before anything is stored; 400s; 401 unsigned; 404 status', async (t) => {
  const { h, fake } = await setup(t);
  await registerDevice(h, fake, ['news']);
  const big = await signed<{ error: string }>(h, 'POST', '/push/interests', { interests: ['news'], web: { notification: { body: 'x'.repeat(4000) } } });
  assert.equal(big.status, 413);
  assert.match(big.body.error, /at most 3993 fit in one Web Push message/);
  const nearly = await signed<{ error: string }>(h, 'POST', '/push/interests', { interests: ['news'], web: { data: { x: 'é'.repeat(1990) } } });
  assert.equal(nearly.status, 413, 'bytes, not characters');

  const bad = async (body: unknown, why: RegExp) => {
    const r = await signed<{ error: string }>(h, 'POST', '/push/interests', body);
    assert.equal(r.status, 400, JSON.stringify(r.body));
    assert.match(r.body.error, why);
  };
  await bad({ interests: [], web }, /at least 1/);
  await bad({ interests: Array.from({ length: 101 }, (_v, i) => `i${i}`), web }, /At most 100/);
  await bad({ interests: ['bad name'], web }, /may only contain/);
  await bad({ interests: ['news'] }, /web is required/);
  await bad({ interests: ['news'], web: { ttl: -1 } }, /ttl/);
  await bad({ interests: ['news'], web, deliver_at: 1 }, /deliver_at is not a known field/);
  await bad({ interests: ['news'], users: ['a'], web }, /separate requests/);
  const users = await signed<{ error: string }>(h, 'POST', '/push/users', { users: Array.from({ length: 1001 }, (_v, i) => `u${i}`), web });
  assert.match(users.body.error, /At most 1000 users/);

  const unsigned = await fetch(`${h.baseUrl}/apps/${h.app.id}/push/interests`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ interests: ['news'], web }) });
  assert.equal(unsigned.status, 401);
  assert.equal((await signed(h, 'GET', '/push/publishes/pubid-nope')).status, 404);
  assert.equal(fake.requests, 0, 'nothing was sent');
});

void test('publishing with push off answers 501', async (t) => {
  const h = await startHerald();
  t.after(() => h.stop());
  assert.equal((await signed(h, 'POST', '/push/interests', { interests: ['news'], web })).status, 501);
});

void test('status handling: 404/410 delete the device, 429 honours Retry-After, 500 is retried, 400/413 are not', async (t) => {
  const { h, fake } = await setup(t);
  const devices = {
    notFound: await registerDevice(h, fake, ['all']),
    gone: await registerDevice(h, fake, ['all']),
    limited: await registerDevice(h, fake, ['all']),
    broken: await registerDevice(h, fake, ['all']),
    badRequest: await registerDevice(h, fake, ['all']),
    tooLarge: await registerDevice(h, fake, ['all']),
  };
  fake.failNext(devices.notFound.sub.id, 404);
  fake.failNext(devices.gone.sub.id, 410);
  fake.failNext(devices.limited.sub.id, 429, { retryAfter: 1 });
  fake.failNext(devices.broken.sub.id, 500, { times: 2 });
  fake.failNext(devices.badRequest.sub.id, 400);
  fake.failNext(devices.tooLarge.sub.id, 413);

  const started = Date.now();
  const r = await signed<{ publishId: string }>(h, 'POST', '/push/interests', { interests: ['all'], web });
  const st = await publishStatus(h, r.body.publishId);
  assert.deepEqual([st.sent, st.failed, st.expired, st.pending], [2, 4, 0, 0]);

  const limited = fake.messagesFor(devices.limited.sub.id);
  assert.equal(limited.length, 1, '429 was retried');
  assert.ok(Date.now() - started >= 1000, 'after the Retry-After second');
  assert.equal(fake.messagesFor(devices.broken.sub.id).length, 1, '500 was retried until it worked');
  for (const d of [devices.notFound, devices.gone]) {
    assert.equal((await deviceApi(h, 'GET', `/devices/${d.deviceId}/interests`)).status, 404, '404/410 deleted the device');
  }
  for (const d of [devices.badRequest, devices.tooLarge]) {
    assert.equal((await deviceApi(h, 'GET', `/devices/${d.deviceId}/interests`)).status, 200, '400/413 keep the device');
    assert.equal(fake.messagesFor(d.sub.id).length, 0);
  }
  // Requests per subscription: 1 for 404/410/400/413, 2 for the 429, 3 for the two 500s.
  assert.equal(fake.requests, 1 + 1 + 2 + 3 + 1 + 1);
});

void test('retries stop when the TTL runs out (expired) or after maxAttempts (failed)', async (t) => {
  const { h, fake } = await setup(t, { options: pushOptions({ maxAttempts: 1000 }) });
  const d = await registerDevice(h, fake, ['news']);
  fake.failNext(d.sub.id, 503, { times: 1000 });
  const r = await signed<{ publishId: string }>(h, 'POST', '/push/interests', { interests: ['news'], web: { ...web, ttl: 1 } });
  const st = await publishStatus(h, r.body.publishId);
  assert.deepEqual([st.sent, st.expired, st.failed], [0, 1, 0]);
  assert.ok(fake.requests >= 2, `retried within the TTL (${fake.requests} requests)`);

  const capped = await setup(t, { options: pushOptions({ maxAttempts: 3 }) });
  const d2 = await registerDevice(capped.h, capped.fake, ['news']);
  capped.fake.failNext(d2.sub.id, 500, { times: 1000 });
  const r2 = await signed<{ publishId: string }>(capped.h, 'POST', '/push/interests', { interests: ['news'], web });
  const st2 = await publishStatus(capped.h, r2.body.publishId);
  assert.deepEqual([st2.sent, st2.expired, st2.failed], [0, 0, 1]);
  assert.equal(capped.fake.requests, 3);
});

void test('VAPID rotation keeps the old key for devices subscribed with it', async (t) => {
  const { h, fake } = await setup(t);
  const old = await registerDevice(h, fake, ['news']);
  const oldKey = (await deviceApi<{ vapidPublicKey: string }>(h, 'GET', '/vapid-public-key')).body.vapidPublicKey;
  const rotated = await signed<{ vapidPublicKey: string; keyId: string }>(h, 'POST', '/push/vapid/rotate');
  assert.equal(rotated.status, 200);
  assert.notEqual(rotated.body.vapidPublicKey, oldKey);
  assert.equal((await deviceApi<{ vapidPublicKey: string }>(h, 'GET', '/vapid-public-key')).body.vapidPublicKey, rotated.body.vapidPublicKey);
  const fresh = await registerDevice(h, fake, ['news']);

  const r = await signed<{ publishId: string }>(h, 'POST', '/push/interests', { interests: ['news'], web });
  await fake.waitFor(2);
  assert.equal(fake.messagesFor(old.sub.id)[0]?.vapid.k, oldKey);
  assert.equal(fake.messagesFor(fresh.sub.id)[0]?.vapid.k, rotated.body.vapidPublicKey);
  assert.equal((await publishStatus(h, r.body.publishId)).sent, 2);
});

void test('configured VAPID keys are used, and rotation is refused for them', async (t) => {
  const keys = generateVapidKeys();
  const { h, fake } = await setup(t, { apps: [{ push: { vapidPublicKey: keys.publicKey, vapidPrivateKey: keys.privateKey } }] });
  assert.equal((await deviceApi<{ vapidPublicKey: string }>(h, 'GET', '/vapid-public-key')).body.vapidPublicKey, keys.publicKey);
  const d = await registerDevice(h, fake, ['news']);
  await signed(h, 'POST', '/push/interests', { interests: ['news'], web });
  await fake.waitFor(1);
  assert.equal(fake.messagesFor(d.sub.id)[0]?.vapid.k, keys.publicKey);
  assert.equal((await signed(h, 'POST', '/push/vapid/rotate')).status, 400);
});

void test('a publish with deliverAt is sent on time, across a restart of the node', async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'herald-push-sched-'));
  const fake = await FakePushService.start();
  const app = testApp();
  const start = () => startHerald({ apps: [app], options: { ...pushOptions(), dataDir } });
  let h = await start();
  t.after(async () => {
    await h.stop();
    await fake.close();
    rmSync(dataDir, { recursive: true, force: true });
  });
  const d = await registerDevice(h, fake, ['news']);
  const deliverAt = Date.now() + 2000;
  const r = await signed<{ publishId: string }>(h, 'POST', '/push/interests', { interests: ['news'], web, deliverAt: new Date(deliverAt).toISOString() });
  assert.equal(r.status, 202);
  assert.equal((await signed<{ status: string }>(h, 'GET', `/push/publishes/${r.body.publishId}`)).body.status, 'scheduled');
  await h.stop();
  h = await start();
  const [m] = await fake.waitFor(1, 8000);
  const receivedAt = Date.now();
  assert.equal(m.subscriptionId, d.sub.id);
  assert.ok(receivedAt >= deliverAt - 50, `sent ${deliverAt - receivedAt} ms early`);
  assert.ok(receivedAt < deliverAt + 3000, `sent ${receivedAt - deliverAt} ms late`);
  const st = await publishStatus(h, r.body.publishId);
  assert.deepEqual([st.targeted, st.sent], [1, 1]);
});

void test('the debug console\'s test push reaches devices by interest or user', async (t) => {
  const { h, fake } = await setup(t);
  await registerDevice(h, fake, ['hello']);
  const hook = h.server.debugConsole.pushTest;
  assert.ok(hook);
  const result = (await hook(h.app, { target: 'hello', title: 'Console', body: 'test' })) as { devices: number };
  assert.equal(result.devices, 1);
  const [m] = await fake.waitFor(1);
  assert.equal(JSON.parse(m.payload).notification.title, 'Console');
});
