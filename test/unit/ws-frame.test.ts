import { test } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket, { WebSocketServer } from 'ws';
import type { AddressInfo } from 'node:net';
import { payloadBytes, textFrame } from '../../server/ws/frame';
import type { WsInternals } from '../../server/ws/Connection';

// ws's own framer, untyped in @types/ws.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { Sender } = require('ws') as { Sender: { frame(data: Buffer, o: Record<string, unknown>): Buffer[] } };

test('textFrame writes exactly the bytes ws writes for a server text frame, at every length boundary', () => {
  for (const n of [0, 1, 125, 126, 127, 1000, 65535, 65536, 70000]) {
    for (const text of ['x'.repeat(n), 'é'.repeat(Math.ceil(n / 2))]) {
      const ours = textFrame(text);
      const theirs = Buffer.concat(Sender.frame(Buffer.from(text), { fin: true, opcode: 1, mask: false, readOnly: true, rsv1: false }));
      assert.ok(ours.equals(theirs), `length ${Buffer.byteLength(text)}`);
      assert.equal(payloadBytes(ours), Buffer.byteLength(text));
    }
  }
});

test('the ws internals sendFramed relies on exist on an idle server socket, and a framed write arrives intact', async (t) => {
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1', perMessageDeflate: false });
  t.after(() => wss.close());
  const serverSide = new Promise<WebSocket>((resolve) => wss.on('connection', resolve));
  await new Promise<void>((resolve) => wss.on('listening', () => resolve()));
  const client = new WebSocket(`ws://127.0.0.1:${(wss.address() as AddressInfo).port}`);
  t.after(() => client.close());
  const ws = (await serverSide) as unknown as WsInternals;
  assert.equal(ws._sender._state, 0, 'ws sender state field (idle = 0)');
  assert.ok(Array.isArray(ws._sender._queue), 'ws sender queue');
  const got = new Promise<string>((resolve) => client.once('message', (d: Buffer, isBinary: boolean) => resolve(`${isBinary}:${d.toString()}`)));
  const text = JSON.stringify({ event: 'e', data: 'ü'.repeat(300) });
  ws._socket.write(textFrame(text));
  assert.equal(await got, `false:${text}`);
});
