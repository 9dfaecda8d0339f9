/**
 * The "reference": a bare `ws` server that speaks just enough of the Pusher protocol for the
 * broadcast scenarios, encodes each published frame once and writes the same bytes to every subscriber,
 * with no checks at all (no signature, no validation, no limits, no liveness, no metrics). It is the
 * practical ceiling for Node on the machine, measured in the same run as Herald, so that machine drift
 * (this VM's speed moves by tens of % between sessions) does not move the yardstick.
 *
 * Not a server anyone should run: `node dist/bench/reference-server.js PORT APP_KEY`, loopback only.
 */
import { createServer } from 'node:http';
import type { Socket } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';

const port = Number(process.argv[2]);
const key = process.argv[3];
const channels = new Map<string, Set<WebSocket>>();
let nextSocket = 1;

const http = createServer((req, res) => {
  if (req.method === 'GET') {
    res.end('{}'); // the harness polls /ready
    return;
  }
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    const e = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { name: string; data: string; channels?: string[]; channel?: string };
    for (const channel of e.channels ?? [e.channel ?? '']) {
      const subs = channels.get(channel);
      if (subs === undefined) continue;
      const payload = Buffer.from(JSON.stringify({ event: e.name, channel, data: e.data }));
      const frame = Buffer.concat([textFrameHeader(payload.length), payload]);
      for (const ws of subs) (ws as unknown as { _socket: Socket })._socket.write(frame);
    }
    res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
  });
});

/** RFC 6455 header of an unmasked, final text frame of `length` bytes. */
function textFrameHeader(length: number): Buffer {
  if (length < 126) return Buffer.from([0x81, length]);
  if (length < 65536) return Buffer.from([0x81, 126, length >> 8, length & 0xff]);
  const h = Buffer.alloc(10);
  h[0] = 0x81;
  h[1] = 127;
  h.writeBigUInt64BE(BigInt(length), 2);
  return h;
}

const wss = new WebSocketServer({ server: http, path: `/app/${key}`, perMessageDeflate: false });
wss.on('connection', (ws) => {
  const mine = new Set<string>();
  ws.send(JSON.stringify({ event: 'pusher:connection_established', data: JSON.stringify({ socket_id: `${nextSocket++}.1`, activity_timeout: 120 }) }));
  ws.on('message', (raw: Buffer) => {
    const m = JSON.parse(raw.toString('utf8')) as { event: string; data?: { channel?: string } };
    if (m.event === 'pusher:ping') ws.send('{"event":"pusher:pong","data":"{}"}');
    if (m.event !== 'pusher:subscribe' || m.data?.channel === undefined) return;
    const channel = m.data.channel;
    let subs = channels.get(channel);
    if (subs === undefined) channels.set(channel, (subs = new Set()));
    subs.add(ws);
    mine.add(channel);
    ws.send(JSON.stringify({ event: 'pusher_internal:subscription_succeeded', channel, data: '{}' }));
  });
  ws.on('close', () => {
    for (const channel of mine) {
      const subs = channels.get(channel);
      subs?.delete(ws);
      if (subs?.size === 0) channels.delete(channel);
    }
  });
});

http.listen(port, '127.0.0.1');
// The harness stops servers with SIGTERM; exiting normally lets --cpu-prof write its profile.
process.on('SIGTERM', () => process.exit(0));
