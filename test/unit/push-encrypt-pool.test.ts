import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HeraldError } from '../../server/errors';
import { EncryptPool, EncryptThreadError, defaultEncryptThreads } from '../../server/push/encrypt-pool';
import { ece, pushBrowser as browser, type PushBrowser } from '../helpers/push-browser';

const decrypt = (b: PushBrowser, body: Buffer): string =>
  ece.decrypt(body, { version: 'aes128gcm', privateKey: b.ecdh, authSecret: b.auth }).toString('utf8');

void test('the default is one thread per CPU beyond the first, at most 4', () => {
  assert.deepEqual([1, 2, 3, 5, 16].map((n) => defaultEncryptThreads(n)), [0, 1, 2, 4, 4]);
});

void test('messages encrypted on two threads decrypt, each with its own sender key, whatever form the input takes', async (t) => {
  const pool = new EncryptPool(2);
  t.after(() => pool.close());
  assert.equal(pool.size, 2);
  const b = browser();
  // Keys as text (as stored), as a view into Node's shared buffer pool, and as a Uint8Array of their own.
  const forms = [
    b.keys,
    { p256dh: Buffer.from(b.keys.p256dh, 'base64url'), auth: Buffer.from(b.keys.auth, 'base64url') },
    { p256dh: new Uint8Array(Buffer.from(b.keys.p256dh, 'base64url')), auth: new Uint8Array(b.auth) },
  ];
  const texts = Array.from({ length: 120 }, (_, i) => `message ${i} héllo`);
  const bodies = await Promise.all(texts.map((text, i) => pool.encrypt(i % 2 === 0 ? text : Buffer.from(text), forms[i % 3])));
  assert.deepEqual(bodies.map((body) => decrypt(b, body)), texts);
  assert.equal(new Set(bodies.map((body) => body.subarray(21, 86).toString('hex'))).size, texts.length, 'a sender key was used twice');
});

void test("the threads refuse what encryptPayload refuses, with its errors; the pool goes on", async (t) => {
  const pool = new EncryptPool(1);
  t.after(() => pool.close());
  const b = browser();
  await assert.rejects(pool.encrypt(Buffer.alloc(3994), b.keys), (err: unknown) => err instanceof HeraldError && err.status === 413 && /3994/.test(err.message));
  await assert.rejects(pool.encrypt('x', { p256dh: b.keys.p256dh.slice(0, 40), auth: b.keys.auth }), (err: unknown) => err instanceof HeraldError && err.status === 400);
  const offCurve = Buffer.alloc(65, 1);
  offCurve[0] = 4;
  await assert.rejects(pool.encrypt('x', { p256dh: offCurve, auth: b.keys.auth }), (err: unknown) => err instanceof Error && !(err instanceof EncryptThreadError) && !(err instanceof HeraldError));
  assert.equal(decrypt(b, await pool.encrypt('still here', b.keys)), 'still here');
});

void test('a thread that ends mid-batch fails only its own messages, as EncryptThreadError, and is replaced', async (t) => {
  const exits: Error[] = [];
  const pool = new EncryptPool(2, { onThreadExit: (err) => exits.push(err) });
  t.after(() => pool.close());
  const b = browser();
  const sends = Array.from({ length: 200 }, (_, i) => pool.encrypt(`m${i}`, b.keys).then((body) => decrypt(b, body), (err: unknown) => err));
  void pool.workers[0].terminate();
  const results = await Promise.all(sends);
  const lost = results.filter((r) => r instanceof Error);
  assert.ok(lost.length > 0, 'the ended thread had messages on it');
  assert.ok(lost.every((r) => r instanceof EncryptThreadError), String(lost.find((r) => !(r instanceof EncryptThreadError))));
  assert.ok(results.some((r) => typeof r === 'string'), 'the other thread answered');
  assert.equal(exits.length, 1);
  assert.equal(pool.size, 2, 'the ended thread was replaced');
  assert.equal(decrypt(b, await pool.encrypt('after', b.keys)), 'after');
});

void test('a thread script that cannot start is tried three times, then the event loop encrypts; no message is left waiting', { timeout: 20_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'herald-encrypt-'));
  const script = join(dir, 'broken-worker.js');
  writeFileSync(script, "throw new Error('cannot start');\n");
  const exits: { err: Error; fellBack: boolean }[] = [];
  const pool = new EncryptPool(2, { script, onThreadExit: (err, fellBack) => exits.push({ err, fellBack }) });
  t.after(async () => {
    await pool.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const b = browser();
  // Messages handed to a thread that dies are lost to it; the sender turns that into a retry.
  // Several at once, so that both threads hold messages when the pool gives up on them.
  for (let i = 0; i < 50 && pool.size > 0; i++) {
    const results = await Promise.all(Array.from({ length: 4 }, () => pool.encrypt('x', b.keys).then(() => 'ok', (err: unknown) => err)));
    for (const r of results) assert.ok(r === 'ok' || r instanceof EncryptThreadError, String(r));
  }
  assert.equal(pool.size, 0);
  assert.deepEqual(exits.map((e) => e.fellBack), [false, false, true]);
  assert.match(exits[0].err.message, /cannot start/);
  assert.equal(decrypt(b, await pool.encrypt('on the event loop', b.keys)), 'on the event loop');
});

void test('close fails the messages still on the threads and refuses new ones', async (t) => {
  const pool = new EncryptPool(1);
  t.after(() => pool.close());
  const b = browser();
  const pending = Array.from({ length: 100 }, () => pool.encrypt('x', b.keys).then(() => 'ok', (err: unknown) => err));
  await pool.close();
  const results = await Promise.all(pending);
  assert.ok(results.every((r) => r === 'ok' || r instanceof EncryptThreadError));
  assert.ok(results.some((r) => r instanceof EncryptThreadError), 'some were still on the thread');
  await assert.rejects(pool.encrypt('x', b.keys), EncryptThreadError);
});
