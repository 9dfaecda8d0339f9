import { md5Hex, hmacSha256Hex, safeEqual } from '../../sdk/protocol/node/hmac';
import { restStringToSign } from '../../sdk/protocol';
import type { ErrorName } from '../errors';

/** How far `auth_timestamp` may be from server time (protocol.md §3). */
export const MAX_CLOCK_SKEW_SECONDS = 600;

/**
 * Checks a signed REST request (protocol.md §3). Returns the error to answer with, or null. Pure but for
 * the HMAC: every input is passed in, the clock included, so the spec's vectors test it directly.
 */
export function verifyRequest(
  app: { key: string; secret: string },
  method: string,
  path: string,
  query: Record<string, string>,
  rawBody: string,
  nowSeconds: number,
): ErrorName | null {
  const { auth_key, auth_timestamp, auth_version, auth_signature, body_md5 } = query;
  if (!auth_key || !auth_timestamp || !auth_signature) return 'AUTH_MISSING';
  // The key and the body's MD5 are not secrets (the key travels in every request; anyone holding the body can
  // compute its MD5), so a plain compare is enough; only the signature needs a constant-time one.
  if (auth_key !== app.key) return 'AUTH_KEY';
  if (auth_version !== undefined && auth_version !== '1.0') return 'AUTH_VERSION';
  const ts = Number(auth_timestamp);
  if (!/^\d+$/.test(auth_timestamp) || Math.abs(nowSeconds - ts) > MAX_CLOCK_SKEW_SECONDS) return 'AUTH_TIMESTAMP';
  if (rawBody.length > 0) {
    if (!body_md5 || body_md5 !== md5Hex(rawBody)) return 'AUTH_BODY_MD5';
  } else if (body_md5 !== undefined && body_md5 !== md5Hex('')) {
    return 'AUTH_BODY_MD5';
  }
  const expected = hmacSha256Hex(app.secret, restStringToSign(method, path, query));
  return safeEqual(auth_signature, expected) ? null : 'AUTH_SIGNATURE';
}
