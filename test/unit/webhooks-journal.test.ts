/**
 * WebhookSender with a real SQLite journal against a real receiver: what is journaled and when it leaves,
 * what a stop keeps, and what the next start sends again.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { WebhookSender, type WebhookSenderOptions } from '../../server/webhooks/WebhookSender';
import { SqliteWebhookJournal, WEBHOOK_JOURNAL_FILE } from '../../server/webhooks/SqliteWebhookJournal';
import { webhookTargetKey, type JournaledWebhook } from '../../server/webhooks/WebhookJournal';
import { testApp } from '../helpers/herald';
import { WebhookReceiver } from '../helpers/WebhookReceiver';
import type { AppOptions, WebhookTarget } from '../../server/options/Options';

const log = pino({ level: process.env.HERALD_TEST_LOG ?? 'silent' });

interface Run {
  sender: WebhookSender;
  /** What the debug console would show. */
  lines: string[];
}

/** A receiver, an app posting to it, and a journal file; `run()` starts a sender on that file. */
async function setup(t: TestContext, target: Partial<WebhookTarget> = {}) {
  const rx = await WebhookReceiver.start();
  const dir = mkdtempSync(join(tmpdir(), 'herald-webhook-journal-'));
  const file = join(dir, WEBHOOK_JOURNAL_FILE);
  const app: AppOptions = testApp({ webhooks: [{ url: rx.url(), events: ['client_event', 'channel_occupied'], ...target } as WebhookTarget] });
  const senders: WebhookSender[] = [];
  t.after(async () => {
    for (const s of senders) await s.stop(Date.now());
    await rx.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const run = async (options: WebhookSenderOptions = {}, apps: AppOptions[] = [app]): Promise<Run> => {
    const lines: string[] = [];
    const sender = new WebhookSender(log, { backoff: { baseMs: 20, maxMs: 50 }, ...options }, { report: (_a, detail) => void lines.push(detail) }, new SqliteWebhookJournal(file, log));
    senders.push(sender);
    await sender.start((id) => apps.find((a) => a.id === id));
    return { sender, lines };
  };
  /** The journal's rows, read while no sender holds it. */
  const rows = async (): Promise<JournaledWebhook[]> => {
    const j = new SqliteWebhookJournal(file, log);
    const loaded = await j.open();
    await j.close();
    return loaded;
  };
  return { rx, app, file, run, rows };
}

const clientEvent = (channel: string, i: number) => ({ name: 'client_event' as const, channel, event: 'client-n', data: String(i), socket_id: '1.1' });
const seqOf = (events: Record<string, unknown>[], channel: string) => events.filter((e) => e.channel === channel).map((e) => Number(e.data));

void test('delivered events leave the journal; a stop keeps the undelivered ones (not counted), and the next start sends them in order', async (t) => {
  const { rx, app, run, rows } = await setup(t);
  const first = await run();
  first.sender.enqueue(app, clientEvent('private-ok', 0));
  await rx.waitForEvents(1);
  await first.sender.idle();
  rx.respond = () => 500;
  for (let i = 1; i <= 6; i++) first.sender.enqueue(app, clientEvent(`private-${i % 2}`, i));
  await rx.waitFor(() => rx.requests.length >= 3, 'failed attempts');
  await first.sender.stop(Date.now());
  const s = first.sender.stats().total;
  assert.deepEqual([s.sent, s.expired, s.depth], [1, 0, 0], 'kept events are not given up');
  assert.ok(first.lines.includes('webhooks kept 6 events in the journal: not delivered before shutdown, resent at the next start'), first.lines.join('\n'));

  const kept = await rows();
  assert.deepEqual(kept.map((r) => r.event), [1, 2, 3, 4, 5, 6].map((i) => clientEvent(`private-${i % 2}`, i)), 'the delivered one was removed');
  assert.ok(kept.every((r) => r.appId === app.id && r.target === webhookTargetKey(app.webhooks[0])));

  rx.respond = () => 200;
  const before = rx.events().length;
  const second = await run();
  await second.sender.idle();
  const resent = rx.events().slice(before);
  assert.deepEqual(seqOf(resent, 'private-0'), [2, 4, 6]);
  assert.deepEqual(seqOf(resent, 'private-1'), [1, 3, 5]);
  assert.equal(second.sender.stats().total.sent, 6);
  await second.sender.stop(Date.now());
  assert.deepEqual(await rows(), [], 'nothing left once delivered');
});

void test('a restored event keeps its creation time: too old ones, and those of a target or app no longer configured, are dropped', async (t) => {
  const { rx, app, file, run, rows } = await setup(t);
  const j = new SqliteWebhookJournal(file, log);
  await j.open();
  const key = webhookTargetKey(app.webhooks[0]);
  const now = Date.now();
  j.append(app.id, key, clientEvent('private-a', 1), now - 10_000);
  j.append(app.id, key, clientEvent('private-a', 2), now - 100);
  j.append(app.id, webhookTargetKey({ ...app.webhooks[0], channelPrefix: 'presence-' }), clientEvent('private-a', 3), now);
  j.append('no-such-app', key, clientEvent('private-a', 4), now);
  await j.close();

  const { sender } = await run({ maxAgeMs: 5000 });
  await rx.waitForEvents(1);
  await sender.idle();
  assert.deepEqual(rx.events().map((e) => Number(e.data)), [2]);
  const s = sender.stats().total;
  assert.deepEqual([s.queued, s.sent, s.expired], [1, 1, 1]);
  await sender.stop(Date.now());
  assert.deepEqual(await rows(), [], 'every dropped row was removed too');
});

void test('a batch target gets its restored events in batches; events refused by a full queue are never journaled', async (t) => {
  const { rx, app, run, rows } = await setup(t, { batch: true });
  rx.respond = () => 'hang';
  const first = await run({ maxQueue: 5, batchMs: 10 });
  for (let i = 0; i < 8; i++) first.sender.enqueue(app, clientEvent('private-b', i));
  assert.equal(first.sender.stats().total.dropped, 3);
  await rx.waitFor(() => rx.requests.length === 1, 'a batch in flight');
  await first.sender.stop(Date.now());
  assert.deepEqual((await rows()).map((r) => Number((r.event as { data: string }).data)), [0, 1, 2, 3, 4]);

  rx.respond = () => 200;
  const second = await run({ batchMs: 10 });
  await second.sender.idle();
  assert.deepEqual(rx.accepted().map((r) => r.body.events.map((e) => Number(e.data))), [[0, 1, 2, 3, 4]]);
});
