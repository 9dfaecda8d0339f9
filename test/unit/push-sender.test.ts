import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { HeraldError } from '../../server/errors';
import {
  PushSender,
  classifyResponse,
  parseRetryAfter,
  retryDelayMs,
  type PushSenderOptions,
} from '../../server/push/PushSender';
import { VapidHeaderCache, VapidKey, generateVapidKeys } from '../../server/push/vapid';
import { encryptPayload } from '../../server/push/encrypt-payload';
import { EncryptPool } from '../../server/push/encrypt-pool';
import { FakePushService } from '../helpers/FakePushService';

const vapidKey = new VapidKey({ id: 'test', subject: 'mailto:ops@herald.example.com', ...generateVapidKeys() });

async function setup(t: TestContext, options: PushSenderOptions = {}): Promise<{ fake: FakePushService; sender: PushSender }> {
  const fake = await FakePushService.start();
  const sender = new PushSender({ allowInsecureEndpoints: true, ...options });
  t.after(async () => {
    sender.close();
    await fake.close();
  });
  return { fake, sender };
}

const is = (status: number) => (err: unknown): boolean => err instanceof HeraldError && err.status === status;

void test('201: the payload arrives decryptable with every header the push service checks', async (t) => {
  const { fake, sender } = await setup(t);
  const sub = fake.createSubscription(vapidKey.publicKey);
  const payload = JSON.stringify({ notification: { title: 'New message', body: 'héllo' }, data: { channel: 'chat' } });

  const outcome = await sender.send(sub, payload, { ttl: 300, urgency: 'high', topic: 'chat-room_42', vapidKey });

  assert.deepEqual(outcome, { kind: 'sent', status: 201, ttl: 300 });
  const [message] = fake.messagesFor(sub.id);
  assert.ok(message, `not received; rejections: ${JSON.stringify(fake.rejections)}`);
  assert.equal(message.payload, payload);
  assert.equal(message.bodyBytes, Buffer.byteLength(payload) + 103);
  assert.equal(message.headers['ttl'], '300');
  assert.equal(message.headers['content-encoding'], 'aes128gcm');
  assert.equal(message.headers['content-type'], 'application/octet-stream');
  assert.equal(message.headers['urgency'], 'high');
  assert.equal(message.headers['topic'], 'chat-room_42');
  assert.equal(message.vapid.k, vapidKey.publicKey);
  assert.equal(message.vapid.claims.aud, fake.origin);
  assert.equal(message.vapid.claims.sub, 'mailto:ops@herald.example.com');
  assert.equal(fake.rejections.length, 0);
});

void test('Urgency and Topic are omitted unless given; a key other than the subscription key gets 403', async (t) => {
  const { fake, sender } = await setup(t);
  const sub = fake.createSubscription();
  assert.equal((await sender.send(sub, 'x', { ttl: 0, vapidKey })).kind, 'sent');
  const [message] = fake.messagesFor(sub.id);
  assert.equal(message?.headers['urgency'], undefined);
  assert.equal(message?.headers['topic'], undefined);
  assert.equal(message?.headers['ttl'], '0');

  const restricted = fake.createSubscription(generateVapidKeys().publicKey);
  assert.deepEqual(await sender.send(restricted, 'x', { ttl: 60, vapidKey }), {
    kind: 'rejected',
    status: 403,
    reason: '{"reason":"k does not match the applicationServerKey"}',
  });
});

void test('the fake refuses expired, over-24 h and wrong-audience tokens like a real service', async (t) => {
  const hour = 3600_000;
  const cases: Array<[string, PushSenderOptions]> = [
    ['JWT expired', { vapidCache: new VapidHeaderCache({ now: () => Date.now() - 13 * hour }) }],
    ['JWT exp is more than 24 h ahead', { vapidCache: new VapidHeaderCache({ now: () => Date.now() + 13 * hour }) }],
  ];
  for (const [reason, options] of cases) {
    const { fake, sender } = await setup(t, options);
    const sub = fake.createSubscription(vapidKey.publicKey);
    assert.deepEqual(await sender.send(sub, 'x', { ttl: 60, vapidKey }), { kind: 'rejected', status: 403, reason: JSON.stringify({ reason }) });
  }

  const { fake } = await setup(t);
  const sub = fake.createSubscription(vapidKey.publicKey);
  const body = encryptPayload('x', sub.keys);
  const post = (headers: http.OutgoingHttpHeaders): Promise<number> =>
    new Promise((resolve, reject) => {
      const req = http.request(sub.endpoint, { method: 'POST', headers }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      req.end(body);
    });
  const without = (name: string): http.OutgoingHttpHeaders => Object.fromEntries(Object.entries(good).filter(([k]) => k !== name));
  const good: http.OutgoingHttpHeaders = {
    TTL: '60',
    'Content-Encoding': 'aes128gcm',
    Authorization: new VapidHeaderCache().authorization(vapidKey, fake.origin),
  };
  assert.equal(await post(good), 201);
  assert.equal(await post(without('TTL')), 400);
  assert.equal(await post({ ...good, TTL: 'soon' }), 400);
  assert.equal(await post({ ...good, 'Content-Encoding': 'aesgcm' }), 400);
  assert.equal(await post(without('Authorization')), 401);
  assert.equal(await post({ ...good, Authorization: new VapidHeaderCache().authorization(vapidKey, 'https://fcm.googleapis.com') }), 403);
  assert.equal(await post({ ...good, Urgency: 'asap' }), 400);
  assert.equal(fake.messages.length, 1);
});

void test('404 and 410 mean the subscription is gone', async (t) => {
  const { fake, sender } = await setup(t);
  const sub = fake.createSubscription(vapidKey.publicKey);
  fake.failNext(sub.id, 404);
  fake.failNext(sub.id, 410);
  assert.deepEqual(await sender.send(sub, 'x', { ttl: 60, vapidKey }), { kind: 'gone', status: 404 });
  assert.deepEqual(await sender.send(sub, 'x', { ttl: 60, vapidKey }), { kind: 'gone', status: 410 });
  fake.expire(sub.id);
  assert.deepEqual(await sender.send(sub, 'x', { ttl: 60, vapidKey }), { kind: 'gone', status: 410 });
});

void test('400, 403 and 413 are rejected without retry, with the service reason', async (t) => {
  const { fake, sender } = await setup(t);
  const sub = fake.createSubscription(vapidKey.publicKey);
  for (const status of [413, 400, 403, 401]) {
    fake.failNext(sub.id, status);
    const outcome = await sender.send(sub, 'x', { ttl: 60, vapidKey });
    assert.deepEqual(outcome, { kind: 'rejected', status, reason: `{"reason":"Scripted ${status}"}` });
  }
});

void test('429 honours Retry-After in seconds and as an HTTP date; without it, backoff', async (t) => {
  const { fake, sender } = await setup(t, { backoff: { random: () => 1 } });
  const sub = fake.createSubscription(vapidKey.publicKey);

  fake.failNext(sub.id, 429, { retryAfter: 7 });
  assert.deepEqual(await sender.send(sub, 'x', { ttl: 60, vapidKey }), { kind: 'retry', afterMs: 7000, status: 429 });

  fake.failNext(sub.id, 429, { retryAfter: new Date(Date.now() + 120_000).toUTCString() });
  const dated = await sender.send(sub, 'x', { ttl: 60, vapidKey });
  assert.equal(dated.kind, 'retry');
  // HTTP dates have one-second resolution.
  assert.ok(dated.kind === 'retry' && dated.afterMs > 118_000 && dated.afterMs <= 120_000, JSON.stringify(dated));

  fake.failNext(sub.id, 429);
  assert.deepEqual(await sender.send(sub, 'x', { ttl: 60, vapidKey, attempt: 3 }), { kind: 'retry', afterMs: 8000, status: 429 });
});

void test('500 is retried with exponential backoff; the next try goes through', async (t) => {
  const { fake, sender } = await setup(t, { backoff: { random: () => 0 } });
  const sub = fake.createSubscription(vapidKey.publicKey);
  fake.failNext(sub.id, 500, { times: 3 });
  const delays: number[] = [];
  for (let attempt = 0; attempt < 3; attempt++) {
    const outcome = await sender.send(sub, 'x', { ttl: 60, vapidKey, attempt });
    assert.equal(outcome.kind, 'retry');
    if (outcome.kind === 'retry') {
      assert.equal(outcome.status, 500);
      delays.push(outcome.afterMs);
    }
  }
  assert.deepEqual(delays, [500, 1000, 2000]);
  assert.equal((await sender.send(sub, 'x', { ttl: 60, vapidKey, attempt: 3 })).kind, 'sent');
});

void test('a push service that never answers hits the deadline and comes back as retry', async (t) => {
  const { fake, sender } = await setup(t, { timeoutMs: 300 });
  const sub = fake.createSubscription(vapidKey.publicKey);
  fake.hangNext(sub.id);
  const started = Date.now();
  const outcome = await sender.send(sub, 'x', { ttl: 60, vapidKey });
  assert.equal(outcome.kind, 'retry');
  assert.ok(outcome.kind === 'retry' && /PUSH_TIMEOUT/.test(outcome.error ?? ''), JSON.stringify(outcome));
  assert.ok(Date.now() - started < 2000);
  assert.equal((await sender.send(sub, 'after timeout', { ttl: 60, vapidKey })).kind, 'sent');
});

void test('the deadline also covers a send still waiting for a pooled connection, which is then never sent', async (t) => {
  // One connection per origin and a service that hangs: the second send waits in the pool, not on the wire.
  const { fake, sender } = await setup(t, { timeoutMs: 300, maxConcurrency: 4, maxSocketsPerOrigin: 1 });
  const sub = fake.createSubscription(vapidKey.publicKey);
  fake.hangNext(sub.id, 1);
  // Both deadlines must pass together: with real timers the hung request's abort can free the connection
  // a moment before the second deadline, and the second send then rightly goes out while it still may.
  t.mock.timers.enable({ apis: ['setTimeout'] });
  const sends = [sender.send(sub, 'hangs', { ttl: 60, vapidKey }), sender.send(sub, 'queued', { ttl: 60, vapidKey })];
  const turns = async (n: number) => {
    for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r));
  };
  const realDeadline = performance.now() + 5000;
  while (fake.requests < 1 && performance.now() < realDeadline) await turns(1);
  assert.equal(fake.requests, 1, 'the first send is on the wire');
  await turns(20);
  assert.equal(fake.requests, 1, 'the second waits for the only connection');
  t.mock.timers.tick(300);
  for (const outcome of await Promise.all(sends)) {
    assert.ok(outcome.kind === 'retry' && /PUSH_TIMEOUT/.test(outcome.error ?? ''), JSON.stringify(outcome));
  }
  // The freed connection would now carry the queued send if its expired deadline did not stop it.
  await turns(50);
  t.mock.timers.reset();
  assert.equal((await sender.send(sub, 'after', { ttl: 60, vapidKey })).kind, 'sent');
  assert.equal(fake.requests, 2, 'the queued send never reached the service');
  assert.deepEqual(fake.messagesFor(sub.id).map((m) => m.payload), ['after']);
});

async function closedPort(): Promise<number> {
  const server = http.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  assert.ok(address && typeof address === 'object');
  await new Promise<void>((resolve, reject) => server.close((err) => (err ? reject(err) : resolve())));
  return address.port;
}

void test('a refused connection comes back as retry with the error code', async (t) => {
  const port = await closedPort();
  const { fake, sender } = await setup(t);
  const sub = { ...fake.createSubscription(), endpoint: `http://127.0.0.1:${port}/push/x` };
  const outcome = await sender.send(sub, 'x', { ttl: 60, vapidKey });
  assert.equal(outcome.kind, 'retry');
  assert.ok(outcome.kind === 'retry' && /ECONNREFUSED/.test(outcome.error ?? ''), JSON.stringify(outcome));
});

void test('a push service that cuts the connection mid-response comes back as retry, and the sender goes on', async (t) => {
  // Headers and part of the body, then the socket is destroyed: the response closes before it ends.
  const cutter = http.createServer((req, res) => {
    req.resume();
    res.writeHead(201, { 'content-length': '100' });
    res.write('partial', () => res.socket?.destroy());
  });
  await new Promise<void>((resolve) => cutter.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => cutter.close(() => resolve())));
  const address = cutter.address();
  assert.ok(address && typeof address === 'object');
  const { fake, sender } = await setup(t, { timeoutMs: 5000 });
  const sub = fake.createSubscription(vapidKey.publicKey);

  const started = Date.now();
  const outcome = await sender.send({ ...sub, endpoint: `http://127.0.0.1:${address.port}/push/x` }, 'x', { ttl: 60, vapidKey });
  assert.equal(outcome.kind, 'retry', JSON.stringify(outcome));
  assert.ok(outcome.kind === 'retry' && outcome.error !== undefined && !/PUSH_TIMEOUT/.test(outcome.error), JSON.stringify(outcome));
  assert.ok(Date.now() - started < 2000, 'settled by the close, not by the deadline');
  assert.equal((await sender.send(sub, 'after the cut', { ttl: 60, vapidKey })).kind, 'sent');
});

void test('waiting sends get their slot in FIFO order, also past the queue compaction point', async (t) => {
  const port = await closedPort();
  const { fake, sender } = await setup(t, { maxConcurrency: 1 });
  const sub = { ...fake.createSubscription(), endpoint: `http://127.0.0.1:${port}/push/x` };
  const order: number[] = [];
  const sends = Array.from({ length: 1100 }, (_, i) => sender.send(sub, 'x', { ttl: 60, vapidKey }).then((o) => {
    order.push(i);
    return o;
  }));
  assert.equal(sender.queued, 1099);
  const outcomes = await Promise.all(sends);
  assert.ok(outcomes.every((o) => o.kind === 'retry'));
  assert.deepEqual(order, Array.from({ length: 1100 }, (_, i) => i));
  assert.equal(sender.queued, 0);
  assert.equal(sender.inFlight, 0);
});

void test('endpoints other than https: are refused before any I/O unless insecure endpoints are allowed', async (t) => {
  const fake = await FakePushService.start();
  const strict = new PushSender({ allowHost: (host) => host !== 'evil.example.com' });
  t.after(async () => {
    strict.close();
    await fake.close();
  });
  const sub = fake.createSubscription();
  const opts = { ttl: 60, vapidKey };
  await assert.rejects(strict.send(sub, 'x', opts), is(400));
  for (const endpoint of ['ftp://push.example.com/x', 'file:///etc/passwd', 'not a url', '', 'https://user:pw@push.example.com/x', 'https://evil.example.com/x']) {
    await assert.rejects(strict.send({ ...sub, endpoint }, 'x', opts), is(400), endpoint);
  }
  assert.equal(fake.requests, 0);
});

void test('invalid TTL, Urgency, Topic, keys or an oversized payload are refused before any I/O', async (t) => {
  const { fake, sender } = await setup(t);
  const sub = fake.createSubscription();
  await assert.rejects(sender.send(sub, 'x', { ttl: -1, vapidKey }), is(400));
  await assert.rejects(sender.send(sub, 'x', { ttl: 1.5, vapidKey }), is(400));
  await assert.rejects(sender.send(sub, 'x', { ttl: 60, vapidKey, attempt: -1 }), is(400));
  await assert.rejects(sender.send(sub, 'x', { ttl: 60, vapidKey, urgency: 'urgent' as 'high' }), is(400));
  await assert.rejects(sender.send(sub, 'x', { ttl: 60, vapidKey, topic: 'a'.repeat(33) }), is(400));
  await assert.rejects(sender.send(sub, 'x', { ttl: 60, vapidKey, topic: 'has space' }), is(400));
  await assert.rejects(sender.send({ ...sub, keys: { ...sub.keys, auth: 'AAAA' } }, 'x', { ttl: 60, vapidKey }), is(400));
  await assert.rejects(sender.send(sub, Buffer.alloc(3994), { ttl: 60, vapidKey }), is(413));
  assert.equal(fake.requests, 0);
  assert.equal((await sender.send(sub, Buffer.alloc(3993, 0x41), { ttl: 60, vapidKey })).kind, 'sent');
  assert.equal(fake.messagesFor(sub.id)[0]?.bodyBytes, 4096);
});

void test('a burst of 200 sends stays under the concurrency cap on pooled keep-alive sockets', async (t) => {
  const cap = 20;
  const { fake, sender } = await setup(t, { maxConcurrency: cap, maxSocketsPerOrigin: cap });
  const subs = Array.from({ length: 50 }, () => fake.createSubscription(vapidKey.publicKey));
  fake.holdResponses();
  const sends = Array.from({ length: 200 }, (_, i) => sender.send(subs[i % subs.length]!, `message ${i}`, { ttl: 60, vapidKey }));
  assert.equal(sender.inFlight, cap);
  assert.equal(sender.queued, 200 - cap);

  // Each round: the fake holds every answer until exactly `cap` requests are waiting at it, then lets them go.
  for (let round = 0; round < 200 / cap; round++) {
    await fake.waitForHeld(cap);
    assert.equal(fake.inFlight, cap);
    assert.equal(sender.queued, 200 - cap * (round + 1));
    assert.equal(fake.releaseHeld(), cap);
  }

  const outcomes = await Promise.all(sends);
  assert.ok(outcomes.every((o) => o.kind === 'sent'), JSON.stringify(outcomes.find((o) => o.kind !== 'sent')));
  assert.equal(fake.messages.length, 200);
  assert.equal(fake.maxInFlight, cap);
  assert.ok(fake.connections <= cap, `${fake.connections} connections for one origin`);
  assert.equal(sender.inFlight, 0);
  assert.deepEqual(
    new Set(fake.messages.map((m) => m.payload)),
    new Set(Array.from({ length: 200 }, (_, i) => `message ${i}`)),
  );
});

void test('close() turns in-flight and waiting sends into retries and refuses new ones', async (t) => {
  const { fake, sender } = await setup(t, { maxConcurrency: 1 });
  const sub = fake.createSubscription(vapidKey.publicKey);
  fake.holdResponses();
  const inFlight = sender.send(sub, 'a', { ttl: 60, vapidKey });
  const waiting = sender.send(sub, 'b', { ttl: 60, vapidKey });
  await fake.waitForHeld(1);
  sender.close();
  const [first, second] = await Promise.all([inFlight, waiting]);
  assert.equal(first.kind, 'retry');
  assert.deepEqual(second.kind === 'retry' && second.error, 'PushSender is closed');
  await assert.rejects(sender.send(sub, 'c', { ttl: 60, vapidKey }), /closed/);
  assert.equal(fake.messages.length, 0);
});

void test('with encryption threads, every payload arrives decryptable; a thread that ends turns its sends into retries', async (t) => {
  const pool = new EncryptPool(2);
  const { fake, sender } = await setup(t, { encryption: pool, maxConcurrency: 64 });
  assert.equal(sender.encryptThreads, 2);
  const subs = Array.from({ length: 4 }, () => fake.createSubscription(vapidKey.publicKey));
  const first = await Promise.all(Array.from({ length: 100 }, (_, i) => sender.send(subs[i % 4], `m${i}`, { ttl: 60, vapidKey })));
  assert.deepEqual(first.map((o) => o.kind), Array<string>(100).fill('sent'));
  assert.deepEqual(fake.messages.map((m) => m.payload).sort(), Array.from({ length: 100 }, (_, i) => `m${i}`).sort());
  assert.equal(fake.rejections.length, 0);

  const second = Array.from({ length: 100 }, (_, i) => sender.send(subs[i % 4], `n${i}`, { ttl: 60, vapidKey, attempt: 2 }));
  void pool.workers[0].terminate();
  const outcomes = await Promise.all(second);
  const retried = outcomes.filter((o) => o.kind === 'retry');
  assert.ok(retried.length > 0, 'the ended thread had sends on it');
  for (const o of retried) assert.match(o.kind === 'retry' ? (o.error ?? '') : '', /encryption thread ended/);
  assert.equal(outcomes.filter((o) => o.kind === 'sent').length + retried.length, 100);
  assert.equal((await sender.send(subs[0], 'after', { ttl: 60, vapidKey })).kind, 'sent');
});

void test('waitFor resolves on arrival, not by polling', async (t) => {
  const { fake, sender } = await setup(t);
  const sub = fake.createSubscription(vapidKey.publicKey);
  const arrived = fake.waitFor(3, 2000);
  for (let i = 0; i < 3; i++) assert.equal((await sender.send(sub, `m${i}`, { ttl: 60, vapidKey })).kind, 'sent');
  assert.deepEqual((await arrived).map((m) => m.payload), ['m0', 'm1', 'm2']);
});

void test('classifyResponse maps the push.md §2.5 table', () => {
  const backoff = { random: () => 0.5 };
  assert.deepEqual(classifyResponse(201, { ttl: '60' }, 0), { kind: 'sent', status: 201, ttl: 60 });
  assert.deepEqual(classifyResponse(202, {}, 0), { kind: 'sent', status: 202 });
  assert.deepEqual(classifyResponse(404, {}, 0), { kind: 'gone', status: 404 });
  assert.deepEqual(classifyResponse(410, {}, 0), { kind: 'gone', status: 410 });
  for (const status of [400, 401, 403, 413, 422]) assert.deepEqual(classifyResponse(status, {}, 0), { kind: 'rejected', status });
  assert.deepEqual(classifyResponse(403, { body: '{"reason":"BadJwtToken"}' }, 0), { kind: 'rejected', status: 403, reason: '{"reason":"BadJwtToken"}' });
  assert.deepEqual(classifyResponse(429, { retryAfter: '30' }, 0), { kind: 'retry', afterMs: 30_000, status: 429 });
  assert.deepEqual(classifyResponse(503, { retryAfter: '5' }, 4), { kind: 'retry', afterMs: 5000, status: 503 });
  assert.deepEqual(classifyResponse(502, {}, 1, { backoff }), { kind: 'retry', afterMs: 1500, status: 502 });
  assert.deepEqual(classifyResponse(429, { retryAfter: 'soon' }, 0, { backoff }), { kind: 'retry', afterMs: 750, status: 429 });
});

void test('retryDelayMs doubles per attempt within [½, 1] of the step and is capped; parseRetryAfter reads both forms', () => {
  assert.deepEqual([0, 1, 2, 3].map((a) => retryDelayMs(a, { random: () => 0.999999 })), [1000, 2000, 4000, 8000]);
  assert.deepEqual([0, 1, 2, 3].map((a) => retryDelayMs(a, { random: () => 0 })), [500, 1000, 2000, 4000]);
  assert.equal(retryDelayMs(50, { random: () => 1 }), 300_000);
  for (let i = 0; i < 100; i++) {
    const d = retryDelayMs(2);
    assert.ok(d >= 2000 && d <= 4000);
  }
  const now = Date.UTC(2026, 0, 1);
  assert.equal(parseRetryAfter('120', now), 120_000);
  assert.equal(parseRetryAfter(new Date(now + 60_000).toUTCString(), now), 60_000);
  assert.equal(parseRetryAfter(new Date(now - 60_000).toUTCString(), now), 0);
  assert.equal(parseRetryAfter(undefined, now), null);
  assert.equal(parseRetryAfter('-5', now), null);
});
