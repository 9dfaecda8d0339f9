/**
 * Durability: a 10 000-device publish, the node killed with SIGKILL in the middle of it, restarted on the
 * same data directory. Every device gets its notification (at least once; duplicates are counted and
 * reported, since a send whose result was not yet recorded is sent again).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { FakePushService } from '../helpers/FakePushService';
import { testApp, type TestHerald } from '../helpers/herald';
import { deviceApi, publishStatus, signed, PUSH_SUBJECT } from '../helpers/push';
import { waitFor } from '../helpers/redis';

const DEVICES = 10_000;
const KILL_AFTER = 3_000;
const MAIN = join(__dirname, '..', '..', 'server', 'main.js');

interface Node {
  proc: ChildProcess;
  h: TestHerald;
  exited: Promise<number | null>;
}

/** Starts `node dist/server/main.js` on a config file and waits for its "listening" log line. */
async function startNode(configFile: string, app: TestHerald['app']): Promise<Node> {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('HERALD_')));
  const proc = spawn(process.execPath, [MAIN], { env: { ...env, HERALD_CONFIG: configFile }, stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  let stderr = '';
  proc.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`node did not start: ${stderr}`)), 20000);
    void exited.then((code) => reject(new Error(`node exited with ${code}: ${stderr}`)));
    createInterface({ input: proc.stdout! }).on('line', (line) => {
      try {
        const entry = JSON.parse(line) as { msg?: string; port?: number };
        if (entry.msg === 'Herald is listening' && entry.port) {
          clearTimeout(timer);
          resolve(entry.port);
        }
      } catch {
        // a non-JSON line (none expected); the listening line decides
      }
    });
  });
  const h = { port, host: '127.0.0.1', app, apps: [app], baseUrl: `http://127.0.0.1:${port}` } as unknown as TestHerald;
  return { proc, h, exited };
}

void test('a kill -9 in the middle of a 10 000-device publish loses nothing after a restart', async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'herald-push-crash-'));
  const app = testApp();
  const configFile = join(dataDir, 'config.json');
  writeFileSync(
    configFile,
    JSON.stringify({
      host: '127.0.0.1',
      port: 0,
      dataDir,
      logLevel: 'info',
      shutdownGraceMs: 2000,
      apps: [{ id: app.id, key: app.key, secret: app.secret }],
      push: { subject: PUSH_SUBJECT, allowInsecureEndpoints: true, deviceRequestsPerIpPerSecond: -1 },
    }),
  );
  const fake = await FakePushService.start();
  let node = await startNode(configFile, app);
  t.after(async () => {
    if (node.proc.exitCode === null && node.proc.signalCode === null) {
      node.proc.kill('SIGTERM');
      await node.exited;
    }
    await fake.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  const key = (await deviceApi<{ vapidPublicKey: string }>(node.h, 'GET', '/vapid-public-key')).body.vapidPublicKey;
  const subs = Array.from({ length: DEVICES }, () => fake.createSubscription(key));
  let next = 0;
  await Promise.all(
    Array.from({ length: 32 }, async () => {
      while (next < subs.length) {
        const sub = subs[next++];
        const r = await deviceApi(node.h, 'POST', '/devices', { subscription: { endpoint: sub.endpoint, keys: sub.keys }, interests: ['everyone'] });
        assert.equal(r.status, 201);
      }
    }),
  );

  const publishedAt = Date.now();
  const r = await signed<{ publishId: string }>(node.h, 'POST', '/push/interests', { interests: ['everyone'], web: { notification: { title: 'Crash test' } } });
  assert.equal(r.status, 202);
  await fake.waitFor(KILL_AFTER, 60000);
  node.proc.kill('SIGKILL');
  await node.exited;
  const beforeRestart = fake.messages.length;
  t.diagnostic(`killed after ${beforeRestart} of ${DEVICES} deliveries (${Date.now() - publishedAt} ms)`);
  assert.ok(beforeRestart < DEVICES, 'the kill happened mid-publish');

  node = await startNode(configFile, app);
  const received = new Map<string, number>();
  let seen = 0;
  await waitFor(
    () => {
      for (; seen < fake.messages.length; seen++) {
        const id = fake.messages[seen].subscriptionId;
        received.set(id, (received.get(id) ?? 0) + 1);
      }
      return received.size === DEVICES;
    },
    120000,
    `all ${DEVICES} devices to get their push`,
    50,
  );
  const duplicates = [...received.values()].reduce((sum, n) => sum + n - 1, 0);
  t.diagnostic(`every device got its push; ${duplicates} duplicate(s) (sent before the kill, not yet recorded); total ${Date.now() - publishedAt} ms`);
  assert.equal(fake.rejections.length, 0, JSON.stringify(fake.rejections.slice(0, 3)));
  const st = await publishStatus(node.h, r.body.publishId, (s) => s.status === 'done', 30000);
  assert.deepEqual([st.targeted, st.sent, st.failed, st.expired, st.pending], [DEVICES, DEVICES, 0, 0, 0], 'each row counted once');
  assert.ok(duplicates < 1000, `too many duplicates: ${duplicates}`);
});
