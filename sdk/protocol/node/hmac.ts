/** HMAC and digest helpers for Node runtimes (the server and the Node server SDK). */
import * as crypto from 'node:crypto';

export function hmacSha256Hex(secret: string, data: string | Buffer): string {
  return crypto.createHmac('sha256', secret).update(data).digest('hex');
}

/**
 * `crypto.hash` (Node ≥ 20.12) digests in one call without a Hash object; every signed REST request with a
 * body takes an MD5, and the one-shot form costs about half as much. Older Node 20 releases lack it.
 */
const oneShotHash = (crypto as { hash?: (algorithm: string, data: string | Buffer, encoding: 'hex') => string }).hash;

export function md5Hex(data: string | Buffer): string {
  return oneShotHash !== undefined ? oneShotHash('md5', data, 'hex') : crypto.createHash('md5').update(data).digest('hex');
}

/** Constant-time comparison of two strings; false when lengths differ (length is not secret). */
export function safeEqual(a: string, b: string): boolean {
  const ab = Buffer.from(a);
  const bb = Buffer.from(b);
  return ab.length === bb.length && crypto.timingSafeEqual(ab, bb);
}
