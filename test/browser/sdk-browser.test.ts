/**
 * The browser SDK (sdk/browser/dist/herald.js) in real headless Chromium against a real Herald: connect,
 * subscribe, presence between two pages, client events, reconnect after a server restart, encrypted
 * channels (with the key re-fetched once on a decrypt failure), sign-in with server-to-user events and
 * watchlist, refusal codes, activity pings and pong timeouts, offline/online.
 *
 * In-page code is passed as strings: it runs in the browser, not in Node, and uses the page's globals
 * (`Herald`, `client()`, `record()`, `events`).
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import type { BrowserContext, Page } from 'playwright-core';
import { WebSocketServer } from 'ws';
import type { AddressInfo } from 'node:net';
import { Herald as ServerSdk } from '../../sdk/server';
import { startHerald, type StartOptions, type TestHerald } from '../helpers/herald';
import type { AppOptions } from '../../server/options/Options';
import { ensureBrowserBundle, form, json, launchBrowser, openPage, servePages, type PageServer } from '../sdk/helpers/browser';

const MASTER_KEY = 'nxzvbGF+f8FGhk/jOaZvgMle1tqxzF/VfUZLBLhhaH0=';
const WRONG_KEY = Buffer.alloc(32, 7).toString('base64');
const T = { timeout: 60_000 };

interface Env {
  h: TestHerald;
  sdk: ServerSdk;
  browser: BrowserContext;
  site: PageServer;
  /** Starts a replacement Herald on the same port (the old one must be stopped). */
  restart(): Promise<void>;
}

/** The test page: the bundle, the encryption module, and small helpers the tests' scripts use. */
function testPage(key: string, port: number): string {
  return `<!doctype html><meta charset="utf-8"><title>herald sdk test</title>
<script src="/dist/herald.js"></script>
<script src="/dist/herald-encryption.js"></script>
<script>
  window.events = [];
  window.record = (ev, data) => window.events.push(Object.assign({ ev }, data || {}));
  window.client = (opts) => {
    const h = new Herald(${JSON.stringify(key)}, Object.assign({ host: '127.0.0.1', port: ${port}, tls: false, authEndpoint: '/auth' }, opts || {}, { autoConnect: false }));
    h.connection.bind('state_change', (s) => record('state', s));
    h.connect();
    return h;
  };
</script>`;
}

async function setup(t: TestContext, apps: Partial<AppOptions>[] = [{ clientEvents: true, watchlist: true }], start: StartOptions = {}): Promise<Env | null> {
  ensureBrowserBundle();
  const browser = await launchBrowser(t);
  if (!browser) return null;
  let h = await startHerald({ apps, ...start });
  const app = h.app;
  const sdk = new ServerSdk({ appId: app.id, key: app.key, secret: app.secret, host: h.host, port: h.port, encryptionMasterKeyBase64: MASTER_KEY });
  const wrongSdk = new ServerSdk({ appId: app.id, key: app.key, secret: app.secret, encryptionMasterKeyBase64: WRONG_KEY });
  let authCalls = 0;
  const site = await servePages(t, { '/': testPage(app.key, h.port) }, {
    // An app's auth endpoint: the user comes from the query (?user=), as in a demo.
    '/auth': (req, body, res) => {
      const q = new URL(req.url ?? '/', 'http://x').searchParams;
      const { socket_id, channel_name } = form(body);
      authCalls++;
      if (q.get('deny')) return json(res, 403, { error: 'no' });
      const user = q.get('user') ?? 'anon';
      if (channel_name.startsWith('presence-')) {
        // ?signedin=1: no channel_data, the server uses the signed-in user.
        if (q.get('signedin')) return json(res, 200, { auth: sdk.authorizeChannel(socket_id, channel_name).auth });
        return json(res, 200, sdk.authorizeChannel(socket_id, channel_name, { user_id: user, user_info: { name: user.toUpperCase() } }));
      }
      // ?badkey=1: the first key handed out is wrong, as after a master-key rotation.
      if (q.get('badkey') && authCalls === 1) return json(res, 200, wrongSdk.authorizeChannel(socket_id, channel_name));
      return json(res, 200, sdk.authorizeChannel(socket_id, channel_name));
    },
    '/user-auth': (req, body, res) => {
      const q = new URL(req.url ?? '/', 'http://x').searchParams;
      const watch = q.get('watch');
      json(res, 200, sdk.authenticateUser(form(body).socket_id, { id: q.get('user') ?? 'anon', user_info: { name: q.get('user') }, ...(watch ? { watchlist: watch.split(',') } : {}) }));
    },
    '/auth-calls': (_req, _body, res) => json(res, 200, { authCalls }),
  });
  const env: Env = {
    h,
    sdk,
    browser,
    site,
    async restart() {
      h = await startHerald({ apps: [app], options: { port: env.h.port } });
      env.h = h;
    },
  };
  t.after(async () => {
    sdk.close();
    wrongSdk.close();
    await env.h.stop();
  });
  return env;
}

/** Waits until the page recorded an event matching `where` (a JS expression over `e`), and returns it. */
async function waitEv<T = Record<string, unknown>>(page: Page, where: string, timeout = 15_000): Promise<T> {
  const handle = await page.waitForFunction(`window.events.find((e) => ${where})`, undefined, { timeout });
  return (await handle.jsonValue()) as T;
}

async function states(page: Page): Promise<string[]> {
  return page.evaluate(`window.events.filter((e) => e.ev === 'state').map((e) => e.current)`);
}

void test('connects, subscribes and receives events triggered by the server SDK', T, async (t) => {
  const env = await setup(t);
  if (!env) return;
  const page = await openPage(env.browser, env.site.url);
  await page.evaluate(`
    window.h = client();
    const ch = h.subscribe('news');
    ch.bind('pusher:subscription_succeeded', () => record('subscribed'));
    ch.bind('update', (data) => record('update', { data }));
    h.bind('update', (data) => record('global-update', { data }));
    h.bind_global((event, data) => event === 'update' && record('bind_global', { event }));
  `);
  await waitEv(page, `e.ev === 'subscribed'`);
  assert.deepEqual(await states(page), ['connecting', 'connected']);
  assert.match(await page.evaluate<string>(`h.connection.socket_id`), /^\d+\.\d+$/);
  await env.sdk.trigger('news', 'update', { n: 1, text: 'héllo' });
  assert.deepEqual((await waitEv<{ data: unknown }>(page, `e.ev === 'update'`)).data, { n: 1, text: 'héllo' });
  await waitEv(page, `e.ev === 'global-update'`);
  await waitEv(page, `e.ev === 'bind_global'`);

  // unsubscribe stops delivery; the channel is gone from the server.
  await page.evaluate(`h.unsubscribe('news')`);
  await page.waitForFunction(`!h.channel('news')`);
  for (let i = 0; i < 50 && (await env.sdk.getChannel('news')).occupied; i++) await new Promise((r) => setTimeout(r, 50));
  assert.equal((await env.sdk.getChannel('news')).occupied, false);

  // disconnect() is final until connect().
  await page.evaluate(`h.disconnect()`);
  await waitEv(page, `e.ev === 'state' && e.current === 'disconnected'`);
});

void test('presence between two pages: members, me, member_added/removed and client events', T, async (t) => {
  const env = await setup(t);
  if (!env) return;
  const alice = await openPage(env.browser, env.site.url);
  const bob = await openPage(env.browser, env.site.url);
  const join = (user: string) => `
    window.h = client({ authEndpoint: '/auth?user=${user}' });
    window.room = h.subscribe('presence-room');
    room.bind('pusher:subscription_succeeded', (m) => record('joined', { count: m.count, me: m.me, ids: Object.keys(m.members).sort() }));
    room.bind('pusher:member_added', (m) => record('added', m));
    room.bind('pusher:member_removed', (m) => record('removed', m));
    room.bind('client-typing', (data, meta) => record('typing', { data, meta }));
  `;
  await alice.evaluate(join('alice'));
  const a = await waitEv<{ count: number; me: unknown }>(alice, `e.ev === 'joined'`);
  assert.deepEqual(a, { ev: 'joined', count: 1, me: { id: 'alice', info: { name: 'ALICE' } }, ids: ['alice'] });
  await bob.evaluate(join('bob'));
  const b = await waitEv(bob, `e.ev === 'joined'`);
  assert.deepEqual(b, { ev: 'joined', count: 2, me: { id: 'bob', info: { name: 'BOB' } }, ids: ['alice', 'bob'] });
  assert.deepEqual(await waitEv(alice, `e.ev === 'added'`), { ev: 'added', id: 'bob', info: { name: 'BOB' } });
  assert.equal(await alice.evaluate(`room.members.count`), 2);
  assert.deepEqual(await alice.evaluate(`(() => { const ids = []; room.members.each((m) => ids.push(m.id)); return ids.sort(); })()`), ['alice', 'bob']);
  assert.deepEqual(await alice.evaluate(`room.members.get('bob')`), { id: 'bob', info: { name: 'BOB' } });

  // Client events reach the other member with the sender's id, never the sender.
  assert.equal(await bob.evaluate(`room.trigger('client-typing', { typing: true })`), true);
  assert.deepEqual(await waitEv(alice, `e.ev === 'typing'`), { ev: 'typing', data: { typing: true }, meta: { user_id: 'bob' } });
  await assert.rejects(bob.evaluate(`room.trigger('typing', {})`), /must start with client-/);
  await assert.rejects(bob.evaluate(`h.subscribe('news').trigger('client-x', {})`), /private- or presence-/);
  assert.equal(await bob.evaluate(`events.filter((e) => e.ev === 'typing').length`), 0);

  await bob.close();
  assert.deepEqual(await waitEv(alice, `e.ev === 'removed'`), { ev: 'removed', id: 'bob', info: { name: 'BOB' } });
  assert.equal(await alice.evaluate(`room.members.count`), 1);
});

void test('a failed channel authorization is a subscription_error with the status', T, async (t) => {
  const env = await setup(t);
  if (!env) return;
  const page = await openPage(env.browser, env.site.url);
  await page.evaluate(`
    window.h = client({ authEndpoint: '/auth?deny=1' });
    h.subscribe('private-x').bind('pusher:subscription_error', (e) => record('sub-error', e));
  `);
  const e = await waitEv<{ type: string; status: number }>(page, `e.ev === 'sub-error'`);
  assert.equal(e.type, 'AuthError');
  assert.equal(e.status, 403);
  await assert.rejects(page.evaluate(`h.subscribe('bad name!')`), /may contain only/);
});

void test('reconnects after the server restarts and subscribes again', T, async (t) => {
  const env = await setup(t);
  if (!env) return;
  const page = await openPage(env.browser, env.site.url);
  await page.evaluate(`
    window.h = client({ authEndpoint: '/auth?user=carol' });
    h.subscribe('news').bind('update', (d) => record('update', { data: d }));
    const room = h.subscribe('presence-room');
    room.bind('pusher:subscription_succeeded', (m) => record('joined', { count: m.count }));
  `);
  await waitEv(page, `e.ev === 'joined'`);
  await env.h.stop();
  await waitEv(page, `e.ev === 'state' && e.current === 'connecting'`);
  await env.restart();
  await page.waitForFunction(`events.filter((e) => e.ev === 'joined').length === 2`, undefined, { timeout: 20_000 });
  assert.deepEqual(await states(page), ['connecting', 'connected', 'connecting', 'connected']);
  assert.deepEqual((await env.sdk.getUsers('presence-room')).users, [{ id: 'carol' }]);
  for (let i = 0; i < 50 && !(await env.sdk.getChannel('news')).occupied; i++) await new Promise((r) => setTimeout(r, 50));
  await env.sdk.trigger('news', 'update', { after: 'restart' });
  assert.deepEqual((await waitEv<{ data: unknown }>(page, `e.ev === 'update'`)).data, { after: 'restart' });
});

void test('encrypted channels decrypt, and a wrong key is re-fetched once', T, async (t) => {
  const env = await setup(t);
  if (!env) return;
  const page = await openPage(env.browser, env.site.url);
  await page.evaluate(`
    window.h = client({ authEndpoint: '/auth?badkey=1' });
    const ch = h.subscribe('private-encrypted-vault');
    ch.bind('pusher:subscription_succeeded', () => record('subscribed'));
    ch.bind('secret', (data) => record('secret', { data }));
  `);
  await waitEv(page, `e.ev === 'subscribed'`);
  // The first key was wrong: the event is decrypted after one more call to the auth endpoint.
  await env.sdk.trigger('private-encrypted-vault', 'secret', { pin: '1234', note: 'ünïcode 🦊' });
  assert.deepEqual((await waitEv<{ data: unknown }>(page, `e.ev === 'secret'`)).data, { pin: '1234', note: 'ünïcode 🦊' });
  const calls = (await (await fetch(`${env.site.url}/auth-calls`)).json()) as { authCalls: number };
  assert.equal(calls.authCalls, 2);
  await env.sdk.trigger('private-encrypted-vault', 'secret', 'plain string');
  await page.waitForFunction(`events.filter((e) => e.ev === 'secret').length === 2`);
  assert.equal(await page.evaluate(`events.filter((e) => e.ev === 'secret')[1].data`), 'plain string');
  assert.equal(((await (await fetch(`${env.site.url}/auth-calls`)).json()) as { authCalls: number }).authCalls, 2, 'the good key is kept');
  await assert.rejects(page.evaluate(`h.channel('private-encrypted-vault').trigger('client-x', {})`), /not supported on encrypted/);

  // Without the encryption module the subscription fails clearly instead of delivering ciphertext.
  const bare = await openPage(env.browser, `${env.site.url}/`);
  await bare.evaluate(`
    Herald.encryption = undefined;
    window.h = client();
    h.subscribe('private-encrypted-vault').bind('pusher:subscription_error', (e) => record('sub-error', e));
  `);
  const err = await waitEv<{ type: string; error: string }>(bare, `e.ev === 'sub-error'`);
  assert.equal(err.type, 'EncryptionError');
  assert.match(err.error, /herald-encryption/);
});

void test('signin: server-to-user events, watchlist and presence without channel_data', T, async (t) => {
  const env = await setup(t);
  if (!env) return;
  const alice = await openPage(env.browser, env.site.url);
  await alice.evaluate(`
    window.h = client({ authEndpoint: '/auth?signedin=1', userAuthentication: { endpoint: '/user-auth?user=alice&watch=bob' } });
    h.user.bind('pusher:signin_success', (u) => record('signed-in', { id: u.id }));
    h.user.bind('notice', (d) => record('notice', { data: d }));
    h.user.watchlist.bind('online', (e) => record('online', e));
    h.user.watchlist.bind('offline', (e) => record('offline', e));
    h.signin();
    const room = h.subscribe('presence-signed');
    room.bind('pusher:subscription_succeeded', (m) => record('joined', { me: m.me && m.me.id }));
  `);
  assert.equal((await waitEv<{ id: string }>(alice, `e.ev === 'signed-in'`)).id, 'alice');
  assert.deepEqual(await waitEv(alice, `e.ev === 'offline'`), { ev: 'offline', name: 'offline', user_ids: ['bob'] });
  assert.equal((await waitEv<{ me: string }>(alice, `e.ev === 'joined'`)).me, 'alice');
  assert.deepEqual((await env.sdk.getUsers('presence-signed')).users, [{ id: 'alice' }]);

  // The user channel is subscribed right after signin; retry until it has landed.
  const timer = setInterval(() => void env.sdk.sendToUser('alice', 'notice', { hi: 1 }).catch(() => undefined), 200);
  t.after(() => clearInterval(timer));
  assert.deepEqual((await waitEv<{ data: unknown }>(alice, `e.ev === 'notice'`)).data, { hi: 1 });
  clearInterval(timer);

  const bob = await openPage(env.browser, env.site.url);
  await bob.evaluate(`window.h = client({ userAuthentication: { endpoint: '/user-auth?user=bob' } }); h.signin();`);
  assert.deepEqual(await waitEv(alice, `e.ev === 'online'`), { ev: 'online', name: 'online', user_ids: ['bob'] });

  // terminateUserConnections closes with 4009 (refused): the client stops instead of looping.
  await env.sdk.terminateUserConnections('bob');
  await waitEv(bob, `e.ev === 'state' && e.current === 'failed'`);
});

void test('refused connections (unknown key) fail without reconnecting', T, async (t) => {
  const env = await setup(t);
  if (!env) return;
  const page = await openPage(env.browser, env.site.url);
  await page.evaluate(`
    window.h = new Herald('no-such-key', { host: '127.0.0.1', port: ${env.h.port}, tls: false, autoConnect: false });
    h.connection.bind('state_change', (s) => record('state', s));
    h.connection.bind('error', (e) => record('error', e));
    h.connect();
  `);
  await waitEv(page, `e.ev === 'state' && e.current === 'failed'`);
  const err = await waitEv<{ type: string; data: { code: number } }>(page, `e.ev === 'error' && e.data && e.data.code === 4001`);
  assert.equal(err.type, 'PusherError');
  await new Promise((r) => setTimeout(r, 1500));
  assert.deepEqual(await states(page), ['connecting', 'failed']);
});

void test('pings when idle and reconnects when no pong comes', T, async (t) => {
  ensureBrowserBundle();
  const browser = await launchBrowser(t);
  if (!browser) return;
  // A server that completes the handshake and then answers nothing.
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
  await new Promise<void>((resolve) => wss.once('listening', () => resolve()));
  t.after(() => new Promise<void>((resolve) => wss.close(() => resolve())));
  const received: string[] = [];
  let connections = 0;
  wss.on('connection', (ws, req) => {
    connections++;
    assert.match(req.url ?? '', /^\/app\/k\?protocol=7&client=herald-js&version=[\d.]+&flash=false$/);
    ws.send(JSON.stringify({ event: 'pusher:connection_established', data: JSON.stringify({ socket_id: `1.${connections}`, activity_timeout: 120 }) }));
    ws.on('message', (m: Buffer) => received.push(m.toString()));
    // The client answers the server's own pusher:ping.
    ws.send(JSON.stringify({ event: 'pusher:ping', data: '{}' }));
  });
  const port = (wss.address() as AddressInfo).port;
  const site = await servePages(t, { '/': testPage('k', port) });
  const page = await openPage(browser, site.url);
  await page.evaluate(`window.h = client({ activityTimeout: 300, pongTimeout: 400 })`);
  await page.waitForFunction(`events.filter((e) => e.ev === 'state' && e.current === 'connected').length === 2`, undefined, { timeout: 10_000 });
  assert.ok(received.some((m) => JSON.parse(m).event === 'pusher:ping'), 'a ping was sent after 300 ms of silence');
  assert.ok(received.some((m) => JSON.parse(m).event === 'pusher:pong'), 'the server’s ping was answered');
  assert.deepEqual(await states(page), ['connecting', 'connected', 'connecting', 'connected']);
  assert.equal(connections, 2);
});

void test('pings after the server’s activity_timeout and stays connected while pongs come back', T, async (t) => {
  const env = await setup(t, undefined, { options: { activityTimeout: 5 } });
  if (!env) return;
  const page = await openPage(env.browser, env.site.url);
  // Client activity timeout above the server's 5 s: the server's value wins (protocol.md §1.8).
  await page.evaluate(`
    window.h = client({ activityTimeout: 60000, pongTimeout: 2000 });
    const send = WebSocket.prototype.send;
    WebSocket.prototype.send = function (d) { if (String(d).includes('pusher:ping')) record('ping'); return send.call(this, d); };
  `);
  await waitEv(page, `e.ev === 'ping'`, 12_000);
  await new Promise((r) => setTimeout(r, 2500));
  assert.deepEqual(await states(page), ['connecting', 'connected']);
});

void test('offline pauses reconnecting and online resumes at once', T, async (t) => {
  const env = await setup(t);
  if (!env) return;
  const page = await openPage(env.browser, env.site.url);
  await page.evaluate(`window.h = client({ backoff: { baseMs: 20000, maxMs: 20000 } }); h.subscribe('news');`);
  await waitEv(page, `e.ev === 'state' && e.current === 'connected'`);
  await env.browser.setOffline(true);
  await env.h.stop();
  await waitEv(page, `e.ev === 'state' && e.current === 'unavailable'`);
  await env.restart();
  const before = Date.now();
  await env.browser.setOffline(false);
  // The backoff is 10-20 s; coming online reconnects without waiting for it.
  await page.waitForFunction(`events.filter((e) => e.ev === 'state' && e.current === 'connected').length === 2`, undefined, { timeout: 8_000 });
  assert.ok(Date.now() - before < 8_000);
  for (let i = 0; i < 50 && !(await env.sdk.getChannel('news')).occupied; i++) await new Promise((r) => setTimeout(r, 50));
  assert.equal((await env.sdk.getChannel('news')).occupied, true);
});

void test('reconnect delays follow close codes (the ESM build)', T, async (t) => {
  const env = await setup(t);
  if (!env) return;
  const page = await openPage(env.browser, env.site.url);
  const r = await page.evaluate(`import('/dist/herald.mjs').then((m) => {
    const half = () => 0.5, d = m.reconnectDelay;
    return {
      refused: d('refused', 0, half), tls: d('tls_only', 3, half),
      retry0: d('retry', 0, half), retry1: d('retry', 1, half),
      backoff0: d('backoff', 0, () => 0), backoff3: d('backoff', 3, half),
      reconnect0: d('reconnect', 0, () => 0), reconnect0max: d('reconnect', 0, () => 1), reconnectCap: d('reconnect', 30, () => 1),
      hasHerald: typeof m.Herald === 'function',
    };
  })`);
  assert.deepEqual(r, { refused: null, tls: 0, retry0: 125, retry1: 750, backoff0: 1000, backoff3: 6000, reconnect0: 500, reconnect0max: 1000, reconnectCap: 30000, hasHerald: true });
});
