/**
 * Sends one encrypted Web Push message to one subscription and classifies the answer (push.md §2.5).
 * Retries, persistence and device deletion belong to the caller (the durable delivery queue): this
 * class only turns a request into an outcome, never into an exception, once the request is well-formed.
 */
import type { Agent } from 'undici';
import { HeraldError } from '../errors';
import { outboundAgent, post } from '../outbound/post';
import { checkPayloadSize, decodeSubscriptionKeys, type SubscriptionKeys } from './encrypt-payload';
import { EncryptPool, EncryptThreadError } from './encrypt-pool';
import { VapidHeaderCache, type VapidKey } from './vapid';

/** RFC 8030 §5.3 urgency values. */
export type Urgency = 'very-low' | 'low' | 'normal' | 'high';

/** What the sender needs of a stored subscription: the browser's `PushSubscription.toJSON()` shape. */
export interface PushSubscriptionData {
  endpoint: string;
  keys: SubscriptionKeys;
}

/** Per-message options. */
export interface SendOptions {
  /** Seconds the push service keeps the message for an offline device (RFC 8030 §5.2); 0 = now or never. */
  ttl: number;
  /** Key the subscription was created with; a different key gets 401/403 (RFC 8292 §4). */
  vapidKey: VapidKey;
  urgency?: Urgency;
  /** Replaces an undelivered message with the same topic; ≤32 base64url characters (RFC 8030 §5.4). */
  topic?: string;
  /** 0 for the first try; sets the backoff of a `retry` outcome. */
  attempt?: number;
}

/**
 * The result of one send, as an action for the caller:
 * `sent` done; `gone` delete the subscription; `rejected` do not retry (400/401/403/413 and other 4xx;
 * 401/403 on every subscription means a VAPID configuration problem); `retry` try again after `afterMs`
 * while the message's TTL lasts.
 */
export type PushOutcome =
  | { kind: 'sent'; status: number; ttl?: number }
  | { kind: 'gone'; status: number }
  | { kind: 'rejected'; status: number; reason?: string }
  | { kind: 'retry'; afterMs: number; status?: number; error?: string };

/** Options of {@link PushSender}. */
export interface PushSenderOptions {
  /** Requests in flight across all origins; excess sends wait their turn (push.md §4.3.3). */
  maxConcurrency?: number;
  /** Keep-alive sockets per push-service origin. */
  maxSocketsPerOrigin?: number;
  /** Total deadline of one request, connect to last body byte, in ms. */
  timeoutMs?: number;
  /** Also accept `http:` endpoints; only for tests against a local fake push service. */
  allowInsecureEndpoints?: boolean;
  /** Extra endpoint check (e.g. a push-service host allowlist, push.md §2.6); false refuses the endpoint. */
  allowHost?: (hostname: string) => boolean;
  /** Shared VAPID header cache; one is created when omitted. */
  vapidCache?: VapidHeaderCache;
  /** Backoff settings for `retry` outcomes. */
  backoff?: RetryDelayOptions;
  /** Clock in ms, used to read `Retry-After` dates. */
  now?: () => number;
  /** Threads that encrypt messages off the event loop (encrypt-pool.ts), closed with the sender; unset: on the event loop. */
  encryption?: EncryptPool;
}

/** Options of {@link retryDelayMs}. */
export interface RetryDelayOptions {
  /** Delay of the first retry before jitter. */
  baseMs?: number;
  /** Upper bound before jitter. */
  maxMs?: number;
  /** Source of jitter in [0, 1). */
  random?: () => number;
}

const DEFAULT_MAX_CONCURRENCY = 100;
const DEFAULT_MAX_SOCKETS = 50;
const DEFAULT_TIMEOUT_MS = 15_000;
const IDLE_SOCKET_TIMEOUT_MS = 30_000;
const MAX_REASON_CHARS = 512;
const TOPIC_PATTERN = /^[A-Za-z0-9_-]{1,32}$/;
const URGENCIES: ReadonlySet<string> = new Set<Urgency>(['very-low', 'low', 'normal', 'high']);

/**
 * Exponential backoff with jitter for attempt n (0-based): 1, 2, 4, 8 … s capped at 5 min, each drawn from
 * [½, 1] of its step so a burst of failures does not retry in lockstep (push.md §4.3.4).
 */
export function retryDelayMs(attempt: number, options: RetryDelayOptions = {}): number {
  const base = options.baseMs ?? 1000;
  const max = options.maxMs ?? 300_000;
  const random = options.random ?? Math.random;
  const step = Math.min(max, base * 2 ** Math.max(0, Math.min(attempt, 30)));
  return Math.round(step / 2 + (random() * step) / 2);
}

/** Milliseconds a `Retry-After` header asks for (delta-seconds or HTTP-date), or null if absent or unreadable. */
export function parseRetryAfter(value: string | undefined, nowMs: number = Date.now()): number | null {
  if (value === undefined) return null;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  // Every HTTP-date form starts with a day name; Date.parse alone would accept "-5" as a year.
  if (!/^[A-Za-z]{3}/.test(trimmed)) return null;
  const date = Date.parse(trimmed);
  if (Number.isNaN(date)) return null;
  return Math.max(0, date - nowMs);
}

/** Turns a push service's status code into an outcome (push.md §2.5); pure, so the table is testable. */
export function classifyResponse(
  status: number,
  headers: { retryAfter?: string; ttl?: string; body?: string },
  attempt: number,
  options: { backoff?: RetryDelayOptions; now?: number } = {},
): PushOutcome {
  if (status >= 200 && status < 300) {
    const ttl = headers.ttl !== undefined && /^\d+$/.test(headers.ttl) ? Number(headers.ttl) : undefined;
    return ttl === undefined ? { kind: 'sent', status } : { kind: 'sent', status, ttl };
  }
  if (status === 404 || status === 410) return { kind: 'gone', status };
  if (status === 429 || status === 408 || status >= 500) {
    // Autopush also sends Retry-After with 503, so it is honoured for any retryable status.
    const asked = parseRetryAfter(headers.retryAfter, options.now);
    return { kind: 'retry', afterMs: asked ?? retryDelayMs(attempt, options.backoff), status };
  }
  const reason = headers.body?.trim().slice(0, MAX_REASON_CHARS);
  return reason ? { kind: 'rejected', status, reason } : { kind: 'rejected', status };
}

/**
 * Parses and vets a subscription endpoint before any I/O: `https:` only (plus `http:` when insecure
 * endpoints are allowed), no credentials, optional host allowlist. The URL comes from a browser, so this
 * is the SSRF guard. Throws a 400 HeraldError.
 */
export function checkPushEndpoint(endpoint: string, allowInsecure = false, allowHost?: (hostname: string) => boolean): URL {
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch {
    throw new HeraldError('BAD_REQUEST', 'Push endpoint is not a valid URL');
  }
  if (url.protocol !== 'https:' && !(allowInsecure && url.protocol === 'http:')) {
    throw new HeraldError('BAD_REQUEST', `Push endpoint must use https:, not ${url.protocol}`);
  }
  if (url.username || url.password) throw new HeraldError('BAD_REQUEST', 'Push endpoint must not contain credentials');
  if (allowHost && !allowHost(url.hostname)) throw new HeraldError('BAD_REQUEST', `Push service host ${url.hostname} is not allowed`);
  return url;
}

/** Why send options are invalid, or null. */
export function sendOptionsProblem(options: Pick<SendOptions, 'ttl' | 'urgency' | 'topic' | 'attempt'>): string | null {
  if (!Number.isSafeInteger(options.ttl) || options.ttl < 0) return 'TTL must be a non-negative integer number of seconds';
  if (options.attempt !== undefined && !(Number.isSafeInteger(options.attempt) && options.attempt >= 0)) return 'attempt must be a non-negative integer';
  if (options.urgency !== undefined && !URGENCIES.has(options.urgency)) return 'Urgency must be very-low, low, normal or high';
  if (options.topic !== undefined && !TOPIC_PATTERN.test(options.topic)) return 'Topic must be 1-32 base64url characters';
  return null;
}

/**
 * Sends Web Push messages through pooled keep-alive connections (one pool per push service origin, see
 * outbound/post.ts) under a global concurrency cap.
 */
export class PushSender {
  private readonly maxConcurrency: number;
  private readonly maxSockets: number;
  private readonly timeoutMs: number;
  private readonly allowInsecure: boolean;
  private readonly allowHost: ((hostname: string) => boolean) | undefined;
  private readonly vapid: VapidHeaderCache;
  private readonly backoff: RetryDelayOptions;
  private readonly now: () => number;
  private readonly dispatcher: Agent;
  private readonly encryption: EncryptPool;
  // FIFO of sends waiting for a slot; a head index because Array#shift is O(n) on queues of 10^5 sends.
  private waiting: Array<() => void> = [];
  private waitingHead = 0;
  private active = 0;
  private closed = false;

  constructor(options: PushSenderOptions = {}) {
    this.maxConcurrency = options.maxConcurrency ?? DEFAULT_MAX_CONCURRENCY;
    this.maxSockets = options.maxSocketsPerOrigin ?? DEFAULT_MAX_SOCKETS;
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.allowInsecure = options.allowInsecureEndpoints ?? false;
    this.allowHost = options.allowHost;
    this.vapid = options.vapidCache ?? new VapidHeaderCache({ now: options.now });
    this.backoff = options.backoff ?? {};
    this.now = options.now ?? Date.now;
    if (!(this.maxConcurrency >= 1) || !(this.maxSockets >= 1) || !(this.timeoutMs > 0)) {
      throw new RangeError('maxConcurrency, maxSocketsPerOrigin and timeoutMs must be positive');
    }
    // Idle keep-alive sockets close after IDLE_SOCKET_TIMEOUT_MS; a request in flight is bounded by timeoutMs.
    this.dispatcher = outboundAgent(this.maxSockets, IDLE_SOCKET_TIMEOUT_MS);
    // A pool of no threads encrypts on the event loop: one path for every send.
    this.encryption = options.encryption ?? new EncryptPool(0);
  }

  /** Threads encrypting off the event loop (0: encryption runs on it). */
  get encryptThreads(): number {
    return this.encryption.size;
  }

  /** Requests currently in flight. */
  get inFlight(): number {
    return this.active;
  }

  /** Sends waiting for a concurrency slot. */
  get queued(): number {
    return this.waiting.length - this.waitingHead;
  }

  /**
   * Encrypts `payload` for `subscription` and POSTs it. Resolves with an outcome for every answer, network
   * error or timeout; rejects (HeraldError 400/413) only for input that no retry can fix: a refused endpoint,
   * bad keys, an oversized payload or invalid TTL/Urgency/Topic. Nothing is sent in that case.
   */
  async send(subscription: PushSubscriptionData, payload: string | Uint8Array, options: SendOptions): Promise<PushOutcome> {
    if (this.closed) throw new Error('PushSender is closed');
    const url = checkPushEndpoint(subscription.endpoint, this.allowInsecure, this.allowHost);
    const problem = sendOptionsProblem(options);
    if (problem) throw new HeraldError('BAD_REQUEST', problem);
    const keys = decodeSubscriptionKeys(subscription.keys);
    const size = checkPayloadSize(payload);
    if (!size.ok) throw new HeraldError('PAYLOAD_TOO_LARGE', `Push payload is ${size.bytes} bytes; at most ${size.max} fit in one message`);

    await this.acquire();
    try {
      const attempt = options.attempt ?? 0;
      // close() may have run while this send waited for its slot; the message itself is still deliverable.
      if (this.closed) return { kind: 'retry', afterMs: retryDelayMs(attempt, this.backoff), error: 'PushSender is closed' };
      // Encrypt inside the slot so a large fan-out spreads its CPU instead of encrypting everything up front.
      let body: Buffer;
      try {
        body = await this.encryption.encrypt(payload, keys);
      } catch (err) {
        if (err instanceof EncryptThreadError) return { kind: 'retry', afterMs: retryDelayMs(attempt, this.backoff), error: err.message };
        throw err;
      }
      const headers: Record<string, string> = {
        TTL: String(options.ttl),
        'Content-Encoding': 'aes128gcm',
        'Content-Type': 'application/octet-stream',
        Authorization: this.vapid.authorization(options.vapidKey, url.origin),
      };
      if (options.urgency) headers['Urgency'] = options.urgency;
      if (options.topic) headers['Topic'] = options.topic;

      let response: RawResponse;
      try {
        // A total deadline, unlike web-push's socket idle timeout, also bounds a slow trickle (push.md §3.2).
        // Only the start of an error body is useful (Apple `{reason}`, Autopush JSON).
        const answer = await post(this.dispatcher, url, headers, body, {
          timeoutMs: this.timeoutMs,
          timeoutError: () => new PushTimeoutError(this.timeoutMs),
          keepBodyBytes: MAX_REASON_CHARS,
        });
        response = {
          status: answer.status,
          retryAfter: headerValue(answer.headers['retry-after']),
          ttl: headerValue(answer.headers['ttl']),
          body: answer.body,
        };
      } catch (err) {
        // Connection refused/reset, DNS, TLS or the deadline: all transient from here (push.md §2.5).
        return { kind: 'retry', afterMs: retryDelayMs(attempt, this.backoff), error: describeError(err) };
      }
      return classifyResponse(response.status, response, attempt, { backoff: this.backoff, now: this.now() });
    } finally {
      this.release();
    }
  }

  /** Closes pooled sockets; sends still in flight fail with a network error and come back as `retry`. */
  close(): void {
    this.closed = true;
    void this.dispatcher.destroy();
    void this.encryption.close();
  }

  private acquire(): Promise<void> {
    if (this.active < this.maxConcurrency) {
      this.active++;
      return Promise.resolve();
    }
    // The slot is handed over directly in release(), so active never drops below the cap while sends wait.
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  private release(): void {
    if (this.waitingHead === this.waiting.length) {
      this.active--;
      return;
    }
    const next = this.waiting[this.waitingHead]!;
    this.waitingHead++;
    if (this.waitingHead === this.waiting.length) {
      this.waiting = [];
      this.waitingHead = 0;
    } else if (this.waitingHead >= 1024 && this.waitingHead * 2 >= this.waiting.length) {
      this.waiting = this.waiting.slice(this.waitingHead);
      this.waitingHead = 0;
    }
    next();
  }
}

/** The deadline of one push request passed. */
export class PushTimeoutError extends Error {
  readonly code = 'PUSH_TIMEOUT';
  constructor(timeoutMs: number) {
    super(`Push request exceeded its ${timeoutMs} ms deadline`);
    this.name = 'PushTimeoutError';
  }
}

interface RawResponse {
  status: number;
  retryAfter?: string;
  ttl?: string;
  body: string;
}

function headerValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

function describeError(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as NodeJS.ErrnoException).code;
    return code ? `${code}: ${err.message}` : err.message;
  }
  return String(err);
}
