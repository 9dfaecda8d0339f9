/**
 * Seeded random input against real nodes: WebSocket frames built from the protocol's own vocabulary (valid
 * signatures on a share of them, so presence joins, sign-ins and client events go deep) and signed REST
 * requests with odd bodies and queries. What must hold afterwards, whatever was sent:
 * - every frame the server sent parses and names an event; every error carries a code from the table;
 * - no socket was closed except with a code the protocol defines;
 * - a neighbour that sent nothing saw nothing but its own event, and still gets the next one;
 * - REST answers a 2xx or an error status with a JSON `error`, never a 500;
 * - once the fuzzing sockets are gone, no channel and no presence member is left, and the webhooks add up
 *   (see webhookProblems).
 * A failure prints the seed; HERALD_FUZZ_SEED=<seed> replays it.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { ERRORS } from '../../server/errors';
import { channelAuthString, userAuthString } from '../../sdk/protocol';
import { hmacSha256Hex } from '../../sdk/protocol/node/hmac';
import type { AppOptions } from '../../server/options/Options';
import { startHerald, type TestHerald } from '../helpers/herald';
import { startCluster } from '../helpers/cluster';
import { RawClient, roundTrip, serverSdk, signedFetch } from '../helpers/clients';
import { WebhookReceiver } from '../helpers/WebhookReceiver';
import { Pick, checkAnswer, fuzzSeed, oddValue } from '../helpers/fuzz';

const FRAMES = 2500;
const FUZZ_SOCKETS = 12;
const REST_REQUESTS = 600;

const CHANNELS = [
  'public-a', 'cache-a', 'private-a', 'private-cache-a', 'private-encrypted-a', 'presence-a', 'presence-b',
  'presence-cache-a', '#server-to-user-u1', '', ' ', 'bad name', 'presence-', 'private-', '__proto__',
  'constructor', 'hasOwnProperty', 'toString', 'x'.repeat(201), 'é', 'presence-__proto__', 'private-constructor',
];
const USER_IDS: unknown[] = ['u1', 'u2', 'u3', '__proto__', 'constructor', '', ' ', 7, null, {}, 'x'.repeat(300), 'a b'];
const EVENTS: unknown[] = [
  'pusher:subscribe', 'pusher:subscribe', 'pusher:subscribe', 'pusher:unsubscribe', 'pusher:unsubscribe', 'pusher:ping',
  'pusher:pong', 'pusher:signin', 'pusher:signin', 'client-typing', 'client-typing', 'client-', 'client-' + 'x'.repeat(250),
  'pusher_internal:subscription_succeeded', 'pusher:error', 'whatever', '', 42, null, ['pusher:subscribe'],
];
const ODD_TEXT = ['{', '[]', 'null', '"x"', '1e999', '{"event":"pusher:subscribe","data":', '\u0000', '{}'.repeat(50)];

/** Odd values drawn partly from the protocol's own names. */
function odd(p: Pick): unknown {
  return oddValue(p, [...CHANNELS, ...USER_IDS]);
}

function presenceData(p: Pick): string {
  if (p.chance(0.15)) return JSON.stringify(odd(p));
  const member: Record<string, unknown> = { user_id: p.one(USER_IDS) };
  if (p.chance(0.6)) member.user_info = p.chance(0.7) ? { name: p.one(['Ann', 'Bob', 'ü']) } : odd(p);
  return JSON.stringify(member);
}

function sign(app: AppOptions, text: string): string {
  return `${app.key}:${hmacSha256Hex(app.secret, text)}`;
}

/** One frame: mostly well-formed JSON with odd values, a share properly signed so it gets past auth. */
function fuzzFrame(p: Pick, app: AppOptions, socketId: string): string {
  if (p.chance(0.05)) return p.one(ODD_TEXT);
  const event = p.one(EVENTS);
  const channel = p.one(CHANNELS);
  let data: unknown;
  if (event === 'pusher:subscribe' && p.chance(0.85)) {
    const d: Record<string, unknown> = { channel };
    const channelData = channel.startsWith('presence-') || p.chance(0.1) ? presenceData(p) : undefined;
    if (channelData !== undefined) d.channel_data = channelData;
    d.auth = p.chance(0.7) ? sign(app, channelAuthString(socketId, channel, channelData)) : odd(p);
    data = d;
  } else if (event === 'pusher:signin' && p.chance(0.8)) {
    const userData = p.chance(0.8) ? JSON.stringify({ id: p.one(USER_IDS), watchlist: p.chance(0.5) ? p.some(['u1', 'u2', 'u3', 'nobody'], 3) : p.chance(0.3) ? odd(p) : undefined }) : String(odd(p));
    data = { user_data: userData, auth: p.chance(0.7) ? sign(app, userAuthString(socketId, userData)) : odd(p) };
  } else if (event === 'pusher:unsubscribe' && p.chance(0.8)) {
    data = { channel };
  } else {
    data = odd(p);
  }
  // pusher-js sends `data` as an object; older clients sent it as a JSON string, which must work the same.
  if (data !== undefined && typeof data === 'object' && p.chance(0.2)) data = JSON.stringify(data);
  const frame: Record<string, unknown> = { event, data };
  if ((typeof event === 'string' && event.startsWith('client-')) || p.chance(0.1)) frame.channel = p.chance(0.9) ? channel : odd(p);
  return JSON.stringify(frame);
}

const PROTOCOL_CODES = new Set<number>(Object.values(ERRORS).flatMap((e): number[] => (e.pusherCode === null ? [] : [e.pusherCode])));

/** A socket that records everything and checks each frame's shape as it arrives. */
class Recorder {
  readonly ws: WebSocket;
  readonly problems: string[] = [];
  /** How many frames of each event this socket received. */
  readonly seen = new Map<string, number>();
  closeCode: number | null = null;
  socketId = '';
  readonly ready: Promise<void>;
  readonly closed: Promise<void>;

  constructor(url: string) {
    this.ws = new WebSocket(url);
    this.ws.on('error', () => undefined);
    this.ready = new Promise((resolve) => {
      this.ws.on('message', (raw: Buffer) => {
        let msg: { event?: unknown; data?: unknown };
        try {
          msg = JSON.parse(raw.toString()) as { event?: unknown; data?: unknown };
        } catch {
          this.problems.push(`not JSON: ${raw.toString().slice(0, 120)}`);
          return;
        }
        if (typeof msg.event !== 'string') this.problems.push(`no event name: ${raw.toString().slice(0, 120)}`);
        else this.seen.set(msg.event, (this.seen.get(msg.event) ?? 0) + 1);
        const data = typeof msg.data === 'string' ? safeParse(msg.data) : msg.data;
        if (msg.event === 'pusher:connection_established') {
          this.socketId = (data as { socket_id: string }).socket_id;
          resolve();
        }
        if (msg.event === 'pusher:error' || msg.event === 'pusher:subscription_error') {
          const code = (data as { code?: unknown } | null)?.code;
          // A subscription error may carry no code (pusher-js reads `status`); a pusher:error always has one.
          if (code !== undefined && code !== null) {
            if (typeof code !== 'number' || !PROTOCOL_CODES.has(code)) this.problems.push(`unknown error code ${String(code)}`);
          } else if (msg.event === 'pusher:error') this.problems.push(`pusher:error without a code: ${raw.toString().slice(0, 120)}`);
        }
      });
    });
    this.closed = new Promise((resolve) =>
      this.ws.on('close', (code) => {
        this.closeCode = code;
        resolve();
      }),
    );
  }
}

function safeParse(s: string): unknown {
  try {
    return JSON.parse(s);
  } catch {
    return s;
  }
}

/**
 * Runs the WebSocket storm against `nodes` (sockets spread over them), then checks what must hold. The
 * neighbour sits on `nodes[0]`, subscribed to `public-shared`, which nothing in the storm names.
 */
async function webSocketStorm(t: TestContext, nodes: TestHerald[], app: AppOptions, receiver: WebhookReceiver): Promise<void> {
  const p = new Pick(fuzzSeed(t));
  const neighbour = await RawClient.connect(nodes[0], { key: app.key });
  t.after(() => neighbour.close());
  neighbour.send({ event: 'pusher:subscribe', data: { channel: 'public-shared' } });
  await neighbour.next('pusher_internal:subscription_succeeded');
  // subscriptionCount is on: its own join is counted to it; after this, nothing more may come until its event.
  await neighbour.next('pusher_internal:subscription_count');

  const sockets = Array.from({ length: FUZZ_SOCKETS }, (_, i) => new Recorder(RawClient.url(nodes[i % nodes.length], app.key)));
  t.after(() => sockets.forEach((s) => s.ws.terminate()));
  await Promise.all(sockets.map((s) => s.ready));
  for (let i = 0; i < FRAMES; i++) {
    const s = p.one(sockets);
    if (s.closeCode !== null || s.ws.readyState !== WebSocket.OPEN) continue;
    s.ws.send(fuzzFrame(p, app, s.socketId));
    // Let the server answer now and then, so replies interleave with later frames as they would live.
    if (i % 100 === 99) await new Promise((resolve) => setImmediate(resolve));
  }
  // Every socket still open answers a ping, so everything sent before it has been handled.
  const open = sockets.filter((s) => s.ws.readyState === WebSocket.OPEN);
  await Promise.all(
    open.map(
      (s) =>
        new Promise<void>((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error(`socket ${s.socketId} did not answer a ping after the storm`)), 10_000);
          s.ws.on('message', (raw: Buffer) => {
            if (raw.toString().includes('"pusher:pong"')) {
              clearTimeout(timer);
              resolve();
            }
          });
          s.ws.send('{"event":"pusher:ping","data":{}}');
        }),
    ),
  );
  const problems = sockets.flatMap((s) => s.problems);
  assert.deepEqual(problems, [], 'every frame sent parses, names an event and carries a known code');
  const closes = sockets.filter((s) => s.closeCode !== null).map((s) => s.closeCode as number);
  assert.deepEqual(closes.filter((c) => !PROTOCOL_CODES.has(c) && c !== 1009), [], 'sockets closed only with protocol codes');
  // The storm went deep, not just into the error paths: signed subscriptions, sign-ins, presence and
  // client events all happened.
  const seen = new Map<string, number>();
  for (const s of sockets) for (const [event, n] of s.seen) seen.set(event, (seen.get(event) ?? 0) + n);
  t.diagnostic(`received ${JSON.stringify(Object.fromEntries(seen))}; closed with ${JSON.stringify(closes)}`);
  for (const event of ['pusher:error', 'pusher:subscription_error', 'pusher_internal:subscription_succeeded', 'pusher:signin_success', 'pusher_internal:member_added', 'client-typing']) {
    assert.ok((seen.get(event) ?? 0) > 0, `the storm produced ${event}`);
  }

  // The neighbour heard nothing of it and still gets its events.
  await roundTrip(neighbour);
  assert.deepEqual(neighbour.pending(), [], `the neighbour saw none of the storm: ${JSON.stringify(neighbour.pending()).slice(0, 300)}`);
  await serverSdk(nodes[0], app).trigger('public-shared', 'after-storm', { ok: true });
  assert.deepEqual((await neighbour.next('after-storm')).data, { ok: true });

  // Something got deep: a presence channel had members during the storm (seen through the webhooks).
  await receiver.waitFor(() => receiver.events().some((e) => e.name === 'member_added'), 'a member_added webhook');

  // Once the storm's sockets are gone, nothing of theirs is left, on any node.
  for (const s of sockets) s.ws.close();
  await Promise.all(sockets.map((s) => s.closed));
  const sdk = serverSdk(nodes[nodes.length - 1], app);
  const deadline = Date.now() + 10_000;
  let left: Record<string, unknown> = {};
  do {
    const res = await sdk.get({ path: '/channels' });
    left = ((await res.json()) as { channels: Record<string, unknown> }).channels;
    if (Object.keys(left).length === 1) break;
    await new Promise((resolve) => setTimeout(resolve, 100));
  } while (Date.now() < deadline);
  assert.deepEqual(Object.keys(left), ['public-shared'], 'only the neighbour\'s channel is left');
  for (const channel of CHANNELS.filter((c) => c.startsWith('presence-') && c.length > 'presence-'.length)) {
    const res = await sdk.get({ path: `/channels/${channel}/users` });
    assert.equal(res.status, 200);
    assert.deepEqual(((await res.json()) as { users: unknown[] }).users, [], `${channel} has no members left`);
  }
  await receiver.waitFor(() => webhookProblems(receiver.events()).length === 0, 'the webhooks to settle', 15_000).catch(() => undefined);
  assert.deepEqual(webhookProblems(receiver.events()), [], 'what the webhooks told the receiver');
}

/**
 * What the webhooks told a receiver, per channel and per presence member, that does not add up: on one node
 * and in a cluster alike, every join is matched by exactly one leave (a rejoin on another node straight
 * after a leave finds the leave's mark, set with the leave itself), and the last word is the leave.
 */
function webhookProblems(events: Record<string, unknown>[]): string[] {
  const net = new Map<string, number>();
  const last = new Map<string, string>();
  for (const e of events) {
    if (e.channel === 'public-shared') continue;
    const join = e.name === 'channel_occupied' || e.name === 'member_added';
    const leave = e.name === 'channel_vacated' || e.name === 'member_removed';
    if (!join && !leave) continue;
    const key = e.name === 'channel_occupied' || e.name === 'channel_vacated' ? `channel ${String(e.channel)}` : `member ${String(e.channel)} ${String(e.user_id)}`;
    net.set(key, (net.get(key) ?? 0) + (join ? 1 : -1));
    last.set(key, e.name as string);
  }
  const problems: string[] = [];
  for (const [key, n] of net) {
    if (n !== 0) problems.push(`${key}: ${n > 0 ? `${n} more joins than leaves` : `${-n} more leaves than joins`}`);
    const word = last.get(key);
    if (word === 'channel_occupied' || word === 'member_added') problems.push(`${key}: the last word is ${word}`);
  }
  return problems;
}

function webhookApp(receiver: WebhookReceiver): Partial<AppOptions> {
  return {
    clientEvents: true,
    subscriptionCount: true,
    watchlist: true,
    webhooks: [{ url: receiver.url(), events: ['channel_occupied', 'channel_vacated', 'member_added', 'member_removed'], batch: false }],
  };
}

test('fuzz: random frames on one node leave no state behind and never reach a neighbour', async (t) => {
  const receiver = await WebhookReceiver.start();
  t.after(() => receiver.close());
  const h = await startHerald({ apps: [webhookApp(receiver)] });
  t.after(() => h.stop());
  await webSocketStorm(t, [h], h.app, receiver);
});

test('fuzz: random frames across two nodes on Redis leave no state behind on either', async (t) => {
  const receiver = await WebhookReceiver.start();
  t.after(() => receiver.close());
  const cluster = await startCluster(t, 2, { app: webhookApp(receiver) });
  if (!cluster) return;
  await webSocketStorm(t, cluster.nodes, cluster.app, receiver);
});

test('fuzz: signed REST requests with random bodies and queries get a 2xx or a table error, never a 500', async (t) => {
  const p = new Pick(fuzzSeed(t));
  const h = await startHerald({ apps: [{ maxRestRequestsPerSecond: -1, maxBackendEventsPerSecond: -1 }] });
  t.after(() => h.stop());
  const listener = await RawClient.connect(h);
  t.after(() => listener.close());
  listener.send({ event: 'pusher:subscribe', data: { channel: 'public-a' } });
  await listener.next('pusher_internal:subscription_succeeded');

  const statuses = new Map<number, number>();
  for (let i = 0; i < REST_REQUESTS; i++) {
    const route = p.int(6);
    let res: Response;
    if (route <= 2) {
      const event: Record<string, unknown> = p.chance(0.8)
        ? { name: p.chance(0.8) ? 'ev' : odd(p), data: p.chance(0.5) ? JSON.stringify(odd(p)) : odd(p) }
        : (odd(p) as Record<string, unknown>);
      if (event !== null && typeof event === 'object' && !Array.isArray(event)) {
        if (p.chance(0.5)) event.channels = p.chance(0.8) ? p.some(CHANNELS, 3) : odd(p);
        else event.channel = p.chance(0.8) ? p.one(CHANNELS) : odd(p);
        if (p.chance(0.2)) event.socket_id = p.chance(0.5) ? '123.456' : odd(p);
        if (p.chance(0.2)) event.info = p.one(['user_count', 'subscription_count', 'bogus', '', 5]);
        if (p.chance(0.1)) event.push = odd(p);
      }
      const body = route === 2 ? JSON.stringify({ batch: p.chance(0.8) ? [event, event] : odd(p) }) : p.chance(0.05) ? p.one(ODD_TEXT) : JSON.stringify(event);
      res = await signedFetch(h, 'POST', `/apps/${h.app.id}/${route === 2 ? 'batch_events' : 'events'}`, body);
    } else {
      const channel = encodeURIComponent(p.one(CHANNELS.filter((c) => c.length > 0)));
      const path = p.one([`/apps/${h.app.id}/channels`, `/apps/${h.app.id}/channels/${channel}`, `/apps/${h.app.id}/channels/${channel}/users`]);
      const extra: Record<string, string> = {};
      if (p.chance(0.6)) extra.info = p.one(['user_count', 'subscription_count', 'cache', 'user_count,subscription_count', 'bogus', '', ',,']);
      if (p.chance(0.5)) extra.filter_by_prefix = p.one(['presence-', 'private-', '', '__proto__']);
      res = await signedFetch(h, 'GET', path, null, extra);
    }
    statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
    checkAnswer('REST', res.status, await res.json());
  }
  t.diagnostic(`statuses ${JSON.stringify(Object.fromEntries(statuses))}`);
  assert.ok((statuses.get(200) ?? 0) > 0 && (statuses.get(400) ?? 0) > 0, 'the storm reached both success and error paths');
  await roundTrip(listener);
  await serverSdk(h).trigger('public-a', 'after-storm', { ok: true });
  await listener.next('after-storm');
});
