/**
 * Web Push in real Chromium: the service worker (`herald-sw.js`) and the browser SDK's registration flow
 * against Herald's device API.
 *
 * - The service-worker test needs no push API: pushes are delivered straight to the worker through the
 *   DevTools protocol (`ServiceWorker.deliverPushMessage`).
 * - The registration test needs the push API (`/push/v1/:appKey/...` device routes and push fallback on
 *   trigger); it fails until the server has them. Headless Chromium has no push service (its
 *   `pushManager.subscribe` needs Google's), so the page's PushManager is replaced by one that hands out a
 *   subscription of the in-process fake push service, which decrypts what Herald sends. Its worker is an
 *   app's own that imports herald-sw.js (as the SDK README shows) and keeps the listeners herald-sw.js
 *   adds, so the test can hand the click listener a shown notification: headless Chromium cannot click one.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Herald as ServerSdk } from '../../sdk/server';
import { startHerald } from '../helpers/herald';
import { FakePushService } from '../helpers/FakePushService';
import type { HeraldOptions } from '../../server/options/Options';
import { ensureBrowserBundle, json, launchBrowser, openPage, servePages, BROWSER_DIST } from '../sdk/helpers/browser';
import { expectNotifications, pollPage, serviceWorkerOf, stubPushManager } from '../sdk/helpers/push';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const T = { timeout: 60_000 };
/** Push on for every app, allowed to reach the fake's `http://127.0.0.1` endpoints. */
const PUSH_TEST_OPTIONS: Partial<HeraldOptions> = { push: { subject: 'mailto:ops@herald.example.com', allowInsecureEndpoints: true } };

function sw(): string {
  return readFileSync(join(BROWSER_DIST, 'herald-sw.js'), 'utf8');
}

void test('herald-sw.js shows pushes, and skips them when a focused window got the event live', T, async (t) => {
  ensureBrowserBundle();
  const context = await launchBrowser(t);
  if (!context) return;
  const site = await servePages(t, { '/': '<!doctype html><title>push</title>' }, {
    '/herald-sw.js': (_req, _body, res) => {
      res.setHeader('content-type', 'text/javascript');
      res.end(sw());
    },
  });
  await context.grantPermissions(['notifications'], { origin: site.url });
  const page = await openPage(context, site.url);
  await page.evaluate(`navigator.serviceWorker.register('/herald-sw.js').then(() => navigator.serviceWorker.ready)`);
  const worker = await serviceWorkerOf(context, page);

  await worker.sendUntilShown({ notification: { title: 'Shown', body: 'Body', icon: '/i.png', deep_link: `${site.url}/x` }, data: { id: 7 } }, 'Body');
  await expectNotifications(page, [{ title: 'Shown', body: 'Body', data: { deep_link: `${site.url}/x`, data: { id: 7 } } }]);

  // The page is focused and visible: it received the event over its WebSocket, so nothing is shown.
  assert.equal(await page.evaluate(`document.hasFocus() && document.visibilityState === 'visible'`), true);
  await worker.send({ notification: { title: 'Hidden', hide_if_focused: true } });
  await worker.send({ notification: { title: 'Hidden too', hide_notification_if_site_has_focus: true }, data: { pusher: { publishId: 'p1' } } });
  // Chromium drops a DevTools push now and then, so Marker is delivered until shown (sendUntilShown).
  await worker.sendUntilShown({ notification: { title: 'Marker', body: 'marker' } }, 'marker');
  // The worker handles pushes in order, so once Marker shows, both hidden pushes were decided; the set is
  // read until it settles because Chrome's notification list can lag a moment behind a show.
  const titles = `navigator.serviceWorker.ready.then((r) => r.getNotifications()).then((n) => [...new Set(n.map((x) => x.title))].sort().join('|'))`;
  let onScreen = '';
  for (let i = 0; i < 100 && onScreen !== 'Marker|Shown'; i++) {
    onScreen = await page.evaluate<string>(titles);
    if (onScreen !== 'Marker|Shown') await new Promise((r) => setTimeout(r, 50));
  }
  assert.equal(onScreen, 'Marker|Shown', 'the pushes to hide were not shown');

  // A payload that is not JSON still shows something (Chrome penalises pushes that show nothing).
  await worker.sendRawUntilShown('plain text push', 'plain text push');
});

void test('push.register → live delivery with no push; closed tab → notification (needs the push API)', T, async (t) => {
  ensureBrowserBundle();
  const context = await launchBrowser(t);
  if (!context) return;
  const h = await startHerald({ options: PUSH_TEST_OPTIONS });
  const fake = await FakePushService.start();
  const sdk = new ServerSdk({ appId: h.app.id, key: h.app.key, secret: h.app.secret, host: h.host, port: h.port });
  t.after(async () => {
    sdk.close();
    await fake.close();
    await h.stop();
  });

  const vapid = await fetch(`${h.baseUrl}/push/v1/${h.app.key}/vapid-public-key`);
  assert.equal(vapid.status, 200, 'GET /push/v1/:appKey/vapid-public-key exists');
  const { vapidPublicKey, publicKey } = (await vapid.json()) as { vapidPublicKey?: string; publicKey?: string };
  const subscription = fake.createSubscription(vapidPublicKey ?? publicKey);

  const page = `<!doctype html><title>push</title><script src="/dist/herald.js"></script><script>
    window.events = [];
    window.h = new Herald(${JSON.stringify(h.app.key)}, { host: '127.0.0.1', port: ${h.port}, tls: false });
    h.subscribe('alerts').bind('alert', (d) => events.push({ ev: 'alert', data: d }));
  </script>`;
  const site = await servePages(t, { '/': page }, {
    '/herald-sw.js': (_req, _body, res) => {
      res.setHeader('content-type', 'text/javascript');
      res.end(sw());
    },
    '/app-sw.js': (_req, _body, res) => {
      res.setHeader('content-type', 'text/javascript');
      res.end(`self.heraldListeners = {};
        const add = self.addEventListener.bind(self);
        self.addEventListener = (type, fn, opts) => { (self.heraldListeners[type] ||= []).push(fn); add(type, fn, opts); };
        importScripts('/herald-sw.js');`);
    },
    '/push-token': (_req, _body, res) => json(res, 200, sdk.generatePushToken('dora')),
  });
  await context.grantPermissions(['notifications'], { origin: site.url });
  // Headless Chromium cannot reach a real push service: hand out the fake's subscription instead.
  await stubPushManager(context, subscription);

  const tab = await openPage(context, site.url);
  await tab.waitForFunction(`h.connection.state === 'connected' && h.channel('alerts').subscribed`);
  const socketId = await tab.evaluate<string>(`h.connection.socket_id`);
  const deviceId = await tab.evaluate<string>(`h.push.register({ serviceWorker: '/app-sw.js', interests: ['alerts'] })`);
  assert.equal(typeof deviceId, 'string');
  assert.deepEqual(await tab.evaluate(`window.subscribeOptions`), { userVisibleOnly: true, keyBytes: 65 });
  assert.equal(await tab.evaluate(`h.push.deviceId`), deviceId);
  // The open connection named the device (herald:device): Herald knows it is live, with no reconnect.
  assert.equal(await tab.evaluate(`h.connection.socket_id`), socketId, 'the same connection');
  const live = [...h.server.gateway.registry.all()].map((c) => c.deviceId);
  assert.deepEqual(live, [deviceId]);
  assert.equal((await h.server.gateway.state.liveDevices(h.app.id, 'alerts', [deviceId])).size, 1);

  await tab.evaluate(`h.push.addInterest('extra')`);
  await tab.evaluate(`h.push.removeInterest('extra')`);
  await tab.evaluate(`h.push.setUser(() => fetch('/push-token').then((r) => r.json()))`);

  // Tab open: the event arrives live and the device is not pushed.
  await sdk.trigger('alerts', 'alert', { n: 1 }, { push: { notification: { title: 'Alert', body: 'n=1', hide_if_focused: true } } });
  await tab.waitForFunction(`events.some((e) => e.ev === 'alert')`);
  await new Promise((r) => setTimeout(r, 500));
  assert.equal(fake.messagesFor(subscription.id).length, 0, 'a live device gets no push');

  // Tab closed: the next event becomes a notification.
  await tab.close();
  for (let i = 0; i < 100 && [...h.server.gateway.registry.all()].length > 0; i++) await new Promise((r) => setTimeout(r, 50));
  await sdk.trigger('alerts', 'alert', { n: 2 }, { push: { notification: { title: 'Alert', body: 'n=2', deep_link: `${site.url}/` } } });
  const [push] = await fake.waitFor(1);
  const payload = JSON.parse(push.payload) as { notification: { title: string; body: string } };
  assert.equal(payload.notification.title, 'Alert');
  assert.equal(payload.notification.body, 'n=2');
  // What the push service would hand the browser is shown by the worker.
  const viewer = await openPage(context, `${site.url}/`);
  const worker = await serviceWorkerOf(context, viewer);
  await viewer.evaluate(`h.disconnect()`);
  await worker.sendUntilShown(payload, 'n=2');

  // The worker reported the push to Herald: register() left it the address and this browser's endpoint.
  const publishId = (payload as unknown as { data: { pusher: { publishId: string } } }).data.pusher.publishId;
  const counts = async () => {
    const st = await sdk.getPublish(publishId);
    return [st.delivered, st.opened];
  };
  for (let i = 0; i < 100 && (await counts())[0] !== 1; i++) await new Promise((r) => setTimeout(r, 50));
  assert.deepEqual(await counts(), [1, 0], 'delivered, reported by herald-sw.js');
  // Chromium's notification list can miss a shown notification for a moment: read it until it is there.
  const shown = await pollPage<{ publishId?: string }>(
    viewer,
    `navigator.serviceWorker.ready.then((r) => r.getNotifications()).then((n) => n.find((x) => x.body === 'n=2')?.data ?? null)`,
    'the n=2 notification',
  );
  assert.equal(shown.publishId, publishId, 'the notification keeps its publish for the click');
  // A click, as Chromium would deliver it: herald-sw.js's own listener, with the notification it showed.
  const [swHandle] = context.serviceWorkers();
  const clicked = await swHandle.evaluate<string[]>(`(async () => {
    let n;
    for (let i = 0; i < 100 && !n; i++) {
      [n] = (await self.registration.getNotifications()).filter((x) => x.body === 'n=2');
      if (!n) await new Promise((r) => setTimeout(r, 50));
    }
    const waits = [];
    for (const listener of self.heraldListeners.notificationclick) listener({ notification: n, waitUntil: (p) => waits.push(p) });
    // Opening a window needs a real click's user activation, so that part may fail here; the report may not.
    return (await Promise.allSettled(waits)).map((r) => r.status);
  })()`);
  assert.equal(clicked.length, 1, 'herald-sw.js listens for clicks');
  assert.deepEqual(await counts(), [1, 1], 'opened, reported by the click listener');
  await pollPage(viewer, `navigator.serviceWorker.ready.then((r) => r.getNotifications()).then((n) => !n.some((x) => x.body === 'n=2'))`, 'the clicked notification to close');

  // The browser replaced the subscription (pushsubscriptionchange, as Firefox fires it): herald-sw.js moves
  // the device to the new one, which is pushed from then on and reports with the new endpoint.
  const renewed = fake.createSubscription(vapidPublicKey ?? publicKey);
  const renewedJson = { endpoint: renewed.endpoint, expirationTime: null, keys: renewed.keys };
  const keyBytes = [...Buffer.from((vapidPublicKey ?? publicKey) as string, 'base64url')];
  const changed = await swHandle.evaluate<string[]>(`(async () => {
    const json = ${JSON.stringify(renewedJson)};
    const newSubscription = { endpoint: json.endpoint, options: { applicationServerKey: new Uint8Array(${JSON.stringify(keyBytes)}).buffer }, toJSON: () => json };
    const waits = [];
    for (const listener of self.heraldListeners.pushsubscriptionchange) listener({ oldSubscription: null, newSubscription, waitUntil: (p) => waits.push(p) });
    return (await Promise.allSettled(waits)).map((r) => r.status);
  })()`);
  assert.deepEqual(changed, ['fulfilled'], 'herald-sw.js listens for subscription changes');
  const third = await sdk.publishToInterests(['alerts'], { web: { notification: { title: 'Renewed', body: 'n=3' } } });
  await fake.waitFor(2);
  const [pushed] = fake.messagesFor(renewed.id);
  assert.ok(pushed, 'pushed at the new subscription');
  assert.equal(fake.messagesFor(subscription.id).length, 1, 'the old subscription gets no more');
  await worker.sendUntilShown(JSON.parse(pushed.payload), 'n=3');
  const renewedCounts = async () => (await sdk.getPublish(third.publishId)).delivered;
  for (let i = 0; i < 100 && (await renewedCounts()) !== 1; i++) await new Promise((r) => setTimeout(r, 50));
  assert.equal(await renewedCounts(), 1, 'reported with the new endpoint');

  await viewer.evaluate(`h.push.unregister()`);
  assert.equal(await viewer.evaluate(`h.push.deviceId`), null);
  assert.equal(await swHandle.evaluate(`self.heraldReport(${JSON.stringify(publishId)}, 'opened')`), false, 'nothing to report to once unregistered');
  await sdk.publishToInterests(['alerts'], { web: { notification: { title: 'After unregister' } } });
  await new Promise((r) => setTimeout(r, 500));
  assert.equal(fake.messagesFor(subscription.id).length, 1, 'an unregistered device gets nothing');
});
