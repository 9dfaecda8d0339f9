import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer as createHttpServer, type IncomingMessage } from 'node:http';
import { createServer as createNetServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { RestClient } from '../../bench/rest-client';

/**
 * The benchmark's REST client writes requests and reads answers itself (node:http's client cost more
 * generator CPU than the server spent answering), so it must read every way a server frames an answer,
 * however TCP cuts it, and count failures rather than hide them.
 */
const APP = { appId: '7', key: 'bench-key', secret: 'bench-secret' };

async function listen(server: Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return (server.address() as AddressInfo).port;
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => (body += c));
    req.on('end', () => resolve(body));
  });
}

test('keep-alive: requests share at most maxSockets connections, and each answer is read whole whatever its framing', async (t) => {
  const sockets = new Set<Socket>();
  let requests = 0;
  const server = createHttpServer(async (req, res) => {
    const n = requests++;
    const body = await readBody(req);
    const parsed = JSON.parse(body) as { name: string; channels: string[] };
    assert.equal(parsed.name, 'bench');
    assert.equal(req.headers['content-type'], 'application/json');
    assert.match(req.url ?? '', /^\/apps\/7\/events\?auth_key=bench-key&auth_timestamp=\d+&auth_version=1\.0&body_md5=[0-9a-f]{32}&auth_signature=[0-9a-f]{64}$/);
    if (n % 3 === 0) {
      // No Content-Length: node:http frames it chunked, and in two chunks.
      res.write('{');
      setImmediate(() => res.end('}'));
    } else if (n % 3 === 1) {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': 2 }).end('{}');
    } else {
      res.writeHead(202, { 'content-type': 'application/json', 'content-length': 14 }).end('{"accepted":1}');
    }
  });
  server.on('connection', (s: Socket) => sockets.add(s));
  const port = await listen(server);
  t.after(() => server.close());

  const rest = new RestClient({ host: '127.0.0.1', port }, APP, 4);
  t.after(() => rest.close());
  await Promise.all(Array.from({ length: 120 }, (_, i) => rest.post(rest.signTrigger([`c-${i}`], `{"i":${i}}`))));
  assert.equal(rest.ok, 120);
  assert.equal(rest.failed, 0);
  assert.equal(rest.connectionsOpened, 4);
  assert.equal(sockets.size, 4);
});

test('failed answers are counted with the first one kept: an error status, and soketi\'s 200 with an error body', async (t) => {
  let n = 0;
  const server = createHttpServer((req, res) => {
    req.resume();
    req.on('end', () => {
      if (n++ === 0) res.writeHead(401, { 'content-type': 'application/json' }).end('{"error":"Invalid signature"}');
      else res.writeHead(200, { 'content-type': 'application/json' }).end('{"error":"quota"}');
    });
  });
  const port = await listen(server);
  t.after(() => server.close());
  const rest = new RestClient({ host: '127.0.0.1', port }, APP, 1);
  t.after(() => rest.close());
  await rest.post(rest.signTrigger(['a'], 'x'));
  await rest.post(rest.signTrigger(['a'], 'x'));
  assert.equal(rest.ok, 0);
  assert.equal(rest.failed, 2);
  assert.equal(rest.firstFailure, 'HTTP 401: {"error":"Invalid signature"}');
  assert.throws(() => rest.assertUsable(), /every REST trigger failed; first: HTTP 401/);
});

/** A raw server that answers every request on a connection with `answer`, written one byte per write. */
async function byteByByteServer(t: { after(fn: () => void): void }, answer: string, closeAfter: boolean): Promise<{ port: number; connections: () => number }> {
  let connections = 0;
  const server = createNetServer((socket) => {
    connections++;
    socket.setNoDelay(true);
    let seen = '';
    socket.on('data', async (d: Buffer) => {
      seen += d.toString('latin1');
      const headEnd = seen.indexOf('\r\n\r\n');
      if (headEnd < 0) return;
      const length = Number(/content-length: (\d+)/i.exec(seen)?.[1]);
      if (seen.length < headEnd + 4 + length) return;
      seen = seen.slice(headEnd + 4 + length);
      for (const byte of answer) {
        socket.write(byte);
        // A macrotask between bytes, so that the client really reads them one at a time.
        await new Promise((resolve) => setTimeout(resolve, 0));
      }
      if (closeAfter) socket.end();
    });
    socket.on('error', () => {});
  });
  const port = await listen(server);
  t.after(() => server.close());
  return { port, connections: () => connections };
}

test('answers cut into one-byte reads: Content-Length, chunked (size lines and CRLFs cut too), and a body ended by closing', async (t) => {
  const cases = [
    { answer: 'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}', close: false, connections: 1 },
    { answer: 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\n{\r\n1;ext=1\r\n}\r\n0\r\n\r\n', close: false, connections: 1 },
    { answer: 'HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n{}', close: true, connections: 3 },
    { answer: 'HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\n{}', close: true, connections: 3 },
  ];
  for (const c of cases) {
    const server = await byteByByteServer(t, c.answer, c.close);
    const rest = new RestClient({ host: '127.0.0.1', port: server.port }, APP, 1);
    for (let i = 0; i < 3; i++) await rest.post(rest.signTrigger(['a'], 'x'));
    rest.close();
    assert.equal(rest.ok, 3, c.answer);
    assert.equal(rest.failed, 0, c.answer);
    assert.equal(rest.connectionsOpened, c.connections, c.answer);
    assert.equal(server.connections(), c.connections, c.answer);
  }
});

test('a connection cut mid-answer and an answer that never comes reject the request; the client goes on', async (t) => {
  let n = 0;
  const server = createNetServer((socket) => {
    socket.on('data', () => {
      n++;
      if (n === 1) socket.end('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n{"a"');
      else if (n === 2) return; // never answered
      else socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}');
    });
    socket.on('error', () => {});
  });
  const port = await listen(server);
  t.after(() => server.close());
  const rest = new RestClient({ host: '127.0.0.1', port }, APP, 1, { requestTimeoutMs: 300 });
  t.after(() => rest.close());
  await assert.rejects(rest.post(rest.signTrigger(['a'], 'x')), /closed before the response was complete/);
  const started = performance.now();
  await assert.rejects(rest.post(rest.signTrigger(['a'], 'x')), /timed out after 300 ms/);
  assert.ok(performance.now() - started < 2_000);
  await rest.post(rest.signTrigger(['a'], 'x'));
  assert.equal(rest.ok, 1);
  assert.equal(rest.connectionsOpened, 3);
});
