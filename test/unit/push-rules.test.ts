import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HeraldError } from '../../server/errors';
import { loadOptions, ConfigError } from '../../server/options/load-options';
import { configuredKeyId, pushHostAllowed, resolvePushConfig, PushConfigError } from '../../server/push/push-config';
import { MAX_INTERESTS_PER_DEVICE } from '../../sdk/protocol';
import { buildPayload, parseDeliverAt, parseInterests, parseSubscription, parseWebPush } from '../../server/push/push-rules';
import { signPushToken, verifyPushToken } from '../../server/push/push-token';
import { generateVapidKeys } from '../../server/push/vapid';
import { defaultEncryptThreads } from '../../server/push/encrypt-pool';
import { createECDH, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const status = (code: number) => (err: unknown) => err instanceof HeraldError && err.status === code;

void test('interest lists are deduplicated and bounded', () => {
  assert.deepEqual(parseInterests(['a', 'b', 'a'], 100), ['a', 'b']);
  assert.throws(() => parseInterests([], 100, 1), status(400));
  assert.throws(() => parseInterests(Array.from({ length: MAX_INTERESTS_PER_DEVICE + 1 }, (_v, i) => `i${i}`), MAX_INTERESTS_PER_DEVICE), /At most 5000/);
  assert.throws(() => parseInterests('news', 100), /array/);
  assert.throws(() => parseInterests(['ok', 'not ok'], 100), /may only contain/);
});

void test('a subscription needs an endpoint the guard accepts and real P-256/auth keys', () => {
  const p256dh = createECDH('prime256v1').generateKeys().toString('base64url');
  const auth = randomBytes(16).toString('base64url');
  const ok = (endpoint: string) => assert.ok(endpoint.startsWith('https://'), 'refused');
  assert.deepEqual(parseSubscription({ endpoint: 'https://fcm.googleapis.com/fcm/send/abc', keys: { p256dh, auth } }, ok), {
    endpoint: 'https://fcm.googleapis.com/fcm/send/abc',
    p256dh,
    auth,
  });
  assert.throws(() => parseSubscription({ endpoint: 'https://x', keys: { p256dh, auth: randomBytes(8).toString('base64url') } }, ok), /16 bytes/);
  assert.throws(() => parseSubscription({ endpoint: 'https://x', keys: { p256dh: 'AAAA', auth } }, ok), /P-256/);
  assert.throws(() => parseSubscription({ endpoint: 'https://x' }, ok), /keys/);
  assert.throws(() => parseSubscription('https://x', ok), /PushSubscription/);
});

void test('the SSRF guard refuses local names and IP literals, and keeps to the allowed hosts', () => {
  const allowed = ['fcm.googleapis.com', '*.push.apple.com'];
  assert.equal(pushHostAllowed('fcm.googleapis.com', allowed), true);
  assert.equal(pushHostAllowed('web.push.apple.com', allowed), true);
  assert.equal(pushHostAllowed('push.apple.com.evil.example', allowed), false);
  assert.equal(pushHostAllowed('evil.example.com', allowed), false);
  assert.equal(pushHostAllowed('evil.example.com', []), true);
  for (const h of ['localhost', 'redis', '127.0.0.1', '10.0.0.5', '[::1]', '169.254.169.254', 'metadata.google.internal', 'printer.local']) {
    assert.equal(pushHostAllowed(h, []), false, h);
  }
});

void test('the web block: Beams spellings accepted, unknown fields and a reserved data.pusher refused', () => {
  const web = parseWebPush({ notification: { title: 'Hi', hide_if_focused: true, deep_link: 'https://app.example.com/x' }, data: { n: 1 }, time_to_live: 60, urgency: 'high', topic: 'chat_1' }, 300);
  assert.deepEqual(web, {
    notification: { title: 'Hi', deep_link: 'https://app.example.com/x', hide_notification_if_site_has_focus: true },
    data: { n: 1 },
    ttl: 60,
    urgency: 'high',
    topic: 'chat_1',
  });
  assert.equal(parseWebPush({}, 300).ttl, 300);
  assert.throws(() => parseWebPush({ notification: { titel: 'x' } }, 0), /titel/);
  assert.throws(() => parseWebPush({ data: { pusher: 1 } }, 0), /pusher/);
  assert.throws(() => parseWebPush({ ttl: 2_419_201 }, 0), /ttl/);
  assert.throws(() => parseWebPush({ urgency: 'urgent' }, 0), /urgency/);
  assert.throws(() => parseWebPush({ topic: 'has space' }, 0), /topic/);
  assert.throws(() => parseWebPush({ notification: { deep_link: 'javascript:alert(1)' } }, 0), /deep_link/);
});

void test('the payload carries data.pusher and is refused with 413 past 3993 bytes', () => {
  const payload = JSON.parse(buildPayload(parseWebPush({ notification: { title: 'T' }, data: { a: 1 } }, 0), { publishId: 'pubid-1', channel: 'news', event: 'e' })) as Record<string, unknown>;
  assert.deepEqual(payload, {
    notification: { title: 'T' },
    data: { a: 1, pusher: { publishId: 'pubid-1', hasDisplayableContent: true, hasData: true, channel: 'news', event: 'e' } },
  });
  const overhead = buildPayload(parseWebPush({ data: { x: '' } }, 0), { publishId: 'pubid-1' }).length;
  const fits = parseWebPush({ data: { x: 'a'.repeat(3993 - overhead) } }, 0);
  assert.equal(Buffer.byteLength(buildPayload(fits, { publishId: 'pubid-1' })), 3993);
  const over = parseWebPush({ data: { x: 'a'.repeat(3994 - overhead) } }, 0);
  assert.throws(() => buildPayload(over, { publishId: 'pubid-1' }), (err: unknown) => status(413)(err) && /3994 bytes.*3993/.test((err as Error).message));
});

void test('deliverAt takes RFC 3339 or Unix seconds, at most 28 days ahead', () => {
  const now = Date.parse('2025-01-01T00:00:00Z');
  assert.equal(parseDeliverAt(undefined, now), null);
  assert.equal(parseDeliverAt('2025-01-01T00:00:05Z', now), now + 5000);
  assert.equal(parseDeliverAt(now / 1000 + 2, now), now + 2000);
  assert.throws(() => parseDeliverAt('tomorrow', now), /RFC 3339/);
  assert.throws(() => parseDeliverAt('2025-03-01T00:00:00Z', now), /28 days/);
});

void test('user tokens: HS256 with the app secret, sub = user, exp within 24 h', () => {
  const now = 1_700_000_000;
  const token = signPushToken('s3cret-s3cret', 'alice', { nowSeconds: now });
  assert.deepEqual(verifyPushToken('s3cret-s3cret', token, now), { ok: true, userId: 'alice' });
  assert.match((verifyPushToken('other-secret', token, now) as { problem: string }).problem, /signature/);
  assert.match((verifyPushToken('s3cret-s3cret', token, now + 25 * 3600) as { problem: string }).problem, /expired/);
  const long = signPushToken('s3cret-s3cret', 'alice', { nowSeconds: now, lifetimeSeconds: 48 * 3600 });
  assert.match((verifyPushToken('s3cret-s3cret', long, now) as { problem: string }).problem, /24 h/);
  const [, claims] = token.split('.');
  const none = `${Buffer.from('{"alg":"none"}').toString('base64url')}.${claims}.`;
  assert.match((verifyPushToken('s3cret-s3cret', none, now) as { problem: string }).problem, /HS256/);
  assert.equal(verifyPushToken('s3cret-s3cret', 'garbage', now).ok, false);
});

const app = (push?: Record<string, unknown>) => ({ id: '1', key: 'k', secret: 'secret-1234', push }) as never;

void test('push config: on with a top-level block or an app block, needs a real subject, names the field', () => {
  assert.equal(resolvePushConfig({ apps: [app()] }), null);
  const on = resolvePushConfig({ push: { subject: 'mailto:ops@example.com' }, apps: [app(), app({ enabled: false })] });
  assert.equal(on?.apps.size, 1);
  assert.throws(() => resolvePushConfig({ push: {}, apps: [app()] }), (e: unknown) => e instanceof PushConfigError && /config\.apps\.0\.push\.vapidSubject: .*required/.test(e.message));
  assert.throws(() => resolvePushConfig({ push: { subject: 'mailto:me@mail.localhost' }, apps: [app()] }), /config\.push\.subject: .*localhost/);
  assert.throws(() => resolvePushConfig({ apps: [app({ vapidSubject: 'ops@example.com' })] }), /config\.apps\.0\.push\.vapidSubject: .*mailto/);
  const keys = generateVapidKeys();
  const withKeys = resolvePushConfig({ apps: [app({ vapidSubject: 'https://example.com/contact', vapidPublicKey: keys.publicKey, vapidPrivateKey: keys.privateKey })] });
  assert.equal(withKeys?.apps.get('1')?.configuredKey?.id, configuredKeyId(keys.publicKey));
  assert.throws(() => resolvePushConfig({ apps: [app({ vapidSubject: 'https://example.com', vapidPublicKey: keys.publicKey })] }), /together/);
  const other = generateVapidKeys();
  assert.throws(() => resolvePushConfig({ apps: [app({ vapidSubject: 'https://example.com', vapidPublicKey: other.publicKey, vapidPrivateKey: keys.privateKey })] }), /does not match/);
});

void test('loadOptions stops start-up on a bad push subject, naming the field; HERALD_PUSH_SUBJECT enables push', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'herald-push-opts-'));
  try {
    const env = { HERALD_DATA_DIR: dataDir, HERALD_PUSH_SUBJECT: 'mailto:me@localhost' };
    assert.throws(() => loadOptions(env), (e: unknown) => e instanceof ConfigError && /config\.push\.subject/.test(e.message));
    const { options } = loadOptions({ HERALD_DATA_DIR: dataDir, HERALD_PUSH_SUBJECT: 'mailto:ops@example.com' });
    assert.equal(options.push?.subject, 'mailto:ops@example.com');
    assert.equal(options.push?.ttlSeconds, 86400);
    assert.equal(resolvePushConfig(options)?.apps.size, 1);
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
});

void test('push.encryptThreads: unset, one per CPU beyond the first; 0 keeps encryption on the event loop; a negative count stops start-up', () => {
  assert.equal(resolvePushConfig({ push: { subject: 'mailto:ops@example.com' }, apps: [app()] })?.encryptThreads, defaultEncryptThreads());
  assert.equal(resolvePushConfig({ push: { subject: 'mailto:ops@example.com', encryptThreads: 0 }, apps: [app()] })?.encryptThreads, 0);
  assert.equal(resolvePushConfig({ push: { subject: 'mailto:ops@example.com', encryptThreads: 3 }, apps: [app()] })?.encryptThreads, 3);
  const dataDir = mkdtempSync(join(tmpdir(), 'herald-push-threads-'));
  try {
    const file = join(dataDir, 'herald.json');
    writeFileSync(file, JSON.stringify({ push: { subject: 'mailto:ops@example.com', encryptThreads: -1 } }));
    assert.throws(() => loadOptions({ HERALD_DATA_DIR: dataDir, HERALD_CONFIG: file }), (e: unknown) => e instanceof ConfigError && /config\.push\.encryptThreads must be >= 0/.test(e.message));
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
});
