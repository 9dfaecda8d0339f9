import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createPublicKey, verify } from 'node:crypto';
import {
  VAPID_JWT_TTL_SECONDS,
  VapidHeaderCache,
  VapidKey,
  generateVapidKeys,
  vapidSubjectProblem,
} from '../../server/push/vapid';

const SUBJECT = 'mailto:ops@herald.example.com';

function parseHeader(value: string): { token: string; k: string; header: Record<string, unknown>; claims: Record<string, unknown> } {
  const match = /^vapid t=([^,]+), k=(.+)$/.exec(value);
  assert.ok(match, `not a vapid header: ${value}`);
  const token = match[1]!;
  const [h, c] = token.split('.') as [string, string, string];
  return {
    token,
    k: match[2]!,
    header: JSON.parse(Buffer.from(h, 'base64url').toString()) as Record<string, unknown>,
    claims: JSON.parse(Buffer.from(c, 'base64url').toString()) as Record<string, unknown>,
  };
}

function verifies(token: string, publicKey: string): boolean {
  const [h, c, s] = token.split('.') as [string, string, string];
  const pub = Buffer.from(publicKey, 'base64url');
  const key = createPublicKey({
    format: 'jwk',
    key: { kty: 'EC', crv: 'P-256', x: pub.subarray(1, 33).toString('base64url'), y: pub.subarray(33).toString('base64url') },
  });
  return verify('sha256', Buffer.from(`${h}.${c}`), { key, dsaEncoding: 'ieee-p1363' }, Buffer.from(s, 'base64url'));
}

void test('generated keys are a 65-byte point and a 32-byte scalar that form a pair', () => {
  const pair = generateVapidKeys();
  assert.equal(Buffer.from(pair.publicKey, 'base64url').length, 65);
  assert.equal(Buffer.from(pair.publicKey, 'base64url')[0], 4);
  assert.equal(Buffer.from(pair.privateKey, 'base64url').length, 32);
  assert.doesNotThrow(() => new VapidKey({ id: 'k1', subject: SUBJECT, ...pair }));
  const other = generateVapidKeys();
  assert.throws(() => new VapidKey({ id: 'k1', subject: SUBJECT, publicKey: other.publicKey, privateKey: pair.privateKey }), /does not match/);
});

void test('the Authorization header carries an ES256 JWT with aud, exp 12 h ahead and sub, verifiable with k', () => {
  const now = Date.UTC(2026, 0, 1);
  const key = new VapidKey({ id: 'k1', subject: SUBJECT, ...generateVapidKeys() });
  const cache = new VapidHeaderCache({ now: () => now });
  const { token, k, header, claims } = parseHeader(cache.authorization(key, 'https://fcm.googleapis.com'));
  assert.equal(k, key.publicKey);
  assert.deepEqual(header, { typ: 'JWT', alg: 'ES256' });
  assert.deepEqual(claims, { aud: 'https://fcm.googleapis.com', exp: now / 1000 + VAPID_JWT_TTL_SECONDS, sub: SUBJECT });
  assert.ok((claims['exp'] as number) - now / 1000 <= 24 * 3600);
  assert.equal(Buffer.from(token.split('.')[2]!, 'base64url').length, 64, 'raw r||s signature, not DER');
  assert.ok(verifies(token, key.publicKey));
  assert.ok(!verifies(token, generateVapidKeys().publicKey));
});

void test('the header is reused per (key, origin) and re-signed one hour before expiry', () => {
  let now = Date.UTC(2026, 0, 1);
  const a = new VapidKey({ id: 'a', subject: SUBJECT, ...generateVapidKeys() });
  const b = new VapidKey({ id: 'b', subject: 'https://herald.example.com/contact', ...generateVapidKeys() });
  const cache = new VapidHeaderCache({ now: () => now });

  const first = cache.authorization(a, 'https://fcm.googleapis.com');
  assert.equal(cache.authorization(a, 'https://fcm.googleapis.com'), first, 'same key and origin reuse the header');
  assert.notEqual(cache.authorization(a, 'https://updates.push.services.mozilla.com'), first, 'aud is per origin');
  assert.notEqual(cache.authorization(b, 'https://fcm.googleapis.com'), first, 'each key signs its own');
  assert.equal(cache.size, 3);

  now += (VAPID_JWT_TTL_SECONDS - 3600) * 1000 - 1;
  assert.equal(cache.authorization(a, 'https://fcm.googleapis.com'), first, 'still reused just before the refresh point');
  now += 1;
  const refreshed = cache.authorization(a, 'https://fcm.googleapis.com');
  assert.notEqual(refreshed, first);
  assert.equal(parseHeader(refreshed).claims['exp'], Math.floor(now / 1000) + VAPID_JWT_TTL_SECONDS);

  cache.forgetKey('a');
  assert.equal(cache.size, 1);
});

void test('the cache is bounded and refuses lifetimes over 24 h', () => {
  const key = new VapidKey({ id: 'a', subject: SUBJECT, ...generateVapidKeys() });
  const cache = new VapidHeaderCache({ maxEntries: 2 });
  for (const host of ['a', 'b', 'c']) cache.authorization(key, `https://${host}.notify.windows.com`);
  assert.equal(cache.size, 2);
  assert.throws(() => new VapidHeaderCache({ ttlSeconds: 24 * 3600 + 1 }), RangeError);
  assert.throws(() => new VapidHeaderCache({ ttlSeconds: 600, refreshBeforeSeconds: 600 }), RangeError);
});

void test('subject validation accepts real mailto:/https: contacts and refuses what Apple rejects', () => {
  for (const ok of ['mailto:ops@example.com', 'mailto:first.last+push@mail.example.co.uk', 'https://example.com', 'https://herald.example.com/contact']) {
    assert.equal(vapidSubjectProblem(ok), null, ok);
  }
  for (const bad of [
    'mailto: ops@example.com',
    'mailto:x',
    'mailto:ops@localhost',
    'mailto:ops@app.localhost',
    'mailto:ops@example',
    'mailto:Ops <ops@example.com>',
    'ops@example.com',
    'https://localhost',
    'https://localhost:8443/contact',
    'https://127.0.0.1',
    'http://example.com',
    'https://',
    '',
  ]) {
    assert.notEqual(vapidSubjectProblem(bad), null, bad);
  }
  assert.throws(() => new VapidKey({ id: 'k', subject: 'mailto:x@localhost', ...generateVapidKeys() }), TypeError);
});
