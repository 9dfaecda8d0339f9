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
  // Every signed REST request runs this: one pass over the keys, and a second value map only when some key
  // is not lowercase already (real SDKs send lowercase). Two keys equal but for case keep pusher-http-node's
  // result: both appear, each with the later value.
  const keys = Object.keys(params);
  let values = params;
  for (let i = 0; i < keys.length; i++) {
    const l = keys[i].toLowerCase();
    if (l === keys[i]) continue;
    keys[i] = l;
    if (values === params) {
      values = Object.create(null) as Record<string, string>;
      for (const k of Object.keys(params)) values[k.toLowerCase()] = params[k];
    }
  }
  const signed = keys.filter((k) => k !== 'auth_signature').sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  let query = '';
  for (let i = 0; i < signed.length; i++) query += `${i === 0 ? '' : '&'}${signed[i]}=${values[signed[i]]}`;
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
