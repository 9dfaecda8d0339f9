/**
 * Web Push in headless Chromium. Chromium has no push service without Google's, so the page's
 * PushManager is replaced by one that hands out a subscription of the in-process fake push service; and
 * what a push service would deliver to the worker is delivered through DevTools.
 */
import assert from 'node:assert/strict';
import { isDeepStrictEqual } from 'node:util';
import type { BrowserContext, Page } from 'playwright-core';
import type { FakeSubscription } from '../../helpers/FakePushService';

/** Every page of the context gets a PushManager whose `subscribe` returns `sub`. */
export async function stubPushManager(context: BrowserContext, sub: FakeSubscription): Promise<void> {
  const json = { endpoint: sub.endpoint, expirationTime: null, keys: sub.keys };
  await context.addInitScript(`(() => {
    const json = ${JSON.stringify(json)};
    let current = null;
    PushManager.prototype.getSubscription = async function () { return current; };
    PushManager.prototype.subscribe = async function (opts) {
      window.subscribeOptions = { userVisibleOnly: opts.userVisibleOnly, keyBytes: new Uint8Array(opts.applicationServerKey).length };
      current = { endpoint: json.endpoint, options: { userVisibleOnly: true, applicationServerKey: new Uint8Array(opts.applicationServerKey).buffer },
        toJSON: () => json, unsubscribe: async () => { current = null; return true; } };
      return current;
    };
  })()`);
}

export interface WorkerPush {
  /** Delivers `data` as JSON to the page's service worker, as a push service would. */
  send(data: unknown): Promise<void>;
  sendRaw(text: string): Promise<void>;
  /**
   * Delivers `data` until the worker shows a notification whose body is `body`. Chromium drops a push
   * delivered through DevTools now and then (the worker never sees it), so one delivery is not a test of
   * the worker; a push shown twice is harmless where this is used.
   */
  sendUntilShown(data: unknown, body: string): Promise<void>;
  /** `sendUntilShown` for a payload that is not JSON. */
  sendRawUntilShown(text: string, body: string): Promise<void>;
}

/** A DevTools handle on the page's service worker registration. */
export async function serviceWorkerOf(context: BrowserContext, page: Page): Promise<WorkerPush> {
  const cdp = await context.newCDPSession(page);
  const ids: string[] = [];
  cdp.on('ServiceWorker.workerRegistrationUpdated', (e: { registrations: { registrationId: string; isDeleted: boolean }[] }) => {
    for (const r of e.registrations) if (!r.isDeleted) ids.push(r.registrationId);
  });
  await cdp.send('ServiceWorker.enable');
  for (let i = 0; i < 100 && ids.length === 0; i++) await new Promise((r) => setTimeout(r, 50));
  assert.ok(ids.length > 0, 'the page has a service worker registration');
  const origin = new URL(page.url()).origin;
  const sendRaw = async (text: string) => {
    await cdp.send('ServiceWorker.deliverPushMessage', { origin, registrationId: ids[0], data: text });
  };
  // Right after registration, Chromium sometimes drops a push delivered through DevTools (about one run in
  // eight: the worker never sees it). Deliver a warm-up push until the worker shows it, then close it, so
  // the pushes a test sends go to a worker that is known to receive them.
  const warmUp = `navigator.serviceWorker.ready.then((r) => r.getNotifications()).then((ns) => ns.filter((n) => n.title === '__warm-up__'))`;
  let shown = false;
  for (let attempt = 0; attempt < 10 && !shown; attempt++) {
    await sendRaw(JSON.stringify({ notification: { title: '__warm-up__' } }));
    for (let i = 0; i < 20 && !shown; i++) {
      shown = await page.evaluate(`${warmUp}.then((ns) => ns.length > 0)`);
      if (!shown) await new Promise((r) => setTimeout(r, 50));
    }
  }
  assert.ok(shown, 'the service worker shows a warm-up push');
  await page.evaluate(`${warmUp}.then((ns) => ns.forEach((n) => n.close()))`);
  await pollPage(page, `${warmUp}.then((ns) => ns.length === 0)`, 'the warm-up notification to close');
  const isShown = (body: string) => page.evaluate<boolean>(`navigator.serviceWorker.ready.then((r) => r.getNotifications()).then((n) => n.some((x) => x.body === ${JSON.stringify(body)}))`);
  const sendRawUntilShown = async (text: string, body: string) => {
    for (let attempt = 0; attempt < 5; attempt++) {
      await sendRaw(text);
      for (let i = 0; i < 40; i++) {
        if (await isShown(body)) return;
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    assert.fail(`the service worker never showed "${body}" (5 deliveries)`);
  };
  return {
    sendRaw,
    send: (data: unknown) => sendRaw(JSON.stringify(data)),
    sendRawUntilShown,
    sendUntilShown: (data: unknown, body: string) => sendRawUntilShown(JSON.stringify(data), body),
  };
}

/** The notifications the page's service worker shows. */
export async function notifications(page: Page): Promise<{ title: string; body: string; data: { deep_link?: string; data?: unknown } }[]> {
  return page.evaluate(`navigator.serviceWorker.ready.then((r) => r.getNotifications()).then((ns) => ns.map((n) => ({ title: n.title, body: n.body, data: n.data })))`);
}

/**
 * Waits until the shown notifications are exactly `expected`, then asserts it. Chrome's list can lag a show
 * (and was once seen to list a notification, then briefly not), so a single read after a wait is not enough.
 */
export async function expectNotifications(page: Page, expected: Awaited<ReturnType<typeof notifications>>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let seen = await notifications(page);
  while (!isDeepStrictEqual(seen, expected) && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 50));
    seen = await notifications(page);
  }
  assert.deepEqual(seen, expected);
}

/**
 * Evaluates `expression` in the page until its value (a promise's, once settled) is truthy, and returns it.
 * Playwright's `waitForFunction` cannot do this: a predicate that returns a promise counts as truthy at the
 * first poll, whatever the promise settles to, so every check of the notification list polls here.
 */
export async function pollPage<T>(page: Page, expression: string, what: string, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await page.evaluate<T>(expression);
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`Waited ${timeoutMs} ms for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
