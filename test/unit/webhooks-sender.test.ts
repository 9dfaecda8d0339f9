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
  /** What the debug console would show: `channel detail`, `-` for no channel. */
  const lines: string[] = [];
  const sender = new WebhookSender(log, options, { report: (_appId, detail, channel) => void lines.push(`${channel ?? '-'} ${detail}`) });
  t.after(async () => {
    await sender.stop(Date.now());
    await rx.close();
  });
  return { rx, app, sender, lines };
}

void test('an event that fails for longer than maxAgeMs is given up and counted as expired', async (t) => {
  const { rx, app, sender, lines } = await setup(t, (r) => [{ url: r.url(), events: ['channel_occupied'] }], { maxAgeMs: 300, backoff: { baseMs: 40 } });
  rx.respond = () => 500;
  sender.enqueue(app, { name: 'channel_occupied', channel: 'c' });
  await sender.idle();
  const s = sender.stats().apps[app.id];
  assert.equal(s.expired, 1);
  assert.equal(s.sent, 0);
  assert.equal(s.depth, 0);
  assert.ok(s.failed >= 2, `failed ${s.failed}`);
  assert.equal(rx.requests.length, s.failed);
  // One console line per request; the last says it is given up (at the failure, or if the retry's timer ran late, before it).
  const failed = `c webhook to ${rx.url()} failed: answered 500, 1 event, attempt`;
  assert.ok(lines.slice(0, -1).every((l, i) => l.startsWith(`${failed} ${i + 1}; retry in `)), lines.join('\n'));
  const last = lines[lines.length - 1];
  assert.ok(
    last === `${failed} ${s.failed}; not retried: not delivered within 300 ms` ||
      last === `c webhook to ${rx.url()} dropped 1 event awaiting retry: not delivered within 300 ms`,
    last,
  );
  assert.equal(lines.filter((l) => l.includes(' failed: ')).length, s.failed);
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
  const { rx, app, sender, lines } = await setup(t, (r) => [{ url: r.url(), events: ['cache_miss'] }]);
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
  const aborted = `webhook to ${rx.url()} failed: aborted: server stopping, 1 event, attempt 1; not retried: server stopping`;
  assert.deepEqual(lines.sort(), [`- webhooks dropped 3 events: not delivered before shutdown`, `cache-a ${aborted}`, `cache-b ${aborted}`]);
});

void test('a full queue drops events and reports them at most every 10 s', async (t) => {
  const { rx, app, sender, lines } = await setup(t, (r) => [{ url: r.url(), events: ['cache_miss'] }], { maxQueue: 1 });
  rx.respond = () => 'hang';
  for (let i = 0; i < 3; i++) sender.enqueue(app, { name: 'cache_miss', channel: `cache-${i}` });
  assert.equal(sender.stats().total.dropped, 2);
  assert.deepEqual(lines, ['- webhooks dropped 1 event: queue full (1 waiting)']);
});

void test('invalid extra headers are left out (logged once), the rest is sent', async (t) => {
  const { rx, app, sender } = await setup(t, (r) => [{ url: r.url(), events: ['cache_miss'], headers: { 'X-Token': 'ok', 'Bad Header': 'x', 'X-Bad-Value': 'a\nb' } }]);
  sender.enqueue(app, { name: 'cache_miss', channel: 'cache-a' });
  await sender.idle();
  assert.equal(rx.requests.length, 1);
  assert.equal(rx.requests[0].headers['x-token'], 'ok');
  assert.equal(rx.requests[0].headers['x-bad-value'], undefined);
});
