/**
 * Webhook verification (protocol.md §4), after pusher-http-node's `webhook.js` with its footgun removed:
 * the getters throw unless the webhook is valid, so unsigned data is never read by accident. Key and
 * signature are compared in constant time.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { hmacSha256Hex, safeEqual } from '../protocol/node/hmac';
import { HeraldWebhookError } from './errors';

interface ChannelEvent<N extends string> {
  name: N;
  channel: string;
}

/** One event of a webhook, by `name`. */
export type WebhookEvent =
  | ChannelEvent<'channel_occupied'>
  | ChannelEvent<'channel_vacated'>
  | ChannelEvent<'cache_miss'>
  | (ChannelEvent<'member_added'> & { user_id: string })
  | (ChannelEvent<'member_removed'> & { user_id: string })
  | (ChannelEvent<'client_event'> & { event: string; data: string; socket_id: string; user_id?: string })
  | (ChannelEvent<'subscription_count'> & { subscription_count: number });

/** A webhook body: when it was created, and its events. */
export interface WebhookData {
  time_ms: number;
  events: WebhookEvent[];
}

/** What an HTTP framework gives you: headers (any case) and the body exactly as received. */
export interface WebhookRequest {
  headers: IncomingHttpHeaders | Record<string, string | string[] | undefined>;
  rawBody: string | Buffer;
}

/** Another app's credentials to accept, e.g. while rotating secrets. */
export interface WebhookToken {
  key: string;
  secret: string;
}

function header(headers: WebhookRequest['headers'], name: string): string | undefined {
  for (const [k, v] of Object.entries(headers)) {
    if (k.toLowerCase() === name) return Array.isArray(v) ? v[0] : v;
  }
  return undefined;
}

export class Webhook {
  readonly key: string | undefined;
  readonly signature: string | undefined;
  readonly contentType: string | undefined;
  readonly body: string;
  private readonly raw: Buffer;
  private readonly data: WebhookData | undefined;

  constructor(
    private readonly token: WebhookToken,
    request: WebhookRequest,
  ) {
    this.key = header(request.headers, 'x-pusher-key');
    this.signature = header(request.headers, 'x-pusher-signature');
    this.contentType = header(request.headers, 'content-type');
    this.raw = Buffer.isBuffer(request.rawBody) ? request.rawBody : Buffer.from(request.rawBody ?? '', 'utf8');
    this.body = this.raw.toString('utf8');
    this.data = this.isContentTypeValid() ? parseData(this.body) : undefined;
  }

  /** `application/json`, with or without parameters such as `charset`. */
  isContentTypeValid(): boolean {
    return this.contentType !== undefined && /^application\/json\s*(;|$)/i.test(this.contentType);
  }

  isBodyValid(): boolean {
    return this.data !== undefined;
  }

  /** True when the body is JSON and signed by this app (or one of `extraTokens`). */
  isValid(extraTokens: WebhookToken | WebhookToken[] = []): boolean {
    if (!this.isBodyValid() || this.key === undefined || this.signature === undefined) return false;
    const tokens = [this.token, ...(Array.isArray(extraTokens) ? extraTokens : [extraTokens])];
    let valid = false;
    // Every token is checked, so the time taken does not tell which key matched.
    for (const t of tokens) {
      if (safeEqual(this.key, t.key) && safeEqual(this.signature, hmacSha256Hex(t.secret, this.raw))) valid = true;
    }
    return valid;
  }

  /** The verified body; throws `HeraldWebhookError` when the webhook is not valid. */
  getData(extraTokens?: WebhookToken | WebhookToken[]): WebhookData {
    if (!this.isValid(extraTokens) || this.data === undefined) {
      const why = !this.isContentTypeValid() ? 'content type is not application/json' : !this.isBodyValid() ? 'body is not a webhook JSON object' : 'key or signature does not match';
      throw new HeraldWebhookError(`Invalid webhook: ${why}`, this.contentType, this.body, this.signature);
    }
    return this.data;
  }

  getEvents(extraTokens?: WebhookToken | WebhookToken[]): WebhookEvent[] {
    return this.getData(extraTokens).events;
  }

  getTime(extraTokens?: WebhookToken | WebhookToken[]): Date {
    return new Date(this.getData(extraTokens).time_ms);
  }
}

function parseData(body: string): WebhookData | undefined {
  try {
    const parsed = JSON.parse(body) as Partial<WebhookData> | null;
    if (parsed === null || typeof parsed !== 'object' || !Array.isArray(parsed.events)) return undefined;
    return parsed as WebhookData;
  } catch {
    return undefined;
  }
}
