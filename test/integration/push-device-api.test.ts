/**
 * The device API under /push/v1/:appKey as a browser uses it: VAPID key, registration, interests, user
 * binding, validation errors, unknown app, CORS and the per-address rate limit.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { signPushToken } from '../../server/push/push-token';
import { FakePushService } from '../helpers/FakePushService';
import { startHerald, type StartOptions, type TestHerald } from '../helpers/herald';
import { deviceApi, pushOptions, registerDevice } from '../helpers/push';
import { waitFor } from '../helpers/redis';

async function setup(t: TestContext, opts: StartOptions = {}): Promise<{ h: TestHerald; fake: FakePushService }> {
  const h = await startHerald({ options: pushOptions(), ...opts });
  const fake = await FakePushService.start();
  t.after(async () => {
    await h.stop();
    await fake.close();
  });
  return { h, fake };
}

void test('vapid-public-key, register, register again (same id), interests CRUD, delete', async (t) => {
  const { h, fake } = await setup(t);
  const key = await deviceApi<{ vapidPublicKey: string }>(h, 'GET', '/vapid-public-key');
  assert.equal(key.status, 200);
  assert.equal(Buffer.from(key.body.vapidPublicKey, 'base64url').length, 65);
  const again = await deviceApi<{ vapidPublicKey: string }>(h, 'GET', '/vapid-public-key');
  assert.equal(again.body.vapidPublicKey, key.body.vapidPublicKey, 'generated once, then stored');

  const sub = fake.createSubscription(key.body.vapidPublicKey);
  const body = { subscription: { endpoint: sub.endpoint, keys: sub.keys }, interests: ['news', 'sport'] };
  const first = await deviceApi<{ deviceId: string; vapidPublicKey: string }>(h, 'POST', '/devices', body);
  assert.equal(first.status, 201);
  assert.match(first.body.deviceId, /^web-[0-9a-f-]{36}$/);
  assert.equal(first.body.vapidPublicKey, key.body.vapidPublicKey);
  const second = await deviceApi<{ deviceId: string }>(h, 'POST', '/devices', { subscription: body.subscription });
  assert.equal(second.status, 200);
  assert.equal(second.body.deviceId, first.body.deviceId, 'the same endpoint is the same device');

  const id = first.body.deviceId;
  assert.deepEqual((await deviceApi(h, 'GET', `/devices/${id}/interests`)).body, { interests: ['news', 'sport'] });
  assert.equal((await deviceApi(h, 'POST', `/devices/${id}/interests/weather=@,.;`)).status, 200);
  assert.equal((await deviceApi(h, 'DELETE', `/devices/${id}/interests/news`)).status, 200);
  assert.deepEqual((await deviceApi(h, 'GET', `/devices/${id}/interests`)).body, { interests: ['sport', 'weather=@,.;'] });
  const put = await deviceApi(h, 'PUT', `/devices/${id}/interests`, { interests: ['b', 'a', 'a'] });
  assert.deepEqual(put.body, { interests: ['a', 'b'] });
  assert.equal((await deviceApi(h, 'DELETE', `/devices/${id}`)).status, 200);
  assert.equal((await deviceApi(h, 'GET', `/devices/${id}/interests`)).status, 404);
  assert.equal((await deviceApi(h, 'DELETE', `/devices/${id}`)).status, 404);
});

void test('validation: bad interest names, more than 5000 interests, bad subscriptions, unknown devices', async (t) => {
  const { h, fake } = await setup(t);
  const { deviceId } = await registerDevice(h, fake, []);
  const sub = fake.createSubscription();
  const register = (b: unknown) => deviceApi<{ error: string }>(h, 'POST', '/devices', b);

  let r = await register({ subscription: { endpoint: sub.endpoint, keys: sub.keys }, interests: ['has space'] });
  assert.equal(r.status, 400);
  assert.match(r.body.error, /may only contain/);
  r = await register({ subscription: { endpoint: sub.endpoint, keys: sub.keys }, interests: ['x'.repeat(165)] });
  assert.match(r.body.error, /longer than 164/);
  r = await register({ subscription: { endpoint: sub.endpoint, keys: sub.keys }, interests: Array.from({ length: 5001 }, (_v, i) => `i${i}`) });
  assert.equal(r.status, 400);
  assert.match(r.body.error, /At most 5000/);
  r = await register({ subscription: { endpoint: sub.endpoint, keys: { p256dh: sub.keys.p256dh, auth: 'AAAA' } } });
  assert.match(r.body.error, /auth must be 16 bytes/);
  r = await register({ subscription: { endpoint: 'ftp://127.0.0.1/x', keys: sub.keys } });
  assert.match(r.body.error, /must use https/);
  r = await register({ subscription: { keys: sub.keys } });
  assert.match(r.body.error, /endpoint/);
  r = await register({ subscription: { endpoint: sub.endpoint, keys: sub.keys }, vapidPublicKey: 'not-our-key' });
  assert.match(r.body.error, /vapidPublicKey/);
  const bad = await fetch(`${h.baseUrl}/push/v1/${h.app.key}/devices`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{nope' });
  assert.equal(bad.status, 400);

  assert.equal((await deviceApi(h, 'POST', `/devices/${deviceId}/interests/bad%20name`)).status, 400);
  assert.equal((await deviceApi(h, 'PUT', `/devices/${deviceId}/interests`, { interests: 'news' })).status, 400);
  const many = Array.from({ length: 5000 }, (_v, i) => `i${i}`);
  assert.equal((await deviceApi(h, 'PUT', `/devices/${deviceId}/interests`, { interests: many })).status, 200);
  const full = await deviceApi<{ error: string }>(h, 'POST', `/devices/${deviceId}/interests/one-more`);
  assert.equal(full.status, 400);
  assert.match(full.body.error, /at most 5000/);
  assert.equal((await deviceApi(h, 'GET', '/devices/web-unknown/interests')).status, 404);
  assert.equal((await deviceApi(h, 'PUT', '/devices/web-unknown/interests', { interests: [] })).status, 404);
});

void test('the SSRF guard: without allowInsecureEndpoints only https on allowed public hosts', async (t) => {
  const { h, fake } = await setup(t, { options: pushOptions({ allowInsecureEndpoints: false }) });
  const sub = fake.createSubscription();
  for (const endpoint of [sub.endpoint, 'https://127.0.0.1/push/x', 'https://10.1.2.3/x', 'https://localhost/x', 'https://push.evil.example.com/x', 'https://user:pw@fcm.googleapis.com/x']) {
    const r = await deviceApi<{ error: string }>(h, 'POST', '/devices', { subscription: { endpoint, keys: sub.keys } });
    assert.equal(r.status, 400, endpoint);
  }
  const ok = await deviceApi(h, 'POST', '/devices', { subscription: { endpoint: 'https://fcm.googleapis.com/fcm/send/abc', keys: sub.keys } });
  assert.equal(ok.status, 201);
});

void test('unknown app key → 404; app without push → 501', async (t) => {
  const h = await startHerald({ apps: [{}, { push: { enabled: false } }], options: pushOptions() });
  t.after(() => h.stop());
  const r = await deviceApi<{ error: string }>(h, 'GET', '/vapid-public-key', undefined, {}, 'no-such-key');
  assert.equal(r.status, 404);
  assert.match(r.body.error, /does not exist/);
  assert.equal((await deviceApi(h, 'GET', '/vapid-public-key', undefined, {}, h.apps[1].key)).status, 501);

  const off = await startHerald();
  t.after(() => off.stop());
  assert.equal((await deviceApi(off, 'GET', '/vapid-public-key')).status, 501);
});

void test('user binding: a valid token binds, bad or expired tokens get 401, another user 409', async (t) => {
  const { h, fake } = await setup(t);
  const { deviceId } = await registerDevice(h, fake, ['news']);
  const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
  const ok = await deviceApi(h, 'PUT', `/devices/${deviceId}/user`, undefined, bearer(signPushToken(h.app.secret, 'alice')));
  assert.equal(ok.status, 200);
  assert.deepEqual(ok.body, { deviceId, userId: 'alice' });

  const refused = async (headers: Record<string, string>, why: RegExp) => {
    const r = await deviceApi<{ error: string }>(h, 'PUT', `/devices/${deviceId}/user`, undefined, headers);
    assert.equal(r.status, 401, JSON.stringify(r.body));
    assert.match(r.body.error, why);
  };
  await refused({}, /Bearer/);
  await refused(bearer('not.a.token'), /not a JWT|signature/);
  await refused(bearer(signPushToken('wrong-secret', 'alice')), /signature/);
  await refused(bearer(signPushToken(h.app.secret, 'alice', { nowSeconds: Math.floor(Date.now() / 1000) - 2 * 86400 })), /expired/);
  await refused(bearer(signPushToken(h.app.secret, 'alice', { lifetimeSeconds: 7 * 86400 })), /24 h/);

  const other = await deviceApi(h, 'PUT', `/devices/${deviceId}/user`, undefined, bearer(signPushToken(h.app.secret, 'bob')));
  assert.equal(other.status, 409);
  assert.equal((await deviceApi(h, 'PUT', '/devices/web-unknown/user', undefined, bearer(signPushToken(h.app.secret, 'bob')))).status, 404);
});

void test('CORS: preflight and responses for allowed origins, 403 for others', async (t) => {
  const { h } = await setup(t, { apps: [{ allowedOrigins: ['https://app.example.com'] }] });
  const pre = await fetch(`${h.baseUrl}/push/v1/${h.app.key}/devices`, {
    method: 'OPTIONS',
    headers: { origin: 'https://app.example.com', 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' },
  });
  assert.equal(pre.status, 204);
  assert.equal(pre.headers.get('access-control-allow-origin'), 'https://app.example.com');
  assert.match(pre.headers.get('access-control-allow-methods') ?? '', /PUT/);
  assert.match(pre.headers.get('access-control-allow-headers') ?? '', /Authorization/);

  const get = await deviceApi(h, 'GET', '/vapid-public-key', undefined, { origin: 'https://app.example.com' });
  assert.equal(get.status, 200);
  assert.equal(get.headers.get('access-control-allow-origin'), 'https://app.example.com');
  const err = await deviceApi(h, 'GET', '/devices/web-x/interests', undefined, { origin: 'https://app.example.com' });
  assert.equal(err.status, 404);
  assert.equal(err.headers.get('access-control-allow-origin'), 'https://app.example.com', 'errors are readable by the page');

  const evil = await deviceApi(h, 'GET', '/vapid-public-key', undefined, { origin: 'https://evil.example.com' });
  assert.equal(evil.status, 403);
  assert.equal(evil.headers.get('access-control-allow-origin'), null);
});

void test('the device API is rate-limited per client address → 429 with Retry-After', async (t) => {
  // Behind a trusted proxy, so a second client address can be simulated with X-Forwarded-For.
  const { h } = await setup(t, { options: { ...pushOptions({ deviceRequestsPerIpPerSecond: 3 }), trustProxy: true } });
  const statuses: number[] = [];
  let retryAfter: string | null = null;
  for (let i = 0; i < 6; i++) {
    const r = await deviceApi(h, 'GET', '/vapid-public-key');
    statuses.push(r.status);
    if (r.status === 429) retryAfter = r.headers.get('retry-after');
  }
  // A second boundary may fall inside the loop, so at least the budget passes and at least one is refused.
  assert.ok(statuses.filter((s) => s === 200).length >= 3, statuses.join());
  assert.ok(statuses.includes(429), statuses.join());
  assert.equal(retryAfter, '1');
  // Another address has its own budget.
  const other = await fetch(`${h.baseUrl}/push/v1/${h.app.key}/vapid-public-key`, { headers: { 'x-forwarded-for': '203.0.113.9' } });
  assert.equal(other.status, 200);
});

void test('service worker reports have a budget per address apart from the device API', async (t) => {
  const { h } = await setup(t, { options: pushOptions({ deviceRequestsPerIpPerSecond: 1, reportsPerIpPerSecond: 4 }) });
  // Well-formed reports of a publish that does not exist: each is answered 404 while within the budget.
  const report = () => deviceApi<{ error: string }>(h, 'POST', '/reports', { publishId: 'pubid-none', endpoint: 'https://push.example.com/x', report: 'delivered' });
  const statuses: number[] = [];
  for (let i = 0; i < 8; i++) statuses.push((await report()).status);
  // A second boundary may fall inside the loop: at least the budget passes and at least one is refused.
  assert.ok(statuses.filter((s) => s === 404).length >= 4, statuses.join());
  assert.ok(statuses.includes(429), statuses.join());
  const refused = await report();
  if (refused.status === 429) assert.match(refused.body.error, /More than 4 push reports per second/);
  // The device API's own budget (1 per second) was not spent by the reports.
  assert.equal((await deviceApi(h, 'GET', '/vapid-public-key')).status, 200);
});

void test('a device not registered again within deviceIdleDays is deleted by the push worker; a current one stays', async (t) => {
  const { h, fake } = await setup(t, { options: pushOptions({ deviceIdleDays: 30 }), backends: { push: { pruneEveryMs: 50 } } });
  const push = h.server.push;
  assert.ok(push);
  const current = await registerDevice(h, fake, ['news']);
  // A device last registered 31 days ago (written to the store as such; the API stamps the present).
  const sub = fake.createSubscription();
  const stale = { id: 'web-stale', endpoint: sub.endpoint, p256dh: sub.keys.p256dh, auth: sub.keys.auth, keyId: (await push.store.vapidKeys(h.app.id))[0]?.id ?? '', now: Date.now() - 31 * 86_400_000, interests: ['news'] };
  await push.store.registerDevice(h.app.id, stale);
  await waitFor(async () => (await push.store.device(h.app.id, 'web-stale')) === null, 5000, 'the stale device to be pruned');
  assert.equal((await push.store.device(h.app.id, current.deviceId))?.id, current.deviceId);
  assert.deepEqual(await push.store.devicesForInterests(h.app.id, ['news']), [current.deviceId]);
  assert.equal((await deviceApi(h, 'GET', '/devices/web-stale/interests')).status, 404);
});
