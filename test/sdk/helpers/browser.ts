/**
 * Real headless Chromium for SDK and example tests (playwright-core driving /usr/bin/chromium), the
 * browser bundle built on demand, and a tiny node:http server for test pages.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { TestContext } from 'node:test';
import type { BrowserContext, Page } from 'playwright-core';

/** The repository root, found from the compiled file's location (dist/test/...). */
export const ROOT = (() => {
  let dir = __dirname;
  while (!existsSync(join(dir, 'package.json')) || !existsSync(join(dir, 'sdk'))) {
    const up = dirname(dir);
    if (up === dir) throw new Error('repository root not found');
    dir = up;
  }
  return dir;
})();

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
export const BROWSER_DIST = join(ROOT, 'sdk', 'browser', 'dist');

const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

function newest(dir: string): number {
  let t = 0;
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    const s = statSync(p);
    t = Math.max(t, s.isDirectory() ? newest(p) : s.mtimeMs);
  }
  return t;
}

let built = false;

/** Builds sdk/browser/dist when missing or older than its sources (protocol included). */
export function ensureBrowserBundle(): void {
  if (built) return;
  const bundle = join(BROWSER_DIST, 'herald.js');
  const sources = Math.max(
    newest(join(ROOT, 'sdk', 'browser', 'src')),
    newest(join(ROOT, 'sdk', 'protocol')),
    statSync(join(ROOT, 'sdk', 'browser', 'herald-sw.js')).mtimeMs,
    statSync(join(ROOT, 'sdk', 'browser', 'build.mjs')).mtimeMs,
  );
  if (!existsSync(bundle) || statSync(bundle).mtimeMs < sources) {
    const r = spawnSync(process.execPath, [join(ROOT, 'sdk', 'browser', 'build.mjs'), '--no-types'], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`browser bundle build failed:\n${r.stdout}\n${r.stderr}`);
  }
  built = true;
}

/**
 * A fresh Chromium profile, closed after the test. Without Chromium the test is skipped locally and
 * fails in CI (CI=true): a missing browser must never pass unnoticed there.
 */
export async function launchBrowser(t: TestContext, options: { viewport?: { width: number; height: number } } = {}): Promise<BrowserContext | null> {
  if (!existsSync(CHROMIUM)) {
    if (process.env.CI === 'true') throw new Error(`Chromium not found at ${CHROMIUM} (CI=true: browser tests may not be skipped)`);
    t.skip(`Chromium not found at ${CHROMIUM}`);
    return null;
  }
  const { chromium } = await import('playwright-core');
  const profile = mkdtempSync(join(tmpdir(), 'herald-chromium-'));
  const context = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, ...options });
  // One hook, browser first: node runs a test's after hooks in the order they were added, and a profile
  // removed under a running Chromium fails (ENOTEMPTY) and leaves the browser, and the test file, running.
  // Chromium's helper processes may still be writing for a moment after close(), hence the retries.
  t.after(async () => {
    await context.close();
    rmSync(profile, { recursive: true, force: true, maxRetries: 10, retryDelay: 100 });
  });
  return context;
}

/** Opens a page and forwards its console errors and uncaught exceptions to the test log when debugging. */
export async function openPage(context: BrowserContext, url: string): Promise<Page> {
  const page = await context.newPage();
  if (process.env.HERALD_TEST_BROWSER_LOG) {
    page.on('console', (m) => console.log(`[page ${m.type()}] ${m.text()}`));
    page.on('pageerror', (e) => console.log(`[page error] ${e.message}`));
  }
  await page.goto(url);
  return page;
}

export type Handler = (req: http.IncomingMessage, body: string, res: http.ServerResponse) => void | Promise<void>;

export interface PageServer {
  url: string;
  port: number;
  close(): Promise<void>;
}

const TYPES: Record<string, string> = { '.js': 'text/javascript', '.mjs': 'text/javascript', '.html': 'text/html', '.map': 'application/json', '.json': 'application/json' };

/**
 * Serves `/dist/*` from the browser SDK's dist, the given pages and the given handlers (exact path match,
 * query ignored). Closed after the test.
 */
export async function servePages(t: TestContext, pages: Record<string, string>, handlers: Record<string, Handler> = {}): Promise<PageServer> {
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const path = (req.url ?? '/').split('?')[0];
      const body = Buffer.concat(chunks).toString('utf8');
      const handler = handlers[path];
      if (handler) {
        Promise.resolve(handler(req, body, res)).catch((err: unknown) => {
          res.statusCode = 500;
          res.end(String(err));
        });
        return;
      }
      if (pages[path] !== undefined) {
        res.setHeader('content-type', 'text/html');
        res.end(pages[path]);
        return;
      }
      if (path.startsWith('/dist/')) {
        const file = join(BROWSER_DIST, path.slice('/dist/'.length).replace(/\.\./g, ''));
        if (existsSync(file)) {
          res.setHeader('content-type', TYPES[file.slice(file.lastIndexOf('.'))] ?? 'application/octet-stream');
          res.end(readFileSync(file));
          return;
        }
      }
      res.statusCode = 404;
      res.end('not found');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  const close = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  t.after(close);
  return { url: `http://127.0.0.1:${port}`, port, close };
}

/** Parses a form-encoded body (what pusher-js and the Herald SDK post to auth endpoints). */
export function form(body: string): Record<string, string> {
  return Object.fromEntries(new URLSearchParams(body));
}

export function json(res: http.ServerResponse, status: number, value: unknown): void {
  res.statusCode = status;
  res.setHeader('content-type', 'application/json');
  res.end(JSON.stringify(value));
}
