/**
 * A single node's occupancy across a crash: a real `node dist/server/main.js` with clients on a public and
 * a presence channel is killed with SIGKILL (or stopped with SIGTERM) and started again on the same data
 * directory. The receivers get `member_removed` then `channel_vacated` for every socket the crash cut off
 * (and for a leave still inside its 3 s wait at the kill), once, each request passing the `pusher`
 * package's webhook check; a graceful stop sends them while it drains and the next start sends nothing.
 * In process: what the observer writes to the journal on a rejoin, and that a cluster member writes none.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { createRedisBackends } from '../../server/cluster/create-backends';
import type { Backends } from '../../server/HeraldServer';
import type { WebhookTarget } from '../../server/options/Options';
import { SqliteWebhookJournal, WEBHOOK_JOURNAL_FILE } from '../../server/webhooks/SqliteWebhookJournal';
import { RawClient, authFor, roundTrip } from '../helpers/clients';
import { startHerald, testApp, type TestHerald } from '../helpers/herald';
import { appMetric, startHeraldProcess, verifiedEvents, waitQueued, type HeraldProcess } from '../helpers/herald-process';
import { REDIS_URL, deleteKeys, needRedis, uniquePrefix } from '../helpers/redis';
import { WebhookReceiver } from '../helpers/WebhookReceiver';

type Event = Record<string, unknown>;

const LEFT_LOG = 'occupied channels and members left by the previous run (a crash): queuing their channel_vacated / member_removed';
const PRESENCE = 'presence-lobby';
const PUBLIC = 'room';

/** A receiver answering 200 and a data directory whose app sends it occupancy and member webhooks. */
async function configure(t: TestContext) {
  const rx = await WebhookReceiver.start();
  t.after(() => rx.close());
  const dataDir = mkdtempSync(join(tmpdir(), 'herald-webhook-occupancy-'));
  t.after(() => rmSync(dataDir, { recursive: true, force: true }));
  const app = testApp();
  const configFile = join(dataDir, 'config.json');
  const webhooks = [{ url: rx.url(), events: ['channel_occupied', 'channel_vacated', 'member_added', 'member_removed'] }];
  const apps = [{ id: app.id, key: app.key, secret: app.secret, webhooks }];
  writeFileSync(configFile, JSON.stringify({ host: '127.0.0.1', port: 0, dataDir, logLevel: 'info', shutdownGraceMs: 1000, apps }));
  return { rx, app, start: () => startHeraldProcess(t, configFile, app) };
}

/** A raw client on the presence channel as `userId`, and on the public channel too when asked. */
async function member(t: TestContext, h: TestHerald, userId: string, withPublic: boolean): Promise<RawClient> {
  const c = await RawClient.connect(h);
  t.after(() => c.close());
  const channelData = JSON.stringify({ user_id: userId, user_info: { name: userId } });
  c.send({ event: 'pusher:subscribe', data: { channel: PRESENCE, auth: authFor(h.app, c.socketId, PRESENCE, channelData), channel_data: channelData } });
  await c.next('pusher_internal:subscription_succeeded', 5000, PRESENCE);
  if (withPublic) {
    c.send({ event: 'pusher:subscribe', data: { channel: PUBLIC } });
    await c.next('pusher_internal:subscription_succeeded', 5000, PUBLIC);
  }
  return c;
}

/** Alice on both channels and Bob on the presence one; resolves once the receiver has their four joins. */
async function occupy(t: TestContext, node: HeraldProcess, rx: WebhookReceiver): Promise<RawClient[]> {
  const clients = [await member(t, node.h, 'alice', true), await member(t, node.h, 'bob', false)];
  await rx.waitForEvents(4);
  // The receiver has a join before the node has read its 2xx and dropped it from the journal; a kill in
  // between sends it again after the restart (at least once, as designed). These tests kill after that.
  await waitQueued(node.h, 0);
  return clients;
}

const JOINS: Event[] = [
  { name: 'channel_occupied', channel: PRESENCE },
  { name: 'member_added', channel: PRESENCE, user_id: 'alice' },
  { name: 'channel_occupied', channel: PUBLIC },
  { name: 'member_added', channel: PRESENCE, user_id: 'bob' },
];

/** What the leaves of {@link occupy} are, whoever sends them (order across channels is free). */
const LEAVES = (first: string, second: string): Event[] => [
  { name: 'member_removed', channel: PRESENCE, user_id: first },
  { name: 'member_removed', channel: PRESENCE, user_id: second },
  { name: 'channel_vacated', channel: PRESENCE },
  { name: 'channel_vacated', channel: PUBLIC },
];

const ofChannel = (events: Event[], channel: string) => events.filter((e) => e.channel === channel);

/** Each verified event after the first `skip`, grouped by channel (each channel in its order). */
function leavesSent(h: TestHerald, rx: WebhookReceiver, skip: number): { presence: Event[]; public: Event[] } {
  const events = verifiedEvents(h, rx).slice(skip);
  return { presence: ofChannel(events, PRESENCE), public: ofChannel(events, PUBLIC) };
}

/** Starts the node again; resolves once the receiver has four more events and the node holds none. */
async function restartForLeaves(start: () => Promise<HeraldProcess>, rx: WebhookReceiver) {
  const node = await start();
  await rx.waitForEvents(8, undefined, undefined, 15000);
  await waitQueued(node.h, 0);
  return { node, sent: leavesSent(node.h, rx, 4) };
}

/** SIGTERM; the node exits cleanly. */
async function stop(node: HeraldProcess): Promise<void> {
  node.kill('SIGTERM');
  assert.deepEqual(await node.exited, { code: 0, signal: null });
}

/** Starts the node once more: it queues nothing at start and logs no occupancy left over. */
async function assertNothingLeft(start: () => Promise<HeraldProcess>, rx: WebhookReceiver, events: number): Promise<void> {
  const node = await start();
  assert.equal(await appMetric(node.h, 'herald_webhooks_queued_total'), 0, 'nothing queued at start');
  assert.ok(!node.logs.some((l) => l.msg === LEFT_LOG), 'no occupancy left over');
  assert.equal(rx.events().length, events, 'nothing more sent');
  await stop(node);
}

void test('kill -9 with sockets on a public and a presence channel: the restart sends member_removed, then channel_vacated, once', { timeout: 60_000 }, async (t) => {
  const { rx, start } = await configure(t);
  const first = await start();
  await occupy(t, first, rx);
  assert.deepEqual(ofChannel(rx.events(), PRESENCE), ofChannel(JOINS, PRESENCE));
  first.kill('SIGKILL');
  assert.deepEqual(await first.exited, { code: null, signal: 'SIGKILL' });
  assert.equal(rx.events().length, 4, 'no leave before the restart');

  const { node: second, sent } = await restartForLeaves(start, rx);
  const [a, b] = sent.presence.slice(0, 2).map((e) => String(e.user_id));
  assert.deepEqual([...sent.presence, ...sent.public], LEAVES(a, b), 'members removed before the channel is vacated, each once');
  assert.deepEqual([a, b].sort(), ['alice', 'bob']);
  const line = second.logs.find((l) => l.msg === LEFT_LOG);
  assert.deepEqual([line?.channels, line?.members], [2, 2], 'one line per app with the counts');
  assert.equal(await appMetric(second.h, 'herald_webhooks_sent_total'), 4);
  await stop(second);

  await assertNothingLeft(start, rx, 8);
});

void test('SIGTERM with sockets open: the drain sends the leaves once, the next start sends nothing', { timeout: 60_000 }, async (t) => {
  const { rx, start } = await configure(t);
  const first = await start();
  await occupy(t, first, rx);
  await stop(first);
  // Sent within the grace period (the drain decides pending leaves at once when the grace is short).
  assert.equal(rx.events().length, 8, JSON.stringify(rx.events()));
  const sent = leavesSent(first.h, rx, 4);
  const [a, b] = sent.presence.slice(0, 2).map((e) => String(e.user_id));
  assert.deepEqual([...sent.presence, ...sent.public], LEAVES(a, b));

  await assertNothingLeft(start, rx, 8);
});

void test('kill -9 inside the 3 s wait of a leave: the restart sends that leave', { timeout: 60_000 }, async (t) => {
  const { rx, start } = await configure(t);
  const first = await start();
  const [alice] = await occupy(t, first, rx);
  alice.send({ event: 'pusher:unsubscribe', data: { channel: PRESENCE } });
  alice.send({ event: 'pusher:unsubscribe', data: { channel: PUBLIC } });
  await roundTrip(alice);
  first.kill('SIGKILL');
  assert.deepEqual(await first.exited, { code: null, signal: 'SIGKILL' });
  assert.equal(rx.events().length, 4, 'the leaves were still waiting at the kill');

  const { node: second, sent } = await restartForLeaves(start, rx);
  assert.deepEqual([...sent.presence, ...sent.public], LEAVES('alice', 'bob'), 'alice left in the window; bob was cut off');
  await stop(second);

  await assertNothingLeft(start, rx, 8);
});

/** A real journal that also lists the occupancy changes it is given, as `+channel` / `-channel/user`. */
class ObservedJournal extends SqliteWebhookJournal {
  readonly changes: string[] = [];
  override occupy(appId: string, channel: string, userId: string | null): void {
    this.changes.push(`+${channel}${userId === null ? '' : `/${userId}`}`);
    super.occupy(appId, channel, userId);
  }
  override vacate(appId: string, channel: string, userId: string | null): void {
    this.changes.push(`-${channel}${userId === null ? '' : `/${userId}`}`);
    super.vacate(appId, channel, userId);
  }
}

/** An in-process node (its own backends) whose journal is observed; a presence join, leave and rejoin by Alice. */
async function rejoin(t: TestContext, backends: Backends) {
  const rx = await WebhookReceiver.start();
  t.after(() => rx.close());
  const dir = mkdtempSync(join(tmpdir(), 'herald-webhook-occupancy-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const journal = new ObservedJournal(join(dir, WEBHOOK_JOURNAL_FILE), pino({ level: 'silent' }));
  const webhooks = [{ url: rx.url(), events: ['channel_occupied', 'channel_vacated', 'member_added', 'member_removed'] }] as WebhookTarget[];
  const h = await startHerald({ apps: [{ webhooks }], backends: { ...backends, webhooks: { debounceMs: 3000, journal } } });
  let stopped = false;
  t.after(() => (stopped ? undefined : h.stop()));
  const alice = await member(t, h, 'alice', false);
  await rx.waitForEvents(2);
  alice.send({ event: 'pusher:unsubscribe', data: { channel: PRESENCE } });
  await roundTrip(alice);
  await member(t, h, 'alice', false);
  await roundTrip(alice);
  const afterRejoin = [...journal.changes];
  stopped = true;
  await h.stop();
  return { rx, journal, afterRejoin };
}

void test('a rejoin within the wait keeps the rows (the receiver never heard of the leave); the drain then removes them', async (t) => {
  const { rx, journal, afterRejoin } = await rejoin(t, {});
  assert.deepEqual(afterRejoin, [`+${PRESENCE}`, `+${PRESENCE}/alice`], 'written on the first join only');
  assert.deepEqual(journal.changes.slice(2).sort(), [`-${PRESENCE}`, `-${PRESENCE}/alice`], 'removed with the leaves the stop sent');
  assert.deepEqual(rx.events().map((e) => e.name), ['channel_occupied', 'member_added', 'member_removed', 'channel_vacated']);
});

void test('a cluster member (Redis state) keeps no occupancy: the surviving nodes send a dead node\'s leaves', async (t) => {
  if (!(await needRedis(t))) return;
  const prefix = uniquePrefix();
  t.after(() => deleteKeys(prefix));
  const { rx, journal } = await rejoin(t, createRedisBackends({ redis: REDIS_URL, prefix, log: pino({ level: 'silent' }) }));
  assert.deepEqual(journal.changes, []);
  assert.equal(rx.events().length, 4, 'its webhooks are sent as usual');
});
