import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createECDH } from 'node:crypto';
import { HeraldError } from '../../server/errors';
import {
  ENCRYPTION_OVERHEAD_BYTES,
  MAX_PLAINTEXT_BYTES,
  checkPayloadSize,
  encryptPayload,
} from '../../server/push/encrypt-payload';

import { ece, pushBrowser as browser } from '../helpers/push-browser';

/** RFC 8291 Appendix A, every value verbatim from the RFC (base64url). */
const RFC8291 = {
  plaintext: 'When I grow up, I want to be a watermelon',
  asPrivate: 'yfWPiYE-n46HLnH0KqZOF1fJJU3MYrct3AELtAQ-oRw',
  asPublic: 'BP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A8',
  uaPrivate: 'q1dXpw3UpT5VOmu_cf_v6ih07Aems3njxI-JWgLcM94',
  uaPublic: 'BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4',
  salt: 'DGv6ra1nlYgDCS1FRnbzlw',
  authSecret: 'BTBZMqHH6r4Tts7J_aSIgg',
  body:
    'DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A_yl95bQpu6cVPT' +
    'pK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQexSgSxsj_Qulcy4a-fN',
};

void test('RFC 8291 Appendix A body decrypts to the watermelon text (http_ece as the user agent)', () => {
  const body = Buffer.from(RFC8291.body, 'base64url');
  assert.equal(body.length, 144);
  const ua = createECDH('prime256v1');
  ua.setPrivateKey(Buffer.from(RFC8291.uaPrivate, 'base64url'));
  assert.equal(ua.getPublicKey().toString('base64url'), RFC8291.uaPublic);
  const plaintext = ece.decrypt(body, { version: 'aes128gcm', privateKey: ua, authSecret: Buffer.from(RFC8291.authSecret, 'base64url') });
  assert.equal(plaintext.toString('utf8'), RFC8291.plaintext);
});

void test('RFC 8291 Appendix A: with the RFC sender key and salt our encryption is byte-identical', () => {
  const body = encryptPayload(
    RFC8291.plaintext,
    { p256dh: RFC8291.uaPublic, auth: RFC8291.authSecret },
    { salt: Buffer.from(RFC8291.salt, 'base64url'), ephemeralPrivateKey: Buffer.from(RFC8291.asPrivate, 'base64url') },
  );
  assert.equal(body.toString('base64url'), RFC8291.body);
  assert.equal(body.subarray(21, 86).toString('base64url'), RFC8291.asPublic);
});

void test('round trip: our encryption decrypts with http_ece, with a fresh key and salt every time', () => {
  const { ecdh, auth, keys } = browser();
  const text = JSON.stringify({ notification: { title: 'héllo ✓', body: 'x'.repeat(200) } });
  const a = encryptPayload(text, keys);
  const b = encryptPayload(Buffer.from(text), keys);
  assert.equal(ece.decrypt(a, { version: 'aes128gcm', privateKey: ecdh, authSecret: auth }).toString('utf8'), text);
  assert.equal(ece.decrypt(b, { version: 'aes128gcm', privateKey: ecdh, authSecret: auth }).toString('utf8'), text);
  assert.notDeepEqual(a.subarray(0, 16), b.subarray(0, 16), 'salt must differ per message');
  assert.notDeepEqual(a.subarray(21, 86), b.subarray(21, 86), 'ephemeral key must differ per message');
  assert.equal(a.length, Buffer.byteLength(text) + ENCRYPTION_OVERHEAD_BYTES);
  assert.equal(a.readUInt32BE(16), 4096);
  assert.equal(a[20], 65);
});

void test('3993 bytes of plaintext make a 4096-byte body; 3994 are refused with 413', () => {
  const { ecdh, auth, keys } = browser();
  const max = Buffer.alloc(MAX_PLAINTEXT_BYTES, 0x61);
  const body = encryptPayload(max, keys);
  assert.equal(body.length, 4096);
  assert.deepEqual(ece.decrypt(body, { version: 'aes128gcm', privateKey: ecdh, authSecret: auth }), max);

  assert.deepEqual(checkPayloadSize(max), { ok: true, bytes: 3993 });
  assert.deepEqual(checkPayloadSize(Buffer.alloc(3994)), { ok: false, bytes: 3994, max: 3993 });
  // UTF-8 bytes count, not characters: 1997 two-byte characters are 3994 bytes.
  assert.equal(checkPayloadSize('é'.repeat(1997)).ok, false);
  assert.throws(
    () => encryptPayload(Buffer.alloc(3994), keys),
    (err: unknown) => err instanceof HeraldError && err.status === 413 && /3994/.test(err.message),
  );
});

void test('malformed subscription keys are refused before any crypto', () => {
  const { keys } = browser();
  const bad = (p256dh: string, auth: string): unknown => encryptPayload('x', { p256dh, auth });
  const is400 = (err: unknown): boolean => err instanceof HeraldError && err.status === 400;
  assert.throws(() => bad(keys.p256dh.slice(0, 40), keys.auth), is400);
  assert.throws(() => bad(keys.p256dh, keys.auth.slice(0, 10)), is400);
  // 65 bytes with the uncompressed-point prefix but not on the curve: ECDH itself refuses it.
  const offCurve = Buffer.alloc(65, 1);
  offCurve[0] = 4;
  assert.throws(() => bad(offCurve.toString('base64url'), keys.auth));
});

void test('every message draws its own sender key and salt: neither repeats over many messages, after a fixed-key one, or after a refused key', () => {
  const { ecdh, auth, keys } = browser();
  const seen = new Set<string>();
  const salts = new Set<string>();
  const keyOf = (body: Buffer): string => body.subarray(21, 86).toString('base64url');
  // A fixed key (the RFC's) in between must not stay behind for the messages after it.
  encryptPayload('x', { p256dh: RFC8291.uaPublic, auth: RFC8291.authSecret }, { ephemeralPrivateKey: Buffer.from(RFC8291.asPrivate, 'base64url') });
  seen.add(RFC8291.asPublic);
  const offCurve = Buffer.alloc(65, 1);
  offCurve[0] = 4;
  // 600 messages: salts are drawn 256 to a pool, so this crosses two refills.
  for (let i = 0; i < 600; i++) {
    if (i === 150) assert.throws(() => encryptPayload('x', { p256dh: offCurve, auth: keys.auth }));
    const body = encryptPayload(`message ${i}`, keys);
    const key = keyOf(body);
    assert.ok(!seen.has(key), `sender key of message ${i} was used before`);
    seen.add(key);
    const salt = body.subarray(0, 16).toString('hex');
    assert.ok(!salts.has(salt), `salt of message ${i} was used before`);
    salts.add(salt);
    // The key in the header is the one the body was encrypted with: the browser can decrypt it.
    assert.equal(ece.decrypt(body, { version: 'aes128gcm', privateKey: ecdh, authSecret: auth }).toString('utf8'), `message ${i}`);
  }
});
