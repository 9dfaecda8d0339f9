/* global self, clients, URL */
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
 */
'use strict';

self.addEventListener('install', () => self.skipWaiting());
self.addEventListener('activate', (event) => event.waitUntil(clients.claim()));

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
  if (typeof self.heraldOnPush === 'function' && (await self.heraldOnPush(payload, event)) === false) return;
  const n = payload.notification || {};
  const hide = n.hide_if_focused || n.hide_notification_if_site_has_focus;
  if (hide && (await focusedWindow())) return;
  await self.registration.showNotification(n.title || '', {
    body: n.body,
    icon: n.icon,
    data: { deep_link: n.deep_link, data: payload.data },
  });
}

self.addEventListener('push', (event) => event.waitUntil(handlePush(event)));

async function handleClick(event) {
  event.notification.close();
  const link = event.notification.data && event.notification.data.deep_link;
  const target = new URL(link || self.registration.scope, self.registration.scope).href;
  const windows = await clients.matchAll({ type: 'window', includeUncontrolled: true });
  const same = windows.find((w) => w.url === target) || (link ? undefined : windows[0]);
  if (same) return same.focus();
  return clients.openWindow(target);
}

self.addEventListener('notificationclick', (event) => event.waitUntil(handleClick(event)));
