/**
 * Starts a real Herald node in this process on an ephemeral port, with apps made for the test. Every
 * resource is released by `stop()`, which tests register with `t.after`.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes, randomInt } from 'node:crypto';
import pino from 'pino';
import { HeraldServer, type Backends } from '../../server/HeraldServer';
import { normalizeApp } from '../../server/options/load-options';
import type { AppOptions, HeraldOptions } from '../../server/options/Options';

export interface TestHerald {
  server: HeraldServer;
  port: number;
  host: string;
  /** The first app (most tests need one). */
  app: AppOptions;
  apps: AppOptions[];
  baseUrl: string;
  /** Clients to disconnect before the node stops (pusher-js would otherwise start reconnecting). */
  clients: Set<{ disconnect(): void }>;
  stop(): Promise<void>;
}

/** A unique app with sensible test defaults; `overrides` may change anything. */
export function testApp(overrides: Partial<AppOptions> = {}): AppOptions {
  return normalizeApp({
    id: String(randomInt(100000, 999999999)),
    key: `key-${randomBytes(6).toString('hex')}`,
    secret: `secret-${randomBytes(8).toString('hex')}`,
    ...overrides,
  });
}

export interface StartOptions {
  apps?: Partial<AppOptions>[];
  options?: Partial<HeraldOptions>;
  backends?: Backends;
  /** Log level for the node (default: silent; set HERALD_TEST_LOG=debug to see logs). */
  logLevel?: string;
}

export async function startHerald(opts: StartOptions = {}): Promise<TestHerald> {
  const apps = (opts.apps ?? [{}]).map((a) => testApp(a));
  const dataDir = mkdtempSync(join(tmpdir(), 'herald-test-'));
  const options: HeraldOptions = {
    host: '127.0.0.1',
    port: 0,
    dataDir,
    logLevel: 'silent',
    activityTimeout: 30,
    pongTimeout: 30,
    maxMessageBytes: 65536,
    maxRequestBytes: 1048576,
    shutdownGraceMs: 2000,
    ...opts.options,
    apps,
  };
  const log = pino({ level: process.env.HERALD_TEST_LOG ?? opts.logLevel ?? 'silent' });
  const server = new HeraldServer(options, log, opts.backends);
  const { port } = await server.start();
  const clients = new Set<{ disconnect(): void }>();
  return {
    server,
    port,
    host: '127.0.0.1',
    app: apps[0],
    apps,
    baseUrl: `http://127.0.0.1:${port}`,
    clients,
    async stop() {
      for (const c of clients) c.disconnect();
      clients.clear();
      await server.stop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
