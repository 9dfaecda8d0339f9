import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { HeraldServer } from '../../server/HeraldServer';
import { startHerald, testApp, type TestHerald } from '../helpers/herald';
import { RawClient, serverSdk } from '../helpers/clients';
import { WebhookReceiver } from '../helpers/WebhookReceiver';
import type { WebhookTarget } from '../../server/options/Options';

const TOKEN = 'a-console-token-of-some-length';

interface SseMessage {
  event: string;
  data: Record<string, unknown>;
}

/** Reads a server-sent events stream; `next` waits for the first unread message matching a predicate. */
class SseReader {
  private buffer = '';
  private readonly queue: SseMessage[] = [];
  private waiters: { match: (m: SseMessage) => boolean; resolve: (m: SseMessage) => void }[] = [];
  status = 0;
  private req!: http.ClientRequest;
  readonly ready: Promise<void>;

  constructor(url: string, headers: Record<string, string>) {
    this.ready = new Promise((resolve, reject) => {
      this.req = http.get(url, { headers }, (res) => {
        this.status = res.statusCode ?? 0;
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => this.feed(chunk));
        resolve();
      });
      this.req.on('error', reject);
    });
  }

  private feed(chunk: string): void {
    this.buffer += chunk;
    let i: number;
    while ((i = this.buffer.indexOf('\n\n')) >= 0) {
      const block = this.buffer.slice(0, i);
      this.buffer = this.buffer.slice(i + 2);
      const event = /^event: (.*)$/m.exec(block)?.[1];
      const data = /^data: (.*)$/m.exec(block)?.[1];
      if (!event || data === undefined) continue;
      const msg = { event, data: JSON.parse(data) as Record<string, unknown> };
      const w = this.waiters.findIndex((x) => x.match(msg));
      if (w >= 0) this.waiters.splice(w, 1)[0].resolve(msg);
      else this.queue.push(msg);
    }
  }

  next(match: (m: SseMessage) => boolean, timeoutMs = 5000): Promise<SseMessage> {
    const i = this.queue.findIndex(match);
    if (i >= 0) return Promise.resolve(this.queue.splice(i, 1)[0]);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('timed out waiting for a console message')), timeoutMs);
      this.waiters.push({ match, resolve: (m) => (clearTimeout(timer), resolve(m)) });
    });
  }

  logs(): SseMessage[] {
    return this.queue.filter((m) => m.event === 'log');
  }

  close(): void {
    this.req.destroy();
  }
}

const bearer = { authorization: `Bearer ${TOKEN}` };
const json = (body: unknown, headers: Record<string, string> = bearer) => ({
  method: 'POST',
  headers: { ...headers, 'content-type': 'application/json' },
  body: typeof body === 'string' ? body : JSON.stringify(body),
});

async function withConsole(t: { after: (fn: () => Promise<void>) => void }): Promise<TestHerald> {
  const h = await startHerald({ options: { adminToken: TOKEN }, apps: [{}, {}] });
  t.after(() => h.stop());
  return h;
}

test('without an admin token the console is off: 404', async (t) => {
  const h = await startHerald();
  t.after(() => h.stop());
  for (const path of ['/console', '/console/api/apps']) {
    const res = await fetch(`${h.baseUrl}${path}`);
    assert.equal(res.status, 404, path);
  }
});

test('the page and its files are served with a strict content security policy', async (t) => {
  const h = await withConsole(t);
  const page = await fetch(`${h.baseUrl}/console`);
  assert.equal(page.status, 200);
  assert.match(page.headers.get('content-type') ?? '', /^text\/html/);
  assert.match(page.headers.get('content-security-policy') ?? '', /script-src 'self'/);
  assert.match(await page.text(), /<title>Herald · Debug console<\/title>/);
  for (const [file, type] of [['console.js', /javascript/], ['console.css', /text\/css/]] as const) {
    const res = await fetch(`${h.baseUrl}/console/${file}`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', type);
  }
});

test('the API wants the token (Bearer, or the session cookie it is traded for)', async (t) => {
  const h = await withConsole(t);
  const none = await fetch(`${h.baseUrl}/console/api/apps`);
  assert.equal(none.status, 401);
  assert.deepEqual(await none.json(), { error: 'Missing or invalid admin token' });
  const wrong = await fetch(`${h.baseUrl}/console/api/apps`, { headers: { authorization: 'Bearer nope' } });
  assert.equal(wrong.status, 401);

  const ok = await fetch(`${h.baseUrl}/console/api/apps`, { headers: bearer });
  assert.equal(ok.status, 200);
  const { apps } = (await ok.json()) as { apps: Record<string, unknown>[] };
  assert.deepEqual(apps.map((a) => a.id), h.apps.map((a) => a.id));
  assert.ok(apps.every((a) => !('secret' in a)), 'secrets never leave the server');

  const badLogin = await fetch(`${h.baseUrl}/console/api/session`, json({ token: 'wrong' }, {}));
  assert.equal(badLogin.status, 401);
  const login = await fetch(`${h.baseUrl}/console/api/session`, json({ token: TOKEN }, {}));
  assert.equal(login.status, 204);
  const cookie = login.headers.get('set-cookie') ?? '';
  assert.match(cookie, /^herald_console=[0-9a-f]{64}; Path=\/console; HttpOnly; SameSite=Strict$/);
  assert.ok(!cookie.includes(TOKEN), 'the cookie does not carry the token');
  const viaCookie = await fetch(`${h.baseUrl}/console/api/apps`, { headers: { cookie: cookie.split(';')[0] } });
  assert.equal(viaCookie.status, 200);
  const forged = await fetch(`${h.baseUrl}/console/api/apps`, { headers: { cookie: `herald_console=${'0'.repeat(64)}` } });
  assert.equal(forged.status, 401);
});

test('trigger: publishes like the REST API; bad input gets a clear JSON error', async (t) => {
  const h = await withConsole(t);
  const c = await RawClient.connect(h);
  t.after(() => c.close());
  c.send({ event: 'pusher:subscribe', data: { channel: 'console-demo' } });
  await c.next('pusher_internal:subscription_succeeded');

  const url = `${h.baseUrl}/console/api/apps/${h.app.id}/trigger`;
  const ok = await fetch(url, json({ name: 'from-console', channels: ['console-demo'], data: '{"a":1}' }));
  assert.deepEqual([ok.status, await ok.json()], [200, { ok: true, channels: ['console-demo'] }]);
  assert.deepEqual((await c.next('from-console')).data, { a: 1 });

  const cases: [string | object, number, RegExp][] = [
    ['{not json', 400, /^Request body is not valid JSON$/],
    [{ channels: ['c'], data: '{}' }, 400, /name/],
    [{ name: 'e', channels: ['bad channel!'], data: '{}' }, 400, /channel/i],
    [{ name: 'e', channels: ['c'], data: 'x'.repeat(20000) }, 413, /limit is 10240/],
  ];
  for (const [body, status, message] of cases) {
    const res = await fetch(url, json(body));
    const answer = (await res.json()) as { error: string };
    assert.equal(res.status, status, JSON.stringify(answer));
    assert.match(answer.error, message);
  }
  const unknown = await fetch(`${h.baseUrl}/console/api/apps/nope/trigger`, json({ name: 'e', channels: ['c'], data: '' }));
  assert.equal(unknown.status, 404);
});

test('push-test answers 501 until the push module installs its hook', async (t) => {
  const h = await withConsole(t);
  const url = `${h.baseUrl}/console/api/apps/${h.app.id}/push-test`;
  const before = await fetch(url, json({ target: 'hello', title: 't', body: 'b' }));
  assert.deepEqual([before.status, await before.json()], [501, { error: 'push not configured' }]);
  h.server.debugConsole.pushTest = async (app, body) => ({ app: app.id, target: body.target });
  const after = await fetch(url, json({ target: 'hello' }));
  assert.deepEqual([after.status, await after.json()], [200, { ok: true, result: { app: h.app.id, target: 'hello' } }]);
});

test('the event stream carries counts and a live log of connections, subscriptions and API messages', async (t) => {
  const h = await withConsole(t);
  // Activity before any console is open is not recorded.
  await serverSdk(h).trigger('early', 'unseen', {});
  const sse = new SseReader(`${h.baseUrl}/console/api/apps/${h.app.id}/events`, bearer);
  t.after(() => sse.close());
  await sse.ready;
  assert.equal(sse.status, 200);
  const stats = await sse.next((m) => m.event === 'stats');
  assert.deepEqual(stats.data, { connections: 0, channels: 0, webhooks: { queued: 0, sent: 0, failed: 0, dropped: 0, expired: 0, depth: 0, inFlight: 0 } });

  const c = await RawClient.connect(h);
  t.after(() => c.close());
  c.send({ event: 'pusher:subscribe', data: { channel: 'watched' } });
  await c.next('pusher_internal:subscription_succeeded');
  await serverSdk(h).trigger('watched', 'shown', { hello: 'console' });

  const connectedEntry = await sse.next((m) => m.data.kind === 'connected');
  assert.equal(connectedEntry.data.socketId, c.socketId);
  assert.equal((await sse.next((m) => m.data.kind === 'subscribed')).data.channel, 'watched');
  assert.equal((await sse.next((m) => m.data.kind === 'occupied')).data.channel, 'watched');
  const api = await sse.next((m) => m.data.kind === 'api_message');
  assert.deepEqual([api.data.channel, api.data.event, api.data.data], ['watched', 'shown', '{"hello":"console"}']);
  assert.ok(!sse.logs().some((m) => m.data.event === 'unseen'));

  const other = new SseReader(`${h.baseUrl}/console/api/apps/${h.app.id}/events`, { authorization: 'Bearer wrong' });
  await other.ready;
  assert.equal(other.status, 401);
  other.close();
});

test('stats: the counts of the event stream as JSON, with this node\'s webhook counters; the log has each webhook request', async (t) => {
  const rx = await WebhookReceiver.start();
  t.after(() => rx.close());
  rx.respond = (_r, n) => (n === 0 ? 500 : 200);
  const target = { url: rx.url(), events: ['channel_occupied'] } as WebhookTarget;
  const h = await startHerald({ options: { adminToken: TOKEN }, apps: [{ webhooks: [target] }], backends: { webhooks: { backoff: { baseMs: 20 } } } });
  t.after(() => h.stop());
  const url = `${h.baseUrl}/console/api/apps/${h.app.id}/stats`;
  assert.equal((await fetch(url)).status, 401);
  assert.equal((await fetch(`${h.baseUrl}/console/api/apps/nope/stats`, { headers: bearer })).status, 404);
  const sse = new SseReader(`${h.baseUrl}/console/api/apps/${h.app.id}/events`, bearer);
  t.after(() => sse.close());
  await sse.ready;

  const c = await RawClient.connect(h);
  t.after(() => c.close());
  c.send({ event: 'pusher:subscribe', data: { channel: 'hooked' } });
  await c.next('pusher_internal:subscription_succeeded');
  await rx.waitForEvents(1);
  await h.server.webhooks.sender.idle();
  const res = await fetch(url, { headers: bearer });
  assert.equal(res.status, 200);
  assert.deepEqual(await res.json(), {
    connections: 1,
    channels: 1,
    webhooks: { queued: 1, sent: 1, failed: 1, dropped: 0, expired: 0, depth: 0, inFlight: 0 },
  });

  // One entry per request: the 500, then the retry that got through.
  const webhooks = [await sse.next((m) => m.data.kind === 'webhook'), await sse.next((m) => m.data.kind === 'webhook')].map((m) => m.data);
  assert.deepEqual(webhooks.map((e) => e.channel), ['hooked', 'hooked']);
  const failed = String(webhooks[0].detail);
  assert.ok(failed.startsWith(`webhook to ${rx.url()} failed: `), failed);
  assert.match(failed, /failed: answered 500, 1 event, attempt 1; retry in \d+ ms$/);
  assert.equal(webhooks[1].detail, `webhook to ${rx.url()} delivered: answered 200, 1 event, attempt 2`);
  assert.ok(Number(webhooks[0].id) < Number(webhooks[1].id));
});

test('refused console requests are logged once each', async (t) => {
  const lines: string[] = [];
  const log = pino({ level: 'info' }, { write: (s: string) => void lines.push(s) });
  const dataDir = mkdtempSync(join(tmpdir(), 'herald-console-log-'));
  const app = testApp();
  const server = new HeraldServer(
    { host: '127.0.0.1', port: 0, dataDir, logLevel: 'info', activityTimeout: 30, pongTimeout: 30, maxMessageBytes: 65536, maxRequestBytes: 1048576, shutdownGraceMs: 2000, adminToken: TOKEN, apps: [app] },
    log,
  );
  const { port } = await server.start();
  t.after(async () => {
    await server.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });
  const base = `http://127.0.0.1:${port}`;
  assert.equal((await fetch(`${base}/console/api/apps`, { headers: { authorization: 'Bearer wrong' } })).status, 401);
  assert.equal((await fetch(`${base}/console/api/apps/${app.id}/trigger`, json('{oops'))).status, 400);
  const refused = lines.map((l) => JSON.parse(l) as { msg: string; status?: number; reason?: string }).filter((l) => l.msg === 'console request refused');
  assert.deepEqual(refused.map((l) => [l.status, l.reason]), [
    [401, 'Missing or invalid admin token'],
    [400, 'Request body is not valid JSON'],
  ]);
});
