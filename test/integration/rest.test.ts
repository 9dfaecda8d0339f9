import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, createHmac } from 'node:crypto';
import { once } from 'node:events';
import { connect } from 'node:net';
import { ERRORS } from '../../server/errors';
import { startHerald, type TestHerald } from '../helpers/herald';
import { RawClient, authFor, roundTrip, serverSdk } from '../helpers/clients';
import type { AppOptions } from '../../server/options/Options';

interface SignOptions {
  app?: AppOptions;
  timestamp?: number;
  query?: Record<string, string>;
  md5?: string | null;
  key?: string;
  version?: string;
  contentType?: string;
  /** Rewrites the signed query string before sending (to repeat a parameter, say). */
  editQuery?: (query: string) => string;
}

/** A request signed by hand (protocol.md §3), so each part can be broken on purpose. */
async function signed(h: TestHerald, method: string, path: string, body?: string, o: SignOptions = {}): Promise<{ status: number; json: Record<string, unknown>; headers: Headers }> {
  const app = o.app ?? h.app;
  const params: Record<string, string> = {
    auth_key: o.key ?? app.key,
    auth_timestamp: String(o.timestamp ?? Math.floor(Date.now() / 1000)),
    auth_version: o.version ?? '1.0',
    ...o.query,
  };
  if (body !== undefined && o.md5 !== null) params.body_md5 = o.md5 ?? createHash('md5').update(body).digest('hex');
  const toSign = [method, path, Object.keys(params).sort().map((k) => `${k}=${params[k]}`).join('&')].join('\n');
  params.auth_signature = createHmac('sha256', app.secret).update(toSign).digest('hex');
  const query = new URLSearchParams(params).toString();
  const res = await fetch(`${h.baseUrl}${path}?${o.editQuery ? o.editQuery(query) : query}`, {
    method,
    body,
    headers: body === undefined ? {} : { 'Content-Type': o.contentType ?? 'application/json' },
  });
  const text = await res.text();
  return { status: res.status, json: text ? (JSON.parse(text) as Record<string, unknown>) : {}, headers: res.headers };
}

async function subscriber(h: TestHerald, channel: string, userId?: string): Promise<RawClient> {
  const c = await RawClient.connect(h);
  if (userId) {
    const cd = JSON.stringify({ user_id: userId });
    c.send({ event: 'pusher:subscribe', data: { channel, auth: authFor(h.app, c.socketId, channel, cd), channel_data: cd } });
  } else {
    c.send({ event: 'pusher:subscribe', data: { channel } });
  }
  await c.next('pusher_internal:subscription_succeeded', 5000, channel);
  return c;
}

test('trigger to several channels, with socket_id exclusion and info', async (t) => {
  const h = await startHerald();
  t.after(() => h.stop());
  const a = await subscriber(h, 'news');
  const b = await subscriber(h, 'news');
  const p = await subscriber(h, 'presence-team', 'u1');
  for (const c of [a, b, p]) t.after(() => c.close());
  const sdk = serverSdk(h);
  const res = await sdk.trigger(['news', 'presence-team', 'empty'], 'update', { v: 1 }, { socket_id: a.socketId, info: 'user_count,subscription_count' });
  assert.deepEqual(await res.json(), {
    channels: {
      news: { subscription_count: 2 },
      'presence-team': { user_count: 1, subscription_count: 1 },
      empty: { subscription_count: 0 },
    },
  });
  assert.deepEqual((await b.next('update', 5000, 'news')).data, { v: 1 });
  assert.deepEqual((await p.next('update', 5000, 'presence-team')).data, { v: 1 });
  await roundTrip(a);
  assert.equal(a.pending().filter((m) => m.event === 'update').length, 0, 'the excluded socket got nothing');
});

test('batch_events publishes each event and answers info index-aligned', async (t) => {
  const h = await startHerald();
  t.after(() => h.stop());
  const c = await subscriber(h, 'b1');
  t.after(() => c.close());
  const sdk = serverSdk(h);
  const res = await sdk.triggerBatch([
    { channel: 'b1', name: 'one', data: '1' },
    { channel: 'b2', name: 'two', data: { n: 2 }, info: 'subscription_count' },
    { channel: 'b1', name: 'three', data: '3' },
  ]);
  assert.deepEqual(await res.json(), { batch: [{}, { subscription_count: 0 }, {}] });
  assert.equal((await c.next('one')).data, 1);
  assert.equal((await c.next('three')).data, 3);
  assert.deepEqual(await (await sdk.triggerBatch([{ channel: 'b1', name: 'x', data: 'y' }])).json(), {});
});

test('GET channels, channel and users', async (t) => {
  const h = await startHerald();
  t.after(() => h.stop());
  const cs = [await subscriber(h, 'presence-a', 'u1'), await subscriber(h, 'presence-a', 'u2'), await subscriber(h, 'presence-a', 'u2'), await subscriber(h, 'public-1'), await subscriber(h, 'private-x'.replace('private-', 'priv-'))];
  for (const c of cs) t.after(() => c.close());
  const sdk = serverSdk(h);
  const get = async (path: string, params?: Record<string, string>) => (await sdk.get({ path, params })).json();
  assert.deepEqual(await get('/channels'), { channels: { 'presence-a': {}, 'public-1': {}, 'priv-x': {} } });
  assert.deepEqual(await get('/channels', { filter_by_prefix: 'presence-', info: 'user_count' }), { channels: { 'presence-a': { user_count: 2 } } });
  assert.deepEqual(await get('/channels', { filter_by_prefix: 'pub' }), { channels: { 'public-1': {} } });
  assert.deepEqual(await get('/channels/presence-a', { info: 'user_count,subscription_count' }), { occupied: true, user_count: 2, subscription_count: 3 });
  assert.deepEqual(await get('/channels/nobody'), { occupied: false });
  assert.deepEqual(await get('/channels/presence-a/users'), { users: [{ id: 'u1' }, { id: 'u2' }] });
  assert.deepEqual(await get('/channels/presence-empty/users'), { users: [] });

  const bad = async (path: string, params?: Record<string, string>) => {
    const r = await signed(h, 'GET', `/apps/${h.app.id}${path}`, undefined, { query: params });
    assert.equal(r.status, 400, `${path} ${JSON.stringify(params)}`);
    assert.equal(typeof r.json.error, 'string');
  };
  await bad('/channels', { info: 'user_count' });
  await bad('/channels', { filter_by_prefix: 'public-', info: 'user_count' });
  await bad('/channels', { info: 'colour' });
  await bad('/channels/public-1', { info: 'user_count' });
  await bad('/channels/public-1', { info: 'cache' });
  await bad('/channels/public-1/users');
  await bad('/channels/bad%20name');
});

test('names in the path up to the app limits are served, percent-encoded or not; past them 400, and a broken path 400', async (t) => {
  const h = await startHerald({ apps: [{ maxChannelNameLength: 1000 }] });
  t.after(() => h.stop());
  // The longest channel the app allows, every character of its tail one that clients may percent-encode.
  const longest = `presence-${',;=@'.repeat(247)}abc`;
  assert.equal(longest.length, 1000);
  const userId = 'ü'.repeat(128);
  const c = await subscriber(h, longest, userId);
  t.after(() => c.close());
  const app = `/apps/${h.app.id}`;
  const channelPath = `${app}/channels/${encodeURIComponent(longest)}`;
  assert.deepEqual((await signed(h, 'GET', channelPath, undefined, { query: { info: 'user_count' } })).json, { occupied: true, user_count: 1 });
  assert.deepEqual((await signed(h, 'GET', `${channelPath}/users`)).json, { users: [{ id: userId }] });
  const terminate = await signed(h, 'POST', `${app}/users/${encodeURIComponent(userId)}/terminate_connections`, '{}');
  assert.equal(terminate.status, 200);

  const tooLong = await signed(h, 'GET', `${app}/channels/${encodeURIComponent(`${longest}x`)}`);
  assert.equal(tooLong.status, 400);
  assert.match(String(tooLong.json.error), /longer than 1000/);
  const userTooLong = await signed(h, 'POST', `${app}/users/${encodeURIComponent(`${userId}ü`)}/terminate_connections`, '{}');
  assert.equal(userTooLong.status, 400);
  assert.match(String(userTooLong.json.error), /longer than 128/);
  // Past anything a name could be, and a bad %-escape: errors from the table, without the path echoed back.
  for (const [path, status] of [[`${app}/channels/${'a'.repeat(3001)}`, 414], [`${app}/channels/%E0%A4%A`, 400]] as const) {
    const res = await fetch(`${h.baseUrl}${path}`);
    assert.equal(res.status, status, path.slice(0, 60));
    const body = (await res.json()) as Record<string, unknown>;
    assert.deepEqual(Object.keys(body), ['error']);
    assert.ok(!String(body.error).includes('/apps/'), String(body.error));
  }
});

/** Sends raw bytes to the node and reads until it closes the socket: what a client that gets no parse sees. */
async function rawHttp(h: TestHerald, request: string): Promise<{ status: number; headers: string; body: string }> {
  const socket = connect({ host: '127.0.0.1', port: Number(new URL(h.baseUrl).port) });
  const chunks: Buffer[] = [];
  socket.on('data', (b: Buffer) => chunks.push(b));
  await once(socket, 'connect');
  socket.write(request);
  await once(socket, 'close');
  const text = Buffer.concat(chunks).toString('utf8');
  const [head, body = ''] = text.split('\r\n\r\n');
  return { status: Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1]), headers: head, body };
}

test('requests the HTTP parser refuses (headers over 16 KB, malformed) answer from the error table, and the node serves on', async (t) => {
  const h = await startHerald();
  t.after(() => h.stop());
  const long = await rawHttp(h, `GET /apps/${h.app.id}/channels/${'a'.repeat(17_000)} HTTP/1.1\r\nHost: x\r\n\r\n`);
  assert.equal(long.status, 431, long.headers);
  assert.match(long.headers, /content-type: application\/json/i);
  assert.deepEqual(JSON.parse(long.body), { error: ERRORS.HEADERS_TOO_LARGE.message });
  const header = await rawHttp(h, `GET /ready HTTP/1.1\r\nHost: x\r\nX-Big: ${'b'.repeat(17_000)}\r\n\r\n`);
  assert.equal(header.status, 431);
  const garbage = await rawHttp(h, 'NOT HTTP AT ALL\r\n\r\n');
  assert.equal(garbage.status, 400, garbage.headers);
  assert.deepEqual(JSON.parse(garbage.body), { error: ERRORS.BAD_REQUEST.message });
  const badHeader = await rawHttp(h, 'GET /ready HTTP/1.1\r\nHost: x\r\nBad Header: y\r\n\r\n');
  assert.equal(badHeader.status, 400);
  assert.equal((await fetch(`${h.baseUrl}/ready`)).status, 200);
});

test('signature failures answer 401 with a JSON error', async (t) => {
  const h = await startHerald({ apps: [{}, {}] });
  t.after(() => h.stop());
  const path = `/apps/${h.app.id}/events`;
  const body = JSON.stringify({ name: 'e', channel: 'c', data: 'd' });
  assert.equal((await signed(h, 'POST', path, body)).status, 200);
  const cases: [string, SignOptions][] = [
    ['stale timestamp', { timestamp: Math.floor(Date.now() / 1000) - 700 }],
    ['future timestamp', { timestamp: Math.floor(Date.now() / 1000) + 700 }],
    ['wrong md5', { md5: 'a'.repeat(32) }],
    ['missing md5', { md5: null }],
    ['other key', { key: h.apps[1].key }],
    ["another app's secret", { app: { ...h.apps[1], key: h.app.key } }],
    ['bad version', { version: '2.0' }],
  ];
  for (const [name, o] of cases) {
    const r = await signed(h, 'POST', path, body, o);
    assert.equal(r.status, 401, name);
    assert.equal(typeof r.json.error, 'string', name);
  }
  const unsigned = await fetch(`${h.baseUrl}${path}`, { method: 'POST', body, headers: { 'Content-Type': 'application/json' } });
  assert.equal(unsigned.status, 401);
  assert.match(((await unsigned.json()) as { error: string }).error, /Missing authentication/);
  // The signature covers the path: a request signed for another app id is refused.
  const r = await signed(h, 'POST', `/apps/${h.apps[1].id}/events`, body, { app: h.app });
  assert.equal(r.status, 401);

  // Values are signed decoded: spaces, '+', '%', '&' and non-ASCII in a parameter survive the round trip.
  const odd = await signed(h, 'GET', `/apps/${h.app.id}/channels`, undefined, { query: { filter_by_prefix: 'pre fix+%&=é' } });
  assert.equal(odd.status, 200, JSON.stringify(odd.json));
  // A parameter given twice: the last one counts.
  const forged = await signed(h, 'POST', path, body, { editQuery: (q) => `${q}&auth_signature=${'0'.repeat(64)}` });
  assert.equal(forged.status, 401);
  const repeated = await signed(h, 'POST', path, body, { editQuery: (q) => `auth_signature=${'0'.repeat(64)}&${q}` });
  assert.equal(repeated.status, 200, JSON.stringify(repeated.json));
});

test('unknown and disabled apps, unknown routes', async (t) => {
  const h = await startHerald({ apps: [{}, { enabled: false }] });
  t.after(() => h.stop());
  const body = JSON.stringify({ name: 'e', channel: 'c', data: 'd' });
  const unknown = await signed(h, 'POST', '/apps/999999/events', body);
  assert.equal(unknown.status, 404);
  assert.match(String(unknown.json.error), /does not exist/);
  const disabled = await signed(h, 'POST', `/apps/${h.apps[1].id}/events`, body, { app: h.apps[1] });
  assert.equal(disabled.status, 403);
  const nowhere = await fetch(`${h.baseUrl}/nowhere`);
  assert.equal(nowhere.status, 404);
  assert.match(((await nowhere.json()) as { error: string }).error, /Not found/);
});

test('bad bodies: 400 for shape and limits, 413 for size', async (t) => {
  const h = await startHerald({ apps: [{ maxEventBytes: 1000, maxChannelsPerEvent: 3, maxBatchSize: 2 }], options: { maxRequestBytes: 4096 } });
  t.after(() => h.stop());
  const events = `/apps/${h.app.id}/events`;
  const batch = `/apps/${h.app.id}/batch_events`;
  const expect = async (path: string, body: string, status: number, message: RegExp) => {
    const r = await signed(h, 'POST', path, body);
    assert.equal(r.status, status, body.slice(0, 80));
    assert.match(String(r.json.error), message, body.slice(0, 80));
  };
  await expect(events, '{not json', 400, /not valid JSON/);
  await expect(events, '[]', 400, /body must be object/);
  await expect(events, JSON.stringify({ channel: 'c', data: 'd' }), 400, /name/);
  await expect(events, JSON.stringify({ name: 'e', data: 'd' }), 400, /Name a channel/);
  await expect(events, JSON.stringify({ name: 'e', channels: ['a', 'b', 'c', 'd'], data: 'd' }), 400, /at most 3 channels/);
  await expect(events, JSON.stringify({ name: 'e', channel: 'bad name', data: 'd' }), 400, /may contain only/);
  await expect(events, JSON.stringify({ name: 'x'.repeat(201), channel: 'c', data: 'd' }), 400, /longer than 200/);
  await expect(events, JSON.stringify({ name: 'e', channel: 'c', data: 'd', socket_id: 'nope' }), 400, /socket_id/);
  await expect(events, JSON.stringify({ name: 'e', channel: 'c', data: 'd', info: 'colour' }), 400, /Unknown info/);
  await expect(events, JSON.stringify({ name: 'e', channel: 'c', data: 'x'.repeat(1001) }), 413, /1001 bytes; the limit is 1000/);
  await expect(events, JSON.stringify({ name: 'e', channel: 'c', data: 'é'.repeat(501) }), 413, /1002 bytes/);
  await expect(batch, JSON.stringify({ batch: [] }), 400, /empty/);
  await expect(batch, JSON.stringify({ batch: [1, 2, 3].map(() => ({ name: 'e', channel: 'c', data: 'd' })) }), 400, /at most 2/);
  await expect(batch, JSON.stringify({ batch: [{ name: 'e', data: 'd' }] }), 400, /channel/);
  await expect(batch, JSON.stringify({ batch: [{ name: 'e', channel: 'c', data: 'd', push: { notification: { title: 't' } } }] }), 400, /only accepted by POST/);
  // Over maxRequestBytes: refused before it is parsed or verified.
  const huge = await fetch(`${h.baseUrl}${events}?auth_key=x`, { method: 'POST', body: 'x'.repeat(5000), headers: { 'Content-Type': 'application/json' } });
  assert.equal(huge.status, 413);
  assert.match(((await huge.json()) as { error: string }).error, /larger than 4096 bytes/);
  // Any body not sent as JSON: 415 saying how to send it. text/plain (what fetch sends a string as) used to be
  // taken for an empty body, and refused as a body_md5 mismatch.
  for (const contentType of ['application/x-www-form-urlencoded', 'text/plain;charset=UTF-8', 'text/plain']) {
    const body = contentType.startsWith('text') ? JSON.stringify({ name: 'e', channel: 'c', data: 'd' }) : 'name=e';
    const wrongType = await signed(h, 'POST', events, body, { contentType });
    assert.equal(wrongType.status, 415, contentType);
    assert.deepEqual(wrongType.json, { error: 'Send the body as JSON with Content-Type: application/json' });
  }
  for (const contentType of ['application/json; charset=utf-8', 'Application/JSON']) {
    assert.equal((await signed(h, 'POST', events, JSON.stringify({ name: 'e', channel: 'c', data: 'd' }), { contentType })).status, 200, contentType);
  }
  // A batch with one bad item publishes nothing.
  const c = await subscriber(h, 'c');
  t.after(() => c.close());
  await expect(batch, JSON.stringify({ batch: [{ name: 'ok', channel: 'c', data: 'd' }, { name: 'e', channel: 'c', data: 'x'.repeat(1001) }] }), 413, /limit/);
  await roundTrip(c);
  assert.equal(c.pending().length, 0);
});

test('backend events over the per-second budget get 429 with Retry-After', async (t) => {
  const h = await startHerald({ apps: [{ maxBackendEventsPerSecond: 2 }] });
  t.after(() => h.stop());
  const path = `/apps/${h.app.id}/events`;
  const statuses: number[] = [];
  let retryAfter: string | null = null;
  // The budget is per clock second. Requests that take under a second span at most two of them, which
  // admit 4 events at most, so the 5th and 6th see a 429 however the requests fall (4 could straddle).
  const started = Date.now();
  for (let i = 0; i < 6; i++) {
    const r = await signed(h, 'POST', path, JSON.stringify({ name: 'e', channel: 'c', data: String(i) }));
    statuses.push(r.status);
    if (r.status === 429) retryAfter = r.headers.get('retry-after');
  }
  assert.ok(Date.now() - started < 1000, 'the requests took under a second');
  assert.ok(statuses.includes(429), statuses.join(','));
  assert.equal(retryAfter, '1');
});

test('health and readiness', async (t) => {
  const h = await startHerald();
  t.after(() => h.stop());
  assert.deepEqual(await (await fetch(`${h.baseUrl}/`)).json(), { ok: true });
  assert.deepEqual(await (await fetch(`${h.baseUrl}/health`)).json(), { ok: true });
  const ready = await fetch(`${h.baseUrl}/ready`);
  assert.equal(ready.status, 200);
  assert.equal(((await ready.json()) as { ready: boolean }).ready, true);
});
