/** WebhookSender alone against a real receiver: expiry, batch sizes, shutdown, bad target settings. */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import { WebhookSender, type WebhookSenderOptions } from '../../server/webhooks/WebhookSender';
import { testApp } from '../helpers/herald';
import { WebhookReceiver } from '../helpers/WebhookReceiver';
import type { AppOptions, WebhookTarget } from '../../server/options/Options';

const log = pino({ level: process.env.HERALD_TEST_LOG ?? 'silent' });

async function setup(t: TestContext, targets: (rx: WebhookReceiver) => Partial<WebhookTarget>[], options: WebhookSenderOptions = {}) {
  const rx = await WebhookReceiver.start();
  const app: AppOptions = testApp({ webhooks: targets(rx) as WebhookTarget[] });
  const sender = new WebhookSender(log, options);
  t.after(async () => {
    await sender.stop(Date.now());
    await rx.close();
  });
  return { rx, app, sender };
}

void test('an event that fails for longer than maxAgeMs is given up and counted as expired', async (t) => {
  const { rx, app, sender } = await setup(t, (r) => [{ url: r.url(), events: ['channel_occupied'] }], { maxAgeMs: 300, backoff: { baseMs: 40 } });
  rx.respond = () => 500;
  sender.enqueue(app, { name: 'channel_occupied', channel: 'c' });
  await sender.idle();
  const s = sender.stats().apps[app.id];
  assert.equal(s.expired, 1);
  assert.equal(s.sent, 0);
  assert.equal(s.depth, 0);
  assert.ok(s.failed >= 2, `failed ${s.failed}`);
  assert.equal(rx.requests.length, s.failed);
});

void test('a batch holds at most maxBatch events; the rest follow in order', async (t) => {
  const { rx, app, sender } = await setup(t, (r) => [{ url: r.url(), events: ['client_event'], batch: true }], { maxBatch: 4, batchMs: 20 });
  for (let i = 0; i < 10; i++) sender.enqueue(app, { name: 'client_event', channel: `private-${i % 2}`, event: 'client-n', data: String(i), socket_id: '1.1' });
  await sender.idle();
  assert.ok(rx.requests.every((r) => r.body.events.length <= 4));
  assert.equal(rx.events().length, 10);
  for (const ch of ['private-0', 'private-1']) {
    const seq = rx.events().filter((e) => e.channel === ch).map((e) => Number(e.data));
    assert.deepEqual(seq, [...seq].sort((a, b) => a - b));
  }
});

void test('stop drains within the deadline, then abandons what is left and counts it', async (t) => {
  const { rx, app, sender } = await setup(t, (r) => [{ url: r.url(), events: ['cache_miss'] }]);
  rx.respond = () => 'hang';
  sender.enqueue(app, { name: 'cache_miss', channel: 'cache-a' });
  sender.enqueue(app, { name: 'cache_miss', channel: 'cache-a' });
  sender.enqueue(app, { name: 'cache_miss', channel: 'cache-b' });
  await rx.waitFor(() => rx.requests.length === 2, 'two requests in flight');
  assert.deepEqual([sender.stats().total.inFlight, sender.stats().total.depth], [2, 3], 'one channel per request: cache-a waits for its first');
  const started = Date.now();
  await sender.stop(Date.now() + 200);
  assert.ok(Date.now() - started < 1000);
  assert.deepEqual(sender.stats().total, { queued: 3, sent: 0, failed: 0, dropped: 0, expired: 3, depth: 0, inFlight: 0 });
  sender.enqueue(app, { name: 'cache_miss', channel: 'cache-a' });
  assert.equal(sender.stats().total.queued, 3, 'nothing is taken after stop');
});

void test('invalid extra headers are left out (logged once), the rest is sent', async (t) => {
  const { rx, app, sender } = await setup(t, (r) => [{ url: r.url(), events: ['cache_miss'], headers: { 'X-Token': 'ok', 'Bad Header': 'x', 'X-Bad-Value': 'a\nb' } }]);
  sender.enqueue(app, { name: 'cache_miss', channel: 'cache-a' });
  await sender.idle();
  assert.equal(rx.requests.length, 1);
  assert.equal(rx.requests[0].headers['x-token'], 'ok');
  assert.equal(rx.requests[0].headers['x-bad-value'], undefined);
});
