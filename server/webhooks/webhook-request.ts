/**
 * The webhook wire format (protocol.md §4, Pusher's server_api/webhooks.md): event shapes, target
 * matching and the signed request. Pure functions, no I/O.
 */
import { hmacSha256Hex } from '../../sdk/protocol/node/hmac';
import type { WebhookEventType, WebhookTarget } from '../options/Options';

/** One webhook event, with its fields in the order Pusher sends them. */
export type WebhookEvent =
  | { name: 'channel_occupied' | 'channel_vacated' | 'cache_miss'; channel: string }
  | { name: 'member_added' | 'member_removed'; channel: string; user_id: string }
  | { name: 'client_event'; channel: string; event: string; data: string; socket_id: string; user_id?: string }
  | { name: 'subscription_count'; channel: string; subscription_count: number };

/** What one POST carries: the exact body bytes and the headers that go with them. */
export interface WebhookRequest {
  body: string;
  headers: Record<string, string>;
}

/** Headers a target's `headers` may not replace: they make the request verifiable. */
const PROTECTED = new Set(['content-type', 'content-length', 'x-pusher-key', 'x-pusher-signature', 'host', 'transfer-encoding']);

/** True when `target` wants events of this type on this channel (type, then prefix and suffix). */
export function targetAccepts(target: WebhookTarget, name: WebhookEventType, channel: string): boolean {
  if (!target.events.includes(name)) return false;
  if (target.channelPrefix !== undefined && !channel.startsWith(target.channelPrefix)) return false;
  if (target.channelSuffix !== undefined && !channel.endsWith(target.channelSuffix)) return false;
  return true;
}

/**
 * The body `{time_ms, events}` and its headers. The signature is the hex HMAC-SHA256 of exactly the body
 * string posted (its UTF-8 bytes), which is what the `pusher` SDKs' `webhook().isValid()` checks; their
 * verifier also insists on `Content-Type: application/json` with no parameters.
 */
export function buildWebhookRequest(opts: {
  key: string;
  secret: string;
  events: readonly WebhookEvent[];
  timeMs: number;
  userAgent: string;
  extraHeaders?: Record<string, string>;
}): WebhookRequest {
  const body = JSON.stringify({ time_ms: opts.timeMs, events: opts.events });
  const headers: Record<string, string> = { 'user-agent': opts.userAgent };
  for (const [name, value] of Object.entries(opts.extraHeaders ?? {})) {
    const lower = name.toLowerCase();
    if (!PROTECTED.has(lower)) headers[lower] = value;
  }
  headers['content-type'] = 'application/json';
  headers['x-pusher-key'] = opts.key;
  headers['x-pusher-signature'] = hmacSha256Hex(opts.secret, body);
  return { body, headers };
}
