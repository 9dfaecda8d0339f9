/** HMAC and digest helpers for Node runtimes (the server and the Node server SDK). */
import * as crypto from 'node:crypto';

/**
 * HMAC-SHA256 (RFC 2104) as two one-shot `crypto.hash` digests over precomputed key pads, instead of a
 * `createHmac` object per call. In a loop the two cost the same (~2 µs), but in the server, between
 * requests, each `Hmac` object also pays its digest lookup by name, key set-up, a weak handle and its
 * cleanup by the GC: ~8 µs per signed REST request, measured by alternating builds (bench/RESULTS.md run R).
 * The one-shot form allocates two small buffers from Node's pool and nothing the GC must finalize.
 */
const BLOCK_BYTES = 64;
const DIGEST_BYTES = 32;

/** The key XOR ipad and XOR opad blocks of RFC 2104 §2. */
interface KeyPads {
  inner: Buffer;
  outer: Buffer;
}

function keyPads(key: string | Buffer): KeyPads {
  let k = typeof key === 'string' ? Buffer.from(key) : key;
  if (k.length > BLOCK_BYTES) k = crypto.hash('sha256', k, 'buffer');
  const inner = Buffer.alloc(BLOCK_BYTES, 0x36);
  const outer = Buffer.alloc(BLOCK_BYTES, 0x5c);
  for (let i = 0; i < k.length; i++) {
    inner[i] ^= k[i];
    outer[i] ^= k[i];
  }
  return { inner, outer };
}

/** The outer hash's input: the key's opad block, then the digest of its ipad block and `data`. */
function outerInput(pads: KeyPads, data: string | Buffer): Buffer {
  const dataBytes = typeof data === 'string' ? Buffer.byteLength(data) : data.length;
  const first = Buffer.allocUnsafe(BLOCK_BYTES + dataBytes);
  pads.inner.copy(first, 0);
  if (typeof data === 'string') first.write(data, BLOCK_BYTES);
  else data.copy(first, BLOCK_BYTES);
  const second = Buffer.allocUnsafe(BLOCK_BYTES + DIGEST_BYTES);
  pads.outer.copy(second, 0);
  crypto.hash('sha256', first, 'buffer').copy(second, BLOCK_BYTES);
  return second;
}

/**
 * Pads of the secrets signed with lately: an app's secret signs every request, so its pads are worked out
 * once. Bounded, because SDK callers may pass any number of secrets; emptied when full (there are few apps).
 * Byte keys (HKDF steps, test vectors) are not cached.
 */
const padsBySecret = new Map<string, KeyPads>();
const MAX_CACHED_SECRETS = 256;

function padsFor(key: string | Buffer): KeyPads {
  if (typeof key !== 'string') return keyPads(key);
  let pads = padsBySecret.get(key);
  if (pads === undefined) {
    if (padsBySecret.size >= MAX_CACHED_SECRETS) padsBySecret.clear();
    pads = keyPads(key);
    padsBySecret.set(key, pads);
  }
  return pads;
}

/** HMAC-SHA256 of `data` under an app secret, as lowercase hex (every Pusher signature). */
export function hmacSha256Hex(secret: string, data: string | Buffer): string {
  return crypto.hash('sha256', outerInput(padsFor(secret), data), 'hex');
}

/** HMAC-SHA256 of `data` as bytes (push tokens, test vectors). */
export function hmacSha256(key: string | Buffer, data: string | Buffer): Buffer {
  return crypto.hash('sha256', outerInput(padsFor(key), data), 'buffer');
}

/** MD5 as hex in one call, without a Hash object (every signed REST request with a body takes one). */
export function md5Hex(data: string | Buffer): string {
  return crypto.hash('md5', data, 'hex');
}

/** Constant-time comparison of two strings; false when lengths differ (length is not secret). */
export function safeEqual(a: string, b: string): boolean {
  const ab = Buffer.from(a);
  const bb = Buffer.from(b);
  return ab.length === bb.length && crypto.timingSafeEqual(ab, bb);
}
