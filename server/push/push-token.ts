/**
 * The token that binds a device to a user (`PUT /push/v1/:appKey/devices/:deviceId/user`): a JWT the app's
 * server signs with the app secret, as Beams' `generateToken` does (push.md §1.1): HS256, `sub` = user id,
 * `exp` at most 24 h ahead. Pure but for the HMAC; the clock is passed in.
 */
import { timingSafeEqual } from 'node:crypto';
import { pushUserIdProblem } from '../../sdk/protocol';
import { hmacSha256 } from '../../sdk/protocol/node/hmac';

/** Longest lifetime a token may claim (Beams tokens live 24 h). */
export const MAX_TOKEN_LIFETIME_SECONDS = 24 * 3600;
/** Clock skew tolerated on `exp`, `nbf` and `iat` ("Token used before issued", push.md §1.6). */
export const TOKEN_LEEWAY_SECONDS = 60;

const HEADER = Buffer.from(JSON.stringify({ alg: 'HS256', typ: 'JWT' })).toString('base64url');

/** Signs a user token; what an app's server does (also the server SDK's `generatePushToken`). */
export function signPushToken(secret: string, userId: string, options: { lifetimeSeconds?: number; nowSeconds?: number; issuer?: string } = {}): string {
  const now = options.nowSeconds ?? Math.floor(Date.now() / 1000);
  const claims: Record<string, unknown> = { sub: userId, iat: now, exp: now + (options.lifetimeSeconds ?? MAX_TOKEN_LIFETIME_SECONDS) };
  if (options.issuer !== undefined) claims.iss = options.issuer;
  const input = `${HEADER}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}`;
  return `${input}.${hmacSha256(secret, input).toString('base64url')}`;
}

/** The user id a valid token names, or why it is refused. */
export type TokenCheck = { ok: true; userId: string } | { ok: false; problem: string };

/** Verifies a token against the app secret at `nowSeconds`. Only HS256 is accepted (never `none`). */
export function verifyPushToken(secret: string, token: string, nowSeconds: number): TokenCheck {
  const parts = token.split('.');
  if (parts.length !== 3) return { ok: false, problem: 'token is not a JWT' };
  const [h, c, s] = parts as [string, string, string];
  let header: Record<string, unknown>;
  let claims: Record<string, unknown>;
  try {
    header = JSON.parse(Buffer.from(h, 'base64url').toString('utf8')) as Record<string, unknown>;
    claims = JSON.parse(Buffer.from(c, 'base64url').toString('utf8')) as Record<string, unknown>;
  } catch {
    return { ok: false, problem: 'token is not a JWT' };
  }
  if (typeof header !== 'object' || header === null || typeof claims !== 'object' || claims === null) return { ok: false, problem: 'token is not a JWT' };
  if (header.alg !== 'HS256') return { ok: false, problem: 'token must be signed with HS256' };
  const expected = hmacSha256(secret, `${h}.${c}`);
  const given = Buffer.from(s, 'base64url');
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return { ok: false, problem: 'token signature does not verify with the app secret' };

  const { sub, exp, nbf, iat } = claims;
  if (typeof exp !== 'number') return { ok: false, problem: 'token has no exp' };
  if (exp <= nowSeconds - TOKEN_LEEWAY_SECONDS) return { ok: false, problem: 'token has expired' };
  if (exp > nowSeconds + MAX_TOKEN_LIFETIME_SECONDS + TOKEN_LEEWAY_SECONDS) return { ok: false, problem: 'token exp is more than 24 h ahead' };
  if (typeof nbf === 'number' && nbf > nowSeconds + TOKEN_LEEWAY_SECONDS) return { ok: false, problem: 'token is not valid yet (nbf)' };
  if (typeof iat === 'number' && iat > nowSeconds + TOKEN_LEEWAY_SECONDS) return { ok: false, problem: 'token used before issued (iat)' };
  const problem = pushUserIdProblem(sub);
  if (problem) return { ok: false, problem: `token sub: ${problem}` };
  return { ok: true, userId: sub as string };
}
