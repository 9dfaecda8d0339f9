/* global self, clients, caches, fetch, AbortSignal, Response, btoa, URL */
/**
 * Herald's service worker for Web Push (push.md §1.4). Serve it from your site's root (its scope must
 * cover your pages) and register it with `herald.push.register({ serviceWorker: '/herald-sw.js' })`, or
 * `importScripts('/herald-sw.js')` from your own worker.
 *
 * Payload: `{ notification: { title, body, icon, deep_link, hide_if_focused }, data }` (Herald sends
 * Beams' spelling `hide_notification_if_site_has_focus`; both are read).
 * - Shows the notification, unless `hide_if_focused` is set and a window of the site is focused: that
 *   window is connected and got the event live.
 * - On click, focuses a window already at `deep_link` or opens it (without `deep_link`: any window of the
 *   site, or the worker's scope).
 * - `self.heraldOnPush = (payload, event) => promise|boolean` runs first; return false to show nothing.
 * - Reports each push of a Herald publish as `delivered`, and a click on its notification as `opened`, to
 *   Herald's device API, so the publish's status counts them. A report that fails is dropped: it never
 *   holds a notification back. `self.heraldReport(publishId, 'delivered' | 'opened')` sends one by hand.
 * - When the browser replaces the push subscription (`pushsubscriptionchange`), moves the device to the new
 *   one, so it keeps its interests and user and is not lost when the old endpoint stops working.
 * Both use what `herald.push.register()` leaves in Cache Storage (`herald-push`): Herald's device API
 * address and this browser's subscription. Before that, or after `unregister()`, they do nothing.
 */
'use strict';

self.addEventListener('install', () => self.skipWaiting());
self.addEventListener('activate', (event) => event.waitUntil(clients.claim()));

// Where herald.push.register() keeps { reportUrl, subscriptionUrl, endpoint } for this worker (see the
// SDK's PushClient).
const WORKER_CACHE = 'herald-push';
const WORKER_CONFIG = '/__herald/push-config';
const REQUEST_TIMEOUT_MS = 10000;

async function workerConfig() {
  const cache = await caches.open(WORKER_CACHE);
  const res = await cache.match(WORKER_CONFIG);
  if (!res) return null;
  const config = await res.json();
  const valid = config && ['reportUrl', 'subscriptionUrl', 'endpoint'].every((k) => typeof config[k] === 'string');
  return valid ? config : null;
}

async function saveWorkerConfig(config) {
  const cache = await caches.open(WORKER_CACHE);
  await cache.put(WORKER_CONFIG, new Response(JSON.stringify(config), { headers: { 'content-type': 'application/json' } }));
}

// A request to Herald must not hold the worker for minutes when Herald is unreachable.
function deadline() {
  return typeof AbortSignal.timeout === 'function' ? AbortSignal.timeout(REQUEST_TIMEOUT_MS) : undefined;
}

async function heraldReport(publishId, report) {
  if (typeof publishId !== 'string' || publishId === '') return false;
  try {
    const config = await workerConfig();
    if (!config) return false;
    // text/plain: a simple request, so no CORS preflight for each report.
    const res = await fetch(config.reportUrl, {
      method: 'POST',
      headers: { 'content-type': 'text/plain;charset=UTF-8' },
      body: JSON.stringify({ publishId, endpoint: config.endpoint, report }),
      credentials: 'omit',
      keepalive: true,
      signal: deadline(),
    });
    return res.ok;
  } catch {
    return false;
  }
}
self.heraldReport = heraldReport;

function publishIdOf(payload) {
  const pusher = payload.data && payload.data.pusher;
  return pusher && typeof pusher.publishId === 'string' ? pusher.publishId : undefined;
}

function readPayload(event) {
  if (!event.data) return {};
  try {
    return event.data.json() || {};
  } catch (err) {
    // Not JSON: show the text, which is better than a push that displays nothing.
    return { notification: { body: event.data.text() }, parseError: String(err) };
  }
}

async function focusedWindow() {
  const windows = await clients.matchAll({ type: 'window', includeUncontrolled: true });
  return windows.some((w) => w.focused && w.visibilityState === 'visible');
}

async function handlePush(event) {
  const payload = readPayload(event);
  const publishId = publishIdOf(payload);
  // Sent alongside, not before: a notification never waits for the report.
  const reported = heraldReport(publishId, 'delivered');
  try {
    await showPush(payload, event, publishId);
  } finally {
    await reported;
  }
}

async function showPush(payload, event, publishId) {
  if (typeof self.heraldOnPush === 'function' && (await self.heraldOnPush(payload, event)) === false) return;
  const n = payload.notification || {};
  const hide = n.hide_if_focused || n.hide_notification_if_site_has_focus;
  if (hide && (await focusedWindow())) return;
  const data = { deep_link: n.deep_link, data: payload.data };
  if (publishId !== undefined) data.publishId = publishId;
  await self.registration.showNotification(n.title || '', { body: n.body, icon: n.icon, data });
}

self.addEventListener('push', (event) => event.waitUntil(handlePush(event)));

async function handleClick(event) {
  event.notification.close();
  const reported = heraldReport(event.notification.data && event.notification.data.publishId, 'opened');
  try {
    await openTarget(event);
  } finally {
    await reported;
  }
}

async function openTarget(event) {
  const link = event.notification.data && event.notification.data.deep_link;
  const target = new URL(link || self.registration.scope, self.registration.scope).href;
  const windows = await clients.matchAll({ type: 'window', includeUncontrolled: true });
  const same = windows.find((w) => w.url === target) || (link ? undefined : windows[0]);
  if (same) return same.focus();
  return clients.openWindow(target);
}

self.addEventListener('notificationclick', (event) => event.waitUntil(handleClick(event)));

function base64Url(buffer) {
  let text = '';
  for (const byte of new Uint8Array(buffer)) text += String.fromCharCode(byte);
  return btoa(text).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

// Firefox (and others) fire this when the push service replaces a subscription; the old endpoint then stops
// working, and without this the device would be deleted at its next push (410) until the page registers
// again. Some browsers hand over the new subscription; otherwise subscribe again with the old options.
async function renewSubscription(event) {
  try {
    const config = await workerConfig();
    if (!config) return;
    const options = event.oldSubscription ? event.oldSubscription.options : null;
    const subscription = event.newSubscription || (options ? await self.registration.pushManager.subscribe(options) : null);
    if (!subscription) return;
    // The endpoint the device has now proves that this browser is asking (a device id alone would not).
    const body = { oldEndpoint: config.endpoint, subscription: subscription.toJSON() };
    const key = (subscription.options && subscription.options.applicationServerKey) || (options && options.applicationServerKey);
    if (key) body.vapidPublicKey = base64Url(key);
    const res = await fetch(config.subscriptionUrl, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
      credentials: 'omit',
      signal: deadline(),
    });
    if (res.ok) await saveWorkerConfig({ ...config, endpoint: subscription.endpoint });
  } catch {
    // Nothing else to do here: the page's next push.register() registers the new subscription.
  }
}

self.addEventListener('pushsubscriptionchange', (event) => event.waitUntil(renewSubscription(event)));
