import { test } from 'node:test';
import assert from 'node:assert/strict';
import type net from 'node:net';
import { startHerald } from '../helpers/herald';
import { RawClient, connected, pusherJs, roundTrip } from '../helpers/clients';

test('pusher-js connects and gets an unguessable socket id and the activity timeout', async (t) => {
  const h = await startHerald();
  t.after(() => h.stop());
  const client = pusherJs(h);
  t.after(() => client.disconnect());
  const socketId = await connected(client);
  assert.match(socketId, /^\d+\.\d+$/);

  const raw = await RawClient.connect(h);
  t.after(() => raw.close());
  assert.match(raw.socketId, /^\d+\.\d+$/);
  assert.notEqual(raw.socketId, socketId);
  const [a, b] = raw.socketId.split('.').map(Number);
  assert.ok(a > 1e6 || b > 1e6, 'socket ids come from a wide random range');
});

test('connection_established carries activity_timeout; pusher:ping is answered with pusher:pong', async (t) => {
  const h = await startHerald({ options: { activityTimeout: 42 } });
  t.after(() => h.stop());
  const c = new RawClient(RawClient.url(h));
  t.after(() => c.close());
  const est = await c.next('pusher:connection_established');
  assert.equal((est.data as { activity_timeout: number }).activity_timeout, 42);
  assert.equal(typeof est.data, 'object', 'data arrives as a JSON string and decodes to an object');
  c.send({ event: 'pusher:ping', data: {} });
  const pong = await c.next('pusher:pong');
  assert.deepEqual(pong.data, {});
});

test('the 101 answer and connection_established leave in one write, and the socket is not left corked', async (t) => {
  const h = await startHerald();
  t.after(() => h.stop());
  // The server side of the next upgrade: its stream-level writes are counted, which is what reaches the
  // kernel as syscalls. Corked: one _writev (101 answer, frame header, payload); not: a _write, then more.
  const writes: string[] = [];
  // First in line, before @fastify/websocket's listener answers the handshake.
  h.server.http.server.prependOnceListener('upgrade', (_req, socket: net.Socket & { _write: (...a: unknown[]) => void; _writev: (...a: unknown[]) => void }) => {
    const write = socket._write.bind(socket);
    const writev = socket._writev.bind(socket);
    socket._write = (...a: unknown[]) => (writes.push('write'), write(...a));
    socket._writev = (...a: unknown[]) => (writes.push(`writev(${(a[0] as unknown[]).length})`), writev(...a));
  });
  const c = await RawClient.connect(h);
  t.after(() => c.close());
  assert.deepEqual(writes, ['writev(3)'], 'the 101 and connection_established in one writev');

  // Later writes still go out at once: a subscribe is answered.
  c.send({ event: 'pusher:subscribe', data: { channel: 'after-cork' } });
  await c.next('pusher_internal:subscription_succeeded');
  assert.equal(writes.length, 2);
});

test('WebSocket ping frames are answered with pong frames', async (t) => {
  const h = await startHerald();
  t.after(() => h.stop());
  const c = await RawClient.connect(h);
  t.after(() => c.close());
  const pong = new Promise<Buffer>((resolve) => c.ws.once('pong', resolve));
  c.ws.ping(Buffer.from('hi'));
  assert.equal((await pong).toString(), 'hi');
});

test('a silent socket is pinged, and closed with 4201 when no pong comes', async (t) => {
  const h = await startHerald({ options: { activityTimeout: 1, pongTimeout: 1 } });
  t.after(() => h.stop());
  // A client that answers pings keeps its connection.
  const alive = await RawClient.connect(h);
  t.after(() => alive.close());
  const pinged = new Promise<void>((resolve) => alive.ws.once('ping', () => resolve()));
  // autoPong off: this client never answers.
  const dead = await RawClient.connect(h, { ws: { autoPong: false } });
  const closed = await dead.closed;
  assert.equal(closed.code, 4201);
  await pinged;
  await roundTrip(alive);
  assert.equal(alive.ws.readyState, alive.ws.OPEN);
});

test('refused handshakes close with the protocol code (protocol.md §1.4)', async (t) => {
  const h = await startHerald({ apps: [{}, { enabled: false }, { maxConnections: 1 }, { allowedOrigins: ['https://good.example', '*.trusted.example'] }] });
  t.after(() => h.stop());
  const [app, disabled, limited, originApp] = h.apps;

  const expectClose = async (url: string, code: number, headers?: Record<string, string>) => {
    const c = new RawClient(url, { headers });
    const err = await c.next('pusher:error');
    assert.equal((err.data as { code: number }).code, code);
    assert.equal((await c.closed).code, code, url);
  };
  await expectClose(RawClient.url(h, 'no-such-key'), 4001);
  await expectClose(RawClient.url(h, disabled.key), 4003);
  await expectClose(RawClient.url(h, app.key, 'client=js&version=8.4.0'), 4008);
  await expectClose(RawClient.url(h, app.key, 'protocol=3'), 4007);
  await expectClose(RawClient.url(h, app.key, 'protocol=seven'), 4007);
  await expectClose(RawClient.url(h, originApp.key), 4009, { Origin: 'https://evil.example' });
  await expectClose(RawClient.url(h, originApp.key), 4009, { Origin: 'https://trusted.example' });

  const ok = await RawClient.connect(h, { key: originApp.key, ws: { headers: { Origin: 'https://good.example' } } });
  ok.close();
  const sub = await RawClient.connect(h, { key: originApp.key, ws: { headers: { Origin: 'https://app.trusted.example' } } });
  sub.close();

  const first = await RawClient.connect(h, { key: limited.key });
  t.after(() => first.close());
  await expectClose(RawClient.url(h, limited.key), 4004);
  first.close();
  await first.closed;
  // The quota frees up once the first socket is gone.
  for (let i = 0; ; i++) {
    const again = new RawClient(RawClient.url(h, limited.key));
    const m = await again.next((x) => x.event === 'pusher:connection_established' || x.event === 'pusher:error');
    again.close();
    if (m.event === 'pusher:connection_established') break;
    assert.ok(i < 50, 'quota was never released');
    await again.closed;
  }
});

test('pusher-js stops retrying when the key is unknown (4001 → refused)', async (t) => {
  const h = await startHerald();
  t.after(() => h.stop());
  const client = pusherJs(h, { app: { ...h.app, key: 'unknown-key' } });
  t.after(() => client.disconnect());
  const error = new Promise<{ error?: { data?: { code?: number } } }>((resolve) => client.connection.bind('error', resolve));
  const states: string[] = [];
  await new Promise<void>((resolve) => {
    client.connection.bind('state_change', ({ current }: { current: string }) => {
      states.push(current);
      if (current === 'disconnected') resolve();
    });
  });
  assert.equal((await error).error?.data?.code, 4001);
  // "refused": pusher-js disconnects and schedules no retry.
  assert.equal((client.connection as unknown as { retryTimer: unknown }).retryTimer ?? null, null);
  assert.deepEqual(states, ['disconnected']);
});

test('apps that require sign-in close unsigned connections with 4009 after the timeout', async (t) => {
  const h = await startHerald({ apps: [{ userAuthentication: true, userAuthenticationTimeoutMs: 1000 }], options: { pongTimeout: 1 } });
  t.after(() => h.stop());
  const started = Date.now();
  const c = await RawClient.connect(h);
  const closed = await c.closed;
  assert.equal(closed.code, 4009);
  assert.ok(Date.now() - started >= 900, 'not before the timeout');
});

test('graceful stop closes every socket with 4200 (reconnect now)', async (t) => {
  const h = await startHerald();
  let stopped = false;
  t.after(async () => {
    if (!stopped) await h.stop();
  });
  const c = await RawClient.connect(h);
  const stopping = h.stop();
  stopped = true;
  assert.equal((await c.closed).code, 4200);
  await stopping;
});
