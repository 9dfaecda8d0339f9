import { test } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket, { WebSocketServer, type ServerOptions } from 'ws';
import type { AddressInfo } from 'node:net';
import { Connection, type ConnectionHost, type WsInternals } from '../../server/ws/Connection';
import { textFrame } from '../../server/ws/frame';
import { joinedFrames, scheduleFlush } from '../../server/ws/outbox';
import type { AppOptions } from '../../server/options/Options';

/** A real server-side socket wrapped in a Connection, and the client that reads what it writes. */
async function pair(t: { after(fn: () => void): void }, options: ServerOptions = {}, host?: ConnectionHost) {
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1', perMessageDeflate: false, ...options });
  t.after(() => wss.close());
  const serverSide = new Promise<WebSocket>((resolve) => wss.on('connection', resolve));
  await new Promise<void>((resolve) => wss.on('listening', () => resolve()));
  const client = new WebSocket(`ws://127.0.0.1:${(wss.address() as AddressInfo).port}`);
  t.after(() => client.close());
  const [ws] = await Promise.all([serverSide, new Promise((resolve) => client.once('open', resolve))]);
  client.on('error', () => {}); // the last test cuts the connection from the server side
  const conn = new Connection(ws, '1.1', {} as AppOptions, '127.0.0.1', null, host ?? { maxSendBufferBytes: 1 << 30, tooSlow: () => assert.fail('not too slow') });
  const received: string[] = [];
  client.on('message', (d: Buffer) => received.push(d.toString()));
  const receive = async (n: number) => {
    while (received.length < n) await new Promise((r) => client.once('message', r));
    return received.slice(0, n);
  };
  return { conn, ws, receive };
}

/** Calls `onWrite` on every write to the server-side TCP socket under `ws`. */
function watchWrites(ws: WebSocket, onWrite: () => void): void {
  const socket = (ws as unknown as WsInternals)._socket;
  const write = socket.write.bind(socket);
  socket.write = ((...args: Parameters<typeof socket.write>) => {
    onWrite();
    return write(...args);
  }) as typeof socket.write;
}

test('frames queued in one turn of the event loop reach the socket in one write, in order', async (t) => {
  const { conn, ws, receive } = await pair(t);
  let writes = 0;
  watchWrites(ws, () => writes++);
  for (const text of ['a', 'b', 'c']) conn.sendFramed(textFrame(text));
  assert.equal(writes, 0, 'nothing is written before the turn ends');
  assert.deepEqual(await receive(3), ['a', 'b', 'c']);
  assert.equal(writes, 1);
});

test('sockets that queued the same frames share one joined buffer; other frames get their own', () => {
  const a = textFrame('a');
  const b = textFrame('b');
  const first = joinedFrames([a, b]);
  assert.deepEqual(first, Buffer.concat([a, b]));
  assert.equal(joinedFrames([a, b]), first, 'same frames, same order: the same bytes, not a new copy');
  const reversed = joinedFrames([b, a]);
  assert.deepEqual(reversed, Buffer.concat([b, a]));
  assert.notEqual(reversed, first);
  const equalContent = textFrame('a');
  assert.deepEqual(joinedFrames([b, a, equalContent]), Buffer.concat([b, a, a]));
});

test('two sockets with the same queue both receive every frame, in order, from one flush', async (t) => {
  const one = await pair(t);
  const two = await pair(t);
  const frames = ['x', 'y', 'z'].map(textFrame);
  for (const f of frames) one.conn.sendFramed(f);
  for (const f of frames) two.conn.sendFramed(f);
  assert.deepEqual(await one.receive(3), ['x', 'y', 'z']);
  assert.deepEqual(await two.receive(3), ['x', 'y', 'z']);
});

test('a frame sent to one socket alone never overtakes the fan-out frames queued before it', async (t) => {
  const { conn, receive } = await pair(t);
  conn.sendFramed(textFrame('fan-out 1'));
  conn.sendFramed(textFrame('fan-out 2'));
  conn.send('direct');
  conn.sendFramed(textFrame('fan-out 3'));
  assert.deepEqual(await receive(4), ['fan-out 1', 'fan-out 2', 'direct', 'fan-out 3']);
});

test('while ws is still compressing a frame of its own, queued frames wait behind it instead of interleaving', async (t) => {
  const { conn, ws, receive } = await pair(t, { perMessageDeflate: { threshold: 0 } });
  const big = 'x'.repeat(200_000);
  ws.send(big, { compress: true });
  assert.notEqual((ws as unknown as WsInternals)._sender._state, 0, 'the sender is busy compressing');
  conn.sendFramed(textFrame('after 1'));
  conn.sendFramed(textFrame('after 2'));
  conn.flush();
  const got = await receive(3);
  assert.equal(got[0].length, big.length);
  assert.deepEqual(got.slice(1), ['after 1', 'after 2']);
});

test('a frame in pieces (a presence reply) leaves in one writev, after the fan-out frames queued before it', async (t) => {
  const { conn, ws, receive } = await pair(t);
  const socket = (ws as unknown as WsInternals)._socket as unknown as Record<'_write' | '_writev', (...a: unknown[]) => unknown>;
  const calls: string[] = [];
  for (const name of ['_write', '_writev'] as const) {
    const original = socket[name].bind(socket);
    socket[name] = (...args: unknown[]) => {
      calls.push(name === '_writev' ? `writev(${(args[0] as unknown[]).length})` : 'write');
      return original(...args);
    };
  }
  const reply = 'é'.repeat(40_000) + '{"members":[1,2,3]}';
  const whole = textFrame(reply);
  // Cut across the header, inside a two-byte character and at the end, as no caller would, to show the
  // pieces are written as given and never re-framed.
  const pieces = [whole.subarray(0, 3), whole.subarray(3, 1001), whole.subarray(1001, whole.length - 1), whole.subarray(whole.length - 1)];
  conn.sendFramed(textFrame('queued first'));
  conn.sendFrame(pieces);
  conn.sendFrame('then text');
  assert.deepEqual(await receive(3), ['queued first', reply, 'then text']);
  assert.deepEqual(calls.slice(0, 2), ['write', 'writev(4)'], 'the queued frame, then the pieces in one writev');
});

test('a reply larger than maxSendBufferBytes on its own does not make the client too slow; waiting behind it does', async (t) => {
  for (const reply of [
    { how: 'in pieces (LocalState)', frame: ((f: Buffer) => [f.subarray(0, 10), f.subarray(10)])(textFrame('m'.repeat(200_000))) },
    { how: 'as text (RedisState)', frame: 'm'.repeat(200_000) },
  ]) {
    const slow: number[] = [];
    const { conn, ws, receive } = await pair(t, {}, { maxSendBufferBytes: 65_536, tooSlow: (_c, bytes) => slow.push(bytes) });
    const socket = (ws as unknown as WsInternals)._socket;
    // Hold the bytes in Node's buffer, as a client that has not read yet would.
    socket.cork();
    conn.sendFrame(reply.frame);
    assert.deepEqual(slow, [], `a 200 KB presence reply ${reply.how} alone is not the client falling behind`);
    conn.sendFrame('next');
    assert.equal(slow.length, 1, `200 KB still waiting before the next frame is (${reply.how})`);
    socket.uncork();
    assert.deepEqual((await receive(2)).map((m) => m.length), [200_000, 4]);
  }
});

test('while ws is busy with a frame of its own, a frame in pieces waits behind it, whole', async (t) => {
  const { conn, ws, receive } = await pair(t, { perMessageDeflate: { threshold: 0 } });
  const big = 'x'.repeat(200_000);
  ws.send(big, { compress: true });
  assert.notEqual((ws as unknown as WsInternals)._sender._state, 0, 'the sender is busy compressing');
  const whole = textFrame('a presence reply');
  conn.sendFrame([whole.subarray(0, 5), whole.subarray(5)]);
  const got = await receive(2);
  assert.equal(got[0].length, big.length);
  assert.equal(got[1], 'a presence reply');
});

test('a closed socket drops its queue without writing', async (t) => {
  const { conn, ws } = await pair(t);
  conn.sendFramed(textFrame('late'));
  ws.terminate();
  assert.doesNotThrow(() => conn.flush());
});

/**
 * Flushables that record when they were flushed. The outbox is module state: each test first runs one long
 * flush (`ms` of busy CPU, as writing to thousands of sockets is) and goes on from there.
 */
async function afterLongFlush(ms: number) {
  const flushedAt: number[] = [];
  scheduleFlush({ flush: () => {
    const until = performance.now() + ms;
    while (performance.now() < until);
    flushedAt.push(performance.now());
  } });
  await new Promise((r) => setImmediate(r));
  assert.equal(flushedAt.length, 1);
  return { flushedAt, quick: { flush: () => flushedAt.push(performance.now()) } };
}

test('under load (a long flush that just ended) the next flush waits twice as long, at most 10 ms, so it carries more frames', async () => {
  // 8 ms: long enough that the next one is still counted as "moments after" on a busy test machine.
  const { flushedAt, quick } = await afterLongFlush(8);
  // Right after the long flush: not on the next turn but a few ms later.
  const queuedAt = performance.now();
  scheduleFlush(quick);
  await new Promise((r) => setImmediate(r));
  assert.equal(flushedAt.length, 1, 'not flushed on the next turn');
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(flushedAt.length, 2);
  // Twice the 8 ms flush, capped at 10 ms (a timer never fires early; it may fire late).
  assert.ok(flushedAt[1] - queuedAt >= 9, `waited ${(flushedAt[1] - queuedAt).toFixed(1)} ms`);
  // Idle again (the last flush was quick and a while ago): the next one goes right after the current job.
  await new Promise((r) => setTimeout(r, 20));
  scheduleFlush(quick);
  await new Promise((r) => setImmediate(r));
  assert.equal(flushedAt.length, 3, 'flushed on the next turn');
});

test('after a long flush, a frame that comes once the event loop has sat waiting is not held back for company', async () => {
  // 30 ms: long enough that a short wait after it is still "moments after" (less than the flush's length)
  // even when the wait's timer fires late on a busy machine.
  const { flushedAt, quick } = await afterLongFlush(30);
  // The loop waits for work (a lone trigger 3 ms after a fan-out to thousands of sockets).
  await new Promise((r) => setTimeout(r, 3));
  assert.ok(performance.now() - flushedAt[0] < 30, "still within the long flush's length: only the wait tells them apart");
  scheduleFlush(quick);
  await new Promise((r) => setImmediate(r));
  assert.equal(flushedAt.length, 2, 'flushed on the next turn, not 10 ms later');
});

test('idle: frames are written as soon as the job that queued them is done, ahead of what that job awaits next', async (t) => {
  const { conn, ws, receive } = await pair(t);
  const order: string[] = [];
  watchWrites(ws, () => order.push('frames written'));
  await new Promise((r) => setTimeout(r, 20)); // no flush for a while: idle
  // As a REST handler does: publish (queues frames), then its reply is sent from a later microtask.
  conn.sendFramed(textFrame('one'));
  conn.sendFramed(textFrame('two'));
  await Promise.resolve();
  order.push('reply sent');
  assert.deepEqual(order, ['frames written', 'reply sent'], 'the subscriber is written to before the trigger is answered');
  assert.deepEqual(await receive(2), ['one', 'two']);
});

test('active: frames queued by separate jobs of one turn still share one write per socket', async (t) => {
  const { conn, ws, receive } = await pair(t);
  let writes = 0;
  watchWrites(ws, () => writes++);
  await new Promise((r) => setTimeout(r, 20)); // idle, so that 'first' is flushed at once
  conn.sendFramed(textFrame('first'));
  await Promise.resolve();
  assert.equal(writes, 1, 'flushed: the process is active now, not idle');
  conn.sendFramed(textFrame('a'));
  await Promise.resolve(); // another job (another request read in the same poll phase, say)
  conn.sendFramed(textFrame('b'));
  assert.equal(writes, 1, 'held until the poll phase is over');
  assert.deepEqual(await receive(3), ['first', 'a', 'b']);
  assert.equal(writes, 2);
});
