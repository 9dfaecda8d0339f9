/**
 * The README's quick start, as a newcomer runs it: the built server started with no configuration prints
 * its default app, and the printed credentials work with the official `pusher` and `pusher-js` packages.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import PusherServer from 'pusher';
import { nextEvent } from '../helpers/clients';

const main = join(__dirname, '..', '..', 'server', 'main.js');
// eslint-disable-next-line @typescript-eslint/no-require-imports
const PusherJs = require('pusher-js') as typeof import('pusher-js').default;

interface Started {
  child: ChildProcess;
  out: () => string;
  creds: { id: string; key: string; secret: string; port: number };
}

function start(env: Record<string, string>): Promise<Started> {
  const child = spawn(process.execPath, [main], { env: { PATH: process.env.PATH ?? '', HERALD_HOST: '127.0.0.1', HERALD_PORT: '0', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  return new Promise((resolve, reject) => {
    const onData = (d: Buffer) => {
      out += d.toString();
      const m = /listening on [\d.]+:(\d+)[\s\S]*app id:\s+(\d+)\s+key:\s+(\w+)\s+secret:\s+(\w+)/.exec(out);
      if (m) resolve({ child, out: () => out, creds: { port: Number(m[1]), id: m[2], key: m[3], secret: m[4] } });
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.on('exit', (code) => reject(new Error(`exited with ${code}: ${out}`)));
  });
}

function stop(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => {
    if (child.exitCode !== null) return resolve(child.exitCode);
    child.on('exit', (code) => resolve(code));
    child.kill('SIGTERM');
  });
}

test('npm start with no configuration: generated numeric app, printed snippets, pusher → pusher-js, kept across restarts', async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'herald-quickstart-'));
  t.after(() => rmSync(dataDir, { recursive: true, force: true }));
  const first = await start({ HERALD_DATA_DIR: dataDir });
  t.after(() => stop(first.child));
  const { creds } = first;
  assert.match(creds.id, /^\d+$/);
  assert.match(first.out(), /new Pusher\('\w+', \{ wsHost/);
  assert.match(first.out(), /require\('pusher'\)/);

  const client = new PusherJs(creds.key, { cluster: 'herald', wsHost: '127.0.0.1', wsPort: creds.port, forceTLS: false, enabledTransports: ['ws'] });
  t.after(() => client.disconnect());
  const channel = client.subscribe('my-channel');
  await nextEvent(channel, 'pusher:subscription_succeeded');
  const got = nextEvent(channel, 'my-event');
  const server = new PusherServer({ appId: creds.id, key: creds.key, secret: creds.secret, host: '127.0.0.1', port: String(creds.port), useTLS: false });
  await server.trigger('my-channel', 'my-event', { hello: 'world' });
  assert.deepEqual(await got, { hello: 'world' });
  client.disconnect();
  assert.equal(await stop(first.child), 0, 'SIGTERM exits 0');

  const second = await start({ HERALD_DATA_DIR: dataDir });
  t.after(() => stop(second.child));
  assert.deepEqual({ ...second.creds, port: 0 }, { ...creds, port: 0 }, 'same credentials after a restart');
  assert.equal(await stop(second.child), 0);
});

test('a bad config file stops start-up with a message naming the field', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'herald-badconfig-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'herald.json');
  writeFileSync(file, JSON.stringify({ apps: [{ id: '1', key: 'k', secret: 'secret-1', maxPresenceMembers: 0 }] }));
  const child = spawn(process.execPath, [main], { env: { PATH: process.env.PATH ?? '', HERALD_CONFIG: file, HERALD_DATA_DIR: dir }, stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  assert.equal(code, 2);
  assert.match(err, /config\.apps\.0\.maxPresenceMembers must be >= 1/);
});
