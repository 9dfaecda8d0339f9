import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { AddressInfo, Socket } from 'node:net';
import { WebSocketServer } from 'ws';
import { WsClient } from '../../bench/ws-client';
import { makePayload, nowUs } from '../../bench/payload';
import { textFrame } from '../../server/ws/frame';
import { encodeFrame } from '../../sdk/protocol';

/**
 * The benchmark's own WebSocket reader counts what the figures are made of, so it must see every frame
 * however TCP cuts the stream: frames split across reads, headers cut short, and frames far larger than
 * one read.
 */
test('the bench client reads every frame, however the stream is cut into reads', async (t) => {
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1', perMessageDeflate: false });
  t.after(() => wss.close());
  await new Promise<void>((resolve) => wss.on('listening', () => resolve()));
  const serverSocket = new Promise<Socket>((resolve) =>
    wss.on('connection', (ws) => {
      ws.send(encodeFrame('pusher:connection_established', { socket_id: '1.2', activity_timeout: 120 }));
      resolve((ws as unknown as { _socket: Socket })._socket);
    }),
  );

  const seen = new Map<string, number>();
  let deliveries = 0;
  const client = await WsClient.connect({
    host: '127.0.0.1',
    port: (wss.address() as AddressInfo).port,
    path: '/app/key?protocol=7',
    timeoutMs: 5_000,
    events: {
      onDelivery: (sentUs, recvUs) => {
        assert.ok(sentUs > 0 && recvUs >= sentUs);
        deliveries++;
      },
      onOtherEvent: (name) => seen.set(name, (seen.get(name) ?? 0) + 1),
    },
  });
  t.after(() => client.close());
  assert.equal(client.socketId, '1.2');
  const socket = await serverSocket;

  // Every header size (7-bit, 16-bit and 64-bit lengths), names that change and repeat, deliveries in
  // between, and an event that is not first in its frame.
  const frames: Buffer[] = [];
  const expected = new Map<string, number>();
  const add = (name: string, data: string): void => {
    frames.push(textFrame(encodeFrame(name, data, 'presence-x')));
    expected.set(name, (expected.get(name) ?? 0) + 1);
  };
  let expectedDeliveries = 0;
  for (let i = 0; i < 40; i++) {
    add('pusher_internal:member_added', `{"user_id":"u${i}","user_info":{}}`);
    add(i % 3 === 0 ? 'pusher_internal:member_removed' : 'pusher_internal:member_added', `{"user_id":"v${i}"}`);
    if (i % 5 === 0) {
      frames.push(textFrame(encodeFrame('bench', makePayload(nowUs()), 'c')));
      expectedDeliveries++;
    }
    if (i % 10 === 0) add('big-16', 'é'.repeat(2_000 + i));
    if (i % 13 === 0) add('big-64', 'x'.repeat(150_000 + i));
  }
  frames.push(textFrame(`{"channel":"c","event":"late-name","data":"{}"}`));
  expected.set('late-name', 1);
  const stream = Buffer.concat(frames);

  // Cut points from a fixed sequence: one byte, a header's worth, mid-frame, and whole runs of frames.
  const sizes = [1, 3, 9, 2, 70_000, 11, 123, 65_536, 5, 200_000, 1, 1, 1, 4_000];
  let at = 0;
  for (let k = 0; at < stream.length; k++) {
    const n = Math.min(sizes[k % sizes.length], stream.length - at);
    socket.write(stream.subarray(at, at + n));
    at += n;
    // Let each piece arrive as a read of its own.
    await new Promise((r) => setTimeout(r, 2));
  }
  const total = [...expected.values()].reduce((a, b) => a + b, 0);
  const deadline = Date.now() + 5_000;
  while ([...seen.values()].reduce((a, b) => a + b, 0) < total && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  assert.deepEqual(Object.fromEntries([...seen].sort()), Object.fromEntries([...expected].sort()));
  assert.equal(deliveries, expectedDeliveries);
  assert.equal(client.closed, false);
});

/**
 * Frames that span reads are copied into buffers that are reused once handled (bench/frame-buffers.ts).
 * Two clients with large frames half-arrived at the same time must each keep their own.
 */
test('two bench clients with large frames in flight at once each count their own', async (t) => {
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1', perMessageDeflate: false });
  t.after(() => wss.close());
  await new Promise<void>((resolve) => wss.on('listening', () => resolve()));
  const serverSockets: Socket[] = [];
  wss.on('connection', (ws) => {
    ws.send(encodeFrame('pusher:connection_established', { socket_id: `1.${serverSockets.length}`, activity_timeout: 120 }));
    serverSockets.push((ws as unknown as { _socket: Socket })._socket);
  });
  const port = (wss.address() as AddressInfo).port;
  const seen = [new Map<string, number>(), new Map<string, number>()];
  const clients = await Promise.all(
    seen.map((counts) =>
      WsClient.connect({
        host: '127.0.0.1',
        port,
        path: '/app/key?protocol=7',
        timeoutMs: 5_000,
        events: { onDelivery: () => undefined, onOtherEvent: (name) => counts.set(name, (counts.get(name) ?? 0) + 1) },
      }),
    ),
  );
  t.after(() => clients.forEach((c) => c.close()));
  assert.equal(serverSockets.length, 2);

  // Frames of 100–130 KB (the same pooled size), each client's with its own names, written in halves
  // alternately: every second write leaves both clients with a frame half-arrived.
  const rounds = 6;
  const streams = [0, 1].map((k) =>
    Buffer.concat(Array.from({ length: rounds }, (_, i) => textFrame(encodeFrame(`big-${k}-${i % 2}`, String(k).repeat(100_000 + 5_000 * i), 'c')))),
  );
  const half = Math.ceil(Math.max(...streams.map((s) => s.length)) / (2 * rounds));
  for (let at = 0; at < Math.max(...streams.map((s) => s.length)); at += half) {
    for (const k of [0, 1]) if (at < streams[k].length) serverSockets[k].write(streams[k].subarray(at, at + half));
    await new Promise((r) => setTimeout(r, 2));
  }
  const deadline = Date.now() + 5_000;
  const total = (m: Map<string, number>): number => [...m.values()].reduce((a, b) => a + b, 0);
  while ((total(seen[0]) < rounds || total(seen[1]) < rounds) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  for (const k of [0, 1]) assert.deepEqual(Object.fromEntries([...seen[k]].sort()), { [`big-${k}-0`]: rounds / 2, [`big-${k}-1`]: rounds / 2 });
  assert.ok(clients.every((c) => !c.closed));
});
