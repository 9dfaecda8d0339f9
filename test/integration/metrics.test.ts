import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startHerald } from '../helpers/herald';
import { RawClient, connected, nextEvent, pusherJs, serverSdk } from '../helpers/clients';

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
  // Modules not wired yet report through the same registry and start at zero.
  assert.equal(sample(text, 'herald_webhook_queue_depth'), 0);
  assert.match(text, /^# TYPE herald_push_sends_total counter$/m);
  assert.match(text, /^# TYPE herald_webhooks_dropped_total counter$/m);
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
  a.server.metrics.webhookSent(a.app.id);
  a.server.metrics.webhookDropped(a.app.id);
  a.server.metrics.setWebhookQueueDepth(3);
  a.server.metrics.pushSent(a.app.id, 'gone');
  const ta = await scrape(a.baseUrl);
  const tb = await scrape(b.baseUrl);
  assert.equal(sample(ta, 'herald_webhooks_sent_total', `app_id="${a.app.id}"`), 1);
  assert.equal(sample(ta, 'herald_webhooks_dropped_total', `app_id="${a.app.id}"`), 1);
  assert.equal(sample(ta, 'herald_webhook_queue_depth'), 3);
  assert.equal(sample(ta, 'herald_push_sends_total', `app_id="${a.app.id}",outcome="gone"`), 1);
  assert.equal(sample(tb, 'herald_webhook_queue_depth'), 0);
  assert.equal(sample(tb, 'herald_webhooks_sent_total', `app_id="${a.app.id}"`), undefined);
});

test('metricsEnabled: false serves no /metrics', async (t) => {
  const h = await startHerald({ options: { metricsEnabled: false } });
  t.after(() => h.stop());
  const res = await fetch(`${h.baseUrl}/metrics`);
  assert.equal(res.status, 404);
});
