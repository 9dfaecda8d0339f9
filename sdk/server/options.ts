import type { Agent } from 'node:http';
import { DEFAULT_LIMITS } from '../protocol';
import { HeraldInputError } from './errors';

/** Limits the SDK checks before sending; set them to the app's own limits when they differ. */
export type Limits = { -readonly [K in keyof typeof DEFAULT_LIMITS]: number };

/** Options of `new Herald(...)`; names follow pusher-http-node where the meaning is the same. */
export interface HeraldOptions {
  appId: string | number;
  key: string;
  secret: string;
  /** Herald's host name (default `127.0.0.1`). */
  host?: string;
  /** Herald's port (default 443 with TLS, else 6001). */
  port?: number | string;
  /** Use https (default false). */
  useTLS?: boolean;
  /** Deadline of one request, connect to last byte, in ms (default 10 000). */
  timeoutMs?: number;
  /** Base64 of a 32-byte key: enables `private-encrypted-` channels (protocol.md §1.12). */
  encryptionMasterKeyBase64?: string;
  /** Your own agent; by default a keep-alive agent owned by this client. */
  agent?: Agent;
  /** Overrides of the default limits, for apps configured with other values. */
  limits?: Partial<Limits>;
}

/** Options with defaults applied and checked once. */
export interface ResolvedOptions {
  appId: string;
  key: string;
  secret: string;
  host: string;
  port: number;
  useTLS: boolean;
  timeoutMs: number;
  encryptionMasterKey: Buffer | undefined;
  agent: Agent | undefined;
  limits: Limits;
}

const DEFAULT_TIMEOUT_MS = 10_000;

export function resolveOptions(o: HeraldOptions): ResolvedOptions {
  for (const name of ['key', 'secret'] as const) {
    if (typeof o[name] !== 'string' || o[name].length === 0) throw new HeraldInputError(`options.${name} must be a non-empty string`);
  }
  const appId = String(o.appId ?? '');
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(appId)) throw new HeraldInputError(`options.appId must be 1-64 characters of A-Z a-z 0-9 _ -`);
  const useTLS = o.useTLS ?? false;
  const port = o.port === undefined ? (useTLS ? 443 : 6001) : Number(o.port);
  if (!Number.isInteger(port) || port <= 0 || port > 65535) throw new HeraldInputError(`options.port must be a port number, got ${String(o.port)}`);
  const timeoutMs = o.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  if (!(timeoutMs > 0)) throw new HeraldInputError('options.timeoutMs must be positive');
  let encryptionMasterKey: Buffer | undefined;
  if (o.encryptionMasterKeyBase64 !== undefined) {
    encryptionMasterKey = Buffer.from(o.encryptionMasterKeyBase64, 'base64');
    if (encryptionMasterKey.length !== 32) {
      throw new HeraldInputError(`options.encryptionMasterKeyBase64 must be the base64 of 32 bytes, got ${encryptionMasterKey.length} bytes`);
    }
  }
  return {
    appId,
    key: o.key,
    secret: o.secret,
    host: o.host ?? '127.0.0.1',
    port,
    useTLS,
    timeoutMs,
    encryptionMasterKey,
    agent: o.agent,
    limits: { ...DEFAULT_LIMITS, ...o.limits },
  };
}
