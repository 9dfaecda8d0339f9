/**
 * A real `node dist/server/main.js` child on a config file, for tests that kill it (SIGKILL, SIGTERM) and
 * start it again on the same data directory; and the checks those tests make through its HTTP side.
 */
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { serverSdk } from './clients';
import type { TestHerald } from './herald';
import { waitFor } from './redis';
import type { WebhookReceiver } from './WebhookReceiver';

const MAIN = join(__dirname, '..', '..', 'server', 'main.js');

export interface HeraldProcess {
  h: TestHerald;
  /** Parsed JSON log lines so far. */
  logs: { msg?: string; [k: string]: unknown }[];
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  kill(signal: NodeJS.Signals): void;
}

/** One node process on `configFile`; resolves once it logs that it listens. */
export async function startHeraldProcess(t: TestContext, configFile: string, app: TestHerald['app']): Promise<HeraldProcess> {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('HERALD_')));
  const child = spawn(process.execPath, [MAIN], { env: { ...env, HERALD_CONFIG: configFile }, stdio: ['ignore', 'pipe', 'pipe'] });
  t.after(() => child.kill('SIGKILL'));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const logs: HeraldProcess['logs'] = [];
  const port = await new Promise<number>((resolve, reject) => {
    void exited.then(({ code }) => reject(new Error(`node exited with ${code} before listening: ${stderr}`)));
    createInterface({ input: child.stdout }).on('line', (line) => {
      const entry = JSON.parse(line) as HeraldProcess['logs'][number];
      logs.push(entry);
      if (entry.msg === 'Herald is listening') resolve(entry.port as number);
    });
  });
  const h = { port, host: '127.0.0.1', app, apps: [app], baseUrl: `http://127.0.0.1:${port}` } as unknown as TestHerald;
  return { h, logs, exited, kill: (signal) => child.kill(signal) };
}

/** The app's value of a per-app metric (0 when absent). */
export async function appMetric(h: TestHerald, name: string): Promise<number> {
  const text = await (await fetch(`${h.baseUrl}/metrics`)).text();
  return Number(new RegExp(`^${name}\\{app_id="${h.app.id}"\\} (\\d+)$`, 'm').exec(text)?.[1] ?? 0);
}

/** Waits until the node holds `n` webhook events (queued or in flight), as its metrics say. */
export async function waitQueued(h: TestHerald, n: number): Promise<void> {
  const held = async () => (await appMetric(h, 'herald_webhook_queue_depth')) + (await appMetric(h, 'herald_webhooks_in_flight')) === n;
  await waitFor(held, 10000, `${n} webhook events queued`);
}

/** Every event accepted by `rx`, each request verified with the `pusher` package. */
export function verifiedEvents(h: TestHerald, rx: WebhookReceiver): Record<string, unknown>[] {
  const sdk = serverSdk(h);
  return rx.accepted().flatMap((r) => {
    const webhook = sdk.webhook({ headers: r.headers, rawBody: r.rawBody });
    assert.ok(webhook.isValid(), `invalid webhook: ${r.rawBody}`);
    return webhook.getEvents() as unknown as Record<string, unknown>[];
  });
}
