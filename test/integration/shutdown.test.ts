import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RawClient } from '../helpers/clients';

const MAIN = join(__dirname, '..', '..', 'server', 'main.js');

interface Node {
  child: ChildProcess;
  port: number;
  key: string;
  /** Everything the process wrote to stdout so far. */
  output: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Starts `node dist/server/main.js` as `npm start` would, on a free port, and waits for its banner. */
async function startMain(t: { after: (fn: () => void) => void }, env: Record<string, string> = {}): Promise<Node> {
  const dataDir = mkdtempSync(join(tmpdir(), 'herald-main-'));
  t.after(() => rmSync(dataDir, { recursive: true, force: true }));
  const key = 'shutdown-key';
  const child = spawn(process.execPath, [MAIN], {
    env: {
      PATH: process.env.PATH ?? '',
      HERALD_HOST: '127.0.0.1',
      HERALD_PORT: '0',
      HERALD_DATA_DIR: dataDir,
      HERALD_APP_ID: '4242',
      HERALD_APP_KEY: key,
      HERALD_APP_SECRET: 'shutdown-secret',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  t.after(() => child.kill('SIGKILL'));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  let out = '';
  let err = '';
  child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /Herald is listening on [^\s:]+:(\d+)/.exec(out);
      if (m) resolve(Number(m[1]));
    });
    void exited.then(({ code }) => reject(new Error(`herald exited with ${code} before listening: ${err}`)));
  });
  return { child, port, key, output: () => out, exited };
}

test('SIGTERM: sockets are closed with 4200 (reconnect elsewhere) and the process exits 0', { timeout: 30_000 }, async (t) => {
  const node = await startMain(t);
  assert.match(node.output(), /debug console disabled/, 'a log line says the console is off without a token');
  const c = new RawClient(`ws://127.0.0.1:${node.port}/app/${node.key}?protocol=7&client=js&version=8.4.0`);
  await c.next('pusher:connection_established');
  node.child.kill('SIGTERM');
  const closed = await c.closed;
  assert.equal(closed.code, 4200);
  assert.deepEqual(await node.exited, { code: 0, signal: null });
});

test('SIGINT with an open console stream and socket: both end and the exit is prompt, well within the grace', { timeout: 30_000 }, async (t) => {
  const token = 'console-token-for-shutdown-test';
  const node = await startMain(t, { HERALD_ADMIN_TOKEN: token });
  assert.doesNotMatch(node.output(), /debug console disabled/);
  const c = new RawClient(`ws://127.0.0.1:${node.port}/app/${node.key}?protocol=7&client=js&version=8.4.0`);
  await c.next('pusher:connection_established');
  const streamEnded = new Promise<number>((resolve, reject) => {
    http
      .get(`http://127.0.0.1:${node.port}/console/api/apps/4242/events`, { headers: { authorization: `Bearer ${token}` } }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
        // Once the stream is open, stop the server.
        node.child.kill('SIGINT');
      })
      .on('error', reject);
  });
  const started = Date.now();
  assert.equal(await streamEnded, 200);
  assert.equal((await c.closed).code, 4200);
  assert.deepEqual(await node.exited, { code: 0, signal: null });
  // The default grace is 10 s: an open event stream must not hold the shutdown until then.
  assert.ok(Date.now() - started < 5000, `took ${Date.now() - started} ms`);
});
