/**
 * An in-process push service that plays the browser's side (push.md §5.3): it owns each subscription's
 * ECDH key and auth secret, checks requests the way FCM/Autopush/Apple do, decrypts bodies with the
 * independent `http_ece` implementation and can be scripted to fail, so the sender's §2.5 handling is
 * exercised against real sockets.
 */
import http from 'node:http';
import { EventEmitter } from 'node:events';
import { createECDH, createPublicKey, randomBytes, randomUUID, timingSafeEqual, verify, type ECDH } from 'node:crypto';

import { ece } from './push-browser';

/** A subscription as `PushSubscription.toJSON()` returns it, plus the fake's id for it. */
export interface FakeSubscription {
  id: string;
  endpoint: string;
  expirationTime: null;
  keys: { p256dh: string; auth: string };
}

/** VAPID JWT claims as received. */
export interface VapidClaims {
  aud?: unknown;
  exp?: unknown;
  sub?: unknown;
  [claim: string]: unknown;
}

/** One accepted and decrypted push. */
export interface ReceivedPush {
  subscriptionId: string;
  payload: string;
  headers: http.IncomingHttpHeaders;
  bodyBytes: number;
  vapid: { k: string; claims: VapidClaims };
}

/** A request the fake refused on its own (not a scripted failure), with why. */
export interface FakeRejection {
  subscriptionId: string | null;
  status: number;
  reason: string;
}

/** How {@link FakePushService.failNext} answers. */
export interface FailureScript {
  /** `Retry-After` value: seconds, or an HTTP date string. */
  retryAfter?: number | string;
  /** How many of the next requests get this answer; default 1. */
  times?: number;
}

interface SubscriptionState {
  ecdh: ECDH;
  auth: Buffer;
  applicationServerKey: Buffer | null;
  failures: Array<{ status: number; retryAfter?: number | string }>;
  hangs: number;
  messages: ReceivedPush[];
}

const MAX_BODY_BYTES = 4096;
const MAX_EXP_AHEAD_SECONDS = 24 * 3600;
const TOPIC_PATTERN = /^[A-Za-z0-9_-]{1,32}$/;
const URGENCIES = new Set(['very-low', 'low', 'normal', 'high']);
const VAPID_HEADER = /^vapid\s+t=([A-Za-z0-9_.-]+)\s*,\s*k=([A-Za-z0-9_-]+)$/i;

/** A fake Web Push service on 127.0.0.1 with an ephemeral port. */
export class FakePushService {
  /** `http://127.0.0.1:PORT`, the expected VAPID `aud`. */
  readonly origin: string;
  /** Every accepted push, in arrival order. */
  readonly messages: ReceivedPush[] = [];
  /** Requests refused by validation, for assertions and debugging. */
  readonly rejections: FakeRejection[] = [];
  /** Requests currently being handled. */
  inFlight = 0;
  /** Highest `inFlight` seen. */
  maxInFlight = 0;
  /** TCP connections accepted, to observe keep-alive pooling. */
  connections = 0;
  /** Requests received, whatever their answer. */
  requests = 0;

  private readonly subscriptions = new Map<string, SubscriptionState>();
  private readonly events = new EventEmitter();
  private readonly hanging = new Set<http.ServerResponse>();
  private latencyMs = 0;
  private holding = false;
  private held: Array<() => void> = [];

  private constructor(private readonly server: http.Server) {
    const address = server.address();
    if (address === null || typeof address === 'string') throw new Error('FakePushService is not listening on TCP');
    this.origin = `http://127.0.0.1:${address.port}`;
    server.on('connection', () => this.connections++);
  }

  /** Starts a fake on an ephemeral port. */
  static async start(): Promise<FakePushService> {
    const server = http.createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
    const fake = new FakePushService(server);
    server.on('request', (req, res) => fake.handle(req, res));
    return fake;
  }

  /** Creates a subscription like `pushManager.subscribe`; with a key, requests must carry a VAPID header for it. */
  createSubscription(applicationServerKey?: string): FakeSubscription {
    const id = randomUUID();
    const ecdh = createECDH('prime256v1');
    const p256dh = ecdh.generateKeys();
    const auth = randomBytes(16);
    this.subscriptions.set(id, {
      ecdh,
      auth,
      applicationServerKey: applicationServerKey ? Buffer.from(applicationServerKey, 'base64url') : null,
      failures: [],
      hangs: 0,
      messages: [],
    });
    return {
      id,
      endpoint: `${this.origin}/push/${id}`,
      expirationTime: null,
      keys: { p256dh: p256dh.toString('base64url'), auth: auth.toString('base64url') },
    };
  }

  /** Answers the next request(s) for a subscription with `status` (and `Retry-After`), before any validation. */
  failNext(subscriptionId: string, status: number, script: FailureScript = {}): void {
    const state = this.state(subscriptionId);
    for (let i = 0; i < (script.times ?? 1); i++) state.failures.push({ status, retryAfter: script.retryAfter });
  }

  /** Never answers the next request(s) for a subscription, to exercise client deadlines. */
  hangNext(subscriptionId: string, times = 1): void {
    this.state(subscriptionId).hangs += times;
  }

  /** Marks a subscription as unsubscribed: every later request gets 410, as FCM and Apple do. */
  expire(subscriptionId: string): void {
    this.subscriptions.delete(subscriptionId);
  }

  /** Delays every answer, simulating network and service latency so concurrency becomes observable. */
  setLatency(ms: number): void {
    this.latencyMs = ms;
  }

  /**
   * Holds every answer from now on until {@link releaseHeld} or {@link stopHolding}, so a test can see
   * exactly how many requests a client keeps in flight at once.
   */
  holdResponses(): void {
    this.holding = true;
  }

  /** Answers the requests held so far and keeps holding new ones; returns how many were released. */
  releaseHeld(): number {
    const answers = this.held;
    this.held = [];
    for (const answer of answers) answer();
    return answers.length;
  }

  /** Answers everything held and stops holding. */
  stopHolding(): void {
    this.holding = false;
    this.releaseHeld();
  }

  /** Resolves once `count` requests are being held; rejects after `timeoutMs`. */
  waitForHeld(count: number, timeoutMs = 5000): Promise<void> {
    return this.until('held', () => this.held.length >= count, timeoutMs, () => `${count} held requests, got ${this.held.length}`);
  }

  /** Accepted pushes for one subscription. */
  messagesFor(subscriptionId: string): readonly ReceivedPush[] {
    return this.subscriptions.get(subscriptionId)?.messages ?? [];
  }

  /** Resolves once `count` pushes in total have been accepted; rejects after `timeoutMs`. */
  async waitFor(count: number, timeoutMs = 5000): Promise<ReceivedPush[]> {
    await this.until('message', () => this.messages.length >= count, timeoutMs, () => {
      const last = this.rejections.at(-1);
      return `${count} pushes, got ${this.messages.length}` + (last ? `; last rejection: ${last.status} ${last.reason}` : '');
    });
    return [...this.messages];
  }

  private until(event: string, done: () => boolean, timeoutMs: number, describe: () => string): Promise<void> {
    if (done()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const check = (): void => {
        if (!done()) return;
        clearTimeout(timer);
        this.events.off(event, check);
        resolve();
      };
      const timer = setTimeout(() => {
        this.events.off(event, check);
        reject(new Error(`Waited ${timeoutMs} ms for ${describe()}`));
      }, timeoutMs);
      this.events.on(event, check);
    });
  }

  /** Stops the server and drops every open connection, including hanging requests. */
  async close(): Promise<void> {
    this.holding = false;
    this.held = [];
    for (const res of this.hanging) res.destroy();
    this.hanging.clear();
    this.server.closeAllConnections();
    await new Promise<void>((resolve, reject) => this.server.close((err) => (err ? reject(err) : resolve())));
  }

  private state(subscriptionId: string): SubscriptionState {
    const state = this.subscriptions.get(subscriptionId);
    if (!state) throw new Error(`Unknown fake subscription ${subscriptionId}`);
    return state;
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    this.requests++;
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    res.on('close', () => this.inFlight--);
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const answer = (): void => this.respond(req, res, Buffer.concat(chunks));
      if (this.holding) {
        this.held.push(answer);
        this.events.emit('held');
      } else if (this.latencyMs > 0) setTimeout(answer, this.latencyMs);
      else answer();
    });
  }

  private respond(req: http.IncomingMessage, res: http.ServerResponse, body: Buffer): void {
    // The client may have given up (deadline) while the simulated latency ran.
    if (res.destroyed) return;
    const match = /^\/push\/([0-9a-f-]+)$/.exec(req.url ?? '');
    const id = match?.[1] ?? null;
    if (req.method !== 'POST' || id === null) return this.refuse(res, null, 404, 'NotFound');
    const state = this.subscriptions.get(id);
    if (!state) return this.refuse(res, id, 410, 'Unregistered');

    const failure = state.failures.shift();
    if (failure) {
      const headers: http.OutgoingHttpHeaders = { 'Content-Type': 'application/json' };
      if (failure.retryAfter !== undefined) headers['Retry-After'] = String(failure.retryAfter);
      res.writeHead(failure.status, headers).end(JSON.stringify({ reason: `Scripted ${failure.status}` }));
      return;
    }
    if (state.hangs > 0) {
      state.hangs--;
      this.hanging.add(res);
      res.on('close', () => this.hanging.delete(res));
      return;
    }

    // Checks in the order a real service applies them: framing, then auth, then the content.
    const ttl = req.headers['ttl'];
    if (typeof ttl !== 'string' || !/^\d+$/.test(ttl)) return this.refuse(res, id, 400, 'Missing or non-numeric TTL');
    if (req.headers['content-encoding'] !== 'aes128gcm') return this.refuse(res, id, 400, 'Content-Encoding must be aes128gcm');
    const urgency = req.headers['urgency'];
    if (urgency !== undefined && (typeof urgency !== 'string' || !URGENCIES.has(urgency))) return this.refuse(res, id, 400, 'Invalid Urgency');
    const topic = req.headers['topic'];
    if (topic !== undefined && (typeof topic !== 'string' || !TOPIC_PATTERN.test(topic))) return this.refuse(res, id, 400, 'Invalid Topic');

    const vapid = this.checkVapid(req.headers['authorization'], state);
    if ('status' in vapid) return this.refuse(res, id, vapid.status, vapid.reason);

    if (body.length > MAX_BODY_BYTES) return this.refuse(res, id, 413, 'PayloadTooLarge');
    let plaintext: Buffer;
    try {
      plaintext = ece.decrypt(body, { version: 'aes128gcm', privateKey: state.ecdh, authSecret: state.auth });
    } catch (err) {
      return this.refuse(res, id, 400, `Decryption failed: ${err instanceof Error ? err.message : String(err)}`);
    }

    const message: ReceivedPush = {
      subscriptionId: id,
      payload: plaintext.toString('utf8'),
      headers: req.headers,
      bodyBytes: body.length,
      vapid,
    };
    state.messages.push(message);
    this.messages.push(message);
    res.writeHead(201, { Location: `${this.origin}/message/${randomUUID()}`, TTL: ttl }).end();
    this.events.emit('message', message);
  }

  /** RFC 8292 checks; 401 when the header is missing or malformed, 403 when it is invalid (§4). */
  private checkVapid(
    authorization: string | undefined,
    state: SubscriptionState,
  ): { k: string; claims: VapidClaims } | { status: number; reason: string } {
    if (!authorization) return { status: 401, reason: 'Missing VAPID Authorization' };
    const parsed = VAPID_HEADER.exec(authorization);
    if (!parsed) return { status: 401, reason: 'Authorization is not "vapid t=…, k=…"' };
    const [, token, k] = parsed as unknown as [string, string, string];
    const key = Buffer.from(k, 'base64url');
    if (key.length !== 65 || key[0] !== 0x04) return { status: 401, reason: 'k is not a P-256 point' };
    if (state.applicationServerKey && (key.length !== state.applicationServerKey.length || !timingSafeEqual(key, state.applicationServerKey))) {
      return { status: 403, reason: 'k does not match the applicationServerKey' };
    }

    const parts = token.split('.');
    if (parts.length !== 3) return { status: 401, reason: 'Malformed JWT' };
    const [headerPart, claimsPart, signaturePart] = parts as [string, string, string];
    let header: { alg?: unknown };
    let claims: VapidClaims;
    try {
      header = JSON.parse(Buffer.from(headerPart, 'base64url').toString('utf8')) as { alg?: unknown };
      claims = JSON.parse(Buffer.from(claimsPart, 'base64url').toString('utf8')) as VapidClaims;
    } catch (err) {
      return { status: 401, reason: `JWT is not JSON: ${err instanceof Error ? err.message : String(err)}` };
    }
    if (header.alg !== 'ES256') return { status: 403, reason: `JWT alg ${String(header.alg)} is not ES256` };

    const publicKey = createPublicKey({
      format: 'jwk',
      key: { kty: 'EC', crv: 'P-256', x: key.subarray(1, 33).toString('base64url'), y: key.subarray(33).toString('base64url') },
    });
    const signature = Buffer.from(signaturePart, 'base64url');
    const valid = verify('sha256', Buffer.from(`${headerPart}.${claimsPart}`), { key: publicKey, dsaEncoding: 'ieee-p1363' }, signature);
    if (!valid) return { status: 403, reason: 'JWT signature does not verify with k' };

    const now = Math.floor(Date.now() / 1000);
    if (claims.aud !== this.origin) return { status: 403, reason: `JWT aud ${String(claims.aud)} is not ${this.origin}` };
    if (typeof claims.exp !== 'number' || claims.exp <= now) return { status: 403, reason: 'JWT expired' };
    if (claims.exp > now + MAX_EXP_AHEAD_SECONDS) return { status: 403, reason: 'JWT exp is more than 24 h ahead' };
    if (typeof claims.sub !== 'string' || !/^(mailto:|https:)/.test(claims.sub)) return { status: 403, reason: 'JWT sub missing or not mailto:/https:' };
    return { k, claims };
  }

  private refuse(res: http.ServerResponse, subscriptionId: string | null, status: number, reason: string): void {
    this.rejections.push({ subscriptionId, status, reason });
    res.writeHead(status, { 'Content-Type': 'application/json' }).end(JSON.stringify({ reason }));
  }
}
