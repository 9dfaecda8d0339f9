/**
 * Clients for tests: the real `pusher-js` and `pusher` packages pointed at a test node, and a raw
 * WebSocket client for what the libraries hide (close codes, malformed frames).
 */
import WebSocket from 'ws';
import PusherServer from 'pusher';
import type { AppOptions } from '../../server/options/Options';
import { restStringToSign } from '../../sdk/protocol';
import { hmacSha256Hex, md5Hex } from '../../sdk/protocol/node/hmac';
import type { TestHerald } from './herald';

// pusher-js ships CommonJS with a default export under `require`.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const PusherJs = require('pusher-js') as typeof import('pusher-js').default;
export type PusherClient = InstanceType<typeof PusherJs>;

/** The `pusher` server SDK for the node's app, with only host and port changed. */
export function serverSdk(h: TestHerald, app: AppOptions = h.app, extra: Record<string, unknown> = {}): PusherServer {
  return new PusherServer({ appId: app.id, key: app.key, secret: app.secret, host: h.host, port: String(h.port), useTLS: false, ...extra });
}

/**
 * A request signed like the REST API (protocol.md §3) with the body as given, byte for byte, so a test can
 * sign any text; `query` adds parameters to the signed ones. `path` is the full path (`/apps/:id/...`).
 */
export function signedFetch(h: TestHerald, method: string, path: string, body: string | null, query: Record<string, string> = {}, app: AppOptions = h.app): Promise<Response> {
  const params: Record<string, string> = { ...query, auth_key: app.key, auth_timestamp: String(Math.floor(Date.now() / 1000)), auth_version: '1.0' };
  if (body !== null) params.body_md5 = md5Hex(body);
  params.auth_signature = hmacSha256Hex(app.secret, restStringToSign(method, path, params));
  return fetch(`${h.baseUrl}${path}?${new URLSearchParams(params).toString()}`, {
    method,
    body,
    headers: body === null ? {} : { 'content-type': 'application/json' },
  });
}

export interface ClientOptions {
  app?: AppOptions;
  /** presence user for channel auth (channel_data); omit for signed-in presence. */
  presence?: { user_id: string; user_info?: unknown } | null;
  /** user for `pusher:signin` (pusher-js `userAuthentication`). */
  user?: { id: string; user_info?: unknown; watchlist?: string[] };
  extra?: Record<string, unknown>;
}

/**
 * A pusher-js client whose channel authorization and user authentication are signed locally with the
 * `pusher` SDK, as an app's auth endpoint would.
 */
export function pusherJs(h: TestHerald, opts: ClientOptions = {}): PusherClient {
  const app = opts.app ?? h.app;
  const sdk = serverSdk(h, app);
  const client = new PusherJs(app.key, {
    cluster: 'herald',
    wsHost: h.host,
    wsPort: h.port,
    forceTLS: false,
    enabledTransports: ['ws'],
    disableStats: true,
    channelAuthorization: {
      customHandler: (params: { socketId: string; channelName: string }, callback: (err: Error | null, data: unknown) => void) => {
        const presence = params.channelName.startsWith('presence-') ? opts.presence : undefined;
        callback(null, presence ? sdk.authorizeChannel(params.socketId, params.channelName, presence as PusherServer.PresenceChannelData) : sdk.authorizeChannel(params.socketId, params.channelName));
      },
    },
    userAuthentication: {
      customHandler: (params: { socketId: string }, callback: (err: Error | null, data: unknown) => void) => {
        if (!opts.user) return callback(new Error('no user for this test client'), null);
        callback(null, sdk.authenticateUser(params.socketId, opts.user as PusherServer.UserChannelData));
      },
    },
    ...opts.extra,
  } as never);
  h.clients.add(client);
  return client;
}

/** Resolves when the pusher-js client is connected. */
export function connected(client: PusherClient): Promise<string> {
  return new Promise((resolve, reject) => {
    if (client.connection.state === 'connected') return resolve(client.connection.socket_id);
    const onChange = ({ current }: { current: string }) => {
      if (current === 'connected') {
        client.connection.unbind('state_change', onChange);
        resolve(client.connection.socket_id);
      } else if (current === 'failed' || current === 'unavailable') {
        reject(new Error(`connection ${current}`));
      }
    };
    client.connection.bind('state_change', onChange);
  });
}

/** Something pusher-js-like that events can be bound to (a channel, `connection`, `user`). */
export interface Bindable {
  bind(event: string, cb: (data: never) => void): unknown;
  unbind(event: string, cb: (data: never) => void): unknown;
}

/** Resolves with the data of the next `event` on a pusher-js channel (or other bindable). */
export function nextEvent<T = unknown>(emitter: unknown, event: string, timeoutMs = 5000): Promise<T> {
  const e = emitter as Bindable;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out waiting for ${event}`)), timeoutMs);
    const cb = (d: T) => {
      clearTimeout(timer);
      e.unbind(event, cb as (d: never) => void);
      resolve(d);
    };
    e.bind(event, cb as (d: never) => void);
  });
}

/** A raw message received by RawClient, with `data` decoded once more when it is a JSON string. */
export interface RawMessage {
  event: string;
  channel?: string;
  data?: unknown;
  user_id?: string;
}

/**
 * A raw WebSocket client speaking the Pusher protocol by hand. Messages are queued so a test can await
 * the next one matching a predicate without races.
 */
export class RawClient {
  readonly ws: WebSocket;
  private readonly queue: RawMessage[] = [];
  private waiters: { match: (m: RawMessage) => boolean; resolve: (m: RawMessage) => void }[] = [];
  readonly closed: Promise<{ code: number; reason: string }>;
  socketId = '';

  constructor(url: string, wsOptions: WebSocket.ClientOptions = {}) {
    this.ws = new WebSocket(url, wsOptions);
    this.ws.on('message', (raw: Buffer) => {
      const msg = JSON.parse(raw.toString()) as RawMessage;
      if (typeof msg.data === 'string') {
        try {
          msg.data = JSON.parse(msg.data);
        } catch {
          // keep the raw string, as pusher-js does
        }
      }
      const i = this.waiters.findIndex((w) => w.match(msg));
      if (i >= 0) this.waiters.splice(i, 1)[0].resolve(msg);
      else this.queue.push(msg);
    });
    this.closed = new Promise((resolve) => this.ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })));
    this.ws.on('error', () => undefined);
  }

  static url(h: TestHerald, key = h.app.key, query = 'protocol=7&client=js&version=8.4.0&flash=false'): string {
    return `ws://${h.host}:${h.port}/app/${key}${query ? `?${query}` : ''}`;
  }

  /** Connects and waits for `pusher:connection_established`. */
  static async connect(h: TestHerald, opts: { key?: string; query?: string; ws?: WebSocket.ClientOptions } = {}): Promise<RawClient> {
    const c = new RawClient(RawClient.url(h, opts.key, opts.query), opts.ws);
    const m = await c.next('pusher:connection_established');
    c.socketId = (m.data as { socket_id: string }).socket_id;
    return c;
  }

  /** Next message with this event name (and channel, if given), or matching a predicate. */
  next(match: string | ((m: RawMessage) => boolean), timeoutMs = 5000, channel?: string): Promise<RawMessage> {
    const pred = typeof match === 'string' ? (m: RawMessage) => m.event === match && (channel === undefined || m.channel === channel) : match;
    const i = this.queue.findIndex(pred);
    if (i >= 0) return Promise.resolve(this.queue.splice(i, 1)[0]);
    return new Promise((resolve, reject) => {
      const waiter = {
        match: pred,
        resolve: (m: RawMessage) => {
          clearTimeout(timer);
          resolve(m);
        },
      };
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        reject(new Error(`timed out waiting for ${typeof match === 'string' ? match : 'a message'}`));
      }, timeoutMs);
      this.waiters.push(waiter);
    });
  }

  /** Messages received and not yet consumed (for asserting that nothing arrived). */
  pending(): RawMessage[] {
    return [...this.queue];
  }

  send(msg: unknown): void {
    this.ws.send(typeof msg === 'string' ? msg : JSON.stringify(msg));
  }

  close(): void {
    this.ws.close();
  }
}

/** Signs a private/presence subscription like an app's auth endpoint. */
export function authFor(app: AppOptions, socketId: string, channel: string, channelData?: string): string {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { createHmac } = require('node:crypto') as typeof import('node:crypto');
  const str = channelData === undefined ? `${socketId}:${channel}` : `${socketId}:${channel}:${channelData}`;
  return `${app.key}:${createHmac('sha256', app.secret).update(str).digest('hex')}`;
}

/** A no-op round trip: once the pong arrives, every earlier message from this socket has been handled. */
export async function roundTrip(c: RawClient): Promise<void> {
  c.send({ event: 'pusher:ping', data: {} });
  await c.next('pusher:pong');
}
