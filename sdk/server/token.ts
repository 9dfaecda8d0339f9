/**
 * Push user tokens: a JWT (RFC 7519) signed HS256 with the app secret, as Beams' `generateToken`
 * (push.md §1.1). The browser SDK sends it as `Authorization: Bearer` to bind a device to a user.
 */
import { hmacSha256 } from '../protocol/node/hmac';
import { HeraldInputError } from './errors';
import { checkPushUserId } from './push';

/** Longest lifetime Herald accepts (push.md §4.3.9: `exp` at most 24 h ahead). */
export const MAX_PUSH_TOKEN_TTL_SECONDS = 24 * 60 * 60;

const b64url = (s: string | Buffer) => Buffer.from(s).toString('base64url');

export function signPushToken(
  appId: string,
  secret: string,
  userId: string,
  ttlSeconds = MAX_PUSH_TOKEN_TTL_SECONDS,
  nowSeconds = Math.floor(Date.now() / 1000),
): string {
  checkPushUserId(userId);
  if (!Number.isInteger(ttlSeconds) || ttlSeconds <= 0 || ttlSeconds > MAX_PUSH_TOKEN_TTL_SECONDS) {
    throw new HeraldInputError(`Token lifetime must be 1-${MAX_PUSH_TOKEN_TTL_SECONDS} seconds`);
  }
  const header = b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }));
  const claims = b64url(JSON.stringify({ sub: userId, iss: appId, iat: nowSeconds, exp: nowSeconds + ttlSeconds }));
  const signature = hmacSha256(secret, `${header}.${claims}`).toString('base64url');
  return `${header}.${claims}.${signature}`;
}
