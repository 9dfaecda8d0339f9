/**
 * Durable webhooks: a real `node dist/server/main.js` whose receiver is down (answers 500) is killed with
 * SIGKILL, or stopped with SIGTERM, then started again on the same data directory with the receiver up.
 * Every event queued before arrives, each request passing the `pusher` package's webhook check, none lost,
 * channel order kept.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { SqliteWebhookJournal, WEBHOOK_JOURNAL_FILE } from '../../server/webhooks/SqliteWebhookJournal';
import { RawClient, authFor } from '../helpers/clients';
import { testApp, type TestHerald } from '../helpers/herald';
import { startHeraldProcess, verifiedEvents, waitQueued, type HeraldProcess } from '../helpers/herald-process';
import { WebhookReceiver } from '../helpers/WebhookReceiver';

type Event = Record<string, unknown>;

/** A data directory with a config whose app sends occupied and client-event webhooks to `rx`. */
function configure(t: TestContext, rx: WebhookReceiver) {
  const dataDir = mkdtempSync(join(tmpdir(), 'herald-webhook-journal-'));
  t.after(() => rmSync(dataDir, { recursive: true, force: true }));
  const app = testApp({ clientEvents: true });
  const configFile = join(dataDir, 'config.json');
  const webhooks = [{ url: rx.url(), events: ['channel_occupied', 'client_event'] }];
  const apps = [{ id: app.id, key: app.key, secret: app.secret, clientEvents: true, webhooks }];
  writeFileSync(configFile, JSON.stringify({ host: '127.0.0.1', port: 0, dataDir, logLevel: 'info', shutdownGraceMs: 1000, apps }));
  return { app, configFile, journalFile: join(dataDir, WEBHOOK_JOURNAL_FILE) };
}

/** Occupies five public channels and sends eight client events on a private one; returns what they queue. */
async function produce(t: TestContext, h: TestHerald): Promise<Event[]> {
  const c = await RawClient.connect(h);
  t.after(() => c.close());
  const expected: Event[] = [];
  const subscribe = async (channel: string, auth?: string) => {
    c.send({ event: 'pusher:subscribe', data: auth ? { channel, auth } : { channel } });
    await c.next('pusher_internal:subscription_succeeded', 5000, channel);
    expected.push({ name: 'channel_occupied', channel });
  };
  for (let i = 0; i < 5; i++) await subscribe(`journal-${i}`);
  await subscribe('private-chat', authFor(h.app, c.socketId, 'private-chat'));
  for (let i = 0; i < 8; i++) {
    c.send({ event: 'client-typing', channel: 'private-chat', data: { i } });
    expected.push({ name: 'client_event', channel: 'private-chat', event: 'client-typing', data: JSON.stringify({ i }), socket_id: c.socketId });
  }
  return expected;
}

/** The journal's events, read while no node holds it. */
async function journaled(file: string): Promise<Event[]> {
  const j = new SqliteWebhookJournal(file, pino({ level: 'silent' }));
  const rows = await j.open();
  await j.close();
  return rows.map((r) => r.event as unknown as Event);
}

const byChannel = (events: Event[]) => [...events].sort((a, b) => String(a.channel).localeCompare(String(b.channel)));

/** A node whose receiver answers 500, holding the webhooks of {@link produce} (each tried at least once). */
async function nodeWithReceiverDown(t: TestContext) {
  const rx = await WebhookReceiver.start();
  t.after(() => rx.close());
  rx.respond = () => 500;
  const { app, configFile, journalFile } = configure(t, rx);
  const first = await startHeraldProcess(t, configFile, app);
  const expected = await produce(t, first.h);
  await waitQueued(first.h, expected.length);
  await rx.waitFor(() => rx.requests.length > 0, 'a refused attempt');
  assert.equal(rx.accepted().length, 0);
  return { rx, app, configFile, journalFile, first, expected };
}

/** After the restart with the receiver up: exactly the queued events arrive, once each, in channel order. */
async function assertResent(t: TestContext, configFile: string, rx: WebhookReceiver, app: TestHerald['app'], expected: Event[]): Promise<HeraldProcess> {
  rx.respond = () => 200;
  const node = await startHeraldProcess(t, configFile, app);
  await rx.waitForEvents(expected.length, undefined, undefined, 15000);
  await waitQueued(node.h, 0);
  const events = verifiedEvents(node.h, rx);
  assert.deepEqual(byChannel(events), byChannel(expected), 'every event once, none lost');
  assert.deepEqual(events.filter((e) => e.channel === 'private-chat'), expected.filter((e) => e.channel === 'private-chat'), 'channel order kept');
  assert.ok(node.logs.some((l) => l.msg === 'webhook events restored from the journal; sending them again' && l.events === expected.length), 'start-up says what it restored');
  return node;
}

void test('kill -9 while the receiver is down: the restarted node sends every queued webhook', { timeout: 60_000 }, async (t) => {
  const { rx, app, configFile, journalFile, first, expected } = await nodeWithReceiverDown(t);
  first.kill('SIGKILL');
  assert.deepEqual(await first.exited, { code: null, signal: 'SIGKILL' });
  assert.deepEqual(byChannel(await journaled(journalFile)), byChannel(expected), 'all of them were in the journal at the kill');

  const second = await assertResent(t, configFile, rx, app, expected);
  second.kill('SIGTERM');
  assert.equal((await second.exited).code, 0);
  assert.deepEqual(await journaled(journalFile), [], 'delivered events are removed');
});

void test('SIGTERM while the receiver is down: what is not delivered in the grace period stays journaled and is sent after the restart', { timeout: 60_000 }, async (t) => {
  const { rx, app, configFile, journalFile, first, expected } = await nodeWithReceiverDown(t);
  first.kill('SIGTERM');
  assert.deepEqual(await first.exited, { code: 0, signal: null });
  const kept = first.logs.find((l) => l.msg === 'webhook events not delivered before shutdown stay in the journal; they will be resent at the next start');
  assert.equal(kept?.events, expected.length, JSON.stringify(first.logs.slice(-5)));
  assert.ok(!first.logs.some((l) => String(l.msg).includes('were dropped')), 'nothing dropped');
  assert.equal((await journaled(journalFile)).length, expected.length);

  await assertResent(t, configFile, rx, app, expected);
});
