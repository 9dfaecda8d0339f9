/**
 * VAPID (RFC 8292, push.md §2.4): application server keys, subject validation and ES256 JWTs.
 * The JWT is the dominant cost of a naive sender (push.md §6), so it is signed natively from a cached
 * KeyObject and the whole Authorization header is reused per (key, push-service origin).
 */
import { createECDH, createPrivateKey, sign, type KeyObject } from 'node:crypto';

/** Lifetime of a fresh JWT; RFC 8292 §2 caps `exp` at 24 h, web-push and pywebpush use 12 h. */
export const VAPID_JWT_TTL_SECONDS = 12 * 3600;

/** A cached header is re-signed this long before its `exp`, so no request carries a nearly expired token. */
export const VAPID_REFRESH_BEFORE_SECONDS = 3600;

const MAX_JWT_TTL_SECONDS = 24 * 3600;
const JWT_HEADER = Buffer.from(JSON.stringify({ typ: 'JWT', alg: 'ES256' })).toString('base64url');

/** A VAPID key pair as stored in configuration: base64url public point (65 bytes) and private scalar (32 bytes). */
export interface VapidKeyPair {
  publicKey: string;
  privateKey: string;
}

/** Options of {@link VapidKey}. */
export interface VapidKeyOptions extends VapidKeyPair {
  /** Stable id stored with each subscription, because rotating the key invalidates old subscriptions (push.md §4.3.7). */
  id: string;
  /** Contact URI sent as `sub`: `mailto:` with a real address, or an `https:` URL. */
  subject: string;
}

/** Generates a new P-256 application server key pair. */
export function generateVapidKeys(): VapidKeyPair {
  const ecdh = createECDH('prime256v1');
  ecdh.generateKeys();
  // getPrivateKey drops leading zero bytes; the encoding is fixed-width 32 (web-push#295).
  const privateKey = Buffer.alloc(32);
  const d = ecdh.getPrivateKey();
  d.copy(privateKey, 32 - d.length);
  return { publicKey: ecdh.getPublicKey().toString('base64url'), privateKey: privateKey.toString('base64url') };
}

/**
 * Why a VAPID subject would be refused, or null when it is usable. Apple answers 403 BadJwtToken for
 * `mailto:` with a space, a bare address or a localhost domain (push.md §2.6), so those fail here at startup
 * instead of silently on every Safari push.
 */
export function vapidSubjectProblem(subject: string): string | null {
  if (subject.startsWith('mailto:')) {
    const address = subject.slice('mailto:'.length);
    const match = /^([^\s@<>()",;:]+)@([A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+)$/.exec(address);
    if (!match) return 'VAPID subject must be mailto:user@example.com with no spaces or display name';
    if (isLocalHostname(match[2]!)) return 'VAPID subject must not use a localhost domain';
    return null;
  }
  if (subject.startsWith('https:')) {
    let url: URL;
    try {
      url = new URL(subject);
    } catch {
      return 'VAPID subject is not a valid https: URL';
    }
    if (!url.hostname || isLocalHostname(url.hostname)) return 'VAPID subject must not point at localhost';
    return null;
  }
  return 'VAPID subject must start with mailto: or https:';
}

function isLocalHostname(host: string): boolean {
  const h = host.toLowerCase().replace(/\.$/, '');
  if (h === 'localhost' || h.endsWith('.localhost') || h === '[::1]' || h.startsWith('127.')) return true;
  // A dotless name only resolves on a private network; push services cannot contact it.
  return !h.includes('.') && !h.startsWith('[');
}

/** One application server key, ready to sign: the private KeyObject is built once, here. */
export class VapidKey {
  readonly id: string;
  readonly subject: string;
  /** base64url 65-byte uncompressed point, the `k=` value and the browser's `applicationServerKey`. */
  readonly publicKey: string;
  private readonly key: KeyObject;

  constructor(options: VapidKeyOptions) {
    const problem = vapidSubjectProblem(options.subject);
    if (problem) throw new TypeError(problem);
    const d = Buffer.from(options.privateKey, 'base64url');
    const pub = Buffer.from(options.publicKey, 'base64url');
    if (d.length !== 32) throw new TypeError('VAPID private key must be 32 bytes (base64url)');
    if (pub.length !== 65 || pub[0] !== 0x04) throw new TypeError('VAPID public key must be a 65-byte uncompressed P-256 point (base64url)');
    // A mismatched pair signs tokens every push service rejects; catch it at startup.
    const ecdh = createECDH('prime256v1');
    ecdh.setPrivateKey(d);
    if (!ecdh.getPublicKey().equals(pub)) throw new TypeError('VAPID public key does not match the private key');
    this.key = createPrivateKey({
      format: 'jwk',
      key: {
        kty: 'EC',
        crv: 'P-256',
        x: pub.subarray(1, 33).toString('base64url'),
        y: pub.subarray(33).toString('base64url'),
        d: d.toString('base64url'),
      },
    });
    this.id = options.id;
    this.subject = options.subject;
    this.publicKey = pub.toString('base64url');
  }

  /** Signs a VAPID JWT for a push-service origin, expiring at `expSeconds` (Unix time). */
  signJwt(audience: string, expSeconds: number): string {
    const claims = Buffer.from(JSON.stringify({ aud: audience, exp: expSeconds, sub: this.subject })).toString('base64url');
    const input = `${JWT_HEADER}.${claims}`;
    // JWS wants the raw r||s form, not DER (RFC 7518 §3.4).
    const signature = sign('sha256', Buffer.from(input), { key: this.key, dsaEncoding: 'ieee-p1363' });
    return `${input}.${signature.toString('base64url')}`;
  }
}

/** Options of {@link VapidHeaderCache}. */
export interface VapidHeaderCacheOptions {
  /** Token lifetime in seconds; at most 24 h. */
  ttlSeconds?: number;
  /** Re-sign this many seconds before `exp`. */
  refreshBeforeSeconds?: number;
  /** Entries kept; push origins are few, but WNS uses many hostnames. */
  maxEntries?: number;
  /** Clock in milliseconds, injectable for tests. */
  now?: () => number;
}

interface CachedHeader {
  value: string;
  refreshAtMs: number;
}

/** Reuses `Authorization: vapid t=…, k=…` per (key id, push-service origin) until shortly before it expires. */
export class VapidHeaderCache {
  private readonly ttlSeconds: number;
  private readonly refreshBeforeSeconds: number;
  private readonly maxEntries: number;
  private readonly now: () => number;
  private readonly entries = new Map<string, CachedHeader>();

  constructor(options: VapidHeaderCacheOptions = {}) {
    this.ttlSeconds = options.ttlSeconds ?? VAPID_JWT_TTL_SECONDS;
    this.refreshBeforeSeconds = options.refreshBeforeSeconds ?? VAPID_REFRESH_BEFORE_SECONDS;
    this.maxEntries = options.maxEntries ?? 1000;
    this.now = options.now ?? Date.now;
    if (this.ttlSeconds <= 0 || this.ttlSeconds > MAX_JWT_TTL_SECONDS) throw new RangeError('VAPID JWT lifetime must be within (0, 24 h]');
    if (this.refreshBeforeSeconds < 0 || this.refreshBeforeSeconds >= this.ttlSeconds) {
      throw new RangeError('refreshBeforeSeconds must be shorter than the JWT lifetime');
    }
  }

  /** The Authorization header value for `audience` (an origin such as `https://fcm.googleapis.com`). */
  authorization(key: VapidKey, audience: string): string {
    const cacheKey = `${key.id}\n${audience}`;
    const nowMs = this.now();
    const hit = this.entries.get(cacheKey);
    if (hit && nowMs < hit.refreshAtMs) return hit.value;

    const exp = Math.floor(nowMs / 1000) + this.ttlSeconds;
    const value = `vapid t=${key.signJwt(audience, exp)}, k=${key.publicKey}`;
    this.entries.delete(cacheKey);
    if (this.entries.size >= this.maxEntries) {
      // Maps iterate in insertion order and refreshed entries are re-inserted, so the first is the oldest.
      const oldest = this.entries.keys().next();
      if (!oldest.done) this.entries.delete(oldest.value);
    }
    this.entries.set(cacheKey, { value, refreshAtMs: (exp - this.refreshBeforeSeconds) * 1000 });
    return value;
  }

  /** Forgets every header signed with a key, e.g. after it is retired. */
  forgetKey(keyId: string): void {
    for (const k of this.entries.keys()) if (k.startsWith(`${keyId}\n`)) this.entries.delete(k);
  }

  /** Number of cached headers. */
  get size(): number {
    return this.entries.size;
  }
}
