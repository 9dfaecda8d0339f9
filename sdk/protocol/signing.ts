/**
 * The strings that are signed with HMAC-SHA256 (protocol.md §2 and §3). Pure: computing the HMAC is left to
 * the runtime (`node/hmac.ts` on Node, WebCrypto elsewhere).
 */

/** Private, encrypted and presence channels: `socket_id:channel[:channel_data]`. */
export function channelAuthString(socketId: string, channel: string, channelData?: string): string {
  return channelData === undefined ? `${socketId}:${channel}` : `${socketId}:${channel}:${channelData}`;
}

/** User sign-in: `socket_id::user::user_data`. */
export function userAuthString(socketId: string, userData: string): string {
  return `${socketId}::user::${userData}`;
}

/**
 * REST request signing: `METHOD\npath\nsorted params`. Every query parameter except `auth_signature`,
 * keys lowercased, sorted by key with a plain `<` compare (as pusher-http-node does), joined `k=v&…` and not
 * URL-escaped.
 */
export function restStringToSign(method: string, path: string, params: Record<string, string>): string {
  const keys = Object.keys(params)
    .map((k) => k.toLowerCase())
    .filter((k) => k !== 'auth_signature');
  const lower: Record<string, string> = {};
  for (const k of Object.keys(params)) lower[k.toLowerCase()] = params[k];
  keys.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const query = keys.map((k) => `${k}=${lower[k]}`).join('&');
  return `${method.toUpperCase()}\n${path}\n${query}`;
}

/** Splits an `auth` value `key:signature`; null when it has no colon. */
export function splitAuth(auth: unknown): { key: string; signature: string } | null {
  if (typeof auth !== 'string') return null;
  const i = auth.indexOf(':');
  if (i <= 0) return null;
  return { key: auth.slice(0, i), signature: auth.slice(i + 1) };
}

/** The socket id format every server SDK checks (`^\d+\.\d+$`). */
export const SOCKET_ID_FORMAT = /^\d+\.\d+$/;

export function isSocketId(value: unknown): value is string {
  return typeof value === 'string' && SOCKET_ID_FORMAT.test(value);
}
