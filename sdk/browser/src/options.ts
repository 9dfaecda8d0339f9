import type { Encryption } from './channels/EncryptedChannel';
import { DEFAULT_BACKOFF, type BackoffOptions } from './reconnect';

/** What an auth endpoint returns for a private, presence or encrypted channel. */
export interface ChannelAuthData {
  auth: string;
  channel_data?: string;
  shared_secret?: string;
}

/** What a user-authentication endpoint returns for `pusher:signin`. */
export interface UserAuthData {
  auth: string;
  user_data: string;
}

export interface HeraldOptions {
  /** Herald's host (default: the page's host name). */
  host?: string;
  /** Herald's port (default 443 with TLS, else 6001). */
  port?: number;
  /** Use `wss:`/`https:` (default: when the page is served over https). */
  tls?: boolean;
  /** URL that authorizes private, presence and encrypted channels (POST `socket_id`, `channel_name`). */
  authEndpoint?: string;
  /** Extra headers for `authEndpoint` (e.g. a CSRF token). */
  authHeaders?: Record<string, string>;
  /** Authorizes channels in code instead of calling `authEndpoint`. */
  authorizer?: (socketId: string, channelName: string) => Promise<ChannelAuthData>;
  /** Sign-in (`herald.signin()`): an endpoint (POST `socket_id`) or your own function. */
  userAuthentication?: {
    endpoint?: string;
    headers?: Record<string, string>;
    handler?: (socketId: string) => Promise<UserAuthData>;
  };
  /** ms without a message before the client pings (default 120 000; the server's value caps it). */
  activityTimeout?: number;
  /** ms to wait for the pong (default 30 000) before reconnecting. */
  pongTimeout?: number;
  /** ms of failed connecting before the state becomes `unavailable` (default 10 000). */
  unavailableTimeout?: number;
  /** Reconnect backoff: first delay and cap, in ms (default 1 000 and 30 000). */
  backoff?: Partial<BackoffOptions>;
  /** Decryption for `private-encrypted-` channels, from `herald-encryption` (default: `Herald.encryption`). */
  encryption?: Encryption;
  /** Connect at once (default true); otherwise call `connect()`. */
  autoConnect?: boolean;
  /** Receives the SDK's diagnostics; silent by default. */
  log?: (level: 'debug' | 'warn' | 'error', message: string) => void;
}

export interface ResolvedOptions {
  host: string;
  port: number;
  tls: boolean;
  authEndpoint: string | undefined;
  authHeaders: Record<string, string>;
  authorizer: ((socketId: string, channelName: string) => Promise<ChannelAuthData>) | undefined;
  userAuthentication: NonNullable<HeraldOptions['userAuthentication']>;
  activityTimeout: number;
  pongTimeout: number;
  unavailableTimeout: number;
  backoff: BackoffOptions;
  log: (level: 'debug' | 'warn' | 'error', message: string) => void;
}

export function resolveOptions(o: HeraldOptions): ResolvedOptions {
  const page = typeof location === 'undefined' ? undefined : location;
  const tls = o.tls ?? page?.protocol === 'https:';
  return {
    host: o.host ?? page?.hostname ?? '127.0.0.1',
    port: o.port ?? (tls ? 443 : 6001),
    tls,
    authEndpoint: o.authEndpoint,
    authHeaders: o.authHeaders ?? {},
    authorizer: o.authorizer,
    userAuthentication: o.userAuthentication ?? {},
    activityTimeout: o.activityTimeout ?? 120_000,
    pongTimeout: o.pongTimeout ?? 30_000,
    unavailableTimeout: o.unavailableTimeout ?? 10_000,
    backoff: { ...DEFAULT_BACKOFF, ...o.backoff },
    log: o.log ?? (() => undefined),
  };
}
