import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, createHmac } from 'node:crypto';
import { restStringToSign } from '../../sdk/protocol';
import type { AppOptions } from '../../server/options/Options';
import { startHerald, type TestHerald } from '../helpers/herald';
import { RawClient } from '../helpers/clients';

/** A signed REST call made by hand, so the test sees status and headers (the SDK hides them). */
async function signed(h: TestHerald, method: 'GET' | 'POST', path: string, body?: string, app: AppOptions = h.app): Promise<Response> {
  const params: Record<string, string> = { auth_key: app.key, auth_timestamp: String(Math.floor(Date.now() / 1000)), auth_version: '1.0' };
  if (body !== undefined) params.body_md5 = createHash('md5').update(body).digest('hex');
  const signature = createHmac('sha256', app.secret).update(restStringToSign(method, path, params)).digest('hex');
  const query = new URLSearchParams({ ...params, auth_signature: signature });
  return fetch(`${h.baseUrl}${path}?${query}`, { method, body, headers: body === undefined ? {} : { 'content-type': 'application/json' } });
}

/** A refused connection: the pusher:error it got and the close code. */
async function refused(url: string, headers: Record<string, string> = {}): Promise<{ error: { code: number; message: string }; close: number }> {
  const c = new RawClient(url, { headers });
  const [msg, closed] = await Promise.all([c.next('pusher:error'), c.closed]);
  return { error: msg.data as { code: number; message: string }, close: closed.code };
}

/** Answers of `n` calls in a row; a per-second budget lets at most twice its size through across a second boundary. */
async function burst(n: number, call: () => Promise<Response>): Promise<Response[]> {
  const out: Response[] = [];
  for (let i = 0; i < n; i++) out.push(await call());
  return out;
}

test('maxRestRequestsPerSecond: signed reads and writes over the budget get 429 with Retry-After', async (t) => {
  const h = await startHerald({ apps: [{ maxRestRequestsPerSecond: 2 }, {}] });
  t.after(() => h.stop());
  const answers = await burst(5, () => signed(h, 'GET', `/apps/${h.app.id}/channels`));
  assert.equal(answers[0].status, 200);
  const limited = answers.filter((r) => r.status === 429);
  assert.ok(limited.length >= 1, `statuses: ${answers.map((r) => r.status).join(',')}`);
  assert.equal(limited[0].headers.get('retry-after'), '1');
  assert.deepEqual(await limited[0].json(), { error: 'More than 2 REST requests per second' });
  // Another app has its own (unlimited) budget.
  const other = await burst(5, () => signed(h, 'GET', `/apps/${h.apps[1].id}/channels`, undefined, h.apps[1]));
  assert.deepEqual(other.map((r) => r.status), [200, 200, 200, 200, 200]);
  const metrics = await (await fetch(`${h.baseUrl}/metrics`)).text();
  assert.match(metrics, /herald_http_requests_total\{method="GET",route="\/apps\/:appId\/channels",status="429"\} [1-9]/);
});

test('maxBackendEventsPerSecond: triggers over the budget get 429 with Retry-After', async (t) => {
  const h = await startHerald({ apps: [{ maxBackendEventsPerSecond: 2 }] });
  t.after(() => h.stop());
  const body = JSON.stringify({ name: 'e', channels: ['a'], data: '{}' });
  const answers = await burst(5, () => signed(h, 'POST', `/apps/${h.app.id}/events`, body));
  const limited = answers.filter((r) => r.status === 429);
  assert.ok(limited.length >= 1);
  assert.equal(limited[0].headers.get('retry-after'), '1');
});

test('maxMessageBytes: a larger WebSocket frame closes the socket with 1009', async (t) => {
  const h = await startHerald({ options: { maxMessageBytes: 1024 } });
  t.after(() => h.stop());
  const c = await RawClient.connect(h);
  c.send({ event: 'pusher:subscribe', data: { channel: 'x'.repeat(2000) } });
  assert.equal((await c.closed).code, 1009);
});

test('maxRequestBytes: a larger REST body gets 413 with a JSON error, before any parsing', async (t) => {
  const h = await startHerald({ options: { maxRequestBytes: 1024 } });
  t.after(() => h.stop());
  const body = JSON.stringify({ name: 'e', channel: 'c', data: 'x'.repeat(2000) });
  const res = await signed(h, 'POST', `/apps/${h.app.id}/events`, body);
  assert.equal(res.status, 413);
  assert.deepEqual(await res.json(), { error: 'Request body is larger than 1024 bytes' });
});

test('maxConnectionsPerIp: over the limit the socket is closed with 4100 (back off), and a slot frees on close', async (t) => {
  const h = await startHerald({ options: { maxConnectionsPerIp: 2 } });
  t.after(() => h.stop());
  const a = await RawClient.connect(h);
  const b = await RawClient.connect(h);
  t.after(() => b.close());
  const third = await refused(RawClient.url(h));
  assert.equal(third.close, 4100);
  assert.equal(third.error.code, 4100);
  assert.match(third.error.message, /Too many connections from this address/);

  const closed = new Promise<void>((resolve) => h.server.gateway.observe({ connectionClosed: () => resolve() }));
  a.close();
  await closed;
  const again = await RawClient.connect(h);
  again.close();
  const metrics = await (await fetch(`${h.baseUrl}/metrics`)).text();
  assert.match(metrics, new RegExp(`herald_connections_refused_total\\{app_id="${h.app.id}",code="4100"\\} 1`));
});

test('trustProxy: X-Forwarded-For is ignored unless the proxy is trusted', async (t) => {
  const direct = await startHerald({ options: { maxConnectionsPerIp: 1 } });
  t.after(() => direct.stop());
  const first = await RawClient.connect(direct);
  t.after(() => first.close());
  // A client that makes up its own address does not get a fresh allowance.
  const spoofed = await refused(RawClient.url(direct), { 'X-Forwarded-For': '203.0.113.9' });
  assert.equal(spoofed.close, 4100);

  const proxied = await startHerald({ options: { maxConnectionsPerIp: 1, trustProxy: ['127.0.0.1'] } });
  t.after(() => proxied.stop());
  const viaA = await RawClient.connect(proxied, { ws: { headers: { 'X-Forwarded-For': '203.0.113.1' } } });
  t.after(() => viaA.close());
  const viaB = await RawClient.connect(proxied, { ws: { headers: { 'X-Forwarded-For': '203.0.113.2' } } });
  t.after(() => viaB.close());
  const again = await refused(RawClient.url(proxied), { 'X-Forwarded-For': '203.0.113.1' });
  assert.equal(again.close, 4100);
});

test('maxConnections (per app): over the quota the socket is closed with 4004', async (t) => {
  const h = await startHerald({ apps: [{ maxConnections: 1 }] });
  t.after(() => h.stop());
  const a = await RawClient.connect(h);
  t.after(() => a.close());
  const second = await refused(RawClient.url(h));
  assert.equal(second.close, 4004);
});

test('allowedOrigins: listed origins and wildcard subdomains connect, others and none are closed with 4009', async (t) => {
  const h = await startHerald({ apps: [{ allowedOrigins: ['https://good.example.com', '*.trusted.test'] }] });
  t.after(() => h.stop());
  for (const origin of ['https://good.example.com', 'https://app.trusted.test']) {
    const c = await RawClient.connect(h, { ws: { headers: { origin } } });
    c.close();
  }
  const cases: Record<string, string>[] = [{ origin: 'https://evil.example.com' }, { origin: 'https://trusted.test.evil.com' }, {}];
  for (const headers of cases) {
    const r = await refused(RawClient.url(h), headers);
    assert.equal(r.close, 4009, JSON.stringify(headers));
    assert.equal(r.error.code, 4009);
  }
});
