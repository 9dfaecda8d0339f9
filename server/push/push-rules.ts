/**
 * The push API's request parsing: interest and user lists (their rules and Beams' limits, push.md §1.3, are
 * shared with the SDKs in `sdk/protocol/push-rules`), the browser's `PushSubscription` shape, the `web`
 * publish block and the payload a service worker receives (push.md §1.4). Each throws a HeraldError (400,
 * or 413 for a payload that cannot fit one message).
 */
import { interestNameProblem, MAX_PUSH_TTL_SECONDS, MAX_USERS_PER_PUBLISH, pushUserIdProblem } from '../../sdk/protocol';
import { HeraldError } from '../errors';
import { checkPayloadSize, decodeSubscriptionKeys, MAX_PLAINTEXT_BYTES } from './encrypt-payload';
import type { Urgency } from './PushSender';
import { PUSH_REPORTS, type PushReport } from './PushStore';

/** How far ahead `deliverAt` may be. */
export const MAX_SCHEDULE_AHEAD_MS = 28 * 24 * 3600 * 1000;
/** Longest subscription endpoint accepted; real ones are a few hundred characters. */
export const MAX_ENDPOINT_LENGTH = 2048;

const TOPIC_PATTERN = /^[A-Za-z0-9_-]{1,32}$/;
const URGENCIES: ReadonlySet<string> = new Set<Urgency>(['very-low', 'low', 'normal', 'high']);

const bad = (message: string): never => {
  throw new HeraldError('BAD_REQUEST', message);
};

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** A list of interests from a request: checked, deduplicated, at most `max`. */
export function parseInterests(value: unknown, max: number, min = 0): string[] {
  if (!Array.isArray(value)) return bad('interests must be an array of interest names');
  const unique = new Set<string>();
  for (const name of value) {
    const problem = interestNameProblem(name);
    if (problem) bad(problem);
    unique.add(name as string);
  }
  if (unique.size < min) bad(`Name at least ${min} interest${min === 1 ? '' : 's'}`);
  if (unique.size > max) bad(`At most ${max} interests are allowed, got ${unique.size}`);
  return [...unique];
}

/** A list of user ids from a publish: checked, deduplicated, 1–1000. */
export function parseUsers(value: unknown): string[] {
  if (!Array.isArray(value)) return bad('users must be an array of user ids');
  const unique = new Set<string>();
  for (const id of value) {
    const problem = pushUserIdProblem(id);
    if (problem) bad(problem);
    unique.add(id as string);
  }
  if (unique.size === 0) bad('Name at least 1 user');
  if (unique.size > MAX_USERS_PER_PUBLISH) bad(`At most ${MAX_USERS_PER_PUBLISH} users are allowed per publish, got ${unique.size}`);
  return [...unique];
}

/** A subscription as stored: the endpoint and its two keys (base64url). */
export interface SubscriptionInput {
  endpoint: string;
  p256dh: string;
  auth: string;
}

/**
 * The browser's `PushSubscription.toJSON()`: `{ endpoint, keys: { p256dh, auth } }`. The endpoint is vetted
 * by `checkEndpoint` (the SSRF guard); the keys must decode to a P-256 point and a 16-byte secret.
 */
export function parseSubscription(value: unknown, checkEndpoint: (endpoint: string) => void): SubscriptionInput {
  if (!isObject(value)) return bad('subscription must be the object PushSubscription.toJSON() returns');
  const { endpoint, keys } = value;
  if (typeof endpoint !== 'string' || endpoint.length === 0) bad('subscription.endpoint must be a URL');
  if ((endpoint as string).length > MAX_ENDPOINT_LENGTH) bad(`subscription.endpoint is longer than ${MAX_ENDPOINT_LENGTH} characters`);
  if (!isObject(keys) || typeof keys.p256dh !== 'string' || typeof keys.auth !== 'string') {
    bad('subscription.keys must hold the p256dh and auth strings');
  }
  const k = keys as { p256dh: string; auth: string };
  if (!/^[A-Za-z0-9_-]+={0,2}$/.test(k.p256dh) || !/^[A-Za-z0-9_-]+={0,2}$/.test(k.auth)) bad('subscription.keys must be base64url');
  decodeSubscriptionKeys(k);
  checkEndpoint(endpoint as string);
  // Stored without padding, as browsers produce them.
  return { endpoint: endpoint as string, p256dh: k.p256dh.replace(/=+$/, ''), auth: k.auth.replace(/=+$/, '') };
}

/** Publish ids a request may name (Herald makes `pubid-<uuid>`); anything else is not looked up. */
export const PUBLISH_ID_PATTERN = /^[A-Za-z0-9_-]{1,128}$/;

/**
 * An endpoint a browser gives as proof that it is the device (a report's, a renewal's old one): only
 * compared with the stored one, never fetched, so a non-empty string of sane length is all it must be.
 */
function endpointProof(value: unknown, problem: string): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > MAX_ENDPOINT_LENGTH) bad(problem);
  return value as string;
}

/** A service worker's report of one push (`POST /push/v1/:appKey/reports`). */
export interface ReportInput {
  publishId: string;
  endpoint: string;
  report: PushReport;
}

/** `{ publishId, endpoint, report: "delivered" | "opened" }`, as herald-sw.js sends it. */
export function parseReport(value: unknown): ReportInput {
  if (!isObject(value)) return bad('Body must be { "publishId": "...", "endpoint": "...", "report": "delivered" | "opened" }');
  const { publishId, report } = value;
  if (typeof publishId !== 'string' || !PUBLISH_ID_PATTERN.test(publishId)) bad('publishId must be the publishId of the push (data.pusher.publishId)');
  const endpoint = endpointProof(value.endpoint, 'endpoint must be the endpoint of the service worker\'s push subscription');
  if (!PUSH_REPORTS.includes(report as PushReport)) bad('report must be "delivered" or "opened"');
  return { publishId: publishId as string, endpoint, report: report as PushReport };
}

/** A device's new subscription (`PUT /push/v1/:appKey/devices/:id/subscription`), as herald-sw.js sends it. */
export interface RenewalInput {
  oldEndpoint: string;
  subscription: SubscriptionInput;
  /** The key the new subscription was made with, when the browser says (checked by the caller). */
  vapidPublicKey: unknown;
}

/** `{ oldEndpoint, subscription, vapidPublicKey? }`; the new subscription is checked as a registration's is. */
export function parseRenewal(value: unknown, checkEndpoint: (endpoint: string) => void): RenewalInput {
  if (!isObject(value)) return bad('Body must be { "oldEndpoint": "...", "subscription": {...}, "vapidPublicKey": "..." }');
  const oldEndpoint = endpointProof(value.oldEndpoint, 'oldEndpoint must be the endpoint the device was registered with');
  return { oldEndpoint, subscription: parseSubscription(value.subscription, checkEndpoint), vapidPublicKey: value.vapidPublicKey };
}

/** The notification a service worker shows (Beams' web notification fields). */
export interface WebNotification {
  title?: string;
  body?: string;
  icon?: string;
  deep_link?: string;
  hide_notification_if_site_has_focus?: boolean;
}

/** A validated `web` block. */
export interface WebPush {
  notification?: WebNotification;
  data?: Record<string, unknown>;
  /** Seconds the push service keeps the message for an offline device. */
  ttl: number;
  urgency?: Urgency;
  topic?: string;
}

const NOTIFICATION_STRINGS = ['title', 'body', 'icon', 'deep_link'] as const;

/**
 * Checks a `web` block: `{ notification?: { title, body, icon, deep_link, hide_if_focused }, data?, ttl?,
 * urgency?, topic? }`. Beams' spellings `time_to_live` and `hide_notification_if_site_has_focus` are
 * accepted too, so Beams payloads can be sent unchanged.
 */
export function parseWebPush(value: unknown, defaultTtl: number): WebPush {
  if (!isObject(value)) return bad('web must be an object');
  const known = new Set(['notification', 'data', 'ttl', 'time_to_live', 'urgency', 'topic']);
  for (const k of Object.keys(value)) if (!known.has(k)) bad(`web.${k} is not a known field`);
  const out: WebPush = { ttl: defaultTtl };

  if (value.notification !== undefined) {
    const n = value.notification;
    if (!isObject(n)) return bad('web.notification must be an object');
    const notification: WebNotification = {};
    for (const k of Object.keys(n)) {
      if (!(NOTIFICATION_STRINGS as readonly string[]).includes(k) && k !== 'hide_if_focused' && k !== 'hide_notification_if_site_has_focus') {
        bad(`web.notification.${k} is not a known field`);
      }
    }
    for (const k of NOTIFICATION_STRINGS) {
      const v = n[k];
      if (v === undefined) continue;
      if (typeof v !== 'string') bad(`web.notification.${k} must be a string`);
      notification[k] = v as string;
    }
    for (const k of ['deep_link', 'icon'] as const) {
      const v = notification[k];
      if (v !== undefined && !/^(https?:\/\/|\/)/.test(v)) bad(`web.notification.${k} must be an http(s) URL or a path`);
    }
    const hide = n.hide_if_focused ?? n.hide_notification_if_site_has_focus;
    if (hide !== undefined) {
      if (typeof hide !== 'boolean') bad('web.notification.hide_if_focused must be a boolean');
      notification.hide_notification_if_site_has_focus = hide as boolean;
    }
    out.notification = notification;
  }

  if (value.data !== undefined) {
    if (!isObject(value.data)) return bad('web.data must be a JSON object');
    if ('pusher' in value.data) bad('web.data may not contain the key "pusher": the server sets it');
    out.data = value.data;
  }

  const ttl = value.ttl ?? value.time_to_live;
  if (ttl !== undefined) {
    if (typeof ttl !== 'number' || !Number.isSafeInteger(ttl) || ttl < 0 || ttl > MAX_PUSH_TTL_SECONDS) {
      bad(`web.ttl must be a whole number of seconds from 0 to ${MAX_PUSH_TTL_SECONDS}`);
    }
    out.ttl = ttl as number;
  }
  if (value.urgency !== undefined) {
    if (typeof value.urgency !== 'string' || !URGENCIES.has(value.urgency)) bad('web.urgency must be very-low, low, normal or high');
    out.urgency = value.urgency as Urgency;
  }
  if (value.topic !== undefined) {
    if (typeof value.topic !== 'string' || !TOPIC_PATTERN.test(value.topic)) bad('web.topic must be 1-32 base64url characters (A-Z a-z 0-9 - _)');
    out.topic = value.topic as string;
  }
  return out;
}

/** What the server adds under `data.pusher`, as Beams does (push.md §1.4). */
export interface PayloadMeta {
  publishId: string;
  /** Set for the live-with-fallback path: the event's channel and name, so the worker can fetch more. */
  channel?: string;
  event?: string;
}

/**
 * The plaintext the service worker receives: `{ notification, data }` with `data.pusher` set. Throws 413
 * when it would not fit one Web Push message (3993 bytes, RFC 8291 §4), before anything is accepted.
 */
export function buildPayload(web: WebPush, meta: PayloadMeta): string {
  const pusher: Record<string, unknown> = {
    publishId: meta.publishId,
    hasDisplayableContent: web.notification !== undefined,
    hasData: web.data !== undefined,
  };
  if (meta.channel !== undefined) pusher.channel = meta.channel;
  if (meta.event !== undefined) pusher.event = meta.event;
  const payload: Record<string, unknown> = {};
  if (web.notification) payload.notification = web.notification;
  payload.data = { ...web.data, pusher };
  const text = JSON.stringify(payload);
  const size = checkPayloadSize(text);
  if (!size.ok) {
    throw new HeraldError(
      'PAYLOAD_TOO_LARGE',
      `Push payload is ${size.bytes} bytes once encoded; at most ${MAX_PLAINTEXT_BYTES} fit in one Web Push message. Shorten web.notification/web.data or send a small "tickle" and fetch the rest.`,
    );
  }
  return text;
}

/** `deliverAt` as ms since the epoch: an RFC 3339 date string or Unix seconds; null when absent. */
export function parseDeliverAt(value: unknown, nowMs: number): number | null {
  if (value === undefined || value === null) return null;
  let ms: number;
  if (typeof value === 'number' && Number.isFinite(value)) ms = Math.round(value * 1000);
  else if (typeof value === 'string' && /^\d{4}-\d\d-\d\dT/.test(value)) ms = Date.parse(value);
  else return bad('deliverAt must be an RFC 3339 date (2025-01-31T12:00:00Z) or Unix seconds');
  if (!Number.isFinite(ms)) bad('deliverAt is not a valid date');
  if (ms > nowMs + MAX_SCHEDULE_AHEAD_MS) bad('deliverAt may be at most 28 days ahead');
  return ms;
}
