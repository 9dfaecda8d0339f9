import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startHerald } from '../helpers/herald';
import { RawClient, connected, nextEvent, pusherJs, serverSdk } from '../helpers/clients';
import { WebhookReceiver } from '../helpers/WebhookReceiver';
import type { WebhookTarget } from '../../server/options/Options';

/** The value of one sample line (`name{labels} value`), or undefined when absent. */
function sample(text: string, name: string, labels = ''): number | undefined {
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const sp = line.lastIndexOf(' ');
    const key = line.slice(0, sp);
    if (key === (labels ? `${name}{${labels}}` : name)) return Number(line.slice(sp + 1));
  }
  return undefined;
}

async function scrape(baseUrl: string): Promise<string> {
  const res = await fetch(`${baseUrl}/metrics`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
  return res.text();
}

test('/metrics counts connections, channels, presence, messages in and out, REST calls and trigger latency', async (t) => {
  const h = await startHerald({ apps: [{ clientEvents: true }] });
  t.after(() => h.stop());
  const app = `app_id="${h.app.id}"`;

  const client = pusherJs(h, { presence: { user_id: 'ada' } });
  t.after(() => client.disconnect());
  await connected(client);
  const ch = client.subscribe('metrics-channel');
  await nextEvent(ch, 'pusher:subscription_succeeded');
  await nextEvent(client.subscribe('presence-room'), 'pusher:subscription_succeeded');

  const got = nextEvent<{ n: number }>(ch, 'tick');
  await serverSdk(h).trigger('metrics-channel', 'tick', { n: 1 });
  assert.deepEqual(await got, { n: 1 });

  const text = await scrape(h.baseUrl);
  assert.equal(sample(text, 'herald_connections', app), 1);
  assert.equal(sample(text, 'herald_new_connections_total', app), 1);
  assert.equal(sample(text, 'herald_channels', app), 2);
  assert.equal(sample(text, 'herald_presence_members', app), 1);
  assert.ok((sample(text, 'herald_ws_messages_received_total', app) ?? 0) >= 2, 'two subscribes at least');
  assert.ok((sample(text, 'herald_ws_received_bytes_total', app) ?? 0) > 50);
  assert.equal(sample(text, 'herald_ws_messages_sent_total', app), 1, 'one channel event delivered to one socket');
  const frame = `{"event":"tick","channel":"metrics-channel","data":"{\\"n\\":1}"}`;
  assert.equal(sample(text, 'herald_ws_sent_bytes_total', app), Buffer.byteLength(frame));
  assert.equal(sample(text, 'herald_published_events_total', app), 1);
  assert.equal(sample(text, 'herald_http_requests_total', 'method="POST",route="/apps/:appId/events",status="200"'), 1);
  assert.equal(sample(text, 'herald_trigger_to_send_seconds_count'), 1);
  assert.ok((sample(text, 'herald_trigger_to_send_seconds_sum') ?? 1) < 1);
  assert.equal(sample(text, 'herald_backend_up', 'component="adapter",backend="local"'), 1);
  assert.equal(sample(text, 'herald_backend_up', 'component="state",backend="local"'), 1);
  // Declared even when nothing feeds them; an app without webhook targets has no webhook series.
  assert.match(text, /^# TYPE herald_push_sends_total counter$/m);
  assert.match(text, /^# TYPE herald_webhooks_dropped_total counter$/m);
  assert.equal(sample(text, 'herald_webhook_queue_depth', app), undefined);
  assert.match(text, /^herald_process_resident_memory_bytes \d+/m, 'process metrics, prefixed');

  // Metrics observe first, so once this observer has seen both closes the counters have them too.
  let closes = 0;
  const bothClosed = new Promise<void>((resolve) => h.server.gateway.observe({ connectionClosed: () => ++closes === 2 && resolve() }));
  client.disconnect();
  const raw = await RawClient.connect(h);
  raw.close();
  await bothClosed;
  const after = await scrape(h.baseUrl);
  assert.equal(sample(after, 'herald_disconnections_total', `${app},code="1000"`), 2);
  assert.equal(sample(after, 'herald_connections', app), 0);
  assert.equal(sample(after, 'herald_http_requests_total', 'method="GET",route="/metrics",status="200"') !== undefined, true);
});

test('each server has its own registry; other modules report through Metrics', async (t) => {
  const a = await startHerald();
  t.after(() => a.stop());
  const b = await startHerald();
  t.after(() => b.stop());
  a.server.metrics.pushSent(a.app.id, 'gone');
  const ta = await scrape(a.baseUrl);
  const tb = await scrape(b.baseUrl);
  assert.equal(sample(ta, 'herald_push_sends_total', `app_id="${a.app.id}",outcome="gone"`), 1);
  assert.equal(sample(tb, 'herald_push_sends_total', `app_id="${a.app.id}",outcome="gone"`), undefined);
});

test('webhook metrics are read from the sender: queued, in flight, delivered, failed (retried) and dropped, per app', async (t) => {
  const rx = await WebhookReceiver.start();
  t.after(() => rx.close());
  const target = { url: rx.url(), events: ['channel_occupied'] } as WebhookTarget;
  // One request at a time and room for two events, so one event can wait and a third is refused.
  const h = await startHerald({ apps: [{ webhooks: [target] }, { webhooks: [target] }, {}], backends: { webhooks: { concurrency: 1, maxQueue: 2, backoff: { baseMs: 20 } } } });
  t.after(() => h.stop());
  const [one, two, plain] = h.apps.map((a) => `app_id="${a.id}"`);
  const names = ['herald_webhook_queue_depth', 'herald_webhooks_in_flight', 'herald_webhooks_queued_total', 'herald_webhooks_sent_total', 'herald_webhooks_failed_total'];
  const values = (text: string, app: string) => names.map((n) => sample(text, n, app));
  const dropped = (text: string, app: string) => ['queue_full', 'expired'].map((reason) => sample(text, 'herald_webhooks_dropped_total', `${app},reason="${reason}"`));

  const before = await scrape(h.baseUrl);
  assert.deepEqual(values(before, one), [0, 0, 0, 0, 0], 'apps with targets start at zero');
  assert.deepEqual(dropped(before, one), [0, 0]);
  assert.deepEqual(values(before, plain), names.map(() => undefined), 'an app without targets has no series');

  // The first request gets a 500; its retry is held open until `answer` is called.
  let answer!: (status: number) => void;
  const held = new Promise<number>((resolve) => (answer = resolve));
  rx.respond = (_r, n) => (n === 0 ? 500 : n === 1 ? held : 200);
  const c = await RawClient.connect(h);
  t.after(() => c.close());
  const subscribe = async (channel: string) => {
    c.send({ event: 'pusher:subscribe', data: { channel } });
    await c.next('pusher_internal:subscription_succeeded', 5000, channel);
  };
  await subscribe('hooked');
  await rx.waitFor(() => rx.requests.length === 2, 'the retry');
  // channel_occupied is queued before subscription_succeeded is sent.
  await subscribe('waiting');
  await subscribe('refused');
  const busy = await scrape(h.baseUrl);
  assert.deepEqual(values(busy, one), [1, 1, 2, 0, 1], 'one waiting, one in flight, two accepted, none sent, one failed attempt');
  assert.deepEqual(dropped(busy, one), [1, 0], 'the third event found the queue full');

  answer(200);
  await rx.waitForEvents(2);
  await h.server.webhooks.sender.idle();
  const after = await scrape(h.baseUrl);
  assert.deepEqual(values(after, one), [0, 0, 2, 2, 1]);
  assert.deepEqual(dropped(after, one), [1, 0]);
  assert.deepEqual(values(after, two), [0, 0, 0, 0, 0], 'per app');
  assert.deepEqual(rx.accepted().flatMap((r) => r.body.events.map((e) => e.channel)), ['hooked', 'waiting']);
});

test('metricsEnabled: false serves no /metrics', async (t) => {
  const h = await startHerald({ options: { metricsEnabled: false } });
  t.after(() => h.stop());
  const res = await fetch(`${h.baseUrl}/metrics`);
  assert.equal(res.status, 404);
});
