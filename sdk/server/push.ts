/**
 * Push publish requests (push.md §1.2, §1.4, adapted to Herald's `/apps/:appId/push/...` routes): body
 * shapes and the checks made before sending. Limits are Beams' (push.md §1.3) and RFC 8030's.
 */
import { MAX_INTERESTS_PER_PUBLISH, MAX_PUSH_TTL_SECONDS, MAX_USERS_PER_PUBLISH, pushUserIdProblem } from '../protocol';
import { HeraldInputError } from './errors';
import { checkInterest } from './validate';

/** What the service worker shows (`herald-sw.js` reads these fields). */
export interface WebNotification {
  title?: string;
  body?: string;
  icon?: string;
  /** Opened (or focused) when the notification is clicked. */
  deep_link?: string;
  /** Do not show when a window of the site is focused: it got the event live. */
  hide_if_focused?: boolean;
  /** Beams' spelling of `hide_if_focused`, accepted so Beams payloads move unchanged. */
  hide_notification_if_site_has_focus?: boolean;
}

/** The `web` block of a publish. */
export interface WebPush {
  notification?: WebNotification;
  /** Arbitrary JSON handed to the service worker. */
  data?: Record<string, unknown>;
  /** Seconds the push service keeps the message for an offline device (RFC 8030 §5.2). */
  ttl?: number;
  /** Beams' spelling of `ttl`. */
  time_to_live?: number;
  urgency?: 'very-low' | 'low' | 'normal' | 'high';
  /** Replaces an undelivered message with the same topic: ≤32 base64url characters (RFC 8030 §5.4). */
  topic?: string;
}

export interface PublishBody {
  web: WebPush;
  /** Deliver later instead of now. */
  deliverAt?: Date | string;
}

/**
 * `trigger(..., { push })`: the `web` block for every device holding an interest named like one of the
 * channels, unless a socket that connected with its device id is subscribed to one of them right now.
 */
export type TriggerPush = WebPush;

export interface PublishResponse {
  publishId: string;
}

/** A publish as Herald reports it: where its deliveries stand. */
export interface PublishStatus {
  publishId: string;
  /** `interests`, `users` or `fallback` (a trigger's push). */
  kind?: string;
  status?: string;
  createdAt?: string;
  deliverAt?: string;
  expiresAt?: string;
  /** Devices the publish was for. */
  targeted?: number;
  sent?: number;
  /** Devices skipped because a live connection got the event. */
  skippedOnline?: number;
  expired?: number;
  failed?: number;
  pending?: number;
  /** Devices whose service worker (herald-sw.js) reported the push arrived; a click counts too. */
  delivered?: number;
  /** Devices whose notification was clicked. */
  opened?: number;
  [field: string]: unknown;
}

const URGENCIES = ['very-low', 'low', 'normal', 'high'];
const TOPIC = /^[A-Za-z0-9_-]{1,32}$/;
const WEB_FIELDS = ['notification', 'data', 'ttl', 'time_to_live', 'urgency', 'topic'];
const NOTIFICATION_FIELDS = ['title', 'body', 'icon', 'deep_link', 'hide_if_focused', 'hide_notification_if_site_has_focus'];

/** A push user id by the shared rules (push.md §1.3). */
export function checkPushUserId(id: unknown): asserts id is string {
  const problem = pushUserIdProblem(id);
  if (problem) throw new HeraldInputError(problem);
}

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

/** The same rules Herald applies to a `web` block, so a typo fails here rather than with a 400. */
export function checkWeb(web: unknown): asserts web is WebPush {
  if (!isObject(web)) throw new HeraldInputError('`web` must be an object');
  for (const k of Object.keys(web)) if (!WEB_FIELDS.includes(k)) throw new HeraldInputError(`\`web.${k}\` is not a known field`);
  const w = web as WebPush;
  if (w.notification !== undefined) {
    if (!isObject(w.notification)) throw new HeraldInputError('`web.notification` must be an object');
    const n: Record<string, unknown> = w.notification;
    for (const k of Object.keys(n)) {
      if (!NOTIFICATION_FIELDS.includes(k)) throw new HeraldInputError(`\`web.notification.${k}\` is not a known field`);
    }
    for (const f of ['title', 'body', 'icon', 'deep_link']) {
      const v = n[f];
      if (v !== undefined && typeof v !== 'string') throw new HeraldInputError(`\`web.notification.${f}\` must be a string`);
    }
    for (const f of ['icon', 'deep_link']) {
      const v = n[f];
      if (typeof v === 'string' && !/^(https?:\/\/|\/)/.test(v)) throw new HeraldInputError(`\`web.notification.${f}\` must be an http(s) URL or a path`);
    }
    const hide = n.hide_if_focused ?? n.hide_notification_if_site_has_focus;
    if (hide !== undefined && typeof hide !== 'boolean') throw new HeraldInputError('`web.notification.hide_if_focused` must be a boolean');
  }
  if (w.data !== undefined) {
    if (!isObject(w.data)) throw new HeraldInputError('`web.data` must be an object');
    if ('pusher' in w.data) throw new HeraldInputError('`web.data` may not contain the key "pusher": Herald sets it');
  }
  const ttl = w.ttl ?? w.time_to_live;
  if (ttl !== undefined && !(Number.isSafeInteger(ttl) && ttl >= 0 && ttl <= MAX_PUSH_TTL_SECONDS)) {
    throw new HeraldInputError(`\`web.ttl\` must be whole seconds from 0 to ${MAX_PUSH_TTL_SECONDS}`);
  }
  if (w.urgency !== undefined && !URGENCIES.includes(w.urgency)) throw new HeraldInputError(`\`web.urgency\` must be one of ${URGENCIES.join(', ')}`);
  if (w.topic !== undefined && !TOPIC.test(w.topic)) throw new HeraldInputError('`web.topic` must be 1-32 base64url characters');
}

function deliverAt(value: Date | string | undefined): string | undefined {
  if (value === undefined) return undefined;
  const d = value instanceof Date ? value : new Date(value);
  if (Number.isNaN(d.getTime())) throw new HeraldInputError('`deliverAt` must be a date');
  return d.toISOString();
}

export function interestsBody(interests: unknown, body: PublishBody): Record<string, unknown> {
  if (!Array.isArray(interests) || interests.length === 0 || interests.length > MAX_INTERESTS_PER_PUBLISH) {
    throw new HeraldInputError(`Publish to 1-${MAX_INTERESTS_PER_PUBLISH} interests`);
  }
  interests.forEach(checkInterest);
  checkWeb(body?.web);
  return { interests, web: body.web, deliverAt: deliverAt(body.deliverAt) };
}

export function usersBody(users: unknown, body: PublishBody): Record<string, unknown> {
  if (!Array.isArray(users) || users.length === 0 || users.length > MAX_USERS_PER_PUBLISH) {
    throw new HeraldInputError(`Publish to 1-${MAX_USERS_PER_PUBLISH} users`);
  }
  users.forEach(checkPushUserId);
  checkWeb(body?.web);
  return { users, web: body.web, deliverAt: deliverAt(body.deliverAt) };
}

/** A trigger's channels double as the interests its push goes to, so they must be valid interest names. */
export function checkTriggerPush(channels: string[], push: TriggerPush): void {
  checkWeb(push);
  for (const c of channels) {
    try {
      checkInterest(c);
    } catch (err) {
      throw new HeraldInputError(`push: channel '${c.slice(0, 64)}' cannot name an interest (${(err as Error).message})`);
    }
  }
}
